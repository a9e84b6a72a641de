"""Another process holding the bot's SQLite database locked (an operator's `sqlite3` shell in `BEGIN EXCLUSIVE`, a backup
tool) for longer than the bot's busy timeout, on the real bot. Found by a fresh-user trial: each batch of votes made
meanwhile was "[ERROR] crowdtune.votes: could not store 1 vote" with a "database is locked" traceback and was dropped
(/status said "1 voted so far" with four reactions on the post, so a quorum never came), and a /status waiting behind the
locked write came too late for Discord. A busy database is a passing outage, as a full disk is: one warning, the votes
kept and stored in their order, stamped when they were made, once the lock is gone; commands answered meanwhile."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
from test_discord_bot import KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running, uid  # noqa: F401


@pytest.fixture
def db_location(tmp_path):
    """SQLite's: the lock is the file's (PostgreSQL's lock timeouts are classified alike: tests/storage)."""
    return str(tmp_path / "t.db")


@pytest.mark.asyncio
async def test_votes_made_while_another_process_holds_the_database_locked_are_kept_and_stored_once_it_lets_go(env, caplog):
    caplog.set_level(logging.INFO)
    eve = env.server.add_user("eve")
    env.server.add_member(env.guild, eve)
    async with running(env) as bot:
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        box = bot.runner.ballot_box
        holder = sqlite3.connect(env.db, isolation_level=None, timeout=30, check_same_thread=False)
        try:
            await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")  # off the loop: a bot write may hold it a moment
            for user, key in [(env.alice, 2), (env.bob, 3), (env.carol, 4)]:
                await env.server.react(user, post["id"], KEYCAPS[key])
                await eventually(lambda: any(box.seen.of_person(user.id).values()), f"{user.name}'s reaction queued")  # noqa: B023
            # Once the first refused write is said, the votes wait (old code: the next write holds every read).
            await eventually(lambda: [r for r in caplog.records if r.name == "crowdtune.votes" and r.levelno >= logging.WARNING], "a write refused")
            status = await env.server.slash(env.mod, env.channel, "status", {})
            answer = (await final_answer(status))["content"]  # while the votes wait for the lock
            assert not status.missed_deadline, status
            assert "0 voted so far" in answer, answer
            assert "3 votes are waiting: my database is busy (another program holds it) right now." in answer, answer
            released = time.time()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Stored once the lock is gone, with no later vote needed to carry them, when they were made.
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes") == [(3,)], "the three kept votes stored")
        assert all(at < released for (at,) in db_rows(env, "SELECT cast_at FROM votes")), db_rows(env, "SELECT cast_at FROM votes")
        await env.server.react(eve, post["id"], KEYCAPS[5])
        await eventually(lambda: any(box.seen.of_person(eve.id).values()), "eve's reaction queued")
        await box.settle_votes()
        stored = await ballots(env)
        status = await env.server.slash(env.mod, env.channel, "status", {})
        answer = (await final_answer(status))["content"]
    assert stored == {uid(env.alice): 3.0, uid(env.bob): 4.0, uid(env.carol): 5.0, uid(eve): 6.0}, stored
    assert db_rows(env, "SELECT COUNT(*) FROM vote_events") == [(4,)]  # each vote once
    assert "4 voted so far" in answer, answer
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    said = [r.getMessage() for r in caplog.records if r.name == "crowdtune.votes" and r.levelno == logging.WARNING]
    assert len(said) == 1 and "is busy" in said[0] and str(env.db) in said[0], said
    assert not env.server.missed_deadlines
