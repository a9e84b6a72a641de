"""Commands the bot could not answer in time: Discord takes an interaction's first answer within 3 s of it (later: 404
10062 Unknown interaction), yet replays the interactions a bot missed when it resumes its connection. Found by a trial:
commands sent while the bot was reconnecting after an outage were answered by nobody ("The application did not
respond"), then acted on 20-40 s later when the connection resumed: /stop stopped the session with no word and an
ERROR traceback, /status logged one. A command too late to be answered is not acted on, said in one line."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_commands_after_restart import button
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401

from bot.discord import replies

WINDOW = 0.3  # seconds the local server (and the bot) take as Discord's 3 s: what is waited out is counted, not timed


async def _late(env, monkeypatch, *sends) -> list:
    """The interactions `sends` make while the bot is away (it cannot take them: they wait for its RESUME, as Discord's
    do), answered by nobody within their (shortened) 3 s, replayed at the resume."""
    env.server.interaction_ack_timeout = WINDOW
    monkeypatch.setattr(replies, "ANSWER_SECONDS", WINDOW)
    monkeypatch.setattr(replies, "CLOCK_SKEW", 0.0)
    resumes = env.server.gateway.received["RESUME"]
    await env.server.go_down()
    late = [await send() for send in sends]
    await env.server.wait_until(lambda: all(i.missed_deadline for i in late) or None, what="their 3 s passed")
    await env.server.come_back()
    await env.server.wait_for_session(resumed=resumes + 1, timeout=60)
    return late


@pytest.mark.asyncio
async def test_commands_replayed_after_their_answer_window_are_not_acted_on_and_said_once_each(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    async with running(env):
        await compose(env, rounds=2)
        await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        late = await _late(env, monkeypatch, *(lambda name=name: env.server.slash(env.mod, env.channel, name) for name in ("stop", "status")))
        await eventually(lambda: len([r for r in caplog.records if "not acted on" in r.getMessage()]) == 2, "both said")
        assert all(i.response is None for i in late)  # Discord took no answer to either
    assert db_rows(env, "SELECT status FROM sessions") == [("active",)]  # not stopped with nobody told
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]
    assert not [m for m in env.server.messages(env.channel) if "stopped" in m["content"].lower()]
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("crowdtune")], caplog.text
    said = [r.getMessage() for r in caplog.records if r.name == "crowdtune.bot" and r.levelno >= logging.WARNING]
    assert [line.split(" came ")[0] for line in said] == ["command /stop", "command /status"], said


@pytest.mark.asyncio
async def test_a_command_whose_answer_comes_too_late_is_one_line_and_a_started_session_is_announced_in_the_channel(env, caplog):
    """What the check before a command cannot see (a command fresh by its id's time whose answer still comes late: a slow
    start, a clock off): a session it started is announced in the channel, and a late answer is one line, no traceback."""
    caplog.set_level(logging.INFO)
    async with running(env):
        env.server.interaction_ack_timeout = 0.0  # every answer comes too late for the local server
        started = await env.server.slash(env.mod, env.channel, "compose", {"rounds": 2})
        await env.server.wait_for_message(env.channel, lambda m: m["content"].startswith("Composing with"))
        await env.server.wait_for_message(env.channel, is_round(1))
        status = await env.server.slash(env.mod, env.channel, "status")
        await eventually(lambda: [r for r in caplog.records if "/status" in r.getMessage()], "/status said")
        assert started.response is None and status.response is None
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("crowdtune")], caplog.text
    said = [r.getMessage() for r in caplog.records if r.name == "crowdtune.bot" and r.levelno >= logging.WARNING]
    assert [line.split(":")[0] for line in said] == ["/compose", "command /status"], said


@pytest.mark.asyncio
async def test_a_too_late_composes_announcement_that_discord_failed_to_take_is_posted_before_the_first_round_once(env):
    """Found by a review: the channel was told what a too-late /compose started by a message sent directly, its failure
    passed over, so a Discord failure then (an outage, a 5xx) left the session unannounced. It goes through the outbox:
    retried, and posted before the first round, once."""
    async with running(env):
        env.server.interaction_ack_timeout = 0.0  # every answer comes too late for the local server
        env.server.fail("POST /channels/{channel_id}/messages", count=1, status=503)  # the announcement's first try
        await env.server.slash(env.mod, env.channel, "compose", {"rounds": 2})
        await env.server.wait_for_message(env.channel, is_round(1))
    said = [m["content"] for m in env.server.messages(env.channel)]
    assert [c.split(":")[0] for c in said if not c.startswith("**")] == ["Composing with this server's agent"] and said[0].startswith("Composing"), said


@pytest.mark.asyncio
async def test_commands_that_look_late_by_a_clock_off_are_acknowledged_and_act_as_ever(env, monkeypatch):
    """Our clock ahead of Discord's makes a fresh command look late: its acknowledgement works, and it acts and answers
    as ever, a /stop saying so in the channel too."""
    monkeypatch.setattr(replies, "ANSWER_SECONDS", -60.0)  # every command looks late: each is acknowledged first
    async with running(env):
        started = await final_answer(await env.server.slash(env.mod, env.channel, "compose", {"rounds": 2}))
        assert started["content"] == "The session starts below." and started["flags"] & 64
        await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        status = await final_answer(await env.server.slash(env.bob, env.channel, "status"))
        assert "Round 1" in status["content"], status
        stop = await env.server.slash(env.mod, env.channel, "stop")
        assert (await final_answer(stop))["content"] == "Stopped; I said so in the channel."
        assert "Session stopped" in (await stop.wait_followups(1))[0]["content"]
    assert db_rows(env, "SELECT status FROM sessions") == [("stopped",)]


@pytest.mark.asyncio
async def test_a_confirm_replayed_past_its_answer_window_is_not_carried_out_and_the_question_says_so(env, monkeypatch, caplog):
    """Found by a trial: a "Delete my data" press made during an outage (the member told it failed) was recorded, not
    carried out, its question left live (each later press told "already being carried out"), and carried out at the next
    restart, whenever, deleting a vote made since. Now it is not carried out and the question says so."""
    caplog.set_level(logging.INFO)
    async with running(env):
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
        await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes") == [(1,)], "the vote")
        forget = await env.server.slash(env.alice, env.channel, "forget-me")
        prompt = await forget.wait_original()
        await _late(env, monkeypatch, lambda: env.server.press_button(env.alice, prompt["id"], button(prompt, "Delete my data")))
        question = await forget.wait_original(lambda m: not m["components"])
    assert question["content"].startswith("This question expired because your answer reached the bot too late."), question
    assert db_rows(env, "SELECT COUNT(*) FROM votes") == [(1,)] and db_rows(env, "SELECT COUNT(*) FROM confirmed_requests") == [(0,)]
    assert not [r for r in caplog.records if r.exc_info and r.name != "discord.client"], caplog.text  # its reconnects aside
    assert [r.getMessage() for r in caplog.records if "too late" in r.getMessage()] == [
        "a Confirm press on /forget-me came too late for Discord to take its answer: not carried out"]


@pytest.mark.asyncio
async def test_a_vote_button_replayed_past_its_answer_window_counts_in_one_warning_line(env, monkeypatch, caplog):
    """Found by a trial: a vote button pressed during an outage was stored, as a reaction then is, but its answer's
    refusal (10062) logged an ERROR with discord.py's traceback. Now one warning."""
    caplog.set_level(logging.INFO)
    async with running(env):
        await (await env.server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        await _late(env, monkeypatch, lambda: env.server.press_button(env.bob, post["id"], button(post, "9")))
        await eventually(lambda: db_rows(env, "SELECT rating FROM votes") == [(9.0,)], "the vote stored")
        await eventually(lambda: [r for r in caplog.records if "came too late" in r.getMessage()], "the warning")
    assert not [r for r in caplog.records if r.exc_info and r.name != "discord.client"], caplog.text  # its reconnects aside


@pytest.mark.asyncio
async def test_a_composes_answer_that_fails_as_discord_becomes_unreachable_has_its_announcement_posted_through_the_outbox_once(env, monkeypatch, caplog):
    """Found by a trial: a /compose whose answer failed as Discord became unreachable (its answer held past 3 s, then the
    server down, then back) started a session the channel never heard of: only a merely late answer (10062) was queued
    for the outbox. Every way the answer can fail queues it: posted once Discord is back, before the first round."""
    caplog.set_level(logging.INFO)
    async with running(env) as bot:
        start, started, go_on = bot.conductor.start, asyncio.Event(), asyncio.Event()

        async def start_then_wait(*args, **kwargs):  # the server goes down once the session is started, before the answer
            session = await start(*args, **kwargs)
            started.set()
            await go_on.wait()
            return session

        monkeypatch.setattr(bot.conductor, "start", start_then_wait)
        await env.server.slash(env.mod, env.channel, "compose", {"rounds": 2})
        await started.wait()
        await env.server.go_down()
        go_on.set()
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM announcements") == [(1,)], "the announcement queued")
        await env.server.come_back()
        await env.server.wait_for_message(env.channel, is_round(1), timeout=60)
    said = [m["content"] for m in env.server.messages(env.channel)]
    assert [c.split(":")[0] for c in said if not c.startswith("**")] == ["Composing with this server's agent"] and said[0].startswith("Composing"), said
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("crowdtune")], caplog.text
