"""Every REST request the bot makes is paced under Discord's global rate limit: 50 requests a second for a bot in
all ("Rate Limits": the global rate limit; interaction endpoints, its answers and followups, are not bound by it).
discord.py paces each route by its headers but meets the global limit only with a 429, which it logs and waits out and
which Discord counts against the bot's invalid requests (10,000 in 10 minutes, then its address is barred). Ten
sessions posting their rounds at once, each then adding its ten vote reactions, met it; so did a restart's recounts,
which read every open round's reactions (and, with a membership age, when each voter joined) at once.

So each request takes a turn (`paced_requests`: on every HTTP session that talks to Discord's API, discord.py's, which
carries its login, its gateway look-ups at each (re)connect, retries and webhooks, and the start's check that Discord
answers, bot/discord/reach.py), and the bulk reads take a turn of their own first (READS_PER_SECOND), leaving room for
posts and answers meanwhile. The limit is the token's, so a process paces at its share of the bot's REQUESTS_PER_SECOND
when shard processes share the token (bot/discord/shards.py says how and why)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import discord

from bot.discord.shards import REQUESTS_PER_SECOND

# One Pace for the process (run_bot's, CrowdtuneBot.request_pace: its sessions and shards alike), at its share of the
# bot's REQUESTS_PER_SECOND. What a restart's bulk reads (anti_brigade.JoinTimes.reads) may use of those, the rest left
# to posts and reactions.
READS_PER_SECOND = 30
WAIT_UNDER_WAY = 0.02  # seconds between looks for a turn while every turn of the last second is under way


class Pace:
    """At most `per_second` requests in any second as Discord counts them (when each arrives), however late each is sent
    or answered: a turn is given only while fewer than `per_second` are under way or were answered in the last second,
    so those that arrive within any second were all under way or answered within a second of the last one's turn."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.under_way = 0  # turns taken whose request is not answered yet
        self._answered: collections.deque[float] = collections.deque()  # when (monotonic s) the last second's were

    async def take(self) -> None:
        """Wait for a turn and take it; `give_back` once its request is answered (or failed)."""
        while True:
            now = time.monotonic()
            while self._answered and now - self._answered[0] >= 1.0:
                self._answered.popleft()
            if self.under_way + len(self._answered) < self.per_second:
                break
            # Till the oldest answer is a second old, or (all under way) a moment: an answer frees no turn sooner.
            await asyncio.sleep(1.0 - (now - self._answered[0]) if self._answered else WAIT_UNDER_WAY)
        self.under_way += 1  # no await since the count: a turn is never given twice

    def give_back(self) -> None:
        self.under_way -= 1
        self._answered.append(time.monotonic())

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Make one request in the block, once it is its turn."""
        await self.take()
        try:
            yield
        finally:
            self.give_back()


def reads_per_second(requests_per_second: int) -> int:
    """The bulk reads' share (READS_PER_SECOND of REQUESTS_PER_SECOND) of a process's `requests_per_second`; 1 at least."""
    return max(1, requests_per_second * READS_PER_SECOND // REQUESTS_PER_SECOND)


def bound_by_global_limit(url) -> bool:
    """Whether a request to `url` counts against Discord's global limit: one to its REST API (discord.http.Route.BASE)
    but for the interaction endpoints (an interaction's callback, its webhook with the interaction's token). Not the
    gateway's websocket nor an attachment's download (the CDN)."""
    base = discord.http.Route.BASE.rstrip("/")
    text = str(url)
    if not text.startswith(base + "/"):
        return False
    path = text[len(base):]
    return not (path.startswith("/interactions/") or (path.startswith("/webhooks/") and path.count("/") >= 3))


def paced_requests(pace: Pace) -> aiohttp.TraceConfig:
    """The bot's HTTP session's trace (discord.Client's `http_trace`): each request bound by the global limit waits for
    its turn of `pace` before it is sent, and gives it back once answered or failed; each of discord.py's retries is a
    request of its own. One cancelled while it waits took no turn (aiohttp then sends no end)."""
    trace = aiohttp.TraceConfig()

    async def start(session, context: SimpleNamespace, params) -> None:
        if bound_by_global_limit(params.url):
            await pace.take()
            context.paced = True

    async def end(session, context: SimpleNamespace, params) -> None:
        if getattr(context, "paced", False):
            context.paced = False
            pace.give_back()

    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.on_request_exception.append(end)
    return trace
