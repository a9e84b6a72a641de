"""The per-person vote rate (CROWDTUNE_VOTE_BURST, CROWDTUNE_VOTE_REFILL_SECONDS): a token bucket, and the
reactions it holds back.

A rate-limited reaction is delayed, never lost: per message and person, the reactions changed since the
hold began are kept (one entry per reaction, its latest change, newest last: a normal and a super reaction of one
emoji are two, as in reactions_seen.py) and applied together as
soon as the person's bucket allows (a timer), or at once when the round's reactions are re-read before a
close or the bot stops cleanly. Applied, their vote is the person's latest reaction by arrival that is still
on (a later one supersedes it, removing it falls back to the one before); the earlier ones still on are
recorded just before it, so the round's vote history holds every reaction the bot saw; when every reaction changed
in the hold was removed, those removals (each withdraws the vote only if it is the standing one). Kept in
memory only: a crash loses them, and the restart's re-read (bot.discord.reconciler) decides alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.discord.votes import bare

Apply = Callable[[str, bool], None]  # (emoji, retract): queues one reaction vote of the person on the message


class VoteLimiter:
    """A token bucket per person over vote changes: `burst` at once, then one per `refill_seconds`."""

    def __init__(self, burst: int, refill_seconds: float, clock=time.monotonic) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # user id -> (tokens left, when counted)

    def _tokens(self, user_id: int, now: float) -> float:
        tokens, counted_at = self._buckets.get(user_id, (self.burst, now))
        return min(self.burst, tokens + (now - counted_at) / self.refill_seconds)

    def allow(self, user_id: int) -> bool:
        now = self.clock()
        tokens = self._tokens(user_id, now)
        allowed = tokens >= 1
        self._buckets[user_id] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > 100_000:
            # A bucket that has refilled is the same as none: forget those.
            full_after = self.burst * self.refill_seconds
            self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < full_after}
        return allowed

    def until_allowed(self, user_id: int) -> float:
        """Seconds (of `clock`) until the person's next change is allowed; 0 when it is now."""
        return max(0.0, (1 - self._tokens(user_id, self.clock())) * self.refill_seconds)


class _Held:
    __slots__ = ("changes", "apply", "timer")

    def __init__(self) -> None:
        self.changes: dict[tuple[str, bool], bool] = {}  # (bare emoji, super) -> added (else removed), latest change last
        self.apply: Apply | None = None  # from the latest event: where and as whom it was made
        self.timer: asyncio.TimerHandle | None = None


class HeldReactions:
    """Reactions over the rate, per message and person, until applied (see the module's docstring)."""

    MIN_PAUSE = 0.01  # seconds: a retry of a bucket that rounding left a hair short of a token

    def __init__(self, limiter: VoteLimiter) -> None:
        self.limiter = limiter
        self._held: dict[int, dict[int, _Held]] = {}  # message id -> user id -> held changes

    def holds(self, message_id: int, user_id: int) -> bool:
        """Whether the person has reactions held on the message: their next one waits behind them."""
        return user_id in self._held.get(message_id, ())

    def waiting(self, message_ids) -> int:
        """How many votes held on these messages (a round's) wait to be applied: one per person and message."""
        return sum(len(self._held.get(message_id, ())) for message_id in message_ids)

    def hold(self, message_id: int, user_id: int, emoji: str, added: bool, apply: Apply, burst: bool = False) -> None:
        """Hold a reaction event (`burst`: a super reaction) until the person's bucket allows; `apply` queues it."""
        held = self._held.setdefault(message_id, {}).setdefault(user_id, _Held())
        held.changes.pop((bare(emoji), burst), None)  # re-inserted: the newest change comes last
        held.changes[(bare(emoji), burst)] = added
        held.apply = apply
        if held.timer is None:
            held.timer = asyncio.get_running_loop().call_later(
                max(self.limiter.until_allowed(user_id), self.MIN_PAUSE), self._release, message_id, user_id
            )

    def _release(self, message_id: int, user_id: int) -> None:
        held = self._held.get(message_id, {}).get(user_id)
        if held is None:
            return
        held.timer = None
        if self.limiter.allow(user_id):
            self._apply(message_id, user_id)
        else:  # the clock moved less than the timer (or another message of theirs took the token)
            held.timer = asyncio.get_running_loop().call_later(
                max(self.limiter.until_allowed(user_id), self.MIN_PAUSE), self._release, message_id, user_id
            )

    def _apply(self, message_id: int, user_id: int) -> None:
        people = self._held.get(message_id, {})
        held = people.pop(user_id)
        if not people:
            self._held.pop(message_id, None)
        if held.timer is not None:
            held.timer.cancel()
        for emoji, retract in _changes(held):
            held.apply(emoji, retract)

    def pending(self, message_id: int) -> dict[int, list[tuple[str, bool]]]:
        """What applying the reactions held on the message would queue: user id -> [(bare emoji, retract)], in order."""
        return {user_id: _changes(held) for user_id, held in self._held.get(message_id, {}).items()}

    def flush(self, message_id: int | None = None) -> None:
        """Apply what is held on the message (every message: None) now, whatever the buckets say.
        Synchronous, so the votes are queued before anything queued after this call."""
        for held_message in [message_id] if message_id is not None else list(self._held):
            for user_id in list(self._held.get(held_message, ())):
                self._apply(held_message, user_id)

    def cleared(self, message_id: int, emoji: str | None) -> None:
        """A moderator removed every reaction of the message (emoji None), or every one with `emoji`:
        the held reactions among them are gone too."""
        if emoji is None:
            self.forget([message_id])
            return
        for held in self._held.get(message_id, {}).values():
            for reaction in held.changes:
                if reaction[0] == bare(emoji):  # normal and super alike
                    held.changes[reaction] = False

    def forget_person(self, user_id: int) -> None:
        """Drop everything the person has held, on every message (they deleted their data with /forget-me:
        a reaction made before that must not come back as a vote)."""
        for message_id in [m for m, people in self._held.items() if user_id in people]:
            held = self._held[message_id].pop(user_id)
            if held.timer is not None:
                held.timer.cancel()
            if not self._held[message_id]:
                del self._held[message_id]

    def forget(self, message_ids) -> None:
        """Drop what is held on these messages (their round ended: BallotBox.round_ended)."""
        for message_id in message_ids:
            for held in self._held.pop(message_id, {}).values():
                if held.timer is not None:
                    held.timer.cancel()


def _changes(held: _Held) -> list[tuple[str, bool]]:
    """The (bare emoji, retract) votes one person's held reactions are applied as, in order. Every one still on, the
    latest last (it is the vote): each is then in the round's vote history, which tells a re-read that the bot saw
    it (reread_vote), not one added while it was down. When none is on, the removals."""
    added = [emoji for (emoji, _), on in held.changes.items() if on]
    changes = [(emoji, False) for emoji in added] if added else [(emoji, True) for emoji, _ in held.changes]
    return list(reversed(dict.fromkeys(reversed(changes))))  # an emoji held normal and super: once, at its latest
