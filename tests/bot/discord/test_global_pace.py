"""Discord's global rate limit, 50 requests a second, is the bot token's ("Rate Limits": the global rate limit), however
many processes share it: each shard process paced itself to 40 a second, so two of them, both busy, sent 80 and met
global 429s, each counted against the bot's invalid requests. And the start's `GET /gateway` (reach_discord, its own
HTTP session) took no turn of the pace. The local server records when each request arrived: these count them per
second as it saw them."""

from __future__ import annotations

import asyncio
import time

import pytest
from discord.http import Route
from test_discord_bot import drawer, renderer  # noqa: F401
from test_startup import TOKEN, start

from bot.conductor import Conductor
from bot.discord.app import CrowdtuneBot
from bot.discord.shards import ShardPlan
from bot.errors import ExitCode
from bot.settings import Settings
from fakediscord import FakeDiscord
from storage import open_store

pytestmark = pytest.mark.asyncio

ME = "GET /users/@me"
BURST = 60  # requests each process makes at once: more than a second's share of either


async def test_shard_processes_sharing_a_token_stay_together_under_discords_global_rate_limit(tmp_path, renderer, drawer):
    """Two shard processes of one bot (each its own CrowdtuneBot and HTTP session, as in two processes), both sending a
    burst at once: together no more than the bot's 40 a second, as the server saw them, and not one global 429."""
    store = await open_store(str(tmp_path / "bot.db"))
    bots = [
        CrowdtuneBot(Settings(_env_file=None), Conductor(store), renderer, drawer, shards=ShardPlan.make(2, str(shard)))
        for shard in (0, 1)
    ]
    try:
        async with FakeDiscord() as server:
            server.set_route_limit(ME, 10_000, 1.0)  # the global limit only: no route's bucket in the way
            server.redirect_discord_py()  # undone as the server closes
            for bot in bots:
                await bot.http.static_login(server.bot_token)  # discord.py's login, its session and trace, no gateway
            since = time.monotonic()
            await asyncio.gather(*(bot.http.request(Route("GET", "/users/@me")) for bot in bots for _ in range(BURST)))
            counted, limited, most = server.request_counts[ME], server.rate_limits.limited, server.most_in_one_second(since)
    finally:
        for bot in bots:
            await bot.http.close()
        await store.close()
    assert counted == 2 * BURST + 2  # each login's one too
    assert limited == []
    assert most <= 40


async def test_every_request_of_a_start_takes_a_turn_of_the_pace_the_gateway_check_too(tmp_path):
    """A process running 1 of 40 shards may make one request a second (40 a second shared by shards): a start refused
    its token makes two, `GET /gateway` (is Discord there?) and `GET /users/@me` (the login), a second apart at least."""
    async with FakeDiscord() as server:
        result = await asyncio.to_thread(
            start, tmp_path, CROWDTUNE_API_BASE=server.api_base, CROWDTUNE_GATEWAY_URL=server.gateway_url,
            CROWDTUNE_SHARD_COUNT="40", CROWDTUNE_SHARD_IDS="0",
        )
    assert result.returncode == ExitCode.TOKEN_REFUSED, result.stderr
    assert server.request_counts == {"GET /gateway": 1, ME: 1}
    assert server.most_in_one_second() == 1
    assert TOKEN not in result.stderr
