"""A full disk under a step the bot runs in the background, on the real bot: a round's message deleted by a moderator
(an event discord.py runs as a task of its own), and a step the runner spawns. Found by a trial: each logged "Ignoring
exception in on_raw_message_delete" (or "... failed") with a DatabaseUnwritable traceback, where a full disk anywhere
else is one warning line naming the database and why: the operator's to fix, not a bug."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, is_round, renderer, round_recorded, running  # noqa: F401

from bot.discord.outage import say_failure
from storage import DatabaseUnwritable

FULL = "database or disk is full"


def _refused(tries: list):
    async def full(*args, **kwargs):  # the write refused as the store names a full disk
        tries.append(1)
        raise DatabaseUnwritable(f"the database t.db cannot be written: {FULL}")

    return full


def _one_line_each(caplog, count: int) -> list[str]:
    """The warnings that name the full disk, after checking no line of the log has a traceback or is an error."""
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    said = [r.getMessage() for r in caplog.records if FULL in r.getMessage()]
    assert len(said) == count and all(r.levelno == logging.WARNING for r in caplog.records if FULL in r.getMessage()), said
    return said


@pytest.mark.asyncio
async def test_a_round_message_deleted_on_a_full_disk_is_one_warning_and_the_round_stays(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    async with running(env) as bot:
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        tries: list = []
        monkeypatch.setattr(bot.conductor.store, "cancel_round", _refused(tries))
        await env.server.delete_message(post["id"])
        await eventually(lambda: tries, "the cancel tried")
        await eventually(lambda: any("on_raw_message_delete" in r.getMessage() for r in caplog.records), "the step's end said")
    [line] = _one_line_each(caplog, 1)
    assert line == f"on_raw_message_delete was not done: the database t.db cannot be written: {FULL}", line
    assert tries == [1] and db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "open")]


@pytest.mark.asyncio
async def test_a_spawned_step_refused_by_a_full_disk_is_one_warning(caplog):
    """As the runner's background steps end (RoundRunner._spawn: say_failure)."""
    async def step():
        raise DatabaseUnwritable(f"the database t.db cannot be written: {FULL}")

    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    task = asyncio.create_task(step(), name="say_round_waits")
    task.add_done_callback(lambda t: say_failure(logging.getLogger("crowdtune.rounds"), t))
    await asyncio.gather(task, return_exceptions=True)
    assert _one_line_each(caplog, 1) == [f"say_round_waits was not done: the database t.db cannot be written: {FULL}"]
