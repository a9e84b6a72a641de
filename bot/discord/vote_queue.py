"""What the ballot box's queue holds, in arrival order: votes, clears of a message's reactions, and barriers (a wait
for every vote queued before it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.discord.reactions_seen import Left


@dataclass(frozen=True)
class PendingVote:
    message_id: int
    user_id: int
    value: float | str | None  # a rating or a choice; for a reaction its emoji, mapped once the round is known
    retract: bool
    done: asyncio.Future
    from_reaction: bool = False
    origin: str | None = None  # the scope it was cast in (see origin_scope); None: read back from the round's own message
    joined_at: dt.datetime | None = None  # when the voter joined the server, when the event says
    round_id: int | None = None  # the round a button names, for a post not recorded yet
    channel_id: int | None = None  # where a reaction was made: its round may be being recorded there
    remaining: Left[tuple[str, ...]] | None = None  # a removed reaction's: the person's vote emoji still on (reactions_seen.py)
    at: float | None = None  # when it is recorded (Unix seconds); None: when it came (`came`)
    reread: bool = False  # cast by a re-read of the reactions (the reconciler), not by an event: VoteOp.reread
    forgets_seen: int = 0  # the newest deletion of a person's data known when it came: VoteOp.forgets_seen
    # When it was queued: a vote the database took only later (a full disk, a lock held: `kept`) is stamped when made.
    came: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Clear:
    """A moderator removed every reaction of a message (emoji None) or every reaction with one emoji:
    the votes they stood for are withdrawn, in order with the votes queued around it."""
    message_id: int
    emoji: str | None
    done: asyncio.Future
    remaining: Left[dict[int, tuple[str, ...]]] | None = None  # user id -> vote emoji still on (reactions_seen.py)


CLEARED = 0  # in `watching`: every reaction of the message changed (no user has id 0)


@dataclass(frozen=True)
class Barrier:
    """Resolved once every vote queued before it is committed."""
    done: asyncio.Future


def kept(batch: list[PendingVote | Clear | Barrier]) -> list[PendingVote | Clear]:
    """What of a batch the database refused (a full disk, a lock held) is kept to try again, in order: the reaction events,
    which nobody waits for."""
    return [item for item in batch if isinstance(item, Clear) or (isinstance(item, PendingVote) and item.from_reaction)]


def voters(message_ids: Iterable[str], *queued: Iterable[PendingVote | Clear | Barrier]) -> int:
    """How many people have reaction votes on these messages among the `queued` items."""
    ids = {int(m) for m in message_ids}
    return len({i.user_id for q in queued for i in q if isinstance(i, PendingVote) and i.from_reaction and i.message_id in ids})
