"""A full disk while a round waits to close, on the real bot. Found by a trial: every 5 s the log had "session 1's round
failed; retrying every 5 s" with a DatabaseUnwritable traceback, each preceded by "session 1's round works again, after
1 failed try" (untrue: only posting the round had worked), and the channel heard nothing while its round never closed.
A full disk is the operator's to fix, not a bug: one warning line, the channel told once that its votes are kept, and
"works again" only once the close really works. The failed tries are counted, not timed."""

from __future__ import annotations

import logging
import time

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401

from bot.discord import runner as runner_module
from storage import DatabaseUnwritable

TRIES = 12  # failed closes before the disk has room again: far more than the lines they may log


@pytest.mark.asyncio
async def test_a_full_disk_at_a_close_is_one_warning_and_one_word_to_the_channel_and_works_again_only_once_it_closes(env, monkeypatch, caplog):
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    async with running(env) as bot:
        await compose(env, rounds=3, quorum=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        store = bot.conductor.store
        take_votes, tries = store.take_votes, []

        async def full(*args, **kwargs):  # the close's first write, refused as the store names a full disk
            tries.append(1)
            raise DatabaseUnwritable(f"the database {env.db} cannot be written: database or disk is full")

        monkeypatch.setattr(store, "take_votes", full)
        await env.server.react(env.alice, post["id"], KEYCAPS[1])
        await env.server.react(env.bob, post["id"], KEYCAPS[10] if len(KEYCAPS) > 10 else KEYCAPS[9])
        await eventually(lambda: len(tries) >= TRIES, f"{TRIES} failed closes", timeout=60)
        monkeypatch.setattr(store, "take_votes", take_votes)  # room again
        await env.server.wait_for_message(env.channel, is_round(2))
    said = [r for r in caplog.records if r.name == "crowdtune.rounds"]
    assert not [r for r in said if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    warnings = [r.getMessage() for r in said if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "database or disk is full" in warnings[0], warnings
    again = [r.getMessage() for r in said if "works again" in r.getMessage()]
    assert len(again) == 1 and f"after {len(tries)} failed tries" in again[0], again
    told = [m["content"] for m in env.server.messages(env.channel) if "disk" in m["content"]]
    assert len(told) == 1 and "votes given so far are kept" in told[0], told
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]


@pytest.mark.asyncio
async def test_a_stop_while_a_close_waits_for_a_full_disk_is_answered_at_once_that_nothing_was_changed(env, monkeypatch):
    """Found by a trial: a /stop during a close paused by a full disk waited for that close, leaving its user with
    Discord's "thinking..." and no word while the disk stayed full. It is answered at once, as /status says it: voting
    is paused, nothing was changed; once there is room the round closes and counts and the session goes on."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    async with running(env) as bot:
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        store = bot.conductor.store
        take_votes, tries = store.take_votes, []

        async def full(*args, **kwargs):
            tries.append(1)
            raise DatabaseUnwritable(f"the database {env.db} cannot be written: database or disk is full")

        await env.server.react(env.alice, post["id"], KEYCAPS[1])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes") == [(1,)], "the vote")
        monkeypatch.setattr(store, "take_votes", full)
        [(round_id,)] = db_rows(env, "SELECT id FROM rounds")
        assert await store.set_closes_at(round_id, time.time() - 1)  # its time is up: the /stop waits for its close
        bot.runner.wake(1)
        await env.server.wait_for_message(env.channel, lambda m: "Voting here is paused" in m["content"])
        stop = await env.server.slash(env.mod, env.channel, "stop")
        said = (await final_answer(stop))["content"]
        assert tries, "the close was refused"
        monkeypatch.setattr(store, "take_votes", take_votes)  # room again
        await env.server.wait_for_message(env.channel, is_round(2))
    assert said.startswith("Voting here is paused: my database cannot save anything (its disk is full)."), said
    assert "nothing was changed" in said, said
    # One account of the round (a trial read "this round goes on as soon as my operator fixes it. Its voting is over").
    assert "Its voting is over and its votes are kept: it closes and counts as soon as my operator fixes it" in said, said
    assert "goes on" not in said, said
    assert db_rows(env, "SELECT status FROM sessions") == [("active",)]
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
