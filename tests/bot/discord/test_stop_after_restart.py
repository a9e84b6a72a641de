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
from fakediscord import HANG_SECONDS
from test_close_kill import hold_closes
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401 - fixtures

from bot.conductor import Conductor
from bot.discord.app import CrowdtuneBot
from bot.settings import Settings
from storage import open_store

pytestmark = pytest.mark.asyncio

REACTION_USERS = "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}"
READ_POST = "GET /channels/{channel_id}/messages/{message_id}"  # a re-read's first request
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
            async with asyncio.timeout(HANG_SECONDS):  # a bot that never takes its rounds back fails, not hangs
                await reading.wait()  # connected, taking its rounds back: commands are coming in already
            yield bot, release
    finally:
        release.set()
        await store.close()


async def voted_round(env, channel, voters) -> dict:
    post = await env.server.wait_for_message(channel, is_round(1))
    await round_recorded(env, 1)
    await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
    for voter, value in voters:
        await env.server.react(voter, post["id"], KEYCAPS[value - 1])
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == len(voters), "the votes")
    return post


async def stop_before_pickup(env, channel, user, bot, release) -> tuple[dict, str]:
    """/stop sent before the rounds are taken back, the pickup let go once it is acknowledged; its first response
    and what its user is finally told. The round's re-read and its close, once taken back, are held until the /stop
    waits for its close (or has stopped the session without waiting), so the round cannot close before the /stop
    looks at it (a round whose votes were taken before the crash closes with no re-read); the re-read, which the /stop
    waits for, once it waits."""
    def stop_is_in() -> bool:
        return bool(bot.runner.steering._stops) or db_rows(env, "SELECT status FROM sessions") == [("stopped",)]

    store = bot.conductor.store
    close_round = store.close_round

    async def after_the_stop(*args, **kwargs):
        await eventually(stop_is_in, "the /stop to wait or act, before the round closes")
        return await close_round(*args, **kwargs)

    store.close_round = after_the_stop
    recounts = bot.runner.recounts
    recounted, waits = recounts.recounted, asyncio.Event()

    async def waited_for(session_id):  # (not recounts._wait_ends: a recount a READY asks for meanwhile drops it)
        waits.set()
        return await recounted(session_id)

    recounts.recounted = waited_for
    env.server.hold(REACTION_USERS)
    stop = await env.server.slash(user, channel, "stop")
    first = await stop.wait_response()
    release.set()
    # The /stop waits for the recount of the reactions (made while the bot was down) before it acts, as /status does.
    await eventually(lambda: stop_is_in() or waits.is_set(), "the /stop to wait or act")
    env.server.release(REACTION_USERS)
    return first, (await final_answer(stop))["content"]


async def dm_round_voted(env) -> dict:
    """Alice's DM session, its first round voted 7 by her (the trial's): its channel."""
    dm = env.server.dm_channel(env.alice)
    async with running(env):
        await (await env.server.slash(env.alice, dm, "compose", {"rounds": 3})).wait_response()
        await voted_round(env, dm, [(env.alice, 7)])
    return dm


def closed_first(env, dm, first: dict, private: str) -> None:
    """The /stop, acknowledged while it waited, said in `dm` that the round closed first, and it did."""
    assert first["type"] == 5 and private == STOPPED_HERE, (first, private)
    assert said(env, dm, "Session stopped") == [CLOSED_FIRST]
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]


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
        await server.wait_until(lambda: said(env, env.channel, "Session stopped"), what="the stop said")
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
    server, dm = env.server, await dm_round_voted(env)
    async with restarted_before_pickup(env, time_up=True) as (bot, release):
        first, private = await stop_before_pickup(env, dm, env.alice, bot, release)
        await server.wait_until(lambda: said(env, dm, "Session stopped"), what="the stop said")
    closed_first(env, dm, first, private)


async def test_a_stop_that_reads_the_round_as_its_time_up_close_ends_says_it_closed_first(env):
    """A trial's report on a loaded machine: the /stop after a restart, past the round's time, came in (`stopping`) just
    before the runner began the round's close; the close ended while the /stop read the round, and the /stop, having
    asked whether the runner was closing before its read, found a session between rounds: "Session stopped after 1
    round" without the round that closed first for it. The runner's last look at its round before the close waits
    until the /stop is in (past the recount it waits for), and the /stop's read of the round until the runner has
    closed it and stopped the session."""
    server, dm = env.server, await dm_round_voted(env)
    async with restarted_before_pickup(env, time_up=True) as (bot, release):
        store, steering = bot.conductor.store, bot.runner.steering
        [(session_id,)] = db_rows(env, "SELECT id FROM sessions")
        round_of, open_round_of = store.round, store.open_round_of
        stopped = lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)]  # noqa: E731

        def by_runner() -> bool:
            return asyncio.current_task().get_name().startswith("session-")

        async def runner_looks_after_the_stop(*args):  # (its recount's looks, which the /stop waits for, go on)
            if by_runner() and not bot.runner.recounts.recounting(session_id):
                await eventually(lambda: steering._stops or stopped(), "the /stop to come in", timeout=60)
            return await round_of(*args)

        async def stop_reads_after_the_close(*args):
            if steering._stops and not by_runner():
                await eventually(stopped, "the runner to close the round and stop the session", timeout=60)
            return await open_round_of(*args)

        store.round, store.open_round_of = runner_looks_after_the_stop, stop_reads_after_the_close
        stop = await server.slash(env.alice, dm, "stop")
        first = await stop.wait_response()
        release.set()
        private = (await final_answer(stop))["content"]
        await server.wait_until(lambda: said(env, dm, "Session stopped"), what="the stop said")
    closed_first(env, dm, first, private)


async def test_a_close_before_the_rounds_are_taken_back_fixes_the_votes_once_answered(env):
    """/close sent after a restart, before the bot has taken back its open round, waits for that (acknowledged first,
    for Discord's 3 s), then goes the normal way: answered once the round's votes are taken. Bob's change before the
    /close counts; alice's, made once it is answered, does not. (It was answered at once, its round not yet running,
    and the restart's recount, after it, counted alice's change.) The recount's reads are held until the /close waits
    for the votes or has been answered and alice has changed hers, so the recount cannot come before either."""
    server = env.server
    async with running(env):
        await compose(env, user=env.alice, rounds=3)
        post = await voted_round(env, env.channel, [(env.alice, 7), (env.bob, 8)])
    async with restarted_before_pickup(env) as (bot, release):
        await server.react_many([(env.bob, post["id"], KEYCAPS[7], False), (env.bob, post["id"], KEYCAPS[2], True)])
        server.hold(READ_POST)
        close = await server.slash(env.mod, env.channel, "close")
        first = await close.wait_response()  # the /close is in before the rounds are taken back

        async def change_once_answered() -> dict:
            answered = await final_answer(close)
            await server.react_many([(env.alice, post["id"], KEYCAPS[6], False), (env.alice, post["id"], KEYCAPS[1], True)])
            return answered

        changed = asyncio.create_task(change_once_answered())
        release.set()
        await eventually(lambda: bot.runner.steering._taking or changed.done(), "the /close to wait for the votes, or be answered")
        server.release(READ_POST)
        closing = await changed
        await server.wait_for_message(env.channel, is_round(2))
    [summary] = said(env, env.channel, "**Round 1 closed**")
    assert "2 voted" in summary, summary
    assert db_rows(env, "SELECT voter, rating FROM votes WHERE retracted = 0 AND voided = 0 ORDER BY rating") == [
        (f"user:{env.bob.id}", 3.0), (f"user:{env.alice.id}", 7.0)
    ]
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
    assert first["type"] == 5, first  # acknowledged while it waits for the pickup
    assert closing["content"] == "Closing this round now.", closing


async def test_a_stop_right_after_a_restart_counts_the_votes_given_while_the_bot_was_down(env):
    """The trial: alice 7 and bob 8, then, the bot down, carol and the moderator voted; the /stop sent as soon as it is
    back said "its 2 votes are not counted" while /status and /close, sent at once too, waited for the restart's
    recount and saw 4. The recount's last read before it casts what it found is held until the /stop has stopped the
    session or waits for the recount."""
    server = env.server
    async with running(env):
        await compose(env, user=env.alice, rounds=3)
        post = await voted_round(env, env.channel, [(env.alice, 7), (env.bob, 8)])
    await server.react(env.carol, post["id"], KEYCAPS[0])
    await server.react(env.mod, post["id"], KEYCAPS[8])
    async with restarted_before_pickup(env) as (bot, release):
        store, recounts = bot.conductor.store, bot.runner.recounts
        recorded_votes, recounted, waits = store.recorded_votes, recounts.recounted, asyncio.Event()

        async def held_recount(*args):
            stopped = lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)]  # noqa: E731
            await eventually(lambda: waits.is_set() or stopped(), "the /stop to stop or wait for the recount")
            return await recorded_votes(*args)

        async def waited_for(session_id):  # (a second recount, the first READY's, may start a new wait: not its end)
            waits.set()
            return await recounted(session_id)

        store.recorded_votes, recounts.recounted = held_recount, waited_for
        stop = await server.slash(env.alice, env.channel, "stop")
        first = await stop.wait_response()
        release.set()
        private = (await final_answer(stop))["content"]
        await server.wait_until(lambda: said(env, env.channel, "Session stopped"), what="the stop said")
    assert first["type"] == 5 and private == STOPPED_HERE, (first, private)
    [report] = said(env, env.channel, "Session stopped")
    assert report.endswith("Round 1 was still open: it is cancelled, and its 4 votes are not counted (nothing is learned from them)."), report
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "cancelled")]
