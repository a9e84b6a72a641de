"""Anti-brigading: with the scope's `anti_brigade` setting, only members who joined the server at least
`member_days` whole days before a round began vote in it (0 days: joined before it began). Join times
come with reaction events and button presses and, when missing, from Discord, cached; each vote is stored
with its voter's, so that a count judges it by the same date whatever the cache holds: a member who left
keeps their vote (Discord no longer says when they joined, and the bot, without the privileged
GUILD_MEMBERS intent, is not told they left)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import discord

from bot.discord.pace import Pace, reads_per_second
from bot.discord.votes import RoundRef, voter_id
from bot.progress import plural
from core.crowd import Ballot
from storage import StandingVote

CACHE_LIMIT = 100_000  # (server, member) join times kept before the cache starts again
DAY = 86_400.0  # seconds: a membership age counts days of 24 hours, whatever the time zone
MAX_MEMBER_DAYS = 365  # /config member_days: a year at most


def joined_by(ref: RoundRef) -> float | None:
    """The latest join time (Unix seconds) of a member whose votes count in the round: `member_days`
    days (of 24 hours) before it began; None when anyone's votes count (anti-brigading off, or a personal
    agent: no server)."""
    if not (ref.anti_brigade and ref.scope_id.startswith("guild:")):
        return None
    return ref.opened_at - ref.member_days * DAY


def joined_in_time(ref: RoundRef, joined_at: dt.datetime | None) -> bool:
    """The one rule: whether a member who joined the server at `joined_at` (None: not a member, or not
    known) may vote in the round. Withdrawing a vote is always allowed (the callers do not ask)."""
    latest = joined_by(ref)
    return latest is None or (joined_at is not None and joined_at.timestamp() <= latest)


def rule_text(anti_brigade: bool, member_days: int) -> str:
    """Who votes, in words, for /config and a button vote set aside: 'votes count only from members who joined
    at least 3 days before the round began'."""
    if not anti_brigade:
        return "votes count from everyone"
    if member_days == 0:
        return "votes count only from members who joined before the round began"
    return f"votes count only from members who joined at least {plural(member_days, 'day')} before the round began"


@dataclass(frozen=True)
class Count:
    """A round's standing votes as its count takes them now (BallotBox.count): those that count, and the voters whose
    votes the membership rule as it is now (`member_days`) sets aside (stored still; voided at the close)."""

    counted: list[StandingVote]
    set_aside: frozenset[str] = frozenset()
    member_days: int = 0
    aside: tuple[StandingVote, ...] = ()  # the set-aside voters' votes

    @property
    def ballots(self) -> list[Ballot]:
        return [vote.ballot for vote in self.counted]


def guild_of(ref: RoundRef) -> int | None:
    """The server id of a round's scope; None for a personal agent's."""
    return int(ref.scope_id.split(":")[1]) if ref.scope_id.startswith("guild:") else None


class JoinTimes:
    """When each member joined each server, as far as known."""

    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot
        # The bot's bulk reads from Discord, these and a recount's (one per bot), within its requests' pace.
        self.reads = Pace(reads_per_second(bot.request_pace.per_second))
        self._joined: dict[tuple[int, int], dt.datetime | None] = {}

    def remember(self, guild_id: int, user_id: int, joined_at: dt.datetime) -> None:
        if len(self._joined) > CACHE_LIMIT:
            self._joined.clear()
        self._joined[(guild_id, user_id)] = joined_at

    def stored_with_vote(self, ref: RoundRef, user_id: int, said: dt.datetime | None) -> float | None:
        """The join date (Unix seconds) to store with a vote in the round: as its event said (`said`), else as known
        already (a vote's check looked it up); None in a personal agent's round, or when unknown (Discord is not
        asked for it: without anti-brigading nothing needs it yet)."""
        guild_id = guild_of(ref)
        joined = said or (self._joined.get((guild_id, user_id)) if guild_id is not None else None)
        return None if joined is None else joined.timestamp()

    async def joined_at(
        self, guild_id: int, user_id: int, before_asking: Callable[[], Awaitable[None]] | None = None, fresh: bool = False
    ) -> dt.datetime | None:
        """When the member joined; None when they are not a member (any more). Asked of Discord when not cached, or
        `fresh`; `before_asking` is awaited first (a command's deferral: the request may be slow)."""
        if fresh or (guild_id, user_id) not in self._joined:
            if before_asking is not None:
                await before_asking()
            guild = self.bot.get_guild(guild_id)
            try:
                async with self.reads.turn():  # one request a voter: a recount asks for hundreds at once
                    member = await guild.fetch_member(user_id) if guild is not None else None
            except discord.NotFound:
                member = None
            self._joined[(guild_id, user_id)] = member.joined_at if member is not None else None
        return self._joined[(guild_id, user_id)]

    async def may_vote(self, ref: RoundRef, user_id: int, joined_at: dt.datetime | None = None) -> bool:
        """Whether the member may vote in the round (`joined_in_time`): `joined_at` as the event gave it,
        else looked up (asked of Discord only when the round asks for a membership age and it is not cached)."""
        if joined_by(ref) is None:
            return True
        if joined_at is None:
            joined_at = await self.joined_at(guild_of(ref), user_id)
        return joined_in_time(ref, joined_at)

    async def count(
        self, ref: RoundRef, votes: list[StandingVote], before_asking: Callable[[], Awaitable[None]] | None = None
    ) -> Count:
        """The round's standing `votes` under its membership rule: each judged by the join date stored with it, so a
        member who has left keeps their vote whatever is cached; a vote stored without one (a reaction re-read after
        a restart while anti-brigading was off) by Discord's answer now, never the cache (a 404 for someone who left:
        set aside, whether or not their date was cached), `before_asking` awaited before the first request."""
        counted, refused = [], []
        for vote in votes:
            voter = vote.ballot.voter
            if not voter.startswith("user:"):
                counted.append(vote)
                continue
            if vote.joined_at is not None:
                joined = dt.datetime.fromtimestamp(vote.joined_at, dt.timezone.utc)
            else:
                joined = await self.joined_at(guild_of(ref), int(voter.split(":")[1]), before_asking, fresh=True)
            if joined_in_time(ref, joined):
                counted.append(vote)
            else:
                refused.append(vote)
        return Count(counted, frozenset(vote.ballot.voter for vote in refused), ref.member_days, tuple(refused))

    def set_aside_held(self, ref: RoundRef | None, user_ids: Iterable[int]) -> frozenset[str]:
        """The voters among `user_ids` (people with reactions held over the vote rate) whom the round's rule sets aside,
        by the join date their reaction came with (remembered), as the count will once the held votes are stored. Not
        remembered (the cache started again): set aside here, and the count asks Discord."""
        if ref is None or joined_by(ref) is None:
            return frozenset()
        return frozenset(voter_id(u) for u in user_ids if not joined_in_time(ref, self._joined.get((guild_of(ref), u))))

    async def look_up(self, ref: RoundRef, user_ids: Iterable[int]) -> None:
        """Learn (cache) when each of these members joined, when the round has a membership rule (asking Discord for
        those not known), so that their votes are stored with it (stored_with_vote)."""
        if joined_by(ref) is not None:
            for user_id in user_ids:
                await self.joined_at(guild_of(ref), user_id)
