"""A score is on a rating's 1-10 scale, so every front end shows it as a rating is shown (`rating_text`):
the Discord post of a rated round's close names the crowd's verdict once (the engine's summary: "the crowd
gave 6.33/10"; a trial read it twice, as "reward 6.33/10" too), as rating_text shows it."""

from __future__ import annotations

import re

from bot.discord.votes import round_summary
from core.crowd import Ballot, rating_text
from core.engine import SessionSpec, plan_round, round_rng, settle


def test_the_post_of_a_rated_close_shows_the_crowds_verdict_one_way():
    spec = SessionSpec(seed=4)
    plan = plan_round(spec, 0, spec.first_track(), {}, round_rng(spec, 0))
    ballots = [Ballot("v0", 6.0), Ballot("v1", 6.0), Ballot("v2", 7.0)]  # a mean of 6.333...
    outcome = settle(spec, plan, ballots, {}, 5.0, round_rng(spec, 0))
    text = round_summary(2, "rating", outcome, ballots)
    shown = re.findall(r"(\d+(?:\.\d+)?)/10", text)
    assert shown == [rating_text(outcome.reward)], text
