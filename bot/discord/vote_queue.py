"""What the ballot box's queue holds, in arrival order: votes, clears of a message's reactions, and barriers (a wait
for every vote queued before it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
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
    return [item for item in batch if isinstance(item, Clear) or _reaction(item)]


def voters(message_ids: Iterable[str], *queued: Iterable[PendingVote | Clear | Barrier]) -> set[int]:
    """Who has reaction votes on these messages among the `queued` items."""
    ids = {int(m) for m in message_ids}
    return {i.user_id for q in queued for i in q if _reaction(i) and i.message_id in ids}


def _reaction(item: PendingVote | Clear | Barrier) -> bool:
    return isinstance(item, PendingVote) and item.from_reaction


class VoteQueue:
    """The ballot box's queue (an asyncio.Queue: `get` waits for an item, `join` till each taken is `task_done`) and,
    kept beside it as items come and go, who has reaction votes in it on each message (`reaction_voters`): the
    asyncio.Queue's own items are private."""

    def __init__(self) -> None:
        self._items: asyncio.Queue[PendingVote | Clear | Barrier] = asyncio.Queue()
        self._reactions: dict[int, Counter[int]] = {}  # message id -> user id -> how many of their reaction votes are queued
        self.empty, self.join, self.task_done = self._items.empty, self._items.join, self._items.task_done

    def put_nowait(self, item: PendingVote | Clear | Barrier) -> None:
        self._items.put_nowait(item)
        if _reaction(item):
            self._reactions.setdefault(item.message_id, Counter())[item.user_id] += 1

    async def get(self) -> PendingVote | Clear | Barrier:
        return self._took(await self._items.get())

    def get_nowait(self) -> PendingVote | Clear | Barrier:
        return self._took(self._items.get_nowait())

    def reaction_voters(self, message_ids: Iterable[str]) -> set[int]:
        """Who has reaction votes queued on these messages (as `voters` says of a list of items)."""
        return {user_id for m in message_ids for user_id in self._reactions.get(int(m), ())}

    def _took(self, item: PendingVote | Clear | Barrier) -> PendingVote | Clear | Barrier:
        if _reaction(item):
            queued = self._reactions[item.message_id]
            queued[item.user_id] -= 1
            if not queued[item.user_id]:
                del queued[item.user_id]
                if not queued:  # held for the queued votes only: not for every message ever voted on
                    del self._reactions[item.message_id]
        return item
