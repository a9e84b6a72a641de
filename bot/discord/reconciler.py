"""The reconciler: the reactions on a round's message are the truth. Before a round closes (and when it
resumes after a restart, or the gateway session is new) the reactions are read again and the stored votes
made to match them, so a reaction whose event was lost still counts and one removed meanwhile does not.
A deleted round message cancels its round."""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import NamedTuple

import discord

from bot.discord.anti_brigade import JoinTimes
from bot.discord.pace import Pace
from bot.discord.ballot_box import CLEARED, BallotBox
from bot.discord.publisher import Publisher
from bot.discord.votes import reread_vote, round_cancelled, vote_from_emoji, voter_id
from storage import RoundRow, SessionRow

log = logging.getLogger("crowdtune.reconciler")

RECONCILE_PASSES = 4  # re-read reactions while people keep changing them during the read, up to this


class Reconciler:
    def __init__(
        self, ballot_box: BallotBox, join_times: JoinTimes, publisher: Publisher, wake: Callable[[int], None], spawn: Callable[[Coroutine], None],
    ) -> None:
        self.ballot_box = ballot_box
        self.spawn = spawn  # runs a step in the background (RoundRunner._spawn)
        self.store = ballot_box.store
        self.join_times = join_times
        self.publisher = publisher
        self.wake = wake  # wakes a session (by id) whose round changed
        self._deleted: collections.deque[int] = collections.deque(maxlen=1000)  # recent deletions of unknown messages
        self._watching_since: dict[int, float] = {}  # shard id -> when (Unix seconds) its gateway session began

    def connected(self, shard_id: int = 0) -> None:
        """A new gateway session of the shard began (READY; a RESUME replays what was missed, so is none): every
        reaction added from now comes as an event, and one the bot never recorded was added before now."""
        self._watching_since[shard_id] = time.time()

    def watched_since(self, scope_id: str) -> float:
        """When (Unix seconds) the current watch of the scope's reactions began; infinity before the first session."""
        plan = getattr(self.ballot_box.bot, "shard_plan", None)
        return self._watching_since.get(plan.shard_of_scope(scope_id) if plan is not None else 0, math.inf)

    async def remember(self, row: RoundRow, session: SessionRow) -> None:
        """Map the open round's messages to it (the ballot box); one deleted before it was known to be the round's (its
        post stored) cancels it now."""
        await self.ballot_box.remember(row, session)
        for message_id in map(int, row.message_ids):
            if message_id in self._deleted:
                self.spawn(self.on_message_deleted(message_id))

    async def on_message_deleted(self, message_id: int) -> None:
        ref = self.ballot_box.cached_ref(message_id) or await self.ballot_box.ref_for(message_id)
        if ref is None:
            self._deleted.append(message_id)
            return
        if await self._cancel(ref.round_id, actor="moderator", reason="round message deleted"):
            self.wake(ref.session_id)

    async def _cancel(self, round_id: int, actor: str, reason: str) -> bool:
        """Cancel the round, its announcement recorded in the same transaction (the runner posts it)."""
        row = await self.store.round(round_id)
        session = None if row is None else await self.store.session(row.session_id)
        if session is None:
            return False
        announce = round_cancelled(row.index + 1, session.spec.get("rounds"), session.rounds_done)
        return await self.store.cancel_round(round_id, actor=actor, reason=reason, announce=announce)

    async def still_posted(self, channel, row: RoundRow) -> bool:
        """Whether the round's message still exists; a round whose message was deleted (while the bot
        was down, whatever its vote style) is cancelled."""
        try:
            async with self.join_times.reads.turn():  # every resumed round's at a restart
                await channel.fetch_message(int(row.message_ids[0]))
        except discord.NotFound:
            await self._cancel(row.id, actor="crowdtune", reason="round message missing")
            return False
        return True

    async def read_again(self, channel, row: RoundRow, style: str) -> None:
        """After events the bot may have missed (it was down, or its gateway session was new): a reactions round's votes
        recounted and the bot's own vote reactions put back; a round whose message was deleted meanwhile cancelled."""
        if style == "reactions":
            await self.reconcile(channel, row, add_missing=True)
        else:
            await self.still_posted(channel, row)

    async def reconcile(self, channel, row: RoundRow, add_missing: bool = False) -> None:
        """Make the round's stored votes match the reactions on its message: counts reactions made
        while the bot was away or whose events were lost, drops ones removed meanwhile. Reactions held over
        a person's rate are applied first (they are the person's latest), and again at the end.

        Reactions keep changing while they are read. Voters with an event during the read are left to
        their events and read again in another pass; everyone else gets the diff, queued behind
        every event received so far."""
        box = self.ballot_box
        message_id = int(row.message_ids[0])
        watchers = box.watching.setdefault(message_id, set())
        try:
            for _ in range(RECONCILE_PASSES):
                current = await self.store.round(row.id)
                if current is None or not current.takes_votes:
                    return  # its votes were taken for its close (an answered /close): what is stored is what counts
                watchers.clear()
                box.held.flush(message_id)
                try:
                    async with self.join_times.reads.turn():  # every open round's at a restart: paced (bot/discord/pace.py)
                        message = await channel.fetch_message(message_id)
                except discord.NotFound:
                    await self._cancel(row.id, actor="crowdtune", reason="round message missing")
                    return
                present, complete = await self._reactions_by_user(message, current)
                await box.settle_votes()
                withheld = await self.store.withheld_voters(row.id)
                # A vote a strike voided stands for the re-read as any stored vote (while its reaction is on, nothing is
                # cast), though it does not count: casting it again would make it count, a new vote (plan_votes).
                ballots = await self.store.voided_ballots(row.id) + await self.store.ballots(row.id)
                recorded = await self.store.recorded_votes(row.id)  # one query for everyone: what the bot saw
                since = self.watched_since(row.scope_id)
                # No await from here to the submits: a reaction event now would be missed by both.
                if CLEARED in watchers:
                    continue  # the reactions were cleared during the read: what was read is gone
                box.seen.read(message_id, present, watchers, complete)
                present = {user_id: [vote_from_emoji(row.mode, emoji) for emoji, _ in on] for user_id, on in present.items()}
                standing = {b.voter: (b.choice if row.mode == "ab" else b.rating) for b in ballots if b.voter not in withheld}
                # A reaction the bot never recorded is newer than a vote stored before its gateway session began, older
                # than one stored since; else the stored vote stands while its reaction is on (reread_vote). What one
                # pass casts for a person shares one time: the next re-read tells from it which reactions a vote was
                # counted of.
                at = time.time()
                pending = [
                    box.submit(message_id, user_id, value, at=at, reread=True)  # refused for a /forget-me meanwhile
                    for user_id, values in present.items()
                    if user_id not in watchers
                    for value in reread_vote(row.mode, values, standing.get(voter_id(user_id)), recorded.get(voter_id(user_id), {}), since)
                ]
                # A listing that did not end says nothing about who is missing from it.
                pending += [
                    box.submit(message_id, int(voter.split(":")[1]), value, retract=True)
                    for voter, value in standing.items()
                    if complete and int(voter.split(":")[1]) not in present and int(voter.split(":")[1]) not in watchers
                ]
                await asyncio.gather(*pending)
                if not watchers:
                    break
        finally:
            box.watching.pop(message_id, None)
            box.held.flush(message_id)  # no await between this and the caller's settle_votes: all of them count
        if add_missing:
            self.publisher.own_reactions.put(message.channel.id, message_id, lambda: self._open_mode(message_id), message)

    def on_reactions_cleared(self, channel_id: int, message_id: int, emoji: str | None = None) -> None:
        """MESSAGE_REACTION_REMOVE_ALL (emoji None) or MESSAGE_REACTION_REMOVE_EMOJI on a message: the votes
        those reactions stood for are withdrawn at once (the ballot box), and on an open round's message
        the bot's own vote reactions that went with them are put back in their first order (own_reactions.py),
        as when a round resumes."""
        self.ballot_box.on_reactions_cleared(message_id, emoji)
        if emoji is not None and vote_from_emoji("ab", emoji) is None and vote_from_emoji("rating", emoji) is None:
            return  # not one of ours
        self.publisher.own_reactions.put(channel_id, message_id, lambda: self._open_mode(message_id))

    async def _open_mode(self, message_id: int) -> str | None:
        """The mode of the open reactions round whose message this is; None when there is none (any more)."""
        ref = await self.ballot_box.ref_for(message_id)
        row = None if ref is None or ref.style != "reactions" else await self.store.round(ref.round_id)
        return row.mode if row is not None and row.status == "open" else None

    async def _reactions_by_user(self, message: discord.Message, row: RoundRow) -> tuple[dict[int, list[tuple[str, bool]]], bool]:
        """Each person's vote reactions (emoji, super) on the message, and whether every listing was read to its end. With
        a membership rule, when each joined is looked up first (outside the vote writer): their votes are stored with it,
        whether the rule counts them now or sets them aside (BallotBox.count), as a reaction event's are."""
        present: dict[int, list[str]] = {}
        complete = True
        for reaction in message.reactions:
            if vote_from_emoji(row.mode, str(reaction.emoji)) is None or reaction.count <= (1 if reaction.me else 0):
                continue  # not a vote, or only our own reaction: nothing to read
            users, listed = await _everyone_with(self.ballot_box.bot.http, self.join_times.reads, reaction)
            complete = complete and listed
            for user, burst in users:
                if not self.ballot_box.is_bot(user.id, None) and not user.bot:
                    present.setdefault(user.id, []).append((str(reaction.emoji), burst))
        for voter in await self.store.withheld_voters(row.id):  # they used /forget-me: only new events count
            present.pop(int(voter.split(":")[1]), None)
        ref = await self.ballot_box.ref_for(message.id)
        if ref is not None:
            await self.join_times.look_up(ref, present)
        return present, complete


REACTION_PAGE = 100  # users per request: Discord's maximum for GET .../reactions/{emoji}
PAGE_SLACK = 10  # pages read beyond what the reaction's count asks for before a listing is given up on


class Reactor(NamedTuple):
    """Someone with a reaction, as its listing gives them."""

    id: int
    bot: bool


async def _everyone_with(http: discord.http.HTTPClient, reads: Pace, reaction: discord.Reaction) -> tuple[list[tuple[Reactor, bool]], bool]:
    """Everyone with this reaction now, normal and super (burst) alike (Discord lists super reactors
    only when asked for them, `type=1`), each (user, super): one person with both is listed twice, as
    they are two reactions; and whether the listing was read to its end."""
    normal, complete = await _paged(http, reads, reaction, discord.ReactionType.normal, reaction.normal_count)
    users = [(user, False) for user in normal]
    if reaction.burst_count or reaction.me_burst:
        burst, burst_complete = await _paged(http, reads, reaction, discord.ReactionType.burst, reaction.burst_count)
        users, complete = users + [(user, True) for user in burst], complete and burst_complete
    return users, complete


async def _paged(
    http: discord.http.HTTPClient, reads: Pace, reaction: discord.Reaction, kind: discord.ReactionType, count: int
) -> tuple[list[Reactor], bool]:
    """Every user of one reaction type, page by page, each page one request in its turn (bot/discord/pace.py).
    discord.py's users(limit=None) stops after the count the message had when fetched, so it misses people when the
    reaction changed since (our own added); this reads on until a short page. (Not through users() a page at a time:
    after a short page it asks once more, for an empty one, a wasted request per listing.) A server that ignores `after`
    (an outside Discord-compatible one) must not keep the loop going: a page that brings no new user ends it, and so
    does a bound on the pages read (issue 11, case 11). Returns the users and whether the listing ended with a short page
    (complete); an incomplete one must not be taken to mean that the others removed their reactions."""
    message, emoji = reaction.message, reaction.emoji
    emoji = emoji if isinstance(emoji, str) else f"{emoji.name}:{emoji.id}"
    users: dict[int, Reactor] = {}
    after = None
    for _ in range(count // REACTION_PAGE + PAGE_SLACK):
        async with reads.turn():
            raw = await http.get_reaction_users(message.channel.id, message.id, emoji, REACTION_PAGE, after=after, type=kind.value)
        page = [Reactor(int(user["id"]), bool(user.get("bot"))) for user in raw]
        new = [user for user in page if user.id not in users]
        users.update((user.id, user) for user in new)
        if len(page) < REACTION_PAGE:
            return list(users.values()), True
        if not new:
            break
        after = max(user.id for user in page)
    log.warning("reactions %s on message %s: the listing did not end; stopped after %d users", reaction.emoji, reaction.message.id, len(users))
    return list(users.values()), False
