"""Bulk reads from Discord paced under its global rate limit: a restart's recounts read every open round's reactions
(and, with a membership age, when each voter joined) at once, and with many sessions and voters that was hundreds of
requests in a second. Discord allows a bot 50 requests a second in all ("Rate Limits": the global rate limit);
discord.py paces each route by its headers but meets the global limit only with a 429, which it logs and waits out and
which Discord counts against the bot's invalid requests (10,000 in 10 minutes, then its address is barred)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator

# What the bulk reads may use of Discord's 50 a second, the rest left to what goes on meanwhile (posts, replies, the
# bot's reactions). One Pace for the bot (anti_brigade.JoinTimes.reads): the global limit is the bot's, across its sessions;
# shards in separate processes (bot/discord/shards.py) each pace their own.
READS_PER_SECOND = 40
WAIT_UNDER_WAY = 0.02  # seconds between looks for a turn while every turn of the last second is under way


class Pace:
    """At most `per_second` requests in any second as Discord counts them (when each arrives), however late each is sent
    or answered: a turn is given only while fewer than `per_second` are under way or were answered in the last second,
    so those that arrive within any second were all under way or answered within a second of the last one's turn."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.under_way = 0  # turns taken whose request is not answered yet
        self._answered: collections.deque[float] = collections.deque()  # when (monotonic s) the last second's were

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Make one request in the block, once it is its turn."""
        while True:
            now = time.monotonic()
            while self._answered and now - self._answered[0] >= 1.0:
                self._answered.popleft()
            if self.under_way + len(self._answered) < self.per_second:
                break
            # Till the oldest answer is a second old, or (all under way) a moment: an answer frees no turn sooner.
            await asyncio.sleep(1.0 - (now - self._answered[0]) if self._answered else WAIT_UNDER_WAY)
        self.under_way += 1  # no await since the count: a turn is never given twice
        try:
            yield
        finally:
            self.under_way -= 1
            self._answered.append(time.monotonic())

