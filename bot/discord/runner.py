"""The round runner: the session lifecycle on Discord. One asyncio task per session, so sessions in
many channels never wait on each other; each runs its rounds one after another: plan (through the
conductor), post (the publisher), wait for the timer, the quorum or /close, re-read the reactions (the
reconciler), let every queued vote land (the ballot box), close and learn (the conductor), announce.

What keeps votes safe across crashes and lost events (docs/RELIABILITY.md): a vote is acknowledged
only once committed; the reactions on a round's message are the truth, re-read when a round resumes
and again just before it closes; a round's post is adopted, not repeated, after a crash between
posting and recording it; a close asked for by hand is stored before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import discord

from bot.conductor import Conductor, OpenRound
from bot.discord.anti_brigade import JoinTimes
from bot.discord.ballot_box import BallotBox, VoteLimiter
from bot.discord.publisher import Publisher
from bot.discord.reconciler import Reconciler
from bot.discord.votes import describe_votes
from bot.media.drawing import Drawer
from storage import RoundRow, SessionRow

log = logging.getLogger("crowdtune.rounds")

RETRY_AFTER_ERROR = 5.0


class RoundRunner:
    def __init__(self, bot: discord.Client, conductor: Conductor, renderer, drawer: Drawer, limiter: VoteLimiter | None = None) -> None:
        self.bot = bot
        self.conductor = conductor
        self.store = conductor.store
        self._tasks: dict[int, asyncio.Task] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._background: set[asyncio.Task] = set()
        join_times = JoinTimes(bot)
        self.publisher = Publisher(bot, self.store, renderer, drawer, self._spawn)
        self.ballot_box = BallotBox(
            bot, conductor, limiter or VoteLimiter(burst=6, refill_seconds=5.0), join_times, self.wake, self.publisher.recorded_in
        )
        self.reconciler = Reconciler(self.ballot_box, join_times, self.publisher, self._spawn, self.wake)
        # What the Discord events, the cogs and the buttons call.
        self.on_reaction = self.ballot_box.on_reaction
        self.button_vote = self.ballot_box.button_vote
        self.scope_settings_changed = self.ballot_box.scope_settings_changed
        self.on_message_deleted = self.reconciler.on_message_deleted

    @property
    def limiter(self) -> VoteLimiter:
        return self.ballot_box.limiter

    # -- sessions -----------------------------------------------------------------------------

    def ensure_running(self, session_id: int) -> None:
        task = self._tasks.get(session_id)
        if task is None or task.done():
            self._wake[session_id] = asyncio.Event()
            self._tasks[session_id] = asyncio.create_task(self._run(session_id), name=f"session-{session_id}")

    async def resume_all(self) -> int:
        """On start: every active session of this process's shards runs again (bot.shard_plan; all
        of them unsharded); open rounds keep their closes-at. Returns how many."""
        plan = getattr(self.bot, "shard_plan", None)
        sessions = [s for s in await self.store.active_sessions() if plan is None or plan.owns_scope(s.scope_id)]
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
        await self.ballot_box.drain()
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.ballot_box.stop()

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

    async def _remember(self, row: RoundRow, session: SessionRow) -> None:
        await self.ballot_box.remember(row, session)
        for message_id in row.message_ids:
            if self.reconciler.deleted_before_known(int(message_id)):  # deleted before we had stored which round it was
                self._spawn(self.reconciler.on_message_deleted(int(message_id)))

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
            row, resumed = await self.publisher.publish(channel, session, open_round, style)
        await self._remember(row, session)
        if resumed and style == "reactions":  # people may have voted while we were away
            await self.reconciler.reconcile(channel, row, add_missing=True)
        await self._wait_for_close(session_id, open_round)
        if style == "reactions":
            await self.reconciler.reconcile(channel, row)  # a reaction whose event was lost still counts
        await self.ballot_box.settle_votes()  # every vote that arrived before the close counts
        outcome = await self.conductor.close(open_round.id, actor="crowdtune")
        self.ballot_box.forget_round(row.id)
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
