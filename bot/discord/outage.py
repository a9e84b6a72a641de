"""A retried step's failures in the log as an operator reads them: Discord unreachable (an outage) is expected and
said in one line with its reason for the whole process (not per session), a bug keeps its traceback, and neither is
repeated at every retry."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import traceback
from collections.abc import Callable, Hashable
from pathlib import Path

import aiohttp
import discord

from bot.progress import plural
from storage import DatabaseBusy, DatabaseUnreachable, DatabaseUnwritable

# How often (seconds) a failure that goes on is said again while it is retried: often enough that the log shows it
# has not ended (and how many tries it has cost), seldom enough that a long outage across many sessions stays readable.
STILL_FAILING_EVERY = 60.0

# Discord's side or the network between: what an outage raises. A plain OSError only on the HTTP path (OUTAGE_FILES):
# one elsewhere (a full disk, a file that cannot be read) is a problem on this machine, shown with its traceback.
OUTAGE_ERRORS = (aiohttp.ClientError, ConnectionError, TimeoutError, socket.gaierror, discord.DiscordServerError)
OUTAGE_FILES = (str(Path(aiohttp.__file__).parent), str(Path(discord.http.__file__)))
# The database refusing writes for want of room (a full disk), its server unreachable, or locked by another program past
# the wait (an operator's sqlite3 shell, a backup): the operator's, said without a traceback; what was stored stays, and
# the step works again once the database does.
OPERATORS_PROBLEMS = (DatabaseUnwritable, DatabaseUnreachable, DatabaseBusy)
_URL_PATH = re.compile(r"((?:https?|wss?)://[^/\s'\"]+)[^\s'\"]*")


def is_outage(problem: BaseException) -> bool:
    """Whether `problem` says Discord could not be reached or failed on its side (5xx), rather than a bug."""
    if isinstance(problem, OUTAGE_ERRORS):
        return True
    return isinstance(problem, OSError) and any(
        frame.filename.startswith(OUTAGE_FILES) for frame in traceback.extract_tb(problem.__traceback__)
    )


def reason(problem: BaseException) -> str:
    """`problem` in one line, its class and message; a URL only to its host (a webhook's path holds a token)."""
    message = _URL_PATH.sub(r"\1", " ".join(str(problem).split()))
    return f"{type(problem).__name__}: {message}" if message else type(problem).__name__


class Outage:
    """Discord unreachable as the whole process sees it, however many sessions' steps (`key`s) wait for it: one warning
    as the first fails, naming how many sessions run (`running()`: all of them need Discord to go on); then at most
    every STILL_FAILING_EVERY seconds one line for them all, with how many wait and how many tries failed; and one line
    once none waits any more. Per session it would be a line per server at each: 100 as an outage begins."""

    def __init__(
        self, log: logging.Logger, retry_seconds: float, running: Callable[[], int], stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """`stopping` says whether the bot stops (RoundRunner.shutdown): then the last step to wait ends unanswered."""
        self.log, self.retry_seconds, self.running, self.stopping = log, retry_seconds, running, stopping
        self.waiting: set[Hashable] = set()  # the steps whose last try failed for the outage; empty: no outage
        self.tries = 0  # failed tries in this outage, of every step
        self._since = self._said = 0.0  # when (monotonic s) the outage began, and was last said

    def failed(self, key: Hashable, problem: BaseException) -> None:
        now, began = time.monotonic(), not self.waiting
        self.waiting.add(key)
        self.tries += 1
        if began:
            self.tries, self._since, self._said = 1, now, now
            self.log.warning(
                "cannot reach Discord (%s); %s for it, each retrying every %g s; said again each minute while it lasts",
                reason(problem), plural(max(self.running(), 1), "running session waits", "running sessions wait"), self.retry_seconds,
            )
        elif now - self._said >= STILL_FAILING_EVERY:
            self._said = now
            self.log.warning(
                "still cannot reach Discord after %.0f s (%s): %s, %d tries failed; retrying",
                now - self._since, reason(problem), plural(len(self.waiting), "session waits", "sessions wait"), self.tries,
            )

    def ended(self, key: Hashable, worked: bool = True) -> None:
        """`key`'s step no longer waits: it worked (`worked`), or it stopped or fails for another reason."""
        if key not in self.waiting:
            return
        self.waiting.discard(key)
        if not self.waiting:
            # Found by a trial: a stop mid-outage said "no session waits for Discord any more", which read as recovery.
            if worked:
                how = "Discord works again"
            elif self.stopping():
                how = "stopped waiting for Discord as the bot stops, Discord still unreachable at the last try"
            else:
                how = "no session waits for Discord any more (their steps ended or failed otherwise)"
            self.log.info("%s, after %s in %.0f s", how, plural(self.tries, "failed try", "failed tries"), time.monotonic() - self._since)


class RetryLog:
    """What one retried step (`what`, e.g. "session 3's round") logs as it fails and works again. An outage is the
    process's, said by `outage` (shared by every step) for them all. A database that cannot be written or reached (a
    full disk, its server down: OPERATORS_PROBLEMS) is the operator's to fix, not a bug: one warning without traceback.
    A bug's first failure in a streak is one error with its traceback (a bug must be seen whole). Further failures of
    the same kind are said again at most every STILL_FAILING_EVERY seconds, with how many tries failed. "Works again"
    is said only when it is true: the step was done (`worked`), or a try got past the checkpoint (`passed`) beyond
    the one where the last try failed (posting a round works again says nothing of its close)."""

    def __init__(self, log: logging.Logger, what: str, outage: Outage, then: str | None = None) -> None:
        self.log, self.what, self.outage = log, what, outage
        self.then = then or f"retrying every {outage.retry_seconds:g} s"  # what follows a failure
        self.failing: str | None = None  # the problem's reason while it fails; None while it works or Discord is out
        self.tries = 0  # failed tries in this streak
        self._since = self._said = 0.0  # when (monotonic s) the streak began, and was last said
        self._passed = 0  # checkpoints this try has passed
        self._failed_after = 0  # checkpoints the last failed try had passed
        self.database_problem: BaseException | None = None  # OPERATORS_PROBLEMS' the last try failed on, till it works

    def failed(self, problem: BaseException) -> bool:
        """Say `problem` as the module says; True when it begins a streak of the operator's problem (the step's
        users may be told once: the log is the operator's)."""
        self._failed_after, self._passed = self._passed, 0
        self.database_problem = problem if isinstance(problem, OPERATORS_PROBLEMS) else None
        if is_outage(problem):
            self.failing = None
            self.outage.failed(self, problem)
            return False
        self.outage.ended(self, worked=False)
        now, kind, operators = time.monotonic(), reason(problem), isinstance(problem, OPERATORS_PROBLEMS)
        if kind != self.failing:
            self.failing, self.tries, self._since, self._said = kind, 1, now, now
            if operators:  # its message names the database and why; the traceback would say nothing more
                self.log.warning("%s cannot go on: %s; %s", self.what, problem, self.then)
            else:
                self.log.error("%s failed; %s", self.what, self.then, exc_info=problem)
            return operators
        self.tries += 1
        if now - self._said >= STILL_FAILING_EVERY:
            self._said = now
            self.log.warning(
                "%s: still failing after %d tries in %.0f s (%s); %s", self.what, self.tries, now - self._since, reason(problem), self.then,
            )
        return False

    def passed(self) -> None:
        """This try got past a checkpoint (Discord answered): works again only if past where the last try failed."""
        self._passed += 1
        if self._passed > self._failed_after:
            self._works_again()
        self.outage.ended(self)

    def worked(self) -> None:
        """The step was done."""
        self._passed = self._failed_after = 0
        self._works_again()
        self.outage.ended(self)

    def _works_again(self) -> None:
        if self.failing is not None:
            self.log.info("%s works again, after %s in %.0f s", self.what, plural(self.tries, "failed try", "failed tries"),
                          time.monotonic() - self._since)
        self.failing, self.tries, self.database_problem = None, 0, None

    def stopped(self) -> None:
        """The step is over (its session ended or was cancelled): an outage no longer waits for it."""
        self.outage.ended(self, worked=False)


def say_failure(log: logging.Logger, task: asyncio.Task) -> None:
    """A background task's failure in the log as it ends (else only "Task exception was never retrieved", with no word
    of what was left undone), as `say_not_done` says it. A step that must get done retries an outage itself
    (OwnReactions)."""
    if not task.cancelled() and (problem := task.exception()) is not None:
        say_not_done(log, task.get_name(), problem)


def say_not_done(log: logging.Logger, what: str, problem: BaseException) -> None:
    """The failure of the background step `what` (a task, an event's handler): Discord unreachable in one line, so is
    the operator's problem (a full disk, the database's server down: OPERATORS_PROBLEMS, its message naming the
    database and why), a bug with its traceback."""
    if is_outage(problem):
        log.warning("%s was not done: cannot reach Discord (%s)", what, reason(problem))
    elif isinstance(problem, OPERATORS_PROBLEMS):
        log.warning("%s was not done: %s", what, problem)
    else:
        log.error("%s failed", what, exc_info=problem)
