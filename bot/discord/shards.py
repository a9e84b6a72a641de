"""Which shards this process runs, and which scopes belong to them.

Discord splits a bot's servers into shards by `(guild_id >> 22) % shard_count`; direct messages go to
shard 0 (Discord's gateway docs, "Sharding"). A process given some shards receives the events of their
servers only, and resumes, times and closes only the rounds of those servers' sessions (and of DMs
when it runs shard 0), so several processes share one database without touching each other's rounds.

Discord's global rate limit (50 requests a second) is the bot token's, however many processes share it, so each
process makes at most its share of the bot's REQUESTS_PER_SECOND: as many of them as the shards it runs out of
all (`ShardPlan.requests_per_second`; rounded down, so the shares never add up to more). A share, not a pace kept
together (in PostgreSQL, say): it needs no round trip before each request, nothing that can fail or lag, and holds
while the database is down; its cost is that a busy process cannot borrow an idle one's share. Servers are spread
over shards evenly, so the shares follow the work. A process needs one request a second at least, so it runs at
least shard count / REQUESTS_PER_SECOND shards (`ids_problem`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import StartupError

MAX_SHARDS = 4096  # far beyond any need: Discord asks for one shard per 1,000-2,500 servers
# What the bot's requests may use of Discord's 50 a second, all its processes together (bot/discord/pace.py): the rest
# is a margin for our count and Discord's disagreeing (a request's arrival is known only between its sending and its
# answer). Here, not in pace.py, as every command checks the shard settings against it without loading discord.py.
REQUESTS_PER_SECOND = 40


class ClosedShardsStayClosed:
    """For a client that is a discord.AutoShardedClient. discord.py retries a shard's first connection every
    5 s for as long as it fails (`launch_shard` calls itself) without asking whether the client was closed
    meanwhile: SIGTERM closed the bot, and it went on trying and never ended (`docker stop` then kills it).
    A closed client launches nothing, so its `connect` returns."""

    async def launch_shard(self, gateway, shard_id: int, *, initial: bool = False) -> None:
        if self.is_closed():
            return
        await super().launch_shard(gateway, shard_id, initial=initial)


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard a server's events arrive on; DMs (no server) arrive on shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


def parse_shard_ids(text: str) -> tuple[int, ...]:
    """'0,1' or '2' -> (0, 1) or (2,); ValueError with the reason otherwise."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):  # '２' and '²' are digits too, not ones anyone types
        raise ValueError(f"shard ids must be whole numbers separated by commas, such as 0,1 (not '{text}')")
    ids = tuple(sorted({int(p) for p in parts}))
    return ids


def ids_problem(count: int | None, ids: str | None) -> str | None:
    """Why the shard `ids` (as given: '0,1') cannot go with `count` shards in all, in words that follow the ids'
    setting's name; None if they can. The settings' common check says it for every command (bot.settings), the
    bot's plan again (`ShardPlan.make`). ValueError for ids that are no list of numbers (parse_shard_ids)."""
    if ids is None:
        return None
    if count is None:
        return "it needs the shard count too (--shard-count, CROWDTUNE_SHARD_COUNT): how many shards in all"
    given = parse_shard_ids(ids)
    outside = [i for i in given if i >= count]
    said = f"{', '.join(map(str, outside))} {'is' if len(outside) == 1 else 'are'} outside 0-{count - 1}"
    if outside:
        return f"{said}, as the shard count (--shard-count, CROWDTUNE_SHARD_COUNT) is {count}"
    least = -(-count // REQUESTS_PER_SECOND)
    if len(given) < least:
        return (
            f"a process runs at least {least} of the {count} shards, not {len(given)}: the processes share the bot's "
            f"{REQUESTS_PER_SECOND} requests a second to Discord by their shards, and each needs one at least"
        )
    return None


@dataclass(frozen=True)
class ShardPlan:
    """`count` shards in all; this process runs `ids`. `sharded` is False for the plain one-process bot."""

    count: int = 1
    ids: tuple[int, ...] = (0,)
    sharded: bool = False

    @classmethod
    def make(cls, count: int | None, ids: str | None) -> ShardPlan:
        """From --shard-count/--shard-ids (or CROWDTUNE_SHARD_COUNT/_IDS). Without ids a process runs
        every shard. StartupError, naming the setting, for a plan that cannot work."""
        if count is not None and not 1 <= count <= MAX_SHARDS:
            raise StartupError(f"--shard-count (CROWDTUNE_SHARD_COUNT) must be 1-{MAX_SHARDS}, not {count}")
        try:
            why = ids_problem(count, ids)
        except ValueError as problem:
            raise StartupError(f"--shard-ids (CROWDTUNE_SHARD_IDS): {problem}") from None
        if why is not None:
            raise StartupError(f"--shard-ids (CROWDTUNE_SHARD_IDS): {why}")
        if count is None:
            return cls()
        return cls(count, parse_shard_ids(ids) if ids is not None else tuple(range(count)), sharded=True)

    def requests_per_second(self) -> int:
        """This process's share of the bot's REQUESTS_PER_SECOND to Discord: as many as its shards out of all, rounded
        down (the module's docstring says why); all of them for the plain bot. At least 1 (`ids_problem`)."""
        return REQUESTS_PER_SECOND * len(self.ids) // self.count

    def owns_guild(self, guild_id: int | None) -> bool:
        return shard_of(guild_id, self.count) in self.ids

    def owns_scope(self, scope_id: str) -> bool:
        return self.shard_of_scope(scope_id) in self.ids

    def shard_of_scope(self, scope_id: str) -> int:
        """A 'guild:<id>' scope belongs to its server's shard; a person's ('user:<id>') to shard 0; all to 0 unsharded."""
        kind, _, ident = scope_id.partition(":")
        return shard_of(int(ident) if kind == "guild" and ident.isdigit() else None, self.count)

    def describe(self) -> str:
        return f"shards {','.join(map(str, self.ids))} of {self.count}" if self.sharded else "unsharded"
