"""A /stop that comes just as a round closes on its timer, through the real bot and the local Discord-compatible server,
landed in the window by gates (a held route, a held store read), never by timing.

The old race: the /stop read the closing round, then (acknowledging itself, or reading on) let the runner end the
close without it; the runner went on to prepare the next round, which the /stop then cancelled: a round 2 made, and
cancelled (its post, when it was on its way, edited so), that the /stop's answer did not mention."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio

REACTION_USERS = "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}"
CLOSED_FIRST = (
    "Session stopped after 1 round; what the agent learned is kept.\n"
    "Round 1 was closing: it closed first, so its votes count (its result is above)."
)


async def test_a_stop_as_the_round_closes_on_its_timer_stops_after_it_and_prepares_no_next_round(env, monkeypatch):
    server = env.server
    async with running(env) as bot:
        await compose(env, user=env.alice, rounds=3)
        post = await server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
        await server.react(env.bob, post["id"], KEYCAPS[7])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the vote")
        store, steering = bot.conductor.store, bot.runner.steering
        [session] = await store.active_sessions()
        open_round_of = store.open_round_of
        looked, stop_went_on = asyncio.Event(), asyncio.Event()

        def runner_past_the_close() -> bool:  # it stopped the session, or it prepares the next round
            return not steering.closing_now(session.id) and db_rows(env, "SELECT COUNT(*) FROM rounds")[0][0] + (
                db_rows(env, "SELECT status FROM sessions") == [("stopped",)]
            ) >= 2

        async def slow_look(session_id):  # the /stop's first read of the round: then the runner ends the close
            row = await open_round_of(session_id)
            if not asyncio.current_task().get_name().startswith("session-") and not looked.is_set():
                looked.set()
                await eventually(runner_past_the_close, "the runner past the close")
                stop_went_on.set()
            return row

        monkeypatch.setattr(store, "open_round_of", slow_look)
        server.hold(REACTION_USERS)  # the close's re-read of the reactions waits: the /stop comes during the close
        # The round's time runs out: its timer wakes the runner (as at its closes_at), which closes it.
        assert await open_round_of(session.id) is not None
        [(round_id,)] = db_rows(env, "SELECT id FROM rounds")
        assert await store.set_closes_at(round_id, time.time())
        bot.runner.wake(session.id)
        await server.wait_until(lambda: server.held[REACTION_USERS] >= 1, what="the close to re-read the reactions")
        stop = await server.slash(env.alice, env.channel, "stop")
        await looked.wait()
        server.release(REACTION_USERS)
        private = (await final_answer(stop))["content"]
        await stop_went_on.wait()
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
        await eventually(lambda: all(task.done() for task in bot.runner._tasks.values()), "the session's rounds to end")
    contents = [m["content"] for m in server.messages(env.channel)]
    [summary] = [c for c in contents if c.startswith("**Round 1 closed**")]
    assert "1 voted" in summary, summary
    assert [c for c in contents if c.startswith("Session stopped")] == [CLOSED_FIRST], contents
    assert contents.index(summary) < contents.index(CLOSED_FIRST)
    assert private == "Stopped; I said so in the channel.", private
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]  # no round 2 made, cancelled or posted
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]
    assert not any(c.startswith("**Round 2") for c in contents)
