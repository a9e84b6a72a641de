"""Per-aspect votes (musicality, novelty, coherence) in storage: each answer merged into the voter's
standing ones, the vote's rating their compound, kept through retraction, in order within a batch."""

from __future__ import annotations

import pytest

from bot.conductor import Conductor
from core.crowd import compound_rating
from core.engine import SessionSpec
from storage import open_store


@pytest.fixture
async def opened(db_location):
    store = await open_store(db_location)
    conductor = Conductor(store)
    session = await conductor.start("guild:1", "guild", "c1", SessionSpec(rounds=3), actor="mod")
    round_id = (await conductor.open_round(session.id)).id
    yield store, conductor, round_id
    await store.close()


def op(conductor, round_id, voter, aspects):
    return conductor.vote_op(round_id, "rating", voter, aspects)


async def test_answers_merge_in_order_within_one_batch_and_the_rating_is_their_compound(opened):
    store, conductor, round_id = opened
    results = await store.apply_votes(
        [op(conductor, round_id, "v1", {"musicality": 8}), op(conductor, round_id, "v1", {"novelty": 5}),
         op(conductor, round_id, "v2", {"coherence": 3}), op(conductor, round_id, "v1", {"novelty": 5})]
    )  # fmt: skip
    assert [r.status for r in results] == ["recorded", "changed", "recorded", "unchanged"]
    assert results[1].aspects == {"musicality": 8.0, "novelty": 5.0}
    ballots = {b.voter: b.rating for b in await store.ballots(round_id)}
    assert ballots == {"v1": compound_rating({"musicality": 8, "novelty": 5}), "v2": 3.0}
    assert {v.ballot.voter: v.aspects for v in await store.standing_votes(round_id)} == {
        "v1": {"musicality": 8.0, "novelty": 5.0}, "v2": {"coherence": 3.0},
    }


async def test_a_retraction_withdraws_the_whole_vote_and_a_new_answer_starts_afresh(opened):
    store, conductor, round_id = opened
    await store.apply_votes([op(conductor, round_id, "v1", {"musicality": 8, "coherence": 6})])
    [retracted] = await store.apply_votes([conductor.vote_op(round_id, "rating", "v1", None, retract=True)])
    assert retracted.status == "retracted" and await store.ballots(round_id) == []
    [again] = await store.apply_votes([op(conductor, round_id, "v1", {"novelty": 9})])
    assert again.status == "recorded" and again.aspects == {"novelty": 9.0}
    assert [b.rating for b in await store.ballots(round_id)] == [9.0]


@pytest.mark.parametrize("aspects, says", [({"tempo": 5}, "unknown aspect"), ({"novelty": 11}, "10"), ({}, "at least one")])
async def test_a_bad_aspect_is_refused_before_it_reaches_storage(opened, aspects, says):
    _, conductor, round_id = opened
    with pytest.raises(ValueError, match=says):
        op(conductor, round_id, "v1", aspects)


async def test_the_export_and_a_persons_copy_hold_the_aspects(opened, tmp_path):
    store, conductor, round_id = opened
    await store.apply_votes([op(conductor, round_id, "v1", {"musicality": 7})])
    rows = await store.export_rows(None)
    assert [v["aspects"] for v in rows["votes"]] == [{"musicality": 7.0}]
    assert [v["aspects"] for v in (await store.user_data("v1"))["votes"]] == [{"musicality": 7.0}]
