"""/close and /stop of a session, one at a time, each answered as it turned out. A close that was acknowledged
wins over a /stop after it: the round is closed and counted first, then the session stops (the runner does both,
so no next round starts in between). A duplicate, sent at the same moment by another moderator, waits for the
first and is told what the first did ("already closing", "already stopped") instead of repeating it. A /close is
answered once its round's votes are taken (the runner's re-read, stored; later votes refused), so nothing after the
answer changes them, even a restart before the close is stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal

from storage import EndedSession, RoundRow

log = logging.getLogger("crowdtune.rounds")

# How long (seconds) a /stop waits for the close of a round whose voting is over before it stops the session
# anyway (the round is then cancelled, which its answer says): its runner is stuck or gone.
STOP_WAIT = 60.0
# How long (seconds) a /close waits for its round's votes to be taken before it acknowledges the command ("thinking...")
# and waits on: Discord wants an answer within 3 s of the command, and the lookups before this take some of them.
ANSWER_WITHIN = 1.5
# To a /stop or /close that found the session running, once it got its turn (`lock`) after the session ended.
ALREADY_ENDED = "This session has already ended (another `/stop`, or its last round); nothing was changed."
# A /close's answer for each outcome of `Steering.close_now`.
CLOSE_ANSWERS = {
    "closing": "Closing this round now.",
    "already": "This round is already closing; its result follows.",
    "once_posted": "The next round is being posted; I'll close it as soon as it is there, and its result follows.",
    # A round whose post was made after the /close was sent: the moderator meant the round before (seen_when_asked).
    "none": "The last round has closed and the next one is being prepared, so nothing was changed; use /close again once it is in the channel.",
    "first": "The first round is being prepared, so nothing was changed; use /close again once it is in the channel.",
    "ended": ALREADY_ENDED,
}


class CloseWaits(Exception):
    """A /stop found the close it must wait for waiting for the database (`problem`: a full disk, its server
    unreachable): nothing was changed; the round closes, and the session goes on, once the database works again."""

    def __init__(self, problem: Exception) -> None:
        super().__init__(str(problem))
        self.problem = problem


class Steering:
    def __init__(
        self, store, conductor, wake: Callable[[int], None], running: Callable[[int], bool], posted: Callable[[int], bool] = lambda _: False,
        posting: Callable[[int], asyncio.Event | None] = lambda _: None, paused: Callable[[int], Exception | None] = lambda _: None,
    ) -> None:
        self.store = store
        self._paused = paused  # why a session's round waits for the database, or None (runner.waits_for_database)
        self._pauses: dict[int, set[asyncio.Future]] = {}  # session id -> set as its round begins to wait for the database
        self._posted = posted  # whether a round's post (by its id) reached Discord, not yet recorded (Publisher.posted)
        self._posting = posting  # the event set once a round's post being made is over (Publisher.posting)
        self.conductor = conductor
        self._wake = wake
        self._running = running  # whether a session's rounds run in this process
        self._locks: dict[int, asyncio.Lock] = {}
        self._closing: set[int] = set()  # sessions whose runner is closing their round (its voting is over)
        self._stops: dict[int, tuple[str, asyncio.Future]] = {}  # session id -> (who stops it, what its runner's stop did)
        self._taking: dict[int, asyncio.Future] = {}  # session id -> set once its runner took the votes a /close waits for
        self._closes: dict[int, set[asyncio.Future]] = {}  # session id -> set as its runner ends a close (`closed`)

    def lock(self, session_id: int) -> asyncio.Lock:
        """Held by /close and /stop: one at a time per session, so each sees what the one before it did."""
        return self._locks.setdefault(session_id, asyncio.Lock())

    def closing_now(self, session_id: int) -> bool:
        """Whether the session's runner is closing a round (until its summary is posted: `closing`)."""
        return session_id in self._closing

    def closed_for_stop(self, session_id: int) -> bool:
        """Whether the session's runner is closing a round (`closing_now`) or, for the /stop in `stopping`, has closed it
        and stopped the session (`after_close`, before the block ends): so a /stop that looked at the round while it
        closed sees the round it closed, not a session between rounds."""
        asked = self._stops.get(session_id)
        return self.closing_now(session_id) or asked is not None and asked[1].done() and bool(asked[1].result())

    def visible(self, row: RoundRow) -> bool:
        """Whether members can see the round `row`: its post reached Discord (recorded, or on its way to the database).
        A moderator's command on "the current round" acts only on such a one."""
        return bool(row.message_ids) or self._posted(row.id)

    def voting_over(self, row: RoundRow | None) -> bool:
        """Whether the round `row` is being closed: its close asked for (/close, also while it was being posted: it
        closes once posted), its time up or its quorum met."""
        if row is None:
            return False
        if not row.message_ids:  # its close time is set by its post, or before it only by a /close (set_round_messages)
            return row.closes_at is not None
        return row.session_id in self._closing or (row.closes_at is not None and row.closes_at <= time.time())

    async def seen_when_asked(self, row: RoundRow, asked: int) -> bool:
        """Whether members could see the round `row` when a command about it was sent: its post's id is below `asked`, the
        command's interaction id (Discord's ids grow with time, so they order the two). A post on its way is waited for
        (at most ANSWER_WITHIN s): Discord may have shown it before the bot heard back, and a /close sent after it
        means it, while one sent before it means the round before."""
        recorded = None if row.message_ids else self._posting(row.id)
        if recorded is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ANSWER_WITHIN):
                    await recorded.wait()
            row = await self.store.round(row.id) or row
        if not row.message_ids:
            return self._posted(row.id)  # in the channel, its id not yet known to the bot (its record held): seen
        return int(row.message_ids[0]) < asked

    async def close_now(self, session_id: int, asked: int) -> Literal["closing", "already", "once_posted", "none", "first", "ended"]:
        """Close the session's open round early: "closing", "already" (its voting is over: a /close before this
        one, its time or its quorum), "once_posted" (its post reached Discord, not yet recorded: it closes, and counts, as
        soon as it is recorded; also for a /close after such a one), "none" or "first" (no round members can see: the
        next, or the first, is being prepared; nothing is changed) or "ended" (a /stop,
        or its last round's close, came first: it was running when the /close was sent). The new close time is stored first, so a crash
        right after the acknowledgement still closes the round at the next start (its post is adopted or made
        then, and closed); "closing" (and "already" after it) is answered once its votes are taken (`taken`). `asked`: the
        /close's interaction id, so that a round posted after it was sent is not the one it meant (`seen_when_asked`).
        Hold `lock`."""
        row = await self.store.open_round_of(session_id)
        if row is None or not await self.seen_when_asked(row, asked):
            # Not a round anyone saw (a trial: a second /close meant for the round just closed closed the next, still
            # being posted, unvoted): the /close changes nothing.
            session = await self.store.session(session_id)
            if session is None or session.status != "active":
                return "ended"
            first = (row.index if row is not None else await self.store.next_round_index(session_id)) == 0
            return "first" if first else "none"
        if not self.voting_over(row):
            if row.message_ids and self._running(session_id):  # its runner takes the votes once woken (`taken`)
                # Before the write: the runner may be woken by a quorum meanwhile and take them first.
                self._taking.setdefault(session_id, asyncio.get_running_loop().create_future())
            if await self.store.set_closes_at(row.id, time.time()):
                self._wake(session_id)
                return "closing" if row.message_ids else "once_posted"
            self._taking.pop(session_id, None)
        return "already" if row.message_ids else "once_posted"

    async def taken(self, session_id: int, defer: Callable[[], Awaitable[None]]) -> None:
        """After `close_now` said "closing": wait until the runner has taken the round's votes (its reactions read
        again and every vote before stored; later ones are refused), so that the answer to the /close is the moment
        after which no vote changes the round, even if the bot is killed before the close is stored. `defer`
        (acknowledging the command) is awaited first past ANSWER_WITHIN seconds; past STOP_WAIT the wait ends (its
        runner is stuck or gone: the close then takes the votes as they are when it comes). Not under `lock`: a /stop
        meanwhile finds the round's voting over and waits for its close, so no next round starts before it stops."""
        taking = self._taking.get(session_id)
        if taking is None:
            return
        done, _ = await asyncio.wait([taking], timeout=ANSWER_WITHIN)
        if done:
            return
        await defer()
        try:
            async with asyncio.timeout(STOP_WAIT - ANSWER_WITHIN):
                await asyncio.shield(taking)
        except TimeoutError:
            log.warning("session %s: its round's votes were not taken within %.0f s of /close", session_id, STOP_WAIT)

    def votes_taken(self, session_id: int) -> None:
        """The runner took the votes of the session's round for its close (Store.take_votes): a /close waiting for
        that is answered."""
        taking = self._taking.pop(session_id, None)
        if taking is not None and not taking.done():
            taking.set_result(None)

    @contextlib.contextmanager
    def stopping(self, session_id: int, actor: str) -> Iterator[None]:
        """A /stop by `actor`, holding `lock`, from before it first looks at the session: a close that ends meanwhile
        stops the session for it (`after_close`), so its runner does not go on to prepare a next round while the /stop
        reads the round it closed (that round, taken for the one to stop, would leave the next one to be cancelled)."""
        self._stops[session_id] = (actor, asyncio.get_running_loop().create_future())
        try:
            yield
        finally:
            self._stops.pop(session_id, None)

    async def stop(self, session_id: int, after_close: bool) -> EndedSession | None:
        """Stop the session for the /stop in `stopping`; with `after_close` (its round's voting is over: `voting_over`),
        or while its runner is closing a round, once its runner has closed and counted that round and stopped the
        session, waiting for it at most STOP_WAIT seconds. What the stop cancelled (Store.end_session: nothing when its
        runner stopped it after a close), None if it had already ended. CloseWaits, nothing changed, if that close waits
        for the database (or begins to while it is waited for): it may wait as long as the operator takes."""
        actor, done = self._stops[session_id]
        if not done.done() and self._running(session_id):
            # Being closed, or closed with its summary still to come (else its runner may be past the point that stops it).
            if self.closing_now(session_id) or after_close and self.voting_over(await self.store.open_round_of(session_id)):
                self._wake(session_id)
                await self._close_or_pause(session_id, done)
        if done.done() and done.result():  # its runner closed the round and stopped the session for this /stop
            return done.result()
        stopped = await self.conductor.stop(session_id, actor)
        return stopped or (done.result() or None if done.done() else None)  # its runner's close ended and stopped it meanwhile

    async def _close_or_pause(self, session_id: int, done: asyncio.Future) -> None:
        """Wait, at most STOP_WAIT seconds, for the runner's close that `done` ends; CloseWaits once it waits for the
        database (`database_waits`)."""
        paused = asyncio.get_running_loop().create_future()  # before the look: a pause beginning after it is not missed
        self._pauses.setdefault(session_id, set()).add(paused)
        try:
            if self._paused(session_id) is None:
                await asyncio.wait([done, paused], timeout=STOP_WAIT, return_when=asyncio.FIRST_COMPLETED)
                if not done.done() and not paused.done():
                    log.warning("session %s: its round did not close within %.0f s of /stop; stopping it anyway", session_id, STOP_WAIT)
            problem = None if done.done() else self._paused(session_id)
            if problem is not None:
                raise CloseWaits(problem)
        finally:
            self._pauses.get(session_id, set()).discard(paused)

    def database_waits(self, session_id: int) -> None:
        """The session's round began to wait for the database (`paused` says why): a /stop waiting for its close is
        answered now (`stop`), not when the operator has fixed it."""
        for waiter in self._pauses.pop(session_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    @contextlib.contextmanager
    def closing(self, session_id: int) -> Iterator[None]:
        """The runner closes the session's round in this block, and posts its summary: a /stop meanwhile waits for it
        (`stop`), and `after_close` is the block's last step."""
        self._closing.add(session_id)
        try:
            yield
        finally:
            self._closing.discard(session_id)
            self._closed(session_id)

    def _closed(self, session_id: int) -> None:
        for waiter in self._closes.pop(session_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def closes(self, session_ids: list[int], defer: Callable[[], Awaitable[None]]) -> None:
        """Wait until each of these sessions' runners has closed its round whose voting is over (`voting_over`: a
        /close answered, its time or its quorum up; also one being closed), so that a command changing what a close
        counts or learns into acts after it; `defer` (acknowledging the command) is awaited first when one must be
        waited for. At most STOP_WAIT seconds in all: past that (its runner stuck or gone) the command acts anyway."""
        waiters = []
        for session_id in session_ids:
            if not self._running(session_id):
                continue
            waiter = asyncio.get_running_loop().create_future()  # before the read: a close ending during it is not missed
            self._closes.setdefault(session_id, set()).add(waiter)
            if self.closing_now(session_id) or self.voting_over(await self.store.open_round_of(session_id)):
                self._wake(session_id)
                waiters.append(waiter)
            else:
                self._closes.get(session_id, set()).discard(waiter)
        if not waiters:
            return
        await defer()
        _, late = await asyncio.wait(waiters, timeout=STOP_WAIT)
        if late:
            log.warning("%d rounds whose voting was over did not close within %.0f s; acting anyway", len(late), STOP_WAIT)

    async def after_close(self, session_id: int) -> bool:
        """The runner, once a round is closed and its result posted: stops the session if a /stop waits for that
        close, before a next round is planned. True if it stopped it."""
        asked = self._stops.get(session_id)
        if asked is None:
            return False
        actor, done = asked
        stopped = await self.conductor.stop(session_id, actor)
        if not done.done():
            done.set_result(stopped)
        return stopped is not None

    def runner_ended(self, session_id: int) -> None:
        """The session's runner ended without closing the round a /stop waits for: the /stop stops it itself. Its lock
        is let go unless held (`lock` makes another on demand), so they do not pile up with the sessions ever run."""
        asked = self._stops.get(session_id)
        if asked is not None and not asked[1].done():
            asked[1].set_result(False)
        self.votes_taken(session_id)  # none will be: a /close waiting for them is answered as it is
        self._closed(session_id)  # nor a close a command waits for
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():  # no holder, so no waiter: nobody shares it
            del self._locks[session_id]
