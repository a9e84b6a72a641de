"""Commands the bot could not answer in time: Discord takes an interaction's first answer within 3 s of it (later: 404
10062 Unknown interaction), yet replays the interactions a bot missed when it resumes its connection. Found by a trial:
commands sent while the bot was reconnecting after an outage were answered by nobody ("The application did not
respond"), then acted on 20-40 s later when the connection resumed: /stop stopped the session with no word and an
ERROR traceback, /status logged one. A command too late to be answered is not acted on, said in one line."""

from __future__ import annotations

import logging

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, is_round, renderer, round_recorded, running  # noqa: F401

from bot.discord import replies

WINDOW = 0.3  # seconds the local server (and the bot) take as Discord's 3 s: what is waited out is counted, not timed


@pytest.mark.asyncio
async def test_commands_replayed_after_their_answer_window_are_not_acted_on_and_said_once_each(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    async with running(env):
        await compose(env, rounds=2)
        await env.server.wait_for_message(env.channel, is_round(1), timeout=30)
        await round_recorded(env, 1)
        env.server.interaction_ack_timeout = WINDOW
        monkeypatch.setattr(replies, "ANSWER_SECONDS", WINDOW)
        monkeypatch.setattr(replies, "CLOCK_SKEW", 0.0)
        resumes = env.server.gateway.received["RESUME"]
        await env.server.go_down()  # the bot cannot take them: they wait for its RESUME, as Discord's do
        late = [await env.server.slash(env.mod, env.channel, name) for name in ("stop", "status")]
        await env.server.wait_until(lambda: all(i.missed_deadline for i in late) or None, what="their 3 s passed")
        await env.server.come_back()
        await env.server.wait_for_session(resumed=resumes + 1, timeout=60)
        await eventually(lambda: len([r for r in caplog.records if "not acted on" in r.getMessage()]) == 2, "both said", timeout=30)
        assert all(i.response is None for i in late)  # Discord took no answer to either
    assert db_rows(env, "SELECT status FROM sessions") == [("active",)]  # not stopped with nobody told
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]
    assert not [m for m in env.server.messages(env.channel) if "stopped" in m["content"].lower()]
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("crowdtune")], caplog.text
    said = [r.getMessage() for r in caplog.records if r.name == "crowdtune.bot" and r.levelno >= logging.WARNING]
    assert [line.split(" came ")[0] for line in said] == ["command /stop", "command /status"], said
