"""A retried step's failures in the log as an operator reads them: Discord unreachable (an outage) is expected and
said in one line with its reason, a bug keeps its traceback, and neither is repeated at every retry."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import traceback
from pathlib import Path

import aiohttp
import discord

# How often (seconds) a failure that goes on is said again while it is retried: often enough that the log shows it
# has not ended (and how many tries it has cost), seldom enough that a long outage across many sessions stays readable.
STILL_FAILING_EVERY = 60.0

# Discord's side or the network between: what an outage raises. A plain OSError only on the HTTP path (OUTAGE_FILES):
# one elsewhere (a full disk, a file that cannot be read) is a problem on this machine, shown with its traceback.
OUTAGE_ERRORS = (aiohttp.ClientError, ConnectionError, TimeoutError, socket.gaierror, discord.DiscordServerError)
OUTAGE_FILES = (str(Path(aiohttp.__file__).parent), str(Path(discord.http.__file__)))
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


class RetryLog:
    """What one retried step (`what`, e.g. "session 3's round") logs as it fails and works again. The first failure of
    a streak is one line: a warning with its reason for an outage, an error with its traceback for anything else (a bug
    must be seen whole). Further failures of the same kind (any outage; the same bug) are said again at most every
    STILL_FAILING_EVERY seconds, with how many tries failed; the first success after a streak says it works again."""

    def __init__(self, log: logging.Logger, what: str, retry_seconds: float) -> None:
        self.log, self.what, self.retry_seconds = log, what, retry_seconds
        self.failing: str | None = None  # the streak's kind: "outage" or the bug's reason; None while it works
        self.tries = 0  # failed tries in this streak
        self._since = self._said = 0.0  # when (monotonic s) the streak began, and was last said

    def failed(self, problem: BaseException) -> None:
        outage, now = is_outage(problem), time.monotonic()
        kind = "outage" if outage else reason(problem)
        if kind != self.failing:
            self.failing, self.tries, self._since, self._said = kind, 1, now, now
            if outage:
                self.log.warning(
                    "%s: cannot reach Discord (%s); retrying every %g s, said again each minute while it lasts",
                    self.what, reason(problem), self.retry_seconds,
                )
            else:
                self.log.error("%s failed; retrying every %g s", self.what, self.retry_seconds, exc_info=problem)
            return
        self.tries += 1
        if now - self._said >= STILL_FAILING_EVERY:
            self._said = now
            self.log.warning(
                "%s: still failing after %d tries in %.0f s (%s); retrying", self.what, self.tries, now - self._since, reason(problem),
            )

    def worked(self) -> None:
        if self.failing is not None:
            self.log.info("%s works again, after %d failed tries in %.0f s", self.what, self.tries, time.monotonic() - self._since)
        self.failing, self.tries = None, 0
