"""A /close while no round is in the channel changes nothing; one while the round's post is in the channel but not yet
recorded closes it once recorded. Through the real bot and the local Discord-compatible server.

Found by trials: the bot answered that the round is "being posted" and closed nothing when the post was already in the
channel, so the close had to be asked for again: that close is stored and acknowledged at once, and the round closes
and counts as soon as it is recorded, once, also when a /stop follows or the bot restarts in between. And a second
/close 1.9 s after the first, meant for the round it closed, closed the next round while it was being posted, unseen:
"Round 2 closed: nobody voted". A /close acts only on a round members can see."""

from __future__ import annotations

import asyncio

import time

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running  # noqa: F401 - fixtures
from test_stop_races import STOPPED_HERE, hold_method, hold_rendering, said_in_order

from bot.discord.steering import CLOSE_ANSWERS

pytestmark = pytest.mark.asyncio

POST_MESSAGE = "POST /channels/{channel_id}/messages"
ONCE_POSTED = "The next round is being posted; I'll close it as soon as it is there, and its result follows."


def summaries(env, number: int) -> list[dict]:
    return [m for m in env.server.messages(env.channel) if m["content"].startswith(f"**Round {number} closed**")]


async def close_while_posted(env, bot, monkeypatch) -> tuple[list[str], asyncio.Event]:
    """Start a session whose first post is in the channel but its record (Store.set_round_messages) held, and /close it
    twice meanwhile: both answers, and the event that lets the record go."""
    server = env.server
    _, release = hold_method(monkeypatch, bot.conductor.store, "set_round_messages")
    await compose(env, user=env.alice, rounds=2)
    await server.wait_for_message(env.channel, is_round(1))
    return [(await final_answer(await server.slash(user, env.channel, "close")))["content"] for user in (env.alice, env.mod)], release


async def test_a_close_while_the_round_is_posted_closes_it_once_it_is_there(env, monkeypatch):
    server = env.server
    async with running(env) as bot:
        answers, release = await close_while_posted(env, bot, monkeypatch)
        status = (await final_answer(await server.slash(env.bob, env.channel, "status")))["content"]
        release.set()
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**"))
        await server.wait_for_message(env.channel, is_round(2))
        first = next(m for m in server.messages(env.channel) if is_round(1)(m))
        await server.wait_until(lambda: "(closed)" in server.message(first["id"])["content"], what="round 1's post marked closed")
    assert answers == [ONCE_POSTED, ONCE_POSTED], answers
    assert ", closes as soon as it is posted (`/close`)." in status, status
    assert len(summaries(env, 1)) == 1
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
    assert db_rows(env, "SELECT rounds_done FROM sessions") == [(1,)]


async def test_a_stop_after_a_close_while_the_round_is_posted_closes_and_counts_it_first(env, monkeypatch):
    server = env.server
    async with running(env) as bot:
        answers, release = await close_while_posted(env, bot, monkeypatch)
        stop = await server.slash(env.alice, env.channel, "stop")
        await stop.wait_response()  # it waits for the close, which waits for the post's record
        release.set()
        assert (await final_answer(stop))["content"] == STOPPED_HERE and stop.ephemeral
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
    _, stopped = said_in_order(env, "**Round 1 closed**", "Session stopped")  # told publicly, below the summary
    assert answers == [ONCE_POSTED, ONCE_POSTED], answers
    assert stopped == (
        "Session stopped after 1 round; what the agent learned is kept.\n"
        "Round 1 was closing: it closed first, so its votes count (its result is above)."
    ), stopped
    assert len(summaries(env, 1)) == 1
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]
    assert not any(is_round(2)(m) for m in server.messages(env.channel))


async def test_a_close_while_the_round_is_posted_stands_across_a_restart(env, monkeypatch):
    """The bot goes down with the post on its way and the close acknowledged: after the restart the post (adopted, or
    made then) closes at once, as the close was acknowledged, and once."""
    server = env.server
    async with running(env) as bot:
        answers, _ = await close_while_posted(env, bot, monkeypatch)  # the bot goes down with the record held
    async with running(env):
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**"))
        await server.wait_for_message(env.channel, is_round(2))
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds")[0][0] == 2, "round 2 recorded")
    assert answers == [ONCE_POSTED, ONCE_POSTED], answers
    assert len([m for m in server.messages(env.channel) if is_round(1)(m)]) == 1
    assert len(summaries(env, 1)) == 1
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]


async def test_a_close_before_the_first_round_is_in_the_channel_changes_nothing(env):
    server = env.server
    async with running(env):
        server.hold(POST_MESSAGE)  # the post on its way, not in the channel
        await compose(env, user=env.alice, rounds=2)
        await server.wait_until(lambda: server.held[POST_MESSAGE] >= 1, what="the round's post to be on its way")
        answers = [(await final_answer(await server.slash(user, env.channel, "close")))["content"] for user in (env.alice, env.mod)]
        status = (await final_answer(await server.slash(env.bob, env.channel, "status")))["content"]
        server.release(POST_MESSAGE)
        await server.wait_for_message(env.channel, is_round(1))
        await eventually(lambda: db_rows(env, "SELECT message_ids FROM rounds")[0][0] != "[]", "round 1's post recorded")
    assert answers == [CLOSE_ANSWERS["first"]] * 2, answers
    assert "the next round is being prepared" in status, status
    assert summaries(env, 1) == []
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]
    assert db_rows(env, "SELECT closes_at FROM rounds")[0][0] > time.time() + 60  # its full time, not closed by the /close


async def test_a_second_close_while_the_next_round_is_prepared_changes_nothing(env, monkeypatch):
    """The trial's case: the second /close, meant for the round the first one closed, comes while the next round is
    being prepared (its rendering held here)."""
    server = env.server
    async with running(env) as bot:
        await compose(env, user=env.alice, rounds=3)
        await server.wait_for_message(env.channel, is_round(1))
        await eventually(lambda: db_rows(env, "SELECT message_ids FROM rounds")[0][0] != "[]", "round 1's post recorded")
        rendering, release = hold_rendering(env, monkeypatch)
        first = (await final_answer(await server.slash(env.mod, env.channel, "close")))["content"]
        await rendering.wait()
        second = (await final_answer(await server.slash(env.mod, env.channel, "close")))["content"]
        status = (await final_answer(await server.slash(env.bob, env.channel, "status")))["content"]
        release.set()
        await server.wait_for_message(env.channel, is_round(2))
        await eventually(lambda: db_rows(env, "SELECT message_ids FROM rounds WHERE idx = 1")[0][0] != "[]", "round 2's post recorded")
    assert first == CLOSE_ANSWERS["closing"], first
    assert second == CLOSE_ANSWERS["none"], second
    assert status.startswith("1 of 3 rounds done; the next round is being prepared."), status
    assert len(summaries(env, 1)) == 1 and summaries(env, 2) == []
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]


async def test_a_close_sent_before_the_round_was_posted_does_not_close_it_though_it_is_recorded_when_the_close_is_handled(env):
    """The /close meant what was in the channel when it was sent: a round posted after it (and recorded by the time the
    bot handles the /close) was not it. Discord's ids order the two."""
    server = env.server
    async with running(env) as bot:
        server.hold(POST_MESSAGE)
        await compose(env, user=env.alice, rounds=2)
        await server.wait_until(lambda: server.held[POST_MESSAGE] >= 1, what="the round's post to be on its way")
        (session_id,) = db_rows(env, "SELECT id FROM sessions")[0]
        async with bot.runner.steering.lock(session_id):  # the /close waits here until the post is recorded
            close = await server.slash(env.mod, env.channel, "close")
            server.release(POST_MESSAGE)
            await eventually(lambda: db_rows(env, "SELECT message_ids FROM rounds")[0][0] != "[]", "round 1's post recorded")
        answer = (await final_answer(close))["content"]
    assert answer == CLOSE_ANSWERS["first"], answer
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]
    assert db_rows(env, "SELECT closes_at FROM rounds")[0][0] > time.time() + 60  # its full time, not closed by the /close
