"""A stop (SIGTERM: CrowdtuneBot.close, as close_on_signals calls it) while a command runs, on the real bot. Found by a
trial: SIGTERM during /stats or /export ended with exit code 0, but the log had "command /stats failed" with tracebacks
("cannot schedule new futures after shutdown", "Session is closed") and the members' deferred answers stayed
"thinking..." for good. Every command running at a stop finishes within a bound, or is answered that the bot is
restarting, before the HTTP session closes; neither is an error in the log."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_discord_bot import drawer, env, renderer, running  # noqa: F401

from bot.discord import in_flight
from bot.discord.cogs import sessions


async def stats_that_waits(monkeypatch, until: asyncio.Event) -> asyncio.Event:
    """/stats's report made to wait for `until`; the event returned is set once a /stats is waiting there."""
    waiting, report = asyncio.Event(), sessions.learning_report

    async def slow(*args, **kwargs):
        waiting.set()
        await until.wait()
        return await report(*args, **kwargs)

    monkeypatch.setattr(sessions, "learning_report", slow)
    return waiting


@pytest.mark.asyncio
async def test_a_command_that_does_not_finish_within_the_bound_is_answered_that_the_bot_is_restarting(env, monkeypatch, caplog):
    monkeypatch.setattr(in_flight, "SHUTDOWN_GRACE", 0.2)  # the command below never finishes: the bound is what ends it
    caplog.set_level(logging.INFO)
    async with running(env) as bot:
        await stats_that_waits(monkeypatch, asyncio.Event())  # never set
        asked = [await env.server.slash(user, env.channel, "stats") for user in (env.alice, env.bob)]
        for interaction in asked:  # both running, "thinking..."
            await interaction.wait_response()
        assert all(interaction.deferred for interaction in asked)
        await bot.close()
        answers = [await interaction.wait_original() for interaction in asked]
    assert all("restarting" in a["content"] and "Nothing was changed" in a["content"] for a in answers), answers
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    assert "2 commands cut short by the stop" in caplog.text


@pytest.mark.asyncio
async def test_a_command_that_finishes_within_the_bound_gives_its_own_answer(env, monkeypatch, caplog):
    monkeypatch.setattr(in_flight, "SHUTDOWN_GRACE", 60.0)  # far more than it takes: the command finishes first
    caplog.set_level(logging.INFO)
    async with running(env) as bot:
        go_on = asyncio.Event()
        waiting = await stats_that_waits(monkeypatch, go_on)
        asked = await env.server.slash(env.alice, env.channel, "stats")
        await waiting.wait()
        closing = asyncio.create_task(bot.close())
        await asyncio.sleep(0)  # the stop has begun; the command goes on
        go_on.set()
        await closing
        answer = await asked.wait_original()
    assert "restarting" not in answer["content"] and answer["content"], answer
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


def test_a_command_that_changes_things_cut_short_is_not_told_nothing_changed():
    """It may have committed its change before the cut (a /config stored, its answer not yet sent)."""
    from types import SimpleNamespace

    config = SimpleNamespace(command=SimpleNamespace(name="config"), data=None)
    assert "Nothing was changed" not in in_flight.restarting(config) and "/status" in in_flight.restarting(config)
    assert "Nothing was changed" in in_flight.restarting(config, started=False)  # refused as the stop began
