"""Each running session's task (its rounds, one after another: the round runner) and the event that wakes it to look
at its round again, held while it runs only.

Why only then: a session that ended (its rounds over, stopped, deleted, an error, a cancel, even before it began) is
never woken and never awaited again, so what is held grows with the sessions running, not with every session the
process ever ran. Both go in one place (`_ended`, the task's own end), then `ended(session_id)` frees the rest."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine


class SessionTasks:
    def __init__(self, ended: Callable[[int], None]) -> None:
        self.tasks: dict[int, asyncio.Task] = {}  # session id -> its runner's task, while it runs (or ends: `_ended`)
        self._wake: dict[int, asyncio.Event] = {}  # session id -> set to make its runner look again (`event`)
        self.ended = ended

    def running(self, session_id: int) -> bool:
        task = self.tasks.get(session_id)
        return task is not None and not task.done()

    def count(self) -> int:
        """How many sessions run."""
        return sum(not task.done() for task in self.tasks.values())

    def start(self, session_id: int, run: Callable[[], Coroutine]) -> None:
        """Run `run()` as the session's task unless one runs; a later start (a resume) makes a new one."""
        if self.running(session_id):
            return
        self._wake[session_id] = asyncio.Event()
        task = self.tasks[session_id] = asyncio.create_task(run(), name=f"session-{session_id}")
        task.add_done_callback(functools.partial(self._ended, session_id))

    def event(self, session_id: int) -> asyncio.Event:
        """What wakes the session's runner (only its own task waits on it)."""
        return self._wake[session_id]

    def wake(self, session_id: int) -> None:
        event = self._wake.get(session_id)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    def _ended(self, session_id: int, task: asyncio.Task) -> None:
        # A start after the task was done and before this ran replaced it: that run is the session's now, and its end frees it.
        if self.tasks.get(session_id) is task:
            del self.tasks[session_id], self._wake[session_id]
            self.ended(session_id)
