"""Which vote reactions each person has on a round's message, as the bot saw them, so that removing one falls back
at once to the person's others still on (`recounted_vote`, the re-read's rule) instead of withdrawing their vote.

Why tracked in memory, not read back from Discord: Discord has no "this person's reactions" request; finding them
means listing the users of every vote emoji on the message (a request per emoji and per hundred users, under the
reactions route's rate limit) at each removal. The events already say it, at no cost; what they cannot say (a
reaction made while the bot was down) the re-read of the reactions says, which every restart does before counting a
round (reconciler.py): a message is "known", and its sets used, only from its post or from a re-read that saw everyone,
until its round is forgotten. A removal takes what the person has left as it comes (`Left`), and is stored once its
round is found (a post just made is recorded after people see it): what it took counts if the message was known then,
or turned out since to be the bot's new post, on which every reaction came as an event (`ReactionsSeen.sure`). Else a
removal withdraws the vote only if it is the one standing, as before, and the next re-read sets it right.
A person's normal and super (burst) reaction of one emoji are two reactions (Discord: `me` and `me_burst`; a removal
event says which went, `burst`), so removing one leaves the other's vote standing; the re-read lists them apart too.
`as_counted` shows a round's votes with the reactions held over the vote rate applied (what /status shows).
"""

from __future__ import annotations

import dataclasses
from typing import Generic, TypeVar

from bot.conductor import Conductor
from bot.discord.vote_rate import HeldReactions
from bot.discord.votes import bare, recounted_vote, vote_from_emoji, voter_id
from core.crowd import Ballot
from storage import RoundRow, VoteOp
from storage.rows import plan_votes

UNKNOWN_MESSAGES = 1000  # messages not (yet) a known round whose reactions are kept, oldest dropped first


Reaction = tuple[str, bool]  # (emoji, super): one reaction of a person's on a message
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Left(Generic[T]):
    """What a removal left on a message by the events seen when it came (`on`), and whether the message was known
    then: used as `ReactionsSeen.sure` says."""

    on: T
    known: bool


class ReactionsSeen:
    """Per message and person, the vote reactions on: (bare emoji, super) (see the module's docstring)."""

    def __init__(self) -> None:
        self._people: dict[int, dict[int, set[Reaction]]] = {}  # message id -> user id -> (bare emoji, super) on
        self._known: set[int] = set()
        self._posted: set[int] = set()  # the bot's new posts: known from their first reaction on (`posted`)

    def changed(self, message_id: int, user_id: int, emoji: str, added: bool, burst: bool = False) -> None:
        """A reaction event: `burst` (its `burst` field) tells a super reaction from a normal one of the same emoji."""
        people = self._people.setdefault(message_id, {})
        on = people.setdefault(user_id, set())
        (on.add if added else on.discard)((bare(emoji), burst))
        if not on:
            del people[user_id]
        if len(self._people) > len(self._known) + UNKNOWN_MESSAGES:  # reactions on messages that are no round
            del self._people[next(m for m in self._people if m not in self._known)]

    def left(self, message_id: int, user_id: int) -> Left[tuple[str, ...]]:
        """The person's vote emoji on the message, one per reaction (a normal and a super one of an emoji: twice, as
        the re-read lists them), as the events say now."""
        return Left(_emoji_of(self._people.get(message_id, {}).get(user_id, set())), message_id in self._known)

    def remaining(self, message_id: int, user_id: int) -> tuple[str, ...] | None:
        """The person's vote emoji on the message (`left`) when they are all the bot must know; None when not."""
        return self.sure(message_id, self.left(message_id, user_id))

    def sure(self, message_id: int, left: Left[T] | None) -> T | None:
        """What `left` says is on, when that is all: the message was known when it was taken, or is the bot's new post,
        whose reactions all came as events (taken before the bot had its id, or before its round was recorded, it is
        all the same); else None."""
        if left is None or not (left.known or message_id in self._posted):
            return None
        return left.on

    def posted(self, message_id: int) -> None:
        """The message is the bot's new post (called once Discord answers it, before its round is recorded): every
        reaction on it came as an event, also any that came before this call."""
        self._known.add(message_id)
        self._posted.add(message_id)

    def read(self, message_id: int, present: dict[int, list[Reaction]], skipped: set[int], complete: bool) -> None:
        """A re-read of the message's vote reactions (`present`: user id -> (emoji, super)), at a point no event comes
        between it and now, except for the `skipped` people's, whose sets their events keep. Makes the message
        known when the read left out nobody."""
        if not complete:  # who is missing from a listing that did not end is not known
            return
        people = self._people.setdefault(message_id, {})
        for user_id in set(people) | set(present):
            if user_id not in skipped:
                people[user_id] = {(bare(emoji), burst) for emoji, burst in present.get(user_id, ())}
                if not people[user_id]:
                    del people[user_id]
        if not skipped:
            self._known.add(message_id)

    def cleared(self, message_id: int, emoji: str | None) -> Left[dict[int, tuple[str, ...]]]:
        """A moderator removed every reaction (emoji None) or every one with `emoji`: what each person has left."""
        people = self._people.setdefault(message_id, {})
        known = message_id in self._known
        if emoji is None:
            people.clear()
            self._known.add(message_id)  # nobody has a reaction on it now
        for user_id in list(people):
            people[user_id] -= {(bare(emoji), False), (bare(emoji), True)}  # every reaction of the emoji, normal and super
            if not people[user_id]:
                del people[user_id]
        return Left({user_id: _emoji_of(on) for user_id, on in people.items()}, known or emoji is None)

    def of_person(self, user_id: int) -> dict[int, set[Reaction]]:
        """The person's vote reactions on each known message (every reaction on it came to the bot): an empty set where
        they have none. A message not known is left out, as what the person has on it is not known."""
        return {message_id: set(self._people.get(message_id, {}).get(user_id, ())) for message_id in self._known}

    def forget_person(self, user_id: int) -> None:
        """The person used /forget-me: their reactions made before count no more, as the re-read leaves them out."""
        for people in self._people.values():
            people.pop(user_id, None)

    def entries(self, message_ids) -> int:
        """How many entries this holds for these messages: people's reactions, and whether known or the bot's post."""
        return sum((m in self._people) + len(self._people.get(m, ())) + (m in self._known) + (m in self._posted) for m in message_ids)

    def forget(self, message_ids) -> None:
        """Their round ended (BallotBox.round_ended)."""
        for message_id in message_ids:
            self._people.pop(message_id, None)
            self._known.discard(message_id)
            self._posted.discard(message_id)


def _emoji_of(reactions: set[Reaction]) -> tuple[str, ...]:
    """The emoji of a person's reactions, one per reaction (a normal and a super one of an emoji: twice)."""
    return tuple(emoji for emoji, _ in reactions)


def falling_back(op: VoteOp, mode: str, remaining: tuple[str, ...]) -> VoteOp:
    """The retraction `op` of a removed vote reaction, made to leave the person the vote their `remaining` vote
    emoji say, as the re-read would: the standing vote stays while its reaction is on, else `recounted_vote`
    of the remaining; withdrawn (whichever it is) when none remains."""
    values = [value for emoji in remaining if (value := vote_from_emoji(mode, emoji)) is not None]
    pairs = tuple((None, value) if mode == "ab" else (float(value), None) for value in values)
    if not values:
        return dataclasses.replace(op, only_if_standing=False)
    instead = recounted_vote(mode, values)
    return dataclasses.replace(op, only_if_standing=False, keep=pairs, instead=(None, instead) if mode == "ab" else (float(instead), None))


def as_counted(row: RoundRow, ballots: list[Ballot], held: HeldReactions, seen: ReactionsSeen) -> list[Ballot]:
    """The round's stored `ballots` as its count will take them: with the reactions held over the vote rate applied as
    the ballot box applies them (`HeldReactions.pending`; a removal falls back to the person's others still on), by
    the same rule (`plan_votes`), writing nothing. What /status shows, so it never shows a vote the count will not use
    (7 stored, then 9 added and 7 removed over the rate: 9). A held vote of a struck voter shows until it is refused."""
    rows = {(row.id, ballot.voter): (ballot.rating, ballot.choice, 0, None, None) for ballot in ballots}
    ops = []
    for message_id in map(int, row.message_ids):
        for user_id, changes in held.pending(message_id).items():
            for emoji, retract in changes:
                if (value := vote_from_emoji(row.mode, emoji)) is None:
                    continue  # a vote only in the other mode (🅰️ on a rating round): the ballot box ignores it too
                op = Conductor.vote_op(row.id, row.mode, voter_id(user_id), value, retract)
                left = seen.remaining(message_id, user_id) if retract else None
                ops.append(op if left is None else falling_back(op, row.mode, left))
    if not ops:
        return ballots
    plan_votes(ops, {row.id: ("open", row.scope_id)}, rows, set())
    return [Ballot(voter, rating, choice) for (_, voter), (rating, choice, retracted, *_) in rows.items() if not retracted]
