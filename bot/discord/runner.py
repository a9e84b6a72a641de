"""The round runner: the session lifecycle on Discord. One asyncio task per session, so sessions in
many channels never wait on each other; each runs its rounds one after another: plan (through the
conductor), post (the publisher), wait for the timer, the quorum or /close, re-read the reactions (the
reconciler), let every queued vote land (the ballot box), close and learn (the conductor), announce.

What keeps votes safe across crashes and lost events (docs/RELIABILITY.md): a vote is acknowledged
only once committed; the reactions on a round's message are the truth, re-read when a round resumes, after
a new gateway session (Recounts), and again just before it closes; a round's post is adopted, not repeated, after a crash between
posting and recording it; a close asked for by hand is stored before it is acknowledged; a round's votes are
taken for its close (re-read, stored, later ones refused) before a /close is answered, and a round whose votes were
taken is closed from what is stored, never re-read (a change after the answer must not count).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

import discord

from bot.conductor import Conductor, OpenRound
from bot.discord.anti_brigade import JoinTimes
from bot.discord.followups import Followups, say_round_waits, say_stopped, say_voting_stopped
from bot.discord.outage import Outage, RetryLog, say_failure
from bot.discord.ballot_box import BallotBox, VoteLimiter
from bot.discord.database_watch import DatabaseWatch
from bot.discord.outbox import Outbox
from bot.discord.publisher import Publisher
from bot.discord.reconciler import Reconciler
from bot.discord.session_tasks import SessionTasks
from bot.discord.shards import ShardPlan
from bot.discord.steering import Steering
from bot.discord.votes import round_style, round_summary, session_finished
from bot.media.drawing import Drawer
from storage import ClaimLost, DatabaseGone, RoundRow

log = logging.getLogger("crowdtune.rounds")

RETRY_AFTER_ERROR = 5.0
# How long (seconds) /status waits for a session's restart recount (bounded: RECONCILE_PASSES reads of the
# reactions) before answering with the votes so far and saying the recount is under way. Once per recount:
# the first /status starts it and every later one waits at most what is left of it.
RECOUNT_WAIT = 15.0
# How long (seconds) a command that ends a round (/stop) waits, after a start, for the bot to take back its open
# rounds (resume_all, after discord.py's wait for the servers) before it acts anyway: resume_all failed.
PICKUP_WAIT = 30.0


class Recounts:
    """Which sessions' votes may still change by a recount of their open round's reactions (those made while no event
    could come: the bot was down, at a start, or its gateway session was new, `new_gateway_session`), so /status can
    wait for it rather than show the votes before it; and whether a start's open rounds run again yet
    (`rounds_taken_back`). `running(session_id)`: whether its runner runs; `wake(session_id)`: makes it look again."""

    def __init__(self, store, plan, running: Callable[[int], bool], wake: Callable[[int], None]) -> None:
        self.store, self.plan, self.running, self.wake = store, plan, running, wake
        self._due: set[int] = set()  # running sessions that owe a recount of their round (`new_gateway_session`)
        # Both held only while the session's recount is under way (`done`): not for every session ever run.
        self._pending: dict[int, asyncio.Event] = {}  # session id -> set (and dropped) once its round was recounted
        self._listed = asyncio.Event()  # set once the sessions to resume are known: none is missed before
        self._wait_ends: dict[int, float] = {}  # session id -> when (loop time) /status stops waiting for its recount
        self.taken_back = asyncio.Event()  # set once a start's open rounds run again (resume_all): `rounds_taken_back`

    async def rounds_taken_back(self) -> None:
        """Wait until the open rounds run again after a start (`resume_all`), at most PICKUP_WAIT seconds. Commands come
        in from the connection on, before that: till then no runner closes a round whose /close was answered or whose
        time ran out while the bot was down, so a /stop would cancel it instead of waiting for its close and count."""
        try:
            async with asyncio.timeout(PICKUP_WAIT):
                await self.taken_back.wait()
        except TimeoutError:
            log.warning("the open rounds were not taken back within %.0f s of the start; acting anyway", PICKUP_WAIT)

    def expect(self, session_ids: list[int]) -> None:
        for session_id in session_ids:
            self._pending.setdefault(session_id, asyncio.Event())
        self._listed.set()
        for session_id in [i for i in self._wait_ends if i not in self._pending]:  # asked before the list: none to wait for
            del self._wait_ends[session_id]

    async def new_gateway_session(self, shard_id: int = 0) -> None:
        """A new gateway session of the shard began (READY; a RESUME replays what was missed, a new session does not): no
        event came for the reactions made on its servers' open rounds since its last session ended. Each running session
        of them (none at the first: a start recounts its own) recounts its round first thing (`catch_up`); /status waits for it."""
        sessions = await self.store.active_sessions()
        for session_id in [s.id for s in sessions if self.running(s.id) and self.plan.shard_of_scope(s.scope_id) == shard_id]:
            self._due.add(session_id)
            self._pending.setdefault(session_id, asyncio.Event())  # else a start's recount is under way: /status waits for both
            self._wait_ends.pop(session_id, None)  # /status waits for this recount as for a start's
            self.wake(session_id)

    async def catch_up(self, session_id: int, recount: Callable[[], Awaitable[None]]) -> None:
        """`recount()` the session's round if it owes the recount a new gateway session asked for (once), then `done`."""
        if session_id in self._due:
            self._due.discard(session_id)  # first: a new session during the recount asks for another
            await recount()
            self.done(session_id)

    def done(self, session_id: int) -> None:
        """The session's round was recounted; unless it owes another one (`catch_up`), /status waits no more, and nothing
        is held for its recount (a later one holds anew)."""
        if session_id not in self._due:
            event = self._pending.pop(session_id, None)
            self._wait_ends.pop(session_id, None)
            if event is not None:
                event.set()  # those waiting hold it

    def ended(self, session_id: int) -> None:
        """The session's runner ended: nothing more is recounted, and /status must not wait on it."""
        self._due.discard(session_id)
        self.done(session_id)

    def recounting(self, session_id: int) -> bool:
        event = self._pending.get(session_id)
        return not self._listed.is_set() or (event is not None and not event.is_set())

    def will_wait(self, session_id: int) -> bool:
        """Whether `recounted` would wait: the recount is under way and its one wait (RECOUNT_WAIT) is not over."""
        ends = self._wait_ends.get(session_id)
        return self.recounting(session_id) and (ends is None or asyncio.get_running_loop().time() < ends)

    async def recounted(self, session_id: int) -> bool:
        """Whether the session's recount is done, waiting for it until RECOUNT_WAIT seconds after the first call
        (every call shares that one wait: past it, the answer is at once)."""
        if not self.recounting(session_id):
            return True  # (holding no wait for it)
        ends = self._wait_ends.setdefault(session_id, asyncio.get_running_loop().time() + RECOUNT_WAIT)
        try:
            async with asyncio.timeout_at(ends):
                await self._listed.wait()
                event = self._pending.get(session_id)
                if event is not None:
                    await event.wait()
        except TimeoutError:
            return False
        return True


def waits_for_database(runner: RoundRunner, session_id: int) -> Exception | None:
    """Why the session's round waits for the database (a full disk, its server unreachable: its channel was told once),
    till it goes on; None when it does not."""
    retries = runner.retries.get(session_id)
    return None if retries is None else retries.database_problem


class RoundRunner:
    def __init__(self, bot: discord.Client, conductor: Conductor, renderer, drawer: Drawer, limiter: VoteLimiter | None = None) -> None:
        self.bot = bot
        self.conductor = conductor
        self.store = conductor.store
        # Each running session's task and wake event, held while it runs: at its end, its recount is over (`Recounts.ended`).
        self.sessions = SessionTasks(lambda session_id: self.recounts.ended(session_id))
        self._tasks, self.wake, running = self.sessions.tasks, self.sessions.wake, self.sessions.running  # (_tasks: shutdown awaits them)
        self._background: set[asyncio.Task] = set()
        self.followups = Followups(bot, self.store)  # each session's /compose followup (ensure_running)
        self.recounts = Recounts(self.store, getattr(bot, "shard_plan", ShardPlan()), running, self.wake)
        self.outbox = Outbox(bot, self.store, self._spawn)
        self.stopped_by: DatabaseGone | None = None  # once set, nothing more is saved: sessions do not run
        self.retries: dict[int, RetryLog] = {}  # each running session's, by its id (`waits_for_database`)
        self._shut_down = False  # a /compose answered during the shutdown starts no rounds (its store is being closed)
        join_times = JoinTimes(bot)
        # Discord unreachable is said once for the process, naming how many sessions run (all wait for it).
        self.outage = Outage(log, RETRY_AFTER_ERROR, self.sessions.count, lambda: self._shut_down)
        self.publisher = Publisher(bot, self.store, renderer, drawer, self._spawn, self.outage)
        self.ballot_box = BallotBox(
            bot, conductor, limiter or VoteLimiter(burst=6, refill_seconds=5.0), join_times, self.wake, self.publisher.recorded_in, self.outage
        )
        self.ballot_box.on_database_gone = self.database_gone
        self.publisher.on_posted = self.ballot_box.seen.posted
        self.database = DatabaseWatch(self.store, self.database_gone, lambda: self.stopped_by is not None, self._spawn)
        self.reconciler = Reconciler(self.ballot_box, join_times, self.publisher, self.wake, self._spawn)
        # What the Discord events, the cogs and the buttons call.
        self.on_reaction = self.ballot_box.on_reaction
        self.button_vote = self.ballot_box.button_vote
        self.on_message_deleted = self.reconciler.on_message_deleted
        self.steering = Steering(self.store, conductor, self.wake, running, self.publisher.posted, self.publisher.posting, lambda i: waits_for_database(self, i))

    @property
    def limiter(self) -> VoteLimiter:
        return self.ballot_box.limiter

    def ensure_running(self, session_id: int, followup: discord.Webhook | None = None) -> None:
        """Run the session's rounds unless they run; `followup`: the /compose that started it (its webhook works
        for 15 minutes), to tell its starter if the session stops because it cannot post where it was started."""
        if followup is not None:
            self.followups.remember(session_id, followup)
        if self.stopped_by is not None or self._shut_down:  # the session runs at the next start
            return
        self.database.watch()  # told that it is gone while nothing writes (a round waiting for its close)
        self.sessions.start(session_id, lambda: self._run(session_id))

    async def announce(self, channel_id: str | None = None) -> int:
        """Post what the outbox holds (Outbox.announce: retried by itself after an outage); how many entries."""
        return await self.outbox.announce(channel_id)

    async def post_queued(self) -> None:
        """Post what the outbox holds for this process's channels (Outbox.post_queued): at start, and as Discord is back."""
        await self.outbox.post_queued()

    async def resume_all(self) -> int:
        """On start: what the outbox holds is posted (`post_queued`), then every active session of this process's shards
        runs again (bot.shard_plan; all of them unsharded); open rounds keep their closes-at. Returns how many."""
        plan = getattr(self.bot, "shard_plan", None)
        await self.post_queued()
        sessions = [s for s in await self.store.active_sessions() if plan is None or plan.owns_scope(s.scope_id)]
        runnable = [s.id for s in sessions if s.channel_id is not None and s.channel_id.isdigit()]
        # Those not running yet recount their round's reactions first (not after a reconnect: already running).
        self.recounts.expect([i for i in runnable if not self.sessions.running(i) and self.stopped_by is None])
        for session_id in runnable:
            self.ensure_running(session_id)
        self.recounts.taken_back.set()
        return len(sessions)

    def database_gone(self, problem: DatabaseGone) -> None:
        """The database file was removed or replaced under the running bot: voting stops everywhere, each
        running session's channel is told once, and the operator reads it in the log (issue 11, case 9)."""
        if self.stopped_by is not None:
            return
        self.stopped_by = problem
        if isinstance(problem, ClaimLost):  # another process runs these sessions now; this one ends (run_bot) and says why
            return
        log.error("voting stopped in every session: %s", problem)
        self._spawn(say_voting_stopped(self.bot, self.store, self._tasks.values()))

    def scope_settings_changed(self, scope_id: str) -> None:
        """A scope's settings changed, or it was deleted (/forget-me): votes see it at once, and every session looks
        at its round again (a lowered membership age may complete a quorum; a deleted round's task ends now)."""
        self.ballot_box.scope_settings_changed(scope_id)
        self.sessions.wake_all()

    scope_deleted = scope_settings_changed

    async def shutdown(self) -> None:
        self._shut_down = True
        await self.ballot_box.drain()
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.ballot_box.stop()

    def _spawn(self, coro) -> None:
        """Run `coro` in the background until it ends or the shutdown; what it raises is logged as it ends (say_failure)."""
        task = asyncio.create_task(coro, name=getattr(coro, "__qualname__", "a background step"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(functools.partial(say_failure, log))

    async def _run(self, session_id: int) -> None:
        retries = self.retries[session_id] = RetryLog(log, f"session {session_id}'s round", self.outage)
        try:
            await self.followups.keep(session_id)
            await self._rounds(session_id, retries)
            if self.stopped_by is None:  # ended (not cancelled by a shutdown): nobody to tell any more
                await self.followups.forget(session_id)
        finally:
            retries.stopped()  # an outage does not wait for a session that ended (or was cancelled)
            self.publisher.forget(session_id)  # a round it rendered but could not post
            self.steering.runner_ended(session_id)  # a /stop waiting for a close stops the session itself
            self.followups.drop(session_id)
            self.retries.pop(session_id, None)
            if not self._shut_down:  # ended on an error, its round cancelled (at a shutdown it stays open: kept till the end)
                self.ballot_box.others_ended(session_id)

    async def _rounds(self, session_id: int, retries: RetryLog) -> None:
        while True:
            try:
                finished = await self._one_round(session_id, retries)
            except asyncio.CancelledError:
                raise
            except (discord.Forbidden, discord.NotFound) as problem:
                # The channel is gone or closed to us: stop cleanly rather than retry forever.
                log.warning("session %s stopped: %s", session_id, problem)
                await self.store.end_session(session_id, "stopped", actor="crowdtune")
                session = await self.store.session(session_id)
                await say_stopped(
                    self.bot, int(session.channel_id), problem, await self.followups.take(session_id), round_style(session.options),
                )
                return
            except DatabaseGone as problem:
                self.database_gone(problem)
                return
            except Exception as problem:  # Discord unreachable (one line, not each try) or a bug (its traceback)
                if retries.failed(problem):  # the database full or unreachable: the channel (and a /stop waiting) told once
                    self._spawn(say_round_waits(self.bot, self.store, session_id, problem))
                    self.steering.database_waits(session_id)
                await asyncio.sleep(RETRY_AFTER_ERROR)
                continue
            if finished:  # "works again" only once Discord answered (in _one_round): an ended session may ask it nothing
                return
            retries.worked()

    async def _one_round(self, session_id: int, retries: RetryLog) -> bool:
        """Run one round to its close; True when the session has ended. `retries` is told once the round is posted
        or taken back (Discord answers again), not only at its close, minutes later."""
        session = await self.store.session(session_id)
        open_round = await self.conductor.open_round(session_id)
        self.ballot_box.others_ended(session_id, None if open_round is None else open_round.id)
        if session is None or open_round is None:
            # Ended (a /stop, its last round): what its end recorded (its post's edit into a cancelled round's) is posted
            # now, retried while Discord is out, not left for the next start or reconnect, its post looking open till then.
            if session is not None and await self.announce(session.channel_id):
                retries.worked()
            return True
        channel = self.bot.get_partial_messageable(int(session.channel_id))
        await self.announce(session.channel_id)  # what an earlier run recorded but could not post
        style = round_style(session.options)
        row = open_round.row
        resumed = bool(row.message_ids)
        if not resumed:
            row, resumed = await self.publisher.publish(channel, session, open_round, style)
            if row is None or row.status != "open":  # the session ended while its round was posted
                self.ballot_box.round_ended(row or open_round.row)  # its post, known from Discord's answer (Publisher)
                await self.announce(session.channel_id)  # its post edited into a cancelled round's
                return False  # the next turn finds it ended
        await self.reconciler.remember(row, session)
        if resumed:  # people may have voted, or deleted its message, while we were away
            await self.reconciler.read_again(channel, row, style)
        self.recounts.done(session_id)
        retries.passed()
        await self._wait_for_close(session_id, open_round, row, channel, style)
        # A /stop from now waits for this close, its summary posted (what it then says is below the summary).
        with self.steering.closing(session_id):
            if style == "reactions":
                await self.reconciler.reconcile(channel, row)  # a reaction whose event was lost still counts
            await self.ballot_box.settle_votes()  # every vote that arrived before the close counts
            # and none after: from here the round closes with what is stored, also after a crash (no re-read then).
            await self.store.take_votes(open_round.id)
            self.steering.votes_taken(session_id)  # a /close waits for this before it is answered
            count = await self.ballot_box.count(row)  # under the membership rule as it is now, however cast
            number, mode = open_round.plan.index + 1, open_round.spec.mode
            # The summary, and that the session finished with this close, are stored with the close and posted from the
            # outbox: a crash or an outage in between loses nothing, and neither is posted twice. Its counts are the close's
            # own (a /strike landing meanwhile is in both the verdict and the summary).
            await self.conductor.close(
                open_round.id, actor="crowdtune", set_aside=count.set_aside,
                announce=lambda outcome, ballots, aside, struck: [
                    round_summary(number, mode, outcome, ballots, aside, count.member_days, struck), *session_finished(session, number),
                ],
            )
            self.ballot_box.round_ended(row)  # closed, or ended otherwise (cancelled, deleted): woken, it came here
            refreshed = await self.store.session(session_id)
            if refreshed is None:  # deleted with its scope (/forget-me) while the round was open
                await self.announce(session.channel_id)  # its post edited into an ended round's (Store.forget_user)
                return True
            # The summary (and that the session finished), or the cancellation a deletion recorded; an outage retries
            # it (`_rounds`): the next try finds the session ended and posts what is still queued.
            await self.announce(session.channel_id)
            retries.worked()  # closed, its summary posted: also when this close ends the session (`_rounds` asks no more)
            stopped = await self.steering.after_close(session_id)  # a /stop that waited for this close
        return stopped or refreshed.status != "active"

    async def _quorum_stands(self, open_round: OpenRound, row: RoundRow, channel, style: str) -> bool:
        """Whether the round has its quorum of standing votes. A count reached by reaction events is
        checked against the reactions themselves first: a stale or replayed add event (one whose
        removal came before it) must not close a round (issue 11, case 5); and every count against the
        membership rule as it is now, as at the close. (Buttons are interactions, answered once: there
        is nothing stale to re-read.)"""
        if not await self.conductor.quorum_reached(open_round):
            return False
        if style == "reactions":
            await self.reconciler.reconcile(channel, row)
            await self.ballot_box.settle_votes()
        return await self.conductor.quorum_reached(open_round, len((await self.ballot_box.count(row)).counted))

    async def _wait_for_close(self, session_id: int, open_round: OpenRound, posted: RoundRow, channel, style: str) -> None:
        event = self.sessions.event(session_id)
        while True:
            event.clear()  # before the checks, so a wake during them is not lost
            # After a new gateway session: what it missed before it is read (Recounts.new_gateway_session).
            await self.recounts.catch_up(session_id, lambda: self.reconciler.read_again(channel, posted, style))
            row = await self.store.round(open_round.id)
            if row is None or not row.takes_votes:
                return  # closed, or its votes taken for its close (before a restart): closed from what is stored
            if await self._quorum_stands(open_round, row, channel, style):
                return
            remaining = (row.closes_at or time.time()) - time.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(event.wait(), timeout=remaining)
            except TimeoutError:
                return
