"""The reconciler: the reactions on a round's message are the truth. Before a round closes (and when it
resumes after a restart) the reactions are read again and the stored votes made to match them, so a
reaction whose event was lost still counts and one removed meanwhile does not. A deleted round message
cancels its round."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine

import discord

from bot.discord.anti_brigade import JoinTimes
from bot.discord.ballot_box import BallotBox
from bot.discord.publisher import Publisher
from bot.discord.votes import bare, emoji_for_mode, vote_from_emoji, voter_id
from storage import RoundRow

RECONCILE_PASSES = 4  # re-read reactions while people keep changing them during the read, up to this


class Reconciler:
    def __init__(
        self,
        ballot_box: BallotBox,
        join_times: JoinTimes,
        publisher: Publisher,
        spawn: Callable[[Coroutine], None],
        wake: Callable[[int], None],
    ) -> None:
        self.ballot_box = ballot_box
        self.store = ballot_box.store
        self.join_times = join_times
        self.publisher = publisher
        self.spawn = spawn
        self.wake = wake  # wakes a session (by id) whose round changed
        self._deleted: collections.deque[int] = collections.deque(maxlen=1000)  # recent deletions of unknown messages

    def deleted_before_known(self, message_id: int) -> bool:
        return message_id in self._deleted

    async def on_message_deleted(self, message_id: int) -> None:
        ref = self.ballot_box.cached_ref(message_id) or await self.ballot_box.ref_for(message_id)
        if ref is None:
            self._deleted.append(message_id)
            return
        if await self.store.cancel_round(ref.round_id, actor="moderator", reason="round message deleted"):
            self.wake(ref.session_id)

    async def reconcile(self, channel, row: RoundRow, add_missing: bool = False) -> None:
        """Make the round's stored votes match the reactions on its message: counts reactions made
        while the bot was away or whose events were lost, drops ones removed meanwhile.

        Reactions keep changing while they are read. Voters with an event during the read are left to
        their events and read again in another pass; everyone else gets the diff, queued behind
        every event received so far."""
        box = self.ballot_box
        message_id = int(row.message_ids[0])
        watchers = box.watching.setdefault(message_id, set())
        try:
            for _ in range(RECONCILE_PASSES):
                current = await self.store.round(row.id)
                if current is None or current.status != "open":
                    return
                watchers.clear()
                try:
                    message = await channel.fetch_message(message_id)
                except discord.NotFound:
                    await self.store.cancel_round(row.id, actor="crowdtune", reason="round message missing")
                    return
                present = await self._reactions_by_user(message, current)
                await box.settle_votes()
                ballots = await self.store.ballots(row.id)
                # No await from here to the submits: a reaction event now would be missed by both.
                standing = {b.voter: (b.choice if row.mode == "ab" else b.rating) for b in ballots}
                pending = [
                    box.submit(message_id, user_id, values[-1])
                    for user_id, values in present.items()
                    if user_id not in watchers and standing.get(voter_id(user_id)) not in values
                ]
                pending += [
                    box.submit(message_id, int(voter.split(":")[1]), value, retract=True)
                    for voter, value in standing.items()
                    if int(voter.split(":")[1]) not in present and int(voter.split(":")[1]) not in watchers
                ]
                await asyncio.gather(*pending)
                if not watchers:
                    break
        finally:
            box.watching.pop(message_id, None)
        if add_missing:
            mine = {bare(str(r.emoji)) for r in message.reactions if r.me}
            missing = tuple(e for e in emoji_for_mode(row.mode) if bare(e) not in mine)
            if missing:
                self.spawn(self.publisher.add_reactions(message, row.mode, only=missing))

    async def _reactions_by_user(self, message: discord.Message, row: RoundRow) -> dict[int, list[float | str]]:
        """Each person's vote reactions on the message (with anti-brigading, only members who joined in time)."""
        present: dict[int, list[float | str]] = {}
        for reaction in message.reactions:
            value = vote_from_emoji(row.mode, str(reaction.emoji))
            if value is None or reaction.count <= (1 if reaction.me else 0):
                continue  # not a vote, or only our own reaction: nothing to read
            for user in await _everyone_with(reaction):
                if not self.ballot_box.is_bot(user.id, None) and not user.bot:
                    present.setdefault(user.id, []).append(value)
        ref = await self.ballot_box.ref_for(message.id)
        if ref is not None:
            await self.join_times.drop_newcomers(ref, present)
        return present


async def _everyone_with(reaction: discord.Reaction) -> list[discord.abc.User]:
    """Everyone with this reaction now. discord.py's users(limit=None) stops after the count the
    message had when fetched, so it misses people when the reaction changed since (our own added)."""
    users: list[discord.abc.User] = []
    after = None
    while True:
        page = [user async for user in reaction.users(limit=100, after=after)]
        users += page
        if len(page) < 100:
            return users
        after = discord.Object(max(user.id for user in page))
