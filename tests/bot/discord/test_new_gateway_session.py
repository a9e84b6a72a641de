"""A gateway session that is not resumed (a new IDENTIFY after a reconnect: Discord replays nothing it missed), through
the real bot and the local Discord-compatible server: the reactions made meanwhile count at once, not only at the
round's close (report trial 26). Each test was written to fail on the code before its fix."""

from __future__ import annotations

import asyncio

import pytest
from test_discord_bot import KEYCAPS, ballots, db_rows, drawer, env, eventually, final_answer, renderer, running, uid  # noqa: F401
from test_vote_rate import first_round

pytestmark = pytest.mark.asyncio

MESSAGE = "GET /channels/{channel_id}/messages/{message_id}"  # a recount's first request


def applied(env, user) -> int:
    return len(db_rows(env, "SELECT 1 FROM vote_events WHERE voter = ?", (uid(user),)))


async def missed_while_reconnecting(env, bot, post, votes) -> None:
    """The gateway session is dropped (not resumable) and each (user, emoji) of `votes` reacts before the bot's new
    IDENTIFY, so no event of theirs ever comes; returns once the new session is connected."""
    server, gate = env.server, asyncio.Event()

    async def identify_when_let(shard_id, *, initial=False):  # discord.py's hook before an IDENTIFY (its 5 s wait too)
        await gate.wait()

    bot.before_identify_hook = identify_when_let
    identified = server.events_received["IDENTIFY"]
    await server.drop_connections(code=4000, resumable=False)
    for user, emoji in votes:
        await server.react(user, post["id"], emoji)
    gate.set()
    await server.wait_until(lambda: server.events_received["IDENTIFY"] > identified, timeout=20, what="a new session")


async def test_reactions_made_during_a_new_gateway_session_show_in_status_and_count_once(env):
    """Found by a trial: three members reacted while the gateway reconnected without resuming; /status said "0 voted
    so far (none yet)" for minutes, until the timer's close re-read the reactions. A new gateway session recounts the
    open rounds of its servers, as a start does, and /status waits for that recount; a reaction whose event comes live
    while the recount reads is counted once."""
    server = env.server
    async with running(env) as bot:
        post = await first_round(env)
        server.hold(MESSAGE)  # the recount's read waits until carol's live vote is in
        await missed_while_reconnecting(env, bot, post, [(env.alice, KEYCAPS[0]), (env.bob, KEYCAPS[8])])
        await server.wait_until(lambda: server.held[MESSAGE] >= 1, timeout=20, what="the recount after the new session")
        await server.react(env.carol, post["id"], KEYCAPS[9])  # live, during the recount
        await eventually(lambda: applied(env, env.carol) == 1, "carol's live vote")
        asked = await server.slash(env.mod, env.channel, "status")
        assert (await asked.wait_response())["type"] == 5  # waits for the recount, acknowledged first
        server.release(MESSAGE)
        status = (await final_answer(asked))["content"]
        assert "3 voted so far (1, 9, 10)" in status, status
        assert [applied(env, user) for user in (env.alice, env.bob, env.carol)] == [1, 1, 1]  # none counted twice
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"], timeout=30)
    assert "3 voted (1, 9, 10)" in summary["content"], summary["content"]
    assert await ballots(env) == {uid(env.alice): 1.0, uid(env.bob): 9.0, uid(env.carol): 10.0}
    assert [applied(env, user) for user in (env.alice, env.bob, env.carol)] == [1, 1, 1]


async def test_a_quorum_reached_by_reactions_made_during_a_new_gateway_session_closes_the_round(env):
    """The same trial: with a quorum of 3 and the three votes made during the reconnect, the round waited for its
    timer (600 minutes here). It closes on its quorum once the new session's recount counted them."""
    async with running(env) as bot:
        post = await first_round(env, quorum=3)
        await missed_while_reconnecting(env, bot, post, [(env.alice, KEYCAPS[0]), (env.bob, KEYCAPS[8]), (env.carol, KEYCAPS[9])])
        summary = await env.server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"], timeout=30)
    assert "3 voted (1, 9, 10)" in summary["content"], summary["content"]
