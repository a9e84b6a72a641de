"""The ballot box: where a vote from Discord (a reaction or a button) is counted.

Votes are queued at once, in arrival order, and one writer applies them in batched transactions
(discord.py runs every event in a task of its own, so two events could otherwise reach the database out
of order: a reaction removed before its adding is stored). A vote is acknowledged only once committed.
Before a vote is queued the person's rate is checked (a reaction over it is held, not dropped: vote_rate.py); before it
is stored its message is mapped to its round (cached), and it must come from the round's own scope and from the owner of
a personal agent; with anti-brigading, one from a member who did not join long enough before the round began is stored
all the same and set aside by every count while the rule covers them (anti_brigade.py). When a vote brings a round to its
quorum, the session is woken to close it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import discord

from bot.conductor import Conductor
from bot.progress import plural
from bot.discord.anti_brigade import Count, JoinTimes, joined_by
from bot.discord.edge import fits_integer
from bot.discord.outage import OPERATORS_PROBLEMS, Outage, RetryLog
from bot.discord.reactions_seen import Left, ReactionsSeen, falling_back
from bot.discord.vote_rate import HeldReactions, VoteLimiter
from bot.discord.vote_queue import CLEARED, Barrier, Clear, PendingVote, VoteQueue, kept, voters
from bot.discord.round_refs import RoundRefs
from bot.discord.votes import ASPECTS_STYLE, RoundRef, origin_scope, resolve, vote_from_emoji, voter_id
from storage import DatabaseGone, RoundRow, StandingVote, VoteResult

log = logging.getLogger("crowdtune.votes")

VOTE_BATCH = 500


class BallotBox:
    """Votes from Discord, in arrival order, to the database.

    Why this class is long: intake, the single writer and the quorum check share one queue and one ordering rule (a
    vote is applied after every vote that arrived before it); split, the rule would be spread over several classes."""

    def __init__(
        self,
        bot: discord.Client,
        conductor: Conductor,
        limiter: VoteLimiter,
        join_times: JoinTimes,
        on_quorum: Callable[[int], None],
        recorded_in: Callable[[int, int], Awaitable[None]] | None,
        outage: Outage,
    ) -> None:
        self.bot = bot
        self.conductor = conductor
        self.store = conductor.store
        self.limiter = limiter
        self.held = HeldReactions(limiter)  # reactions over the person's rate, applied when it allows
        self.seen = ReactionsSeen()  # the vote reactions each person has on, for a removal to fall back to
        self.join_times = join_times
        self.on_quorum = on_quorum  # called with the session id when a vote brings its round to the quorum
        self.recorded_in = recorded_in  # waits until a round being posted in a channel is recorded (the publisher)
        self.on_database_gone: Callable[[DatabaseGone], None] = lambda problem: None  # set by the runner
        self.refs = RoundRefs(self.store)  # message id -> its live round
        self.remember, self.ref_for, self.cached_ref = self.refs.remember, self.refs.ref_for, self.refs.cached
        self.scope_settings_changed = self.refs.scope_settings_changed
        self._votes = VoteQueue()
        self._worker: asyncio.Task | None = None
        # A full disk (or the database's server gone) is the operator's: said as a round's close says it (RetryLog).
        self.retries = RetryLog(log, "storing votes", outage, then=(
            f"a reaction's vote is kept and tried again every {outage.retry_seconds:g} s and with the next vote, a button's voter asked to press again"
        ))
        self._refused: list[PendingVote | Clear] = []  # reaction events the database refused: tried first, in order
        self._arrived, self._writing = asyncio.Event(), []  # something queued; the batch being written
        self.watching: dict[int, set[int]] = {}  # message id -> users whose reactions changed during a reconciliation
        self.forgets_heard = 0  # the newest deletion of a person's data known (CrowdtuneBot.heard_forget): stamped on each vote

    # -- which round a message is (round_refs.py) and the end of a round ------------------------------

    def round_ended(self, row: RoundRow) -> None:
        """The round ended, however (closed, cancelled by a /stop or its post's deletion, deleted with its scope, or
        cancelled while posted): what is held for it goes. A vote on it from now is looked up, and refused, as before."""
        self._forget(self.refs.ended(row.id, row.message_ids))

    def others_ended(self, session_id: int, live: int | None = None) -> None:
        """The session's round is `live` (None: its runner ended): any other held ended unseen by it (cancelled while it
        waited to try again after an outage, or it stopped on an error), and goes as `round_ended`."""
        for round_id in self.refs.rounds_of(session_id) - {live}:
            self._forget(self.refs.ended(round_id))

    def _if_ended(self, message_id: int, ref: RoundRef | None) -> None:
        """A vote or a clear on an ended round's post (`ref`: just looked up): what `seen` took of it is not kept."""
        if self.refs.ended_round(message_id, ref):
            self.seen.forget([message_id])

    def _forget(self, message_ids: set[int]) -> None:
        self.held.forget(message_ids)
        self.seen.forget(message_ids)
        for message_id in message_ids:
            self.watching.pop(message_id, None)

    def held_for(self, message_ids) -> int:
        """How many entries this holds for these messages (their round, reactions seen or held, a re-read's watch)."""
        return sum(m in self.refs for m in message_ids) + self.held.waiting(message_ids) + self.seen.entries(message_ids) + sum(
            m in self.watching for m in message_ids
        )

    @staticmethod
    def may_vote(ref: RoundRef, user_id: int, origin: str | None = None) -> bool:
        # A vote counts only in the scope it was cast in (one server never votes in another's rounds),
        # and a personal agent learns only from its owner.
        if origin is not None and origin != ref.scope_id:
            return False
        return not ref.scope_id.startswith("user:") or ref.scope_id == voter_id(user_id)

    # -- intake ---------------------------------------------------------------------------------------

    def submit(
        self,
        message_id: int,
        user_id: int,
        value: float | str | None,
        retract: bool = False,
        *,
        from_reaction: bool = False,
        origin: str | None = None,
        joined_at: dt.datetime | None = None,
        limited: bool = False,
        round_id: int | None = None,
        channel_id: int | None = None,
        remaining: Left[tuple[str, ...]] | None = None,
        at: float | None = None, reread: bool = False,
    ) -> asyncio.Future:
        """Queue a vote; the future resolves to its VoteResult once committed ("too_fast" over the rate if `limited`: one a
        person just made). A `reread` cast (the reconciler's), or one that came before its person's deletion, is refused."""
        done = asyncio.get_running_loop().create_future()
        if not fits_integer(message_id, user_id, round_id):  # would fail the whole batch at the database
            done.set_result(VoteResult("unknown_round"))
            return done
        if limited and not self.limiter.allow(user_id):
            done.set_result(VoteResult("too_fast"))
            return done
        self._queue(PendingVote(message_id, user_id, value, retract, done, from_reaction, origin, joined_at, round_id, channel_id, remaining, at, reread, self.forgets_heard))
        return done

    def _queue(self, item: PendingVote | Clear | Barrier) -> None:
        self._votes.put_nowait(item)
        self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._apply_votes(), name="vote-writer")

    async def button_vote(self, interaction: discord.Interaction, round_id: int, value: float | str | dict | None, retract: bool) -> VoteResult:
        # value: a button's rating or choice, or an aspect's select menu's {aspect: rating}
        user = interaction.user
        joined_at = getattr(user, "joined_at", None)
        if interaction.guild_id is not None and joined_at is not None:
            self.join_times.remember(interaction.guild_id, user.id, joined_at)  # read again when the round is counted
        return await self.submit(
            interaction.message.id, user.id, value, retract, origin=origin_scope(interaction.guild_id, user.id),
            joined_at=joined_at, limited=True, round_id=round_id,
        )

    def is_bot(self, user_id: int, member: discord.Member | None) -> bool:
        if self.bot.user is not None and user_id == self.bot.user.id:
            return True
        if member is not None:
            return member.bot
        user = self.bot.get_user(user_id)
        return user is not None and user.bot

    def on_reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        """Queue a reaction vote at once, with no await before it, so events keep their order."""
        if self.is_bot(payload.user_id, payload.member):
            return
        ref = self.refs.cached(payload.message_id)
        if ref is not None and ref.style != "reactions":
            return  # a buttons round: reactions there are just reactions
        emoji = str(payload.emoji)
        if vote_from_emoji("ab", emoji) is None and vote_from_emoji("rating", emoji) is None:
            return
        watchers = self.watching.get(payload.message_id)
        if watchers is not None:
            watchers.add(payload.user_id)
        joined_at = payload.member.joined_at if payload.member is not None else None
        if payload.guild_id is not None and joined_at is not None:
            self.join_times.remember(payload.guild_id, payload.user_id, joined_at)
        origin = origin_scope(payload.guild_id, payload.user_id)
        self.seen.changed(payload.message_id, payload.user_id, emoji, added, payload.burst)

        def apply(emoji: str, retract: bool) -> None:  # a held one when applied: the person's later ones are held too
            remaining = self.seen.left(payload.message_id, payload.user_id) if retract else None
            self.submit(
                payload.message_id, payload.user_id, emoji, retract, from_reaction=True, origin=origin, joined_at=joined_at,
                channel_id=payload.channel_id, remaining=remaining,
            )

        # Over the rate a reaction is held, not dropped, and so is every later one of the person's on the
        # message until the held ones are applied: their votes keep their order.
        if self.held.holds(payload.message_id, payload.user_id) or not self.limiter.allow(payload.user_id):
            self.held.hold(payload.message_id, payload.user_id, emoji, added, apply, payload.burst)
        else:
            apply(emoji, not added)

    def on_reactions_cleared(self, message_id: int, emoji: str | None = None) -> None:
        """MESSAGE_REACTION_REMOVE_ALL (emoji None) or MESSAGE_REACTION_REMOVE_EMOJI: withdraw exactly the
        votes those reactions stood for, at once. Queued with no await before it, like a reaction."""
        ref = self.refs.cached(message_id)
        if ref is not None and ref.style != "reactions":
            return
        if emoji is not None and vote_from_emoji("ab", emoji) is None and vote_from_emoji("rating", emoji) is None:
            return
        watchers = self.watching.get(message_id)
        if watchers is not None:
            watchers.add(CLEARED)
        self.held.cleared(message_id, emoji)
        self._queue(Clear(message_id, emoji, asyncio.get_running_loop().create_future(), self.seen.cleared(message_id, emoji)))

    async def count(
        self, row: RoundRow, before_asking: Callable[[], Awaitable[None]] | None = None, votes: list[StandingVote] | None = None,
    ) -> Count:
        """The round's standing votes as every count (a quorum, the close, /status, /stop) takes them, read once: with
        a membership rule, once every vote queued so far is in, and those whose voters, however they voted (reaction,
        button, menu), the rule as it is now refuses set aside (JoinTimes.count; `before_asking` is awaited before
        Discord is first asked). Set aside, not withdrawn: they stay stored, so a moderator who raises member_days
        while the round is open and lowers it again before the close loses nobody's vote (a withdrawal could not be
        undone: a button press is not there to read again, as a reaction is). The rule is the round's, its post recorded or not.
        `votes`: the standing votes as a change's own transaction read them (a /stop's cancelled round), counted instead."""
        ref = await (self.ref_for(int(row.message_ids[0])) if row.message_ids else self.refs.of(row, await self.store.session(row.session_id)))
        rule = ref is not None and joined_by(ref) is not None
        if votes is None and rule:
            await self.settle_votes()
        if votes is None:
            votes = await self.store.standing_votes(row.id)
        return await self.join_times.count(ref, votes, before_asking) if rule else Count(votes)

    # -- the writer -----------------------------------------------------------------------------------

    async def settle_votes(self) -> None:
        """Wait until every vote queued so far is committed (an exception if the database failed)."""
        done = asyncio.get_running_loop().create_future()
        self._queue(Barrier(done))
        await done

    async def drain(self, timeout: float = 5.0) -> None:
        """Let queued votes, and the reactions held over the rate, reach the database (on shutdown)."""
        self.held.flush()
        if self._worker is not None and not self._worker.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._votes.join(), timeout)

    async def stop(self) -> None:
        await self.drain()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    def waiting(self, message_ids: list[str]) -> int:
        """How many people's reaction votes on these messages wait while the database refuses them (OPERATORS_PROBLEMS):
        kept, being tried, or queued behind them; 0 while it works."""
        if self.retries.database_problem is None:
            return 0
        return len(voters(message_ids, self._refused, self._writing) | self._votes.reaction_voters(message_ids))

    async def _apply_votes(self) -> None:
        while True:
            if self._refused and self._votes.empty():  # kept votes: tried again after the pause, or with the next vote
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), self.retries.outage.retry_seconds)
            taken = [] if self._refused and self._votes.empty() else [await self._votes.get()]
            while not self._votes.empty() and len(taken) < VOTE_BATCH:
                taken.append(self._votes.get_nowait())
            batch = self._writing = [*self._refused, *taken]
            self._refused = []
            try:
                await self._apply_batch(batch)
                self.retries.worked()
            except Exception as problem:  # the database failed: nobody is told their vote counted
                self._failed(batch, problem)
            finally:  # (_writing stays: waiting() reads it only while the database refuses, and then it is kept)
                for _ in taken:
                    self._votes.task_done()

    def _failed(self, batch: list[PendingVote | Clear | Barrier], problem: Exception) -> None:
        """A batch the database refused. A reaction event (nobody waits for its answer) is kept (`kept`) and tried again
        before the votes queued after it: a full disk or a held lock loses no vote (the close's re-read would keep a vote
        whose reaction is still on over a newer one refused). A button's voter and a waiter are told it failed."""
        if isinstance(problem, DatabaseGone):
            self.on_database_gone(problem)
        elif isinstance(problem, OPERATORS_PROBLEMS):
            self._refused = kept(batch)
            self.retries.failed(problem)
        else:
            log.exception("could not store %s", plural(len(batch), "vote", "votes"))
        keeping = {id(item) for item in self._refused}
        for item in batch:
            if id(item) not in keeping and not item.done.done():
                item.done.set_exception(problem)

    async def _apply_batch(self, batch: list[PendingVote | Clear | Barrier]) -> None:
        ops, accepted, barriers = [], [], []
        touched: dict[int, RoundRef] = {}
        for item in batch:
            if isinstance(item, Barrier):
                barriers.append(item)
                continue
            if isinstance(item, Clear):
                # What a clear withdraws depends on the votes before it: those are written first.
                await self._write(ops, accepted, touched)
                ops, accepted = [], []
                await self._clear(item)
                continue
            ref = await self.ref_for(item.message_id)
            if ref is None and item.channel_id is not None and self.recorded_in is not None:
                await self.recorded_in(item.channel_id, item.message_id)  # a round's post not recorded yet
                ref = await self.ref_for(item.message_id)
            self._if_ended(item.message_id, ref)
            if ref is None and item.round_id is not None:
                ref = await self.refs.unrecorded(item.round_id, item.message_id)
            value = item.value
            if ref is not None and item.from_reaction:
                value = vote_from_emoji(ref.mode, str(item.value)) if ref.style == "reactions" else None
            if ref is None or (item.from_reaction and value is None) or (isinstance(value, dict) != (ref.style == ASPECTS_STYLE) and not item.retract):
                # An aspect's rating counts only in a three-aspect round, and a plain vote only elsewhere.
                resolve(item.done, VoteResult("unknown_round"))
            elif not self.may_vote(ref, item.user_id, item.origin):
                resolve(item.done, VoteResult("blocked"))
            else:
                # A newcomer's vote is stored like any other (with the join date that judges it) and set aside by the
                # count while the rule covers them (BallotBox.count): a lowered rule counts it at once. Looked up
                # here, the join date is cached for stored_with_vote.
                aside = not item.retract and not await self.join_times.may_vote(ref, item.user_id, item.joined_at)
                op = replace(
                    self.conductor.vote_op(ref.round_id, ref.mode, voter_id(item.user_id), value, item.retract, ref.scope_id),
                    at=item.came if item.at is None else item.at, joined_at=self.join_times.stored_with_vote(ref, item.user_id, item.joined_at), reread=item.reread, forgets_seen=item.forgets_seen,
                )
                left = self.seen.sure(item.message_id, item.remaining)  # the round found: its post known as the bot's
                ops.append(op if left is None else falling_back(op, ref.mode, left))
                accepted.append((item, ref, aside))
        await self._write(ops, accepted, touched)
        for barrier in barriers:
            resolve(barrier.done, None)
        for ref in touched.values():
            if await self._quorum(ref):
                self.on_quorum(ref.session_id)

    async def _write(self, ops: list, accepted: list[tuple[PendingVote, RoundRef, bool]], touched: dict[int, RoundRef]) -> None:
        """Store the votes; each `accepted` (vote, its round, whether the rule sets it aside now) is told its result: a
        stored vote set aside is "set_aside" (and, counting toward no quorum, does not wake its session)."""
        results = await self.conductor.apply_votes(ops) if ops else []
        for (item, ref, aside), result in zip(accepted, results):
            if aside and result.counted:
                result = VoteResult("set_aside", member_days=ref.member_days)
            resolve(item.done, result)
            if result.counted:
                touched[ref.session_id] = ref

    async def _clear(self, item: Clear) -> None:
        ref = await self.ref_for(item.message_id)
        self._if_ended(item.message_id, ref)
        if ref is not None and ref.style == "reactions":
            value = None if item.emoji is None else vote_from_emoji(ref.mode, item.emoji)
            ops = [
                self.conductor.vote_op(ref.round_id, ref.mode, ballot.voter, standing, retract=True, scope_id=ref.scope_id)
                for ballot in await self.store.ballots(ref.round_id)
                if (standing := ballot.choice if ref.mode == "ab" else ballot.rating) is not None
                and (item.emoji is None or standing == value)
            ]
            left = self.seen.sure(item.message_id, item.remaining)
            if item.emoji is not None and left is not None:  # one emoji gone: the others on still count
                by_voter = {voter_id(user_id): on for user_id, on in left.items()}
                ops = [falling_back(op, ref.mode, by_voter.get(op.voter, ())) for op in ops]
            if ops:
                await self.conductor.apply_votes(ops)
        resolve(item.done, None)

    async def _quorum(self, ref: RoundRef) -> bool:
        session = await self.store.session(ref.session_id)
        quorum = session.spec.get("quorum")
        return quorum is not None and await self.store.ballot_count(ref.round_id) >= quorum
