"""Rounds in Discord channels and DMs: post, collect votes, close on timer or quorum, go on.

One asyncio task per session, so sessions in many channels never wait on each other. Every
decision goes through the conductor (engine + storage); this module only talks to Discord.

What keeps votes safe across crashes and lost events (docs/RELIABILITY.md): a vote is acknowledged
only once committed; the reactions on a round's message are the truth, re-read when a round resumes
and again just before it closes; a round's post is adopted, not repeated, after a crash between
posting and recording it; a close asked for by hand is stored before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import io
import logging
import time
from dataclasses import dataclass

import discord

from bot.conductor import Conductor, OpenRound
from bot.drawing import Drawer
from core.engine import SessionSpec
from core.instruments import instrument_name
from core.midi import track_to_midi
from storage import RoundRow, SessionRow, VoteResult

log = logging.getLogger("crowdtune.rounds")

RATING_EMOJI = tuple(f"{n}\ufe0f\u20e3" for n in range(1, 10)) + ("\U0001f51f",)  # 1️⃣ .. 9️⃣, 🔟
AB_EMOJI = {"\U0001f170\ufe0f": "a", "\U0001f171\ufe0f": "b", "\U0001f44d": "both", "\U0001f44e": "neither"}  # 🅰️ 🅱️ 👍 👎
VOTE_STYLES = ("reactions", "buttons")
RETRY_AFTER_ERROR = 5.0
VOTE_BATCH = 500
RECONCILE_PASSES = 4  # re-read reactions while people keep changing them during the read, up to this
ADOPT_WINDOW = 300.0  # a first round's lost post is looked for this far (seconds) before it was planned


def _bare(emoji: str) -> str:
    # Clients send keycaps and letters with or without the variation selector.
    return emoji.replace("\ufe0f", "")


_RATING_BY_EMOJI = {_bare(e): float(i + 1) for i, e in enumerate(RATING_EMOJI)}
_CHOICE_BY_EMOJI = {_bare(e): c for e, c in AB_EMOJI.items()}


def vote_from_emoji(mode: str, emoji: str) -> float | str | None:
    table = _CHOICE_BY_EMOJI if mode == "ab" else _RATING_BY_EMOJI
    return table.get(_bare(emoji))


def emoji_for_mode(mode: str) -> tuple[str, ...]:
    return tuple(AB_EMOJI) if mode == "ab" else RATING_EMOJI


@dataclass(frozen=True)
class _PendingVote:
    message_id: int
    user_id: int
    value: float | str | None  # a rating or a choice; for a reaction its emoji, mapped once the round is known
    retract: bool
    done: asyncio.Future
    from_reaction: bool = False
    origin: str | None = None  # the scope it was cast in (see origin_scope); None: read back from the round's own message
    joined_at: dt.datetime | None = None  # when the voter joined the server, when the event says
    round_id: int | None = None  # the round a button names, for a post not recorded yet


@dataclass(frozen=True)
class _Barrier:
    """Resolved once every vote queued before it is committed."""

    done: asyncio.Future


@dataclass(frozen=True)
class RoundRef:
    """What a vote on a message needs to know, cached so votes do not wait on a lookup."""

    round_id: int
    session_id: int
    mode: str
    scope_id: str
    style: str
    opened_at: float
    anti_brigade: bool


def voter_id(user_id: int) -> str:
    return f"user:{user_id}"


def origin_scope(guild_id: int | None, user_id: int) -> str:
    """Whose agent an action belongs to: the server's, or in a DM with the bot the user's own."""
    return f"guild:{guild_id}" if guild_id is not None else voter_id(user_id)


def describe_votes(mode: str, ballots) -> str:
    if mode == "ab":
        counts = {c: sum(1 for b in ballots if b.choice == c) for c in ("a", "b", "both", "neither")}
        return ", ".join(f"{k.upper() if len(k) == 1 else k}: {v}" for k, v in counts.items())
    # Counted, not listed: a thousand ratings would not fit in a Discord message (2,000 characters).
    counts = collections.Counter(b.rating for b in ballots)
    return ", ".join(f"{n}× {r:g}" if n > 1 else f"{r:g}" for r, n in sorted(counts.items())) or "none yet"


class VoteLimiter:
    """A token bucket per person over vote changes: `burst` at once, then one per `refill_seconds`."""

    def __init__(self, burst: int, refill_seconds: float, clock=time.monotonic) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # user id -> (tokens left, when counted)

    def allow(self, user_id: int) -> bool:
        now = self.clock()
        tokens, counted_at = self._buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - counted_at) / self.refill_seconds)
        allowed = tokens >= 1
        self._buckets[user_id] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > 100_000:
            # A bucket that has refilled is the same as none: forget those.
            full_after = self.burst * self.refill_seconds
            self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < full_after}
        return allowed


class RoundRunner:
    def __init__(self, bot: discord.Client, conductor: Conductor, renderer, drawer: Drawer, limiter: VoteLimiter | None = None) -> None:
        self.bot = bot
        self.conductor = conductor
        self.store = conductor.store
        self.renderer = renderer
        self.drawer = drawer
        self.limiter = limiter or VoteLimiter(burst=6, refill_seconds=5.0)
        self._started_at = time.time()
        self._tasks: dict[int, asyncio.Task] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._refs: dict[int, RoundRef] = {}  # message id -> round
        self._background: set[asyncio.Task] = set()
        self._votes: asyncio.Queue[_PendingVote | _Barrier] = asyncio.Queue()
        self._deleted: collections.deque[int] = collections.deque(maxlen=1000)  # recent deletions of unknown messages
        self._vote_worker: asyncio.Task | None = None
        self._watching: dict[int, set[int]] = {}  # message id -> users whose reactions changed during a reconciliation
        self._post_tried: set[int] = set()  # rounds whose post may have reached Discord without being recorded
        self._joined: dict[tuple[int, int], dt.datetime | None] = {}  # (guild, user) -> joined_at, for anti-brigading

    # -- sessions -----------------------------------------------------------------------------

    def ensure_running(self, session_id: int) -> None:
        task = self._tasks.get(session_id)
        if task is None or task.done():
            self._wake[session_id] = asyncio.Event()
            self._tasks[session_id] = asyncio.create_task(self._run(session_id), name=f"session-{session_id}")

    async def resume_all(self) -> int:
        """On start: every active session runs again; open rounds keep their closes-at."""
        sessions = await self.store.active_sessions()
        for session in sessions:
            if session.channel_id is not None and session.channel_id.isdigit():
                self.ensure_running(session.id)
        return len(sessions)

    def wake(self, session_id: int) -> None:
        event = self._wake.get(session_id)
        if event is not None:
            event.set()

    async def close_now(self, session_id: int) -> str:
        """Close the session's open round early: "closing", "posting" (its message is not out yet: there
        is nothing to vote on) or "none". The new close time is stored first, so a crash right after
        the acknowledgement still closes the round at the next start."""
        row = await self.store.open_round_of(session_id)
        if row is None:
            return "none"
        if not row.message_ids:
            return "posting"
        await self.store.set_closes_at(row.id, time.time())
        self.wake(session_id)
        return "closing"

    async def shutdown(self) -> None:
        await self.drain_votes()
        tasks = [*self._tasks.values(), *self._background, *([self._vote_worker] if self._vote_worker else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run(self, session_id: int) -> None:
        while True:
            try:
                finished = await self._one_round(session_id)
            except asyncio.CancelledError:
                raise
            except (discord.Forbidden, discord.NotFound) as problem:
                # The channel is gone or closed to us: stop cleanly rather than retry forever.
                log.warning("session %s stopped: %s", session_id, problem)
                await self.store.end_session(session_id, "stopped", actor="crowdtune")
                await self._say_stopped(session_id, problem)
                return
            except Exception:
                log.exception("session %s: round failed; retrying", session_id)
                await asyncio.sleep(RETRY_AFTER_ERROR)
                continue
            if finished:
                return

    async def _say_stopped(self, session_id: int, problem: discord.HTTPException) -> None:
        """Tell the channel why its session stopped, when Discord still lets us write there."""
        session = await self.store.session(session_id)
        channel = self.bot.get_partial_messageable(int(session.channel_id))
        with contextlib.suppress(discord.HTTPException):
            await channel.send(
                f"I stopped this session: Discord refused me here ({problem.text or problem.status}). I need View Channel, "
                "Send Messages, Attach Files, Add Reactions and Read Message History; then start again with `/compose`. "
                "What the agent learned is kept."
            )

    async def _one_round(self, session_id: int) -> bool:
        """Run one round to its close; True when the session has ended."""
        session = await self.store.session(session_id)
        open_round = await self.conductor.open_round(session_id)
        if session is None or open_round is None:
            return True
        channel = self.bot.get_partial_messageable(int(session.channel_id))
        style = session.options.get("vote_style", "reactions")
        row = open_round.row
        resumed = bool(row.message_ids)
        if not resumed:
            row, resumed = await self._publish(channel, session, open_round, style)
        await self._remember(row, session)
        if resumed and style == "reactions":  # people may have voted while we were away
            await self._reconcile(channel, row, add_missing=True)
        await self._wait_for_close(session_id, open_round)
        if style == "reactions":
            await self._reconcile(channel, row)  # a reaction whose event was lost still counts
        await self.settle_votes()  # every vote that arrived before the close counts
        outcome = await self.conductor.close(open_round.id, actor="crowdtune")
        self._refs = {message_id: ref for message_id, ref in self._refs.items() if ref.round_id != row.id}
        refreshed = await self.store.session(session_id)
        number = open_round.plan.index + 1
        if outcome is not None:
            ballots_text = describe_votes(open_round.spec.mode, await self.store.ballots(open_round.id))
            reward = "no reward" if outcome.reward is None else f"reward {outcome.reward:.1f}/10"
            await channel.send(
                f"**Round {number} closed**: {outcome.voters} voted ({ballots_text}), {reward}. "
                f"{outcome.summary[0].upper()}{outcome.summary[1:]}."
            )
        elif refreshed.status == "active":  # cancelled, not stopped: its message was deleted
            await channel.send(f"**Round {number} cancelled**: its message was deleted, so nothing was learned from it. The next round is coming.")
        if refreshed.status == "finished":
            await channel.send(f"Session finished after {refreshed.rounds_done} rounds. Use `/top` to hear the best.")
            return True
        return refreshed.status != "active"

    async def _wait_for_close(self, session_id: int, open_round: OpenRound) -> None:
        event = self._wake[session_id]
        while True:
            event.clear()  # before the checks, so a wake during them is not lost
            row = await self.store.round(open_round.id)
            if row is None or row.status != "open" or await self.conductor.quorum_reached(open_round):
                return
            remaining = (row.closes_at or time.time()) - time.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(event.wait(), timeout=remaining)
            except TimeoutError:
                return

    # -- posting --------------------------------------------------------------------------------

    async def _publish(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> tuple[RoundRow, bool]:
        """Post the round, or adopt its post made before a crash, and record the message. Returns
        the round and whether its post was adopted."""
        row, seconds = open_round.row, open_round.spec.round_seconds
        message = await self._find_lost_post(channel, session, open_round, style)
        adopted = message is not None
        if adopted:
            closes_at = message.created_at.timestamp() + seconds
        else:
            self._post_tried.add(row.id)
            message = await self._post(channel, session, open_round, style)
            closes_at = time.time() + seconds
        await self.store.set_round_messages(row.id, [str(message.id)], closes_at)
        self._post_tried.discard(row.id)
        return await self.store.round(row.id), adopted

    async def _post(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> discord.Message:
        from bot.views import vote_view

        plan, spec = open_round.plan, open_round.spec
        number = plan.index + 1
        files: list[discord.File] = []
        labels = ["a", "b"] if len(plan.proposals) > 1 else [""]
        for label, proposal in zip(labels, plan.proposals):
            stem = f"round-{number}{'-' + label if label else ''}"
            audio, roll = await asyncio.gather(
                self.renderer.render_async(track_to_midi(proposal.track), "ogg"),
                self.drawer.piano_roll(proposal.track, f"round {number} {label.upper()}".strip()),
            )
            files += [discord.File(io.BytesIO(audio), f"{stem}.ogg"), discord.File(io.BytesIO(roll), f"{stem}.png")]
        content = f"{self._round_heading(spec, plan, number, style)} Voting {self._deadline(spec, time.time() + spec.round_seconds)}."
        view = vote_view(open_round.id, spec.mode) if style == "buttons" else None
        # Discord returns the message already made with this nonce rather than a second one (for a few
        # minutes), so a retried request after a lost response does not post the round twice.
        nonce = f"ct-round-{open_round.id}"
        if view:
            message = await channel.send(content, files=files, view=view, nonce=nonce)
        else:
            message = await channel.send(content, files=files, nonce=nonce)
        if style == "reactions":
            self._spawn(self._add_reactions(message, spec.mode))
        return message

    @staticmethod
    def _round_heading(spec: SessionSpec, plan, number: int, style: str) -> str:
        """The start of a round's post: the same every time for a round, so a lost post can be recognised."""
        total = f" of {spec.rounds}" if spec.rounds else ""
        if spec.mode == "ab":
            edits = f"A {plan.proposals[0].description}; B {plan.proposals[1].description}"
            how = "Vote 🅰️, 🅱️, 👍 (both) or 👎 (neither)" if style == "reactions" else "Vote A, B, both or neither"
        else:
            edits = plan.proposals[0].description[0].upper() + plan.proposals[0].description[1:]
            how = "Rate it 1-10 with a reaction" if style == "reactions" else "Rate it 1-10 with a button"
        return f"**Round {number}{total}** ({instrument_name(spec.instrument)}): {edits}. {how}; your latest vote counts and you can withdraw it."

    @staticmethod
    def _deadline(spec: SessionSpec, closes_at: float) -> str:
        return f"closes <t:{int(closes_at)}:R>" + (f" or when {spec.quorum} have voted" if spec.quorum else "")

    async def _find_lost_post(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> discord.Message | None:
        """The round's post when an earlier attempt (before a crash, or a request whose answer was lost)
        may have made it: a message of ours after the previous round's, starting with this round's heading."""
        row = open_round.row
        if row.id not in self._post_tried and row.opened_at >= self._started_at:
            return None
        earlier = [r for r in await self.store.rounds_of(session.id) if r.index < row.index and r.message_ids]
        if earlier:
            after = discord.Object(int(earlier[-1].message_ids[-1]))
        else:
            since = dt.datetime.fromtimestamp(row.opened_at - ADOPT_WINDOW, dt.timezone.utc)
            after = discord.Object(discord.utils.time_snowflake(since))
        heading = self._round_heading(open_round.spec, open_round.plan, open_round.plan.index + 1, style)
        async for message in channel.history(limit=100, after=after):
            if message.author.id == self.bot.user.id and message.attachments and message.content.startswith(heading):
                log.info("round %s: adopting message %s posted before a restart", row.id, message.id)
                return message
        return None

    async def _add_reactions(self, message: discord.Message, mode: str, only: tuple[str, ...] | None = None) -> None:
        try:
            for emoji in only if only is not None else emoji_for_mode(mode):
                await message.add_reaction(emoji)
        except discord.HTTPException as problem:
            log.warning("could not add vote reactions to %s: %s", message.id, problem)

    # -- votes ------------------------------------------------------------------------------------

    async def _ref(self, row: RoundRow, session: SessionRow) -> RoundRef:
        settings = await self.store.scope_settings(session.scope_id)
        style = session.options.get("vote_style", "reactions")
        return RoundRef(row.id, session.id, row.mode, session.scope_id, style, row.opened_at, bool(settings.get("anti_brigade")))

    async def _remember(self, row: RoundRow, session: SessionRow) -> None:
        ref = await self._ref(row, session)
        for message_id in row.message_ids:
            self._refs[int(message_id)] = ref
            if int(message_id) in self._deleted:  # deleted before we had stored which round it was
                self._spawn(self.on_message_deleted(int(message_id)))

    def scope_settings_changed(self, scope_id: str) -> None:
        """Forget cached rounds of a scope, so votes see its new settings (anti-brigading)."""
        self._refs = {message_id: ref for message_id, ref in self._refs.items() if ref.scope_id != scope_id}

    async def ref_for(self, message_id: int) -> RoundRef | None:
        ref = self._refs.get(message_id)
        if ref is None:
            row = await self.store.round_for_message(str(message_id))
            if row is None:
                return None
            ref = await self._ref(row, await self.store.session(row.session_id))
            self._refs[message_id] = ref
        return ref

    async def _unrecorded_ref(self, round_id: int, message_id: int) -> RoundRef | None:
        """The round a button names when its post is out but was not recorded when the vote was looked
        up (just posted, or posted before a crash and not adopted yet). A round whose recorded post is
        another message does not take votes from this one."""
        row = await self.store.round(round_id)
        if row is None or (row.message_ids and str(message_id) not in row.message_ids):
            return None
        return await self._ref(row, await self.store.session(row.session_id))

    def may_vote(self, ref: RoundRef, user_id: int, origin: str | None = None) -> bool:
        # A vote counts only in the scope it was cast in (one server never votes in another's rounds),
        # and a personal agent learns only from its owner.
        if origin is not None and origin != ref.scope_id:
            return False
        return not ref.scope_id.startswith("user:") or ref.scope_id == voter_id(user_id)

    @staticmethod
    def _newcomer(ref: RoundRef, item: _PendingVote) -> bool:
        # Anti-brigading: accounts that joined the server after the round began do not vote in it.
        joined = item.joined_at
        return ref.anti_brigade and not item.retract and joined is not None and joined.timestamp() > ref.opened_at

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
    ) -> asyncio.Future:
        """Queue a vote; the future resolves to its VoteResult once it is committed.

        discord.py runs every event in a task of its own, so two events could reach the database
        out of order (a reaction removed before its adding is stored). One worker applies votes
        strictly in arrival order, and a burst of them in one transaction. A `limited` vote (one a
        person just made) is refused as "too_fast" over the person's rate."""
        done = asyncio.get_running_loop().create_future()
        if limited and not self.limiter.allow(user_id):
            done.set_result(VoteResult("too_fast"))
            return done
        self._queue(_PendingVote(message_id, user_id, value, retract, done, from_reaction, origin, joined_at, round_id))
        return done

    def _queue(self, item: _PendingVote | _Barrier) -> None:
        self._votes.put_nowait(item)
        if self._vote_worker is None or self._vote_worker.done():
            self._vote_worker = asyncio.create_task(self._apply_votes(), name="vote-writer")

    async def button_vote(self, interaction: discord.Interaction, round_id: int, value: float | str | None, retract: bool) -> VoteResult:
        user = interaction.user
        return await self.submit(
            interaction.message.id, user.id, value, retract, origin=origin_scope(interaction.guild_id, user.id),
            joined_at=getattr(user, "joined_at", None), limited=True, round_id=round_id,
        )

    async def settle_votes(self) -> None:
        """Wait until every vote queued so far is committed (an exception if the database failed)."""
        done = asyncio.get_running_loop().create_future()
        self._queue(_Barrier(done))
        await done

    async def _apply_votes(self) -> None:
        while True:
            batch = [await self._votes.get()]
            while not self._votes.empty() and len(batch) < VOTE_BATCH:
                batch.append(self._votes.get_nowait())
            try:
                await self._apply_batch(batch)
            except Exception as problem:  # the database failed: nobody is told their vote counted
                log.exception("could not store %d vote(s)", len(batch))
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(problem)
            finally:
                for _ in batch:
                    self._votes.task_done()

    async def _apply_batch(self, batch: list[_PendingVote | _Barrier]) -> None:
        ops, accepted, barriers = [], [], []
        for item in batch:
            if isinstance(item, _Barrier):
                barriers.append(item)
                continue
            ref = await self.ref_for(item.message_id)
            if ref is None and item.round_id is not None:
                ref = await self._unrecorded_ref(item.round_id, item.message_id)
            value = item.value
            if ref is not None and item.from_reaction:
                value = vote_from_emoji(ref.mode, str(item.value)) if ref.style == "reactions" else None
            if ref is None or (item.from_reaction and value is None):
                item.done.set_result(VoteResult("unknown_round"))
            elif not self.may_vote(ref, item.user_id, item.origin):
                item.done.set_result(VoteResult("blocked"))
            elif self._newcomer(ref, item):
                item.done.set_result(VoteResult("newcomer"))
            else:
                ops.append(self.conductor.vote_op(ref.round_id, ref.mode, voter_id(item.user_id), value, item.retract))
                accepted.append((item, ref))
        results = await self.conductor.apply_votes(ops) if ops else []
        touched: dict[int, RoundRef] = {}
        for (item, ref), result in zip(accepted, results):
            item.done.set_result(result)
            if result.counted:
                touched[ref.session_id] = ref
        for barrier in barriers:
            barrier.done.set_result(None)
        for ref in touched.values():
            if await self._quorum(ref):
                self.wake(ref.session_id)

    async def drain_votes(self, timeout: float = 5.0) -> None:
        """Let queued votes reach the database (on shutdown)."""
        if self._vote_worker is not None and not self._vote_worker.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._votes.join(), timeout)

    async def _quorum(self, ref: RoundRef) -> bool:
        session = await self.store.session(ref.session_id)
        quorum = session.spec.get("quorum")
        return quorum is not None and await self.store.ballot_count(ref.round_id) >= quorum

    def _is_bot(self, user_id: int, member: discord.Member | None) -> bool:
        if self.bot.user is not None and user_id == self.bot.user.id:
            return True
        if member is not None:
            return member.bot
        user = self.bot.get_user(user_id)
        return user is not None and user.bot

    def on_reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        """Queue a reaction vote at once, with no await before it, so events keep their order."""
        if self._is_bot(payload.user_id, payload.member):
            return
        ref = self._refs.get(payload.message_id)
        if ref is not None and ref.style != "reactions":
            return  # a buttons round: reactions there are just reactions
        emoji = str(payload.emoji)
        if vote_from_emoji("ab", emoji) is None and vote_from_emoji("rating", emoji) is None:
            return
        watchers = self._watching.get(payload.message_id)
        if watchers is not None:
            watchers.add(payload.user_id)
        joined_at = payload.member.joined_at if payload.member is not None else None
        if payload.guild_id is not None and joined_at is not None:
            self._remember_joined(payload.guild_id, payload.user_id, joined_at)
        # Over the rate limit a reaction is not applied now; the one left on the message counts at the close.
        self.submit(
            payload.message_id, payload.user_id, emoji, retract=not added, from_reaction=True,
            origin=origin_scope(payload.guild_id, payload.user_id), joined_at=joined_at, limited=True,
        )

    async def on_message_deleted(self, message_id: int) -> None:
        ref = self._refs.get(message_id) or await self.ref_for(message_id)
        if ref is None:
            self._deleted.append(message_id)
            return
        if await self.store.cancel_round(ref.round_id, actor="moderator", reason="round message deleted"):
            self.wake(ref.session_id)

    # -- reconciliation: the reactions on the message are the truth -------------------------------

    async def _reconcile(self, channel, row: RoundRow, add_missing: bool = False) -> None:
        """Make the round's stored votes match the reactions on its message: counts reactions made
        while the bot was away or whose events were lost, drops ones removed meanwhile.

        Reactions keep changing while they are read. Voters with an event during the read are left to
        their events and read again in another pass; everyone else gets the diff, queued behind
        every event received so far."""
        message_id = int(row.message_ids[0])
        watchers = self._watching.setdefault(message_id, set())
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
                await self.settle_votes()
                ballots = await self.store.ballots(row.id)
                # No await from here to the submits: a reaction event now would be missed by both.
                standing = {b.voter: (b.choice if row.mode == "ab" else b.rating) for b in ballots}
                pending = [
                    self.submit(message_id, user_id, values[-1])
                    for user_id, values in present.items()
                    if user_id not in watchers and standing.get(voter_id(user_id)) not in values
                ]
                pending += [
                    self.submit(message_id, int(voter.split(":")[1]), value, retract=True)
                    for voter, value in standing.items()
                    if int(voter.split(":")[1]) not in present and int(voter.split(":")[1]) not in watchers
                ]
                await asyncio.gather(*pending)
                if not watchers:
                    break
        finally:
            self._watching.pop(message_id, None)
        if add_missing:
            mine = {_bare(str(r.emoji)) for r in message.reactions if r.me}
            missing = tuple(e for e in emoji_for_mode(row.mode) if _bare(e) not in mine)
            if missing:
                self._spawn(self._add_reactions(message, row.mode, only=missing))

    async def _reactions_by_user(self, message: discord.Message, row: RoundRow) -> dict[int, list[float | str]]:
        """Each person's vote reactions on the message (with anti-brigading, only members who joined in time)."""
        present: dict[int, list[float | str]] = {}
        for reaction in message.reactions:
            value = vote_from_emoji(row.mode, str(reaction.emoji))
            if value is None or reaction.count <= (1 if reaction.me else 0):
                continue  # not a vote, or only our own reaction: nothing to read
            for user in await _everyone_with(reaction):
                if not self._is_bot(user.id, None) and not user.bot:
                    present.setdefault(user.id, []).append(value)
        ref = await self.ref_for(message.id)
        if ref is not None and ref.anti_brigade and ref.scope_id.startswith("guild:"):
            guild_id = int(ref.scope_id.split(":")[1])
            for user_id in list(present):
                joined = await self._joined_at(guild_id, user_id)
                if joined is None or joined.timestamp() > ref.opened_at:
                    del present[user_id]  # a newcomer, or no longer a member
        return present

    def _remember_joined(self, guild_id: int, user_id: int, joined_at: dt.datetime) -> None:
        if len(self._joined) > 100_000:
            self._joined.clear()
        self._joined[(guild_id, user_id)] = joined_at

    async def _joined_at(self, guild_id: int, user_id: int) -> dt.datetime | None:
        if (guild_id, user_id) not in self._joined:
            guild = self.bot.get_guild(guild_id)
            try:
                member = await guild.fetch_member(user_id) if guild is not None else None
            except discord.NotFound:
                member = None
            self._joined[(guild_id, user_id)] = member.joined_at if member is not None else None
        return self._joined[(guild_id, user_id)]


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
