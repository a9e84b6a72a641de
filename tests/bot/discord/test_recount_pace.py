"""The recount after a restart reads every open round's reactions (and, with a membership age, when each voter joined)
from Discord at once: with many sessions and voters that was over Discord's global limit of 50 requests a second (the
local server enforces it, as Discord's "Rate Limits" page documents), each excess a 429 that discord.py logs ("We are
being rate limited") and that Discord counts against the bot's 10,000 invalid requests in 10 minutes, past which
Cloudflare bars its address. Before the fix this restart gave about 400 global 429s (369 on the reaction listings), and
5 in a row failed sessions' rounds with a traceback; discord.py's Reaction.users also asked once more after each short
page, a request the pace did not see."""

from __future__ import annotations

import asyncio
import collections
import logging

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, is_round, renderer, running  # noqa: F401
from test_security import config, member_since

pytestmark = pytest.mark.asyncio

SESSIONS, VOTERS = 10, 100  # each voter in every session: the recounts' reads of 1,000 reactions, 10 listings each

POST = "POST /channels/{channel_id}/messages"


async def test_the_restart_recount_of_many_sessions_stays_under_discords_global_rate_limit(env, caplog):
    server = env.server
    voters = [member_since(server, env.guild, f"voter{i}", 30) for i in range(VOTERS)]
    channels = [env.channel, *(server.add_text_channel(env.guild, f"music-{n}") for n in range(1, SESSIONS))]
    async with running(env, vote_burst=1000):
        assert "at least 1 day" in await config(env, member_days=1)  # the recount asks when each voter joined
        posts = []
        for channel in channels:
            await compose(env, channel=channel, rounds=3, round_minutes=600)
            posts.append(await server.wait_for_message(channel, is_round(1)))
        for post in posts:
            await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
    # While the bot is down, everyone votes in every round: the restart's recount is what counts them.
    await server.react_many([(voter, post["id"], KEYCAPS[i % 10], True, False) for post in posts for i, voter in enumerate(voters)])
    # The restart begins with none of the last second's requests (the first run's posts and reactions) against the limit.
    await eventually(lambda: server.rate_limits.global_used() == 0, "the first run's requests out of the global window")
    # Only the restart's (the first run's own are test_rounds_posted_in_many_channels_at_once_...).
    limited = len(server.rate_limits.limited)
    caplog.set_level(logging.WARNING, logger="discord.http")
    logged = len(caplog.records)
    async with running(env, vote_burst=1000) as bot:
        sessions = [session_id for (session_id,) in db_rows(env, "SELECT id FROM sessions")]
        await eventually(lambda: not any(bot.runner.recounts.recounting(s) for s in sessions), "the recounts", timeout=300)
        await bot.runner.ballot_box.settle_votes()
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE retracted = 0") == [(SESSIONS * VOTERS,)]
    assert collections.Counter(server.rate_limits.limited[limited:]) == {}
    assert not [r.getMessage() for r in caplog.records[logged:] if "rate limited" in r.getMessage()]


async def test_rounds_posted_in_many_channels_at_once_stay_under_discords_global_rate_limit(env, caplog):
    """Found by a trial: ten sessions starting together posted their rounds and added their vote reactions (ten under
    each post) unpaced, over Discord's global limit of 50 requests a second: global 429s, each one counted against the
    bot's invalid requests. Every REST request the bot makes is paced now (bot/discord/pace.py), its own reactions too."""
    server = env.server
    channels = [env.channel, *(server.add_text_channel(env.guild, f"music-{n}") for n in range(1, SESSIONS))]
    caplog.set_level(logging.WARNING, logger="discord.http")
    async with running(env):
        await eventually(lambda: server.rate_limits.global_used() == 0, "the start's requests out of the global window")
        limited = len(server.rate_limits.limited)
        # The posts are let through together, as when their renders end at once: then come their reactions together.
        server.hold(POST)
        await asyncio.gather(*(compose(env, channel=channel, rounds=3, round_minutes=600) for channel in channels))
        await server.wait_until(lambda: server.held[POST] == SESSIONS, what="every round's post on its way", timeout=60)
        server.release(POST)
        posts = await asyncio.gather(*(server.wait_for_message(channel, is_round(1), timeout=60) for channel in channels))
        for post in posts:
            await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="the vote reactions", timeout=60)
        assert collections.Counter(server.rate_limits.limited[limited:]) == {}
    assert not [r.getMessage() for r in caplog.records if "rate limited" in r.getMessage()]
