"""Rounds in Discord channels and DMs: post, collect votes, close on timer or quorum, go on.

One asyncio task per session, so sessions in many channels never wait on each other. Every
decision goes through the conductor (engine + storage); this module only talks to Discord.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import time
from dataclasses import dataclass

import discord

from bot.conductor import Conductor, OpenRound
from core.engine import SessionSpec
from core.midi import track_to_midi
from storage import RoundRow, SessionRow, VoteResult

log = logging.getLogger("crowdtune.rounds")

RATING_EMOJI = tuple(f"{n}\ufe0f\u20e3" for n in range(1, 10)) + ("\U0001f51f",)  # 1️⃣ .. 9️⃣, 🔟
AB_EMOJI = {"\U0001f170\ufe0f": "a", "\U0001f171\ufe0f": "b", "\U0001f44d": "both", "\U0001f44e": "neither"}  # 🅰️ 🅱️ 👍 👎
VOTE_STYLES = ("reactions", "buttons")
RETRY_AFTER_ERROR = 5.0
VOTE_BATCH = 500


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


@dataclass(frozen=True)
class RoundRef:
    """What a vote on a message needs to know, cached so votes do not wait on a lookup."""

    round_id: int
    session_id: int
    mode: str
    scope_id: str
    style: str


def voter_id(user_id: int) -> str:
    return f"user:{user_id}"


def describe_votes(mode: str, ballots) -> str:
    if mode == "ab":
        counts = {c: sum(1 for b in ballots if b.choice == c) for c in ("a", "b", "both", "neither")}
        return ", ".join(f"{k.upper() if len(k) == 1 else k}: {v}" for k, v in counts.items())
    ratings = sorted(b.rating for b in ballots)
    return ", ".join(f"{r:g}" for r in ratings) or "none yet"


class RoundRunner:
    def __init__(self, bot: discord.Client, conductor: Conductor, renderer) -> None:
        self.bot = bot
        self.conductor = conductor
        self.store = conductor.store
        self.renderer = renderer
        self._tasks: dict[int, asyncio.Task] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._refs: dict[int, RoundRef] = {}  # message id -> round
        self._background: set[asyncio.Task] = set()
        self._force_close: set[int] = set()  # sessions whose open round a person closed early
        self._votes: asyncio.Queue[_PendingVote] = asyncio.Queue()
        self._deleted: collections.deque[int] = collections.deque(maxlen=1000)  # recent deletions of unknown messages
        self._vote_worker: asyncio.Task | None = None

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

    async def close_now(self, session_id: int) -> bool:
        """Close the session's open round early (by hand); the loop then posts the next one."""
        if self._tasks.get(session_id) is None:
            return False
        self._force_close.add(session_id)
        self.wake(session_id)
        return True

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
                return
            except Exception:
                log.exception("session %s: round failed; retrying", session_id)
                await asyncio.sleep(RETRY_AFTER_ERROR)
                continue
            if finished:
                return

    async def _one_round(self, session_id: int) -> bool:
        """Run one round to its close; True when the session has ended."""
        session = await self.store.session(session_id)
        open_round = await self.conductor.open_round(session_id)
        if session is None or open_round is None:
            return True
        channel = self.bot.get_partial_messageable(int(session.channel_id))
        style = session.options.get("vote_style", "reactions")
        if not open_round.row.message_ids:
            message = await self._post(channel, session, open_round, style)
            closes_at = time.time() + open_round.spec.round_seconds
            await self.store.set_round_messages(open_round.id, [str(message.id)], closes_at)
            open_round = OpenRound(await self.store.round(open_round.id), open_round.plan, open_round.spec)
            self._remember(open_round.row, session, style)
        else:
            self._remember(open_round.row, session, style)
            if style == "reactions":
                await self._reconcile(channel, open_round.row, session)
        await self._wait_for_close(session_id, open_round)
        outcome = await self.conductor.close(open_round.id, actor="crowdtune")
        if outcome is not None:
            ballots_text = describe_votes(open_round.spec.mode, await self.store.ballots(open_round.id))
            reward = "no reward" if outcome.reward is None else f"reward {outcome.reward:.1f}/10"
            await channel.send(
                f"**Round {open_round.plan.index + 1} closed**: {outcome.voters} voted ({ballots_text}), {reward}. "
                f"{outcome.summary[0].upper()}{outcome.summary[1:]}."
            )
        refreshed = await self.store.session(session_id)
        if refreshed.status == "finished":
            await channel.send(f"Session finished after {refreshed.rounds_done} rounds. Use `/top` to hear the best.")
            return True
        return refreshed.status != "active"

    async def _wait_for_close(self, session_id: int, open_round: OpenRound) -> None:
        event = self._wake[session_id]
        while True:
            event.clear()  # before the checks, so a wake during them is not lost
            if session_id in self._force_close:
                self._force_close.discard(session_id)
                return
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

    async def _post(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> discord.Message:
        from bot.pianoroll import piano_roll_png
        from bot.views import vote_view

        plan, spec = open_round.plan, open_round.spec
        number = plan.index + 1
        files: list[discord.File] = []
        labels = ["a", "b"] if len(plan.proposals) > 1 else [""]
        for label, proposal in zip(labels, plan.proposals):
            stem = f"round-{number}{'-' + label if label else ''}"
            audio = await self.renderer.render_async(track_to_midi(proposal.track), "ogg")
            roll = await asyncio.to_thread(piano_roll_png, proposal.track, f"round {number} {label.upper()}".strip())
            files += [discord.File(io.BytesIO(audio), f"{stem}.ogg"), discord.File(io.BytesIO(roll), f"{stem}.png")]
        content = self._round_text(spec, plan, number, style, time.time() + spec.round_seconds)
        view = vote_view(open_round.id, spec.mode) if style == "buttons" else None
        message = await channel.send(content, files=files, view=view) if view else await channel.send(content, files=files)
        if style == "reactions":
            self._spawn(self._add_reactions(message, spec.mode))
        return message

    @staticmethod
    def _round_text(spec: SessionSpec, plan, number: int, style: str, closes_at: float) -> str:
        total = f" of {spec.rounds}" if spec.rounds else ""
        deadline = f"closes <t:{int(closes_at)}:R>" + (f" or when {spec.quorum} have voted" if spec.quorum else "")
        if spec.mode == "ab":
            edits = f"A {plan.proposals[0].description}; B {plan.proposals[1].description}"
            how = "Vote 🅰️, 🅱️, 👍 (both) or 👎 (neither)" if style == "reactions" else "Vote A, B, both or neither"
        else:
            edits = plan.proposals[0].description[0].upper() + plan.proposals[0].description[1:]
            how = "Rate it 1-10 with a reaction" if style == "reactions" else "Rate it 1-10 with a button"
        return f"**Round {number}{total}**: {edits}. {how}; your latest vote counts and you can withdraw it. Voting {deadline}."

    async def _add_reactions(self, message: discord.Message, mode: str) -> None:
        try:
            for emoji in emoji_for_mode(mode):
                await message.add_reaction(emoji)
        except discord.HTTPException as problem:
            log.warning("could not add vote reactions to %s: %s", message.id, problem)

    # -- votes ------------------------------------------------------------------------------------

    def _remember(self, row: RoundRow, session: SessionRow, style: str) -> None:
        for message_id in row.message_ids:
            self._refs[int(message_id)] = RoundRef(row.id, session.id, row.mode, session.scope_id, style)
            if int(message_id) in self._deleted:  # deleted before we had stored which round it was
                self._spawn(self.on_message_deleted(int(message_id)))

    async def ref_for(self, message_id: int) -> RoundRef | None:
        ref = self._refs.get(message_id)
        if ref is None:
            row = await self.store.round_for_message(str(message_id))
            if row is None:
                return None
            session = await self.store.session(row.session_id)
            ref = RoundRef(row.id, row.session_id, row.mode, session.scope_id, session.options.get("vote_style", "reactions"))
            self._refs[message_id] = ref
        return ref

    def may_vote(self, ref: RoundRef, user_id: int) -> bool:
        # A personal agent learns only from its owner.
        return not ref.scope_id.startswith("user:") or ref.scope_id == voter_id(user_id)

    def submit(
        self, message_id: int, user_id: int, value: float | str | None, retract: bool = False, from_reaction: bool = False
    ) -> asyncio.Future:
        """Queue a vote; the future resolves to its VoteResult once it is committed.

        discord.py runs every event in a task of its own, so two events could reach the database
        out of order (a reaction removed before its adding is stored). One worker applies votes
        strictly in arrival order, and a burst of them in one transaction."""
        done = asyncio.get_running_loop().create_future()
        self._votes.put_nowait(_PendingVote(message_id, user_id, value, retract, done, from_reaction))
        if self._vote_worker is None or self._vote_worker.done():
            self._vote_worker = asyncio.create_task(self._apply_votes(), name="vote-writer")
        return done

    async def vote(self, message_id: int, user_id: int, value: float | str | None, retract: bool = False) -> VoteResult:
        return await self.submit(message_id, user_id, value, retract)

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

    async def _apply_batch(self, batch: list[_PendingVote]) -> None:
        ops, accepted = [], []
        for item in batch:
            ref = await self.ref_for(item.message_id)
            value = item.value
            if ref is not None and item.from_reaction:
                value = vote_from_emoji(ref.mode, str(item.value)) if ref.style == "reactions" else None
            if ref is None or (item.from_reaction and value is None):
                item.done.set_result(VoteResult("unknown_round"))
            elif not self.may_vote(ref, item.user_id):
                item.done.set_result(VoteResult("blocked"))
            else:
                ops.append(self.conductor.vote_op(ref.round_id, ref.mode, voter_id(item.user_id), value, item.retract))
                accepted.append((item, ref))
        results = await self.conductor.apply_votes(ops) if ops else []
        touched: dict[int, RoundRef] = {}
        for (item, ref), result in zip(accepted, results):
            item.done.set_result(result)
            if result.counted:
                touched[ref.session_id] = ref
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
        return quorum is not None and len(await self.store.ballots(ref.round_id)) >= quorum

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
        self.submit(payload.message_id, payload.user_id, emoji, retract=not added, from_reaction=True)

    async def on_message_deleted(self, message_id: int) -> None:
        ref = self._refs.get(message_id) or await self.ref_for(message_id)
        if ref is None:
            self._deleted.append(message_id)
            return
        if await self.store.cancel_round(ref.round_id, actor="moderator", reason="round message deleted"):
            self.wake(ref.session_id)

    async def _reconcile(self, channel, row: RoundRow, session: SessionRow) -> None:
        """After a restart: count reactions made while the bot was away, drop ones removed."""
        try:
            message = await channel.fetch_message(int(row.message_ids[0]))
        except discord.NotFound:
            await self.store.cancel_round(row.id, actor="crowdtune", reason="round message missing after restart")
            return
        present: dict[int, list[float | str]] = {}
        for reaction in message.reactions:
            value = vote_from_emoji(row.mode, str(reaction.emoji))
            if value is None:
                continue
            async for user in reaction.users(limit=None):
                if not self._is_bot(user.id, None) and not user.bot:
                    present.setdefault(user.id, []).append(value)
        standing = {b.voter: (b.choice if row.mode == "ab" else b.rating) for b in await self.store.ballots(row.id)}
        pending = [
            self.submit(message.id, user_id, values[-1])
            for user_id, values in present.items()
            if standing.get(voter_id(user_id)) not in values
        ]
        pending += [
            self.submit(message.id, int(voter.split(":")[1]), value, retract=True)
            for voter, value in standing.items()
            if int(voter.split(":")[1]) not in present
        ]
        await asyncio.gather(*pending)
