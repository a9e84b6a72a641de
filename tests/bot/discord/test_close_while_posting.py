"""A /close in the moment between /compose (or a round's close) and the next round's post being recorded, through the
real bot and the local Discord-compatible server, the post held on its way by the server (found by a trial: the bot
answered that the round is "being posted" and closed nothing, so the close had to be asked for again). The close is
stored and acknowledged at once; the round closes and counts as soon as it is posted, once, also when a /stop follows
or the bot restarts in between."""

from __future__ import annotations

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running  # noqa: F401 - fixtures
from test_stop_races import STOPPED_HERE, said_in_order

pytestmark = pytest.mark.asyncio

POST_MESSAGE = "POST /channels/{channel_id}/messages"
ONCE_POSTED = "The next round is being posted; I'll close it as soon as it is there, and its result follows."


def summaries(env, number: int) -> list[dict]:
    return [m for m in env.server.messages(env.channel) if m["content"].startswith(f"**Round {number} closed**")]


async def close_while_posted(env) -> list[str]:
    """Start a session whose first post is held on its way, and /close it twice meanwhile: both answers."""
    server = env.server
    server.hold(POST_MESSAGE)
    await compose(env, user=env.alice, rounds=2)
    await server.wait_until(lambda: server.held[POST_MESSAGE] >= 1, what="the round's post to be on its way")
    return [(await final_answer(await server.slash(user, env.channel, "close")))["content"] for user in (env.alice, env.mod)]


async def test_a_close_while_the_round_is_posted_closes_it_once_it_is_there(env):
    server = env.server
    async with running(env):
        answers = await close_while_posted(env)
        status = (await final_answer(await server.slash(env.bob, env.channel, "status")))["content"]
        server.release(POST_MESSAGE)
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**"), timeout=30)
        await server.wait_for_message(env.channel, is_round(2), timeout=30)
        first = next(m for m in server.messages(env.channel) if is_round(1)(m))
        await server.wait_until(lambda: "(closed)" in server.message(first["id"])["content"], what="round 1's post marked closed")
    assert answers == [ONCE_POSTED, ONCE_POSTED], answers
    assert ", closes as soon as it is posted (`/close`)." in status, status
    assert len(summaries(env, 1)) == 1
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
    assert db_rows(env, "SELECT rounds_done FROM sessions") == [(1,)]


async def test_a_stop_after_a_close_while_the_round_is_posted_closes_and_counts_it_first(env):
    server = env.server
    async with running(env):
        answers = await close_while_posted(env)
        stop = await server.slash(env.alice, env.channel, "stop")
        await stop.wait_response()  # it waits for the close, which waits for the post
        server.release(POST_MESSAGE)
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


async def test_a_close_while_the_round_is_posted_stands_across_a_restart(env):
    """The bot goes down with the post on its way and the close acknowledged: after the restart the post (adopted, or
    made then) closes at once, as the close was acknowledged, and once."""
    server = env.server
    async with running(env):
        answers = await close_while_posted(env)
    server.release(POST_MESSAGE)
    async with running(env):
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**"), timeout=30)
        await server.wait_for_message(env.channel, is_round(2), timeout=30)
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds")[0][0] == 2, "round 2 recorded")
    assert answers == [ONCE_POSTED, ONCE_POSTED], answers
    assert len([m for m in server.messages(env.channel) if is_round(1)(m)]) == 1
    assert len(summaries(env, 1)) == 1
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
