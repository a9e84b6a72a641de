"""How A/B results are reported by every front end: an A/B reward is an edit's chance of beating the track
before it (core.crowd.ab_tally: 1 + 9 x that chance), not a 1-10 rating of the music, so no front end shows
it as "x/10", averages it with ratings or ranks it among them."""

from __future__ import annotations

import pytest

from bot.discord.votes import describe_ab_rounds
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


@pytest.mark.parametrize("kept, expected", [
    ([False], "1 A/B round: no edit kept; 2 of 4 votes preferred an edit to the track before"),
    ([True], "1 A/B round: its edit kept; 2 of 4 votes preferred an edit to the track before"),
    ([False, False, False], "3 A/B rounds: no edit kept; 6 of 12 votes preferred an edit to the track before"),
    ([True, False, True], "3 A/B rounds: an edit kept in 2; 6 of 12 votes preferred an edit to the track before"),
    ([True, True, True], "3 A/B rounds: an edit kept in each; 6 of 12 votes preferred an edit to the track before"),
])
def test_stats_says_the_ab_rounds_as_a_person_reads_them(kept, expected):
    """Found by a trial: /stats said "1 A/B round: an edit kept in 0", which reads broken."""
    assert describe_ab_rounds([(0.5, edit_kept, 4, 2) for edit_kept in kept]) == expected
