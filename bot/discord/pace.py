"""Bulk reads from Discord paced under its global rate limit: a restart's recounts read every open round's reactions
(and, with a membership age, when each voter joined) at once, and with many sessions and voters that was hundreds of
requests in a second. Discord allows a bot 50 requests a second in all ("Rate Limits": the global rate limit);
discord.py paces each route by its headers but meets the global limit only with a 429, which it logs and waits out and
which Discord counts against the bot's invalid requests (10,000 in 10 minutes, then its address is barred)."""

from __future__ import annotations

import asyncio
import collections
import time

# What the bulk reads may use of Discord's 50 a second, the rest left to what goes on meanwhile (posts, replies, the
# bot's reactions). One process's: shards in separate processes (bot/discord/shards.py) each pace their own.
READS_PER_SECOND = 40


class Pace:
    """At most `per_second` turns in any second, counted when they are taken (a turn that waited, its event loop busy,
    is not then bunched with those due after it); up to `per_second` at once (a round's recount goes at full speed)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._taken: collections.deque[float] = collections.deque()  # when (monotonic s) the last second's turns were taken

    async def turn(self) -> None:
        """Wait for a turn: at once unless `per_second` were taken in the last second."""
        while True:
            now = time.monotonic()
            while self._taken and now - self._taken[0] >= 1.0:
                self._taken.popleft()
            if len(self._taken) < self.per_second:
                self._taken.append(now)  # no await since the count: a turn is never given twice
                return
            await asyncio.sleep(1.0 - (now - self._taken[0]))


READS = Pace(READS_PER_SECOND)  # one for the process: the global limit is the bot's, across its sessions
