"""A full disk while votes come in, on the real bot. Found by a trial: each batch of votes the database refused was
"[ERROR] crowdtune.votes: could not store 1 vote(s)" with a DatabaseUnwritable traceback. A full disk is the
operator's to fix, not a bug: one warning naming the database and why (RetryLog, as a round's close says it), and no
vote lost: a reaction whose vote the database refused is stored once it has room, in its order, so a changed vote
(7 while 3 is still on) is the person's vote though the close's re-read would keep the 3 it finds on."""

from __future__ import annotations

import logging

import pytest
from test_discord_bot import KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, is_round, renderer, round_recorded, running, uid  # noqa: F401

from storage import DatabaseUnwritable

REFUSED = 5  # vote batches the full disk refuses: each would have been its own error and traceback


@pytest.mark.asyncio
async def test_votes_refused_by_a_full_disk_are_one_warning_and_stored_once_there_is_room(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="crowdtune.votes")
    async with running(env) as bot:
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        box = bot.runner.ballot_box
        await env.server.react(env.alice, post["id"], KEYCAPS[2])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes") == [(1,)], "alice's 3 stored")
        store, refused = bot.conductor.store, []
        apply_votes = store.apply_votes

        async def full(ops):
            refused.append(len(ops))
            raise DatabaseUnwritable(f"the database {env.db} cannot be written: database or disk is full")

        monkeypatch.setattr(store, "apply_votes", full)
        await env.server.react(env.alice, post["id"], KEYCAPS[6])  # her 3 still on: 7 is her vote now
        await eventually(lambda: len(refused) == 1, "a refused batch")
        for n, (user, key) in enumerate([(env.bob, 4), (env.carol, 9), (env.bob, 5), (env.carol, 8)], start=2):
            await env.server.react(user, post["id"], KEYCAPS[key])
            await eventually(lambda: len(refused) == n, f"{n} refused batches")  # noqa: B023 (awaited at once)
        monkeypatch.setattr(store, "apply_votes", apply_votes)  # room again
        await box.settle_votes()
        stored = await ballots(env)
    said = [r for r in caplog.records if r.name == "crowdtune.votes"]
    assert not [r for r in said if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    warnings = [r.getMessage() for r in said if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "database or disk is full" in warnings[0] and str(env.db) in warnings[0], warnings
    assert "(s)" not in caplog.text, caplog.text
    assert stored == {uid(env.alice): 7.0, uid(env.bob): 6.0, uid(env.carol): 9.0}, stored
