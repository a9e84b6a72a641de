"""A /stop that comes after a restart, before the bot has taken back its open rounds, through the real bot and the
local Discord-compatible server, the order fixed by gates (a held route, a gate in the store), never by timing.

Found by a fresh-user trial: "Closing this round now.", the bot crashed before the close was stored, and the /stop
sent as soon as it was back cancelled the round with its 2 votes ("Round 1 was still open: it is cancelled"); the
same for a round whose time ran out while the bot was down. An answered /close (or a round's time up) wins over a
/stop, also across a restart: the round closes and counts first."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from test_close_kill import hold_closes
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401 - fixtures

from bot.conductor import Conductor
from bot.discord.app import CrowdtuneBot
from bot.settings import Settings
from storage import open_store

pytestmark = pytest.mark.asyncio

REACTION_USERS = "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}"
STOPPED_HERE = "Stopped; I said so in the channel."
CLOSED_FIRST = (
    "Session stopped after 1 round; what the agent learned is kept.\n"
    "Round 1 was closing: it closed first, so its votes count (its result is above)."
)


@contextlib.asynccontextmanager
async def restarted_before_pickup(env, time_up: bool = False):
    """The bot started again and connected, its taking back of the open rounds (the sessions it resumes, read from
    the store) held until the event yielded with it is set. `time_up`: the open round's time ran out while it was
    down."""
    store = await open_store(env.db)
    if time_up:
        [(round_id,)] = db_rows(env, "SELECT id FROM rounds WHERE status = 'open'")
        assert await store.set_closes_at(round_id, time.time() - 1)
    reading, release = asyncio.Event(), asyncio.Event()
    active_sessions = store.active_sessions

    async def held(*args):
        reading.set()
        await release.wait()
        return await active_sessions(*args)

    store.active_sessions = held
    bot = CrowdtuneBot(Settings(_env_file=None), Conductor(store), env.renderer, env.drawer, guild_ready_timeout=0.05)
    try:
        async with env.server.connect(bot):
            await reading.wait()  # connected, taking its rounds back: commands are coming in already
            yield bot, release
    finally:
        release.set()
        await store.close()


async def voted_round(env, channel, voters) -> dict:
    post = await env.server.wait_for_message(channel, is_round(1), timeout=30)
    await round_recorded(env, 1)
    await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
    for voter, value in voters:
        await env.server.react(voter, post["id"], KEYCAPS[value - 1])
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == len(voters), "the votes")
    return post


async def stop_before_pickup(env, channel, user, bot, release) -> tuple[dict, str]:
    """/stop sent before the rounds are taken back, the pickup let go once it is acknowledged; its first response
    and what its user is finally told. The round's re-read, once taken back, is held until the /stop waits for its
    close (or has stopped the session without waiting), so the round cannot close before the /stop looks at it."""
    env.server.hold(REACTION_USERS)
    stop = await env.server.slash(user, channel, "stop")
    first = await stop.wait_response()
    release.set()
    await eventually(
        lambda: bot.runner.steering._stops or db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the /stop to wait or act"
    )
    env.server.release(REACTION_USERS)
    return first, (await final_answer(stop))["content"]


def said(env, channel, start: str) -> list[str]:
    return [m["content"] for m in env.server.messages(channel) if m["content"].startswith(start)]


async def test_a_stop_after_a_crash_mid_close_counts_the_closed_round_first(env):
    """The trial: alice 7, bob 8, /close answered, the bot down before the close was stored, /stop at once after."""
    server = env.server
    async with running(env):
        await compose(env, user=env.alice, rounds=3)
        await voted_round(env, env.channel, [(env.alice, 7), (env.bob, 8)])
        hold_closes(env.db, True)  # the bot goes down before the close is stored (answered once the votes are taken)
        closing = (await final_answer(await server.slash(env.mod, env.channel, "close")))["content"]
    hold_closes(env.db, False)
    assert closing == "Closing this round now."
    assert db_rows(env, "SELECT status FROM rounds") == [("open",)]  # its close time stored, the round still open
    async with restarted_before_pickup(env) as (bot, release):
        first, private = await stop_before_pickup(env, env.channel, env.alice, bot, release)
        await server.wait_until(lambda: said(env, env.channel, "Session stopped"), timeout=30, what="the stop said")
    assert first["type"] == 5, first  # acknowledged privately while it waits (Discord's 3 s)
    assert private == STOPPED_HERE, private
    assert said(env, env.channel, "Session stopped") == [CLOSED_FIRST]
    [summary] = said(env, env.channel, "**Round 1 closed**")
    assert "2 voted" in summary, summary
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]
    assert not any(is_round(2)(m) for m in server.messages(env.channel))


async def test_a_stop_after_a_restart_past_the_rounds_time_counts_the_round_first(env):
    """The trial's DM session: a vote, the bot down past the round's time, /stop as soon as it is back."""
    server = env.server
    dm = server.dm_channel(env.alice)
    async with running(env):
        await (await server.slash(env.alice, dm, "compose", {"rounds": 3})).wait_response()
        await voted_round(env, dm, [(env.alice, 7)])
    async with restarted_before_pickup(env, time_up=True) as (bot, release):
        first, private = await stop_before_pickup(env, dm, env.alice, bot, release)
        await server.wait_until(lambda: said(env, dm, "Session stopped"), timeout=30, what="the stop said")
    assert first["type"] == 5 and private == STOPPED_HERE, (first, private)
    assert said(env, dm, "Session stopped") == [CLOSED_FIRST]
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]


async def test_a_close_before_the_rounds_are_taken_back_is_kept_and_counted(env):
    """/close acts on the stored close time, which the runner reads when it takes the round back, so it needs no wait:
    answered at once, the round then closes with its votes. (/status waits for the restart's recount, the pickup
    first: test_round_counts.)"""
    server = env.server
    async with running(env):
        await compose(env, user=env.alice, rounds=3)
        await voted_round(env, env.channel, [(env.alice, 7), (env.bob, 8)])
    async with restarted_before_pickup(env) as (_, release):
        closing = (await final_answer(await server.slash(env.mod, env.channel, "close")))["content"]
        release.set()
        await server.wait_for_message(env.channel, is_round(2), timeout=30)
    assert closing == "Closing this round now."
    [summary] = said(env, env.channel, "**Round 1 closed**")
    assert "2 voted" in summary, summary
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
