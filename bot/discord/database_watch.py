"""Whether the running bot's database is still the one it opened, looked at when asked (/status) and every WATCH_SECONDS
while sessions run, not only at the next write: a database file removed while nobody votes or asks would otherwise go
unnoticed for as long as its round runs, its post counting down to a close that cannot be saved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from storage import DatabaseGone

WATCH_SECONDS = 5.0  # between two looks (Store.still_there: a stat of the file, in a thread)


class DatabaseWatch:
    def __init__(
        self, store, gone: Callable[[DatabaseGone], None], stopped: Callable[[], bool], spawn: Callable[[Coroutine], None],
    ) -> None:
        """`gone` is told what was found (RoundRunner.database_gone); `stopped` says whether voting stopped already."""
        self.store = store
        self._gone = gone
        self._stopped = stopped
        self._spawn = spawn
        self._watching = False

    async def present(self) -> bool:
        """Whether the database is still the one opened, looked at now (cheap, off the event loop); one that is gone
        is reported (`gone`) and stays so."""
        try:
            await self.store.still_there()
        except DatabaseGone as problem:
            self._gone(problem)
        return not self._stopped()

    def watch(self) -> None:
        """Look every WATCH_SECONDS from now on, till it is gone or the runner's shutdown (`spawn`'s tasks end then)."""
        if not self._watching:
            self._watching = True
            self._spawn(self._watch())

    async def _watch(self) -> None:
        while await self.present():
            await asyncio.sleep(WATCH_SECONDS)
