"""A round's close paused by a disk that is really full: the bot's SQLite database on a small tmpfs, filled to its last
block, with the lock file's reserve as the bot keeps it. Found by a trial: one try after the first refusal the log said
"works again" while the disk was still 100% full (the retry wrote into the 64 KiB reserve the refusal gave back);
/status showed the round closing at a time already past, saying nothing of the pause; /compose and /unstrike were an
ERROR line each and "my database failed" to the member, not the README's one warning and the disk named full; and the
round that ended its session, closing once room was freed, logged no "works again" at all."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from fulldisk import fill_disk
from test_discord_bot import KEYCAPS, compose, db_rows, final_answer, drawer, env, eventually, is_round, renderer, round_recorded, running  # noqa: F401

from bot.discord import runner as runner_module

TRIES = 6  # failed closes while the disk is full: a retry that wrote into the reserve would close it at the second


@pytest.fixture
def db_location(tmp_path):
    """The bot's database on a tmpfs of its own (SQLite only: the full disk is the file's). Skipped unless root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4096k", "tmpfs", str(disk)]).returncode:
        pytest.skip("a small disk needs root (mount -t tmpfs)")
    try:
        yield str(disk / "ct.db")
    finally:
        subprocess.run(["umount", "-l", str(disk)])


@pytest.mark.asyncio
async def test_a_close_paused_by_a_full_disk_is_said_by_status_and_commands_and_works_again_only_with_room(env, monkeypatch, caplog):
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.05)
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")  # the bot sets its loggers to WARNING otherwise
    async with running(env) as bot:
        store = bot.conductor.store
        await store.claim_instance("the bot, as run_bot claims it")  # with its reserve, as the trial's bot had
        await compose(env, rounds=1, quorum=3)  # its one round ends the session
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        await env.server.react(env.alice, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes") == [(1,)], "alice's 5 stored")
        take_votes, tries = store.take_votes, []

        async def counted(*args):  # the real write, counted
            tries.append(1)
            return await take_votes(*args)

        monkeypatch.setattr(store, "take_votes", counted)
        db_rows(env, "UPDATE rounds SET closes_at = 1")  # its time is up (the runner sees it when woken), written with room
        filler = fill_disk(Path(env.db).with_name("filler"))
        bot.runner.wake(1)
        closed = lambda: db_rows(env, "SELECT status FROM rounds") != [("open",)]  # noqa: E731
        await eventually(lambda: len(tries) >= TRIES or closed(), f"{TRIES} failed closes")
        assert not closed() and not [r for r in caplog.records if "works again" in r.getMessage()], caplog.text
        status = await (await env.server.slash(env.alice, env.channel, "status")).wait_response()
        text = status["data"]["content"]
        assert "paused" in text and "disk is full" in text and "<t:" not in text, text
        other = env.server.add_text_channel(env.guild, "other")
        for user, channel, command, options in [(env.mod, other, "compose", {}), (env.mod, env.channel, "strike", {"user": env.bob})]:
            answer = (await final_answer(await env.server.slash(user, channel, command, options)))["content"]
            assert "disk is full" in answer and "failed" not in answer, (command, answer)
        filler.unlink()  # room again
        await env.server.wait_for_message(env.channel, lambda m: m["content"].startswith("Session finished"))
        # Said as the close's runner ends, after its outbox is marked sent: not cut short by the stop below.
        await eventually(lambda: any("works again" in r.getMessage() for r in caplog.records), "works again")
    assert db_rows(env, "SELECT status FROM rounds") == [("closed",)]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions") == [(1,)] and db_rows(env, "SELECT COUNT(*) FROM strikes") == [(0,)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "disk is full" in r.getMessage()]
    commands = [w for w in warnings if w.startswith("command /")]
    assert len(commands) == 2 and all(env.db in w for w in commands), warnings
    again = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert len(again) == 1 and again[0].startswith("session 1's round works again"), again
