"""How A/B results are reported by every front end: an A/B reward is an edit's chance of beating the track
before it (core.crowd.ab_tally: 1 + 9 x that chance), not a 1-10 rating of the music, so no front end shows
it as "x/10", averages it with ratings or ranks it among them."""

from __future__ import annotations

from core.crowd import Ballot
from core.engine import SessionSpec, plan_round, round_rng, settle


def _ab_outcome(choices: list[str]):
    spec = SessionSpec(mode="ab", seed=4)
    plan = plan_round(spec, 0, spec.first_track(), {}, round_rng(spec, 0))
    ballots = [Ballot(f"v{i}", choice=c) for i, c in enumerate(choices)]
    return settle(spec, plan, ballots, {}, None, round_rng(spec, 0)), ballots


def test_the_discord_post_of_an_ab_close_shows_no_score_out_of_10():
    from bot.discord.votes import round_summary

    for choices in (["a", "b", "a"], ["neither", "neither"], ["both"]):
        outcome, ballots = _ab_outcome(choices)
        text = round_summary(3, "ab", outcome, ballots)
        assert text.startswith(f"**Round 3 closed**: {len(ballots)} voted (")
        assert "/10" not in text and "reward" not in text and "1-10" not in text, text
        assert "%" in text  # each edit's chance of beating the track before
