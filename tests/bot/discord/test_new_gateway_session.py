"""A gateway session that is not resumed (a new IDENTIFY after a reconnect: Discord replays nothing it missed), through
the real bot and the local Discord-compatible server: the reactions made meanwhile count at once, not only at the
round's close (report trial 26). Each test was written to fail on the code before its fix."""

from __future__ import annotations

import asyncio
import time

import pytest
from fakediscord import FakeDiscord
from test_discord_bot import (  # noqa: F401
    KEYCAPS, Env, ballots, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running, uid,
)
from test_vote_rate import first_round

from bot.conductor import Conductor
from bot.discord.app import ShardedCrowdtuneBot
from bot.discord.shards import ShardPlan
from bot.settings import Settings
from storage import open_store

pytestmark = pytest.mark.asyncio

MESSAGE = "GET /channels/{channel_id}/messages/{message_id}"  # a recount's first request


def applied(env, user) -> int:
    return len(db_rows(env, "SELECT 1 FROM vote_events WHERE voter = ?", (uid(user),)))


async def missed_while_reconnecting(env, bot, post, votes, shard_id: int | None = None) -> None:
    """The gateway session (of shard `shard_id`, else every one) is dropped, not resumable, and each (user, emoji) of
    `votes` reacts before the bot's new IDENTIFY, so no event of theirs ever comes; returns once it is sent."""
    server, gate = env.server, asyncio.Event()

    async def identify_when_let(shard_id, *, initial=False):  # discord.py's hook before an IDENTIFY (its 5 s wait too)
        await gate.wait()

    bot.before_identify_hook = identify_when_let
    identified = server.events_received["IDENTIFY"]
    await server.drop_connections(code=4000, resumable=False, shard_id=shard_id)
    for user, emoji in votes:
        await server.react(user, post["id"], emoji)
    gate.set()
    await server.wait_until(lambda: server.events_received["IDENTIFY"] > identified, what="a new session")


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
        await server.wait_until(lambda: server.held[MESSAGE] >= 1, what="the recount after the new session")
        await server.react(env.carol, post["id"], KEYCAPS[9])  # live, during the recount
        await eventually(lambda: applied(env, env.carol) == 1, "carol's live vote")
        asked = await server.slash(env.mod, env.channel, "status")
        assert (await asked.wait_response())["type"] == 5  # waits for the recount, acknowledged first
        server.release(MESSAGE)
        status = (await final_answer(asked))["content"]
        assert "3 voted so far (1, 9, 10)" in status, status
        assert [applied(env, user) for user in (env.alice, env.bob, env.carol)] == [1, 1, 1]  # none counted twice
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
    assert "3 voted (1, 9, 10)" in summary["content"], summary["content"]
    assert await ballots(env) == {uid(env.alice): 1.0, uid(env.bob): 9.0, uid(env.carol): 10.0}
    assert [applied(env, user) for user in (env.alice, env.bob, env.carol)] == [1, 1, 1]


async def test_a_quorum_reached_by_reactions_made_during_a_new_gateway_session_closes_the_round(env):
    """The same trial: with a quorum of 3 and the three votes made during the reconnect, the round waited for its
    timer (600 minutes here). It closes on its quorum once the new session's recount counted them."""
    async with running(env) as bot:
        post = await first_round(env, quorum=3)
        await missed_while_reconnecting(env, bot, post, [(env.alice, KEYCAPS[0]), (env.bob, KEYCAPS[8]), (env.carol, KEYCAPS[9])])
        summary = await env.server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
    assert "3 voted (1, 9, 10)" in summary["content"], summary["content"]


async def test_a_shards_new_gateway_session_recounts_the_open_rounds_of_its_servers_only(tmp_path, renderer, drawer, db_location):
    """The same for a bot running two shards in one process: the shard whose session is new (on_shard_connect) recounts
    the open rounds of its servers, and the other, whose session went on, recounts none."""
    async with FakeDiscord(shard_count=2) as server:
        mod = server.add_user("mod")
        guilds = []
        while {(g.id >> 22) % 2 for g in guilds} != {0, 1}:  # ids are time-based: one more ms, maybe another shard
            guilds.append(server.add_guild(f"g{len(guilds)}", owner=mod))
            time.sleep(0.002)
        guild, other = guilds[-1], next(g for g in guilds if (g.id >> 22) % 2 != (guilds[-1].id >> 22) % 2)
        users = [server.add_user(name) for name in ("alice", "bob", "carol")]
        for user in users:
            server.add_member(guild, user)
        here = Env(server, guild, server.add_text_channel(guild, "music"), mod, *users, db_location, tmp_path, renderer, drawer)
        there = Env(server, other, server.add_text_channel(other, "music"), mod, *users, db_location, tmp_path, renderer, drawer)
        store = await open_store(db_location)
        bot = ShardedCrowdtuneBot(
            Settings(_env_file=None), Conductor(store), renderer, drawer, shards=ShardPlan.make(2, None), guild_ready_timeout=0.05
        )
        try:
            async with server.connect(bot):
                await bot.wait_until_commands_synced()
                await compose(there, rounds=3, round_minutes=600)  # a round open on the other shard too
                await server.wait_for_message(there.channel, is_round(1))
                post = await first_round(here)
                reads = server.request_counts[MESSAGE]
                server.hold(MESSAGE)
                shard = (guild.id >> 22) % 2
                await missed_while_reconnecting(here, bot, post, [(here.alice, KEYCAPS[0]), (here.bob, KEYCAPS[8])], shard_id=shard)
                await server.wait_until(lambda: server.held[MESSAGE] >= 1, what="the recount after the new session")
                asked = await server.slash(mod, here.channel, "status")
                assert (await asked.wait_response())["type"] == 5  # waits for the recount
                server.release(MESSAGE)
                status = (await final_answer(asked))["content"]
                assert "2 voted so far (1, 9)" in status, status
                assert server.request_counts[MESSAGE] == reads + 1  # its round's recount; none of the other shard's round
        finally:
            await store.close()
