"""The bot's own vote reactions on a round's message, kept in the order they were first posted in: 1️⃣ to 🔟
(A/B: 🅰️ 🅱️ 👍 👎).

Discord documents no order for a message's reactions (the message's `reactions` is "reactions to the message") and
no request that places or moves one; its clients show them in the order each emoji was first added, so the order is kept by
one task per message, adding one reaction after another (discord.py keeps to each route's rate limit). Asked
again while it works (a moderator cleared reactions meanwhile), it starts over from a fresh read rather than
add the rest after what it had put back. An emoji cleared from the middle goes back in its place: the bot's
own reactions after it that nobody else has are taken off first and added again after it (another person's
reaction keeps its emoji where it is: only removing that person's reaction, a vote, would move it, which the bot never
does, so then the order people see is not the first one). Discord unreachable (an outage, or a 5xx) is retried from a
fresh read every few seconds while the round takes reactions, and said in the process's outage log (outage.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine

import discord

from bot.discord.outage import Outage, RetryLog, is_outage
from bot.discord.votes import bare, emoji_for_mode

log = logging.getLogger("crowdtune.reactions")

ModeOf = Callable[[], Awaitable[str | None]]  # the round's mode while it takes reactions; None: nothing more to add


class OwnReactions:
    def __init__(self, bot: discord.Client, spawn: Callable[[Coroutine], None], outage: Outage) -> None:
        self.bot = bot
        self.spawn = spawn
        self.outage = outage  # the process's: an outage is said once for every step that waits for it
        self._again: dict[int, bool] = {}  # message id -> asked again since its task's current pass began

    def put(self, channel_id: int, message_id: int, mode_of: ModeOf, message: discord.Message | None = None) -> None:
        """Have the bot's vote reactions on the message, in their order, in the background. `mode_of` is
        asked before each read of the message; `message`: the message as just read (or posted), if it was."""
        if message_id in self._again:
            self._again[message_id] = True  # the running task reads the message again
            return
        self._again[message_id] = False
        self.spawn(self._put(channel_id, message_id, mode_of, message))

    async def _put(self, channel_id: int, message_id: int, mode_of: ModeOf, message: discord.Message | None) -> None:
        retries = RetryLog(log, f"the vote reactions on message {message_id}", self.outage)
        try:
            while (mode := await mode_of()) is not None:
                try:
                    if message is None:
                        message = await self.bot.get_partial_messageable(channel_id).fetch_message(message_id)
                    for add, emoji in _steps(message, mode):
                        if self._again[message_id]:
                            break
                        await (message.add_reaction(emoji) if add else message.remove_reaction(emoji, self.bot.user))
                except Exception as problem:
                    if not is_outage(problem):
                        raise
                    # Discord unreachable: what it now has is not known, so the next try reads the message again.
                    retries.failed(problem)
                    await asyncio.sleep(self.outage.retry_seconds)
                    self._again[message_id], message = False, None
                    continue
                retries.worked()
                if not self._again[message_id]:
                    return
                self._again[message_id], message = False, None
        except discord.HTTPException as problem:
            log.warning("could not put the vote reactions on %s: %s", message_id, problem)
        finally:
            retries.stopped()
            self._again.pop(message_id, None)


def _steps(message: discord.Message, mode: str) -> list[tuple[bool, str]]:
    """What puts the bot's vote reactions on the message in their order: (add, emoji) requests, in turn (add
    False: take the bot's own off). Nothing when none is missing."""
    order = emoji_for_mode(mode)
    mine = {bare(str(r.emoji)) for r in message.reactions if r.me}
    first = next((i for i, e in enumerate(order) if bare(e) not in mine), None)
    if first is None:
        return []
    alone = {bare(str(r.emoji)) for r in message.reactions if r.me and r.count == 1}
    after = [e for e in order[first + 1:] if bare(e) in alone]  # listed before the missing one unless taken off
    return [(False, e) for e in after] + [(True, e) for e in order[first:] if bare(e) not in mine or e in after]
