"""Anti-brigading: with the scope's `anti_brigade` setting, accounts that joined the server after a round
began do not vote in it. Join times come with reaction events and, when missing, from Discord, cached."""

from __future__ import annotations

import datetime as dt

import discord

from bot.discord.votes import RoundRef

CACHE_LIMIT = 100_000  # (server, member) join times kept before the cache starts again


def is_newcomer(ref: RoundRef, joined_at: dt.datetime | None, retract: bool) -> bool:
    """Whether a vote (not a withdrawal) comes from an account that joined after the round began."""
    return ref.anti_brigade and not retract and joined_at is not None and joined_at.timestamp() > ref.opened_at


class JoinTimes:
    """When each member joined each server, as far as known."""

    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot
        self._joined: dict[tuple[int, int], dt.datetime | None] = {}

    def remember(self, guild_id: int, user_id: int, joined_at: dt.datetime) -> None:
        if len(self._joined) > CACHE_LIMIT:
            self._joined.clear()
        self._joined[(guild_id, user_id)] = joined_at

    async def joined_at(self, guild_id: int, user_id: int) -> dt.datetime | None:
        """When the member joined; None when they are not a member (any more)."""
        if (guild_id, user_id) not in self._joined:
            guild = self.bot.get_guild(guild_id)
            try:
                member = await guild.fetch_member(user_id) if guild is not None else None
            except discord.NotFound:
                member = None
            self._joined[(guild_id, user_id)] = member.joined_at if member is not None else None
        return self._joined[(guild_id, user_id)]

    async def drop_newcomers(self, ref: RoundRef, present: dict[int, list]) -> None:
        """Remove from `present` (user id -> their votes) whoever may not vote in the round."""
        if not (ref.anti_brigade and ref.scope_id.startswith("guild:")):
            return
        guild_id = int(ref.scope_id.split(":")[1])
        for user_id in list(present):
            joined = await self.joined_at(guild_id, user_id)
            if joined is None or joined.timestamp() > ref.opened_at:
                del present[user_id]  # a newcomer, or no longer a member
