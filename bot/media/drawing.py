"""Pictures for chat drawn in a worker process, off the bot's event loop.

Matplotlib is pure Python: drawing a piano roll holds the GIL for 50-70 ms, so on a thread it still
stalls the event loop (docs/BENCHMARKS.md, event-loop lag). One worker process draws instead; it is
started at the first picture, with "spawn" because the bot process has threads, and the bot process
itself never imports matplotlib.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.worker import in_pool, worker_pool
from core.actions import Action
from core.music import Track


def _piano_roll(track: Track, title: str | None, before: Track | None, edit: Action | None) -> bytes:
    from bot.media.pianoroll import piano_roll_png

    return piano_roll_png(track, title, before, edit)


def _learning_curve(rewards: list[float], title: str, scores: list | None, spread: list | None) -> bytes:
    from bot.media.pianoroll import learning_curve_png

    return learning_curve_png(rewards, title, scores=scores, spread=spread)


def _ab_curve(chances: list, kept: list[bool], title: str) -> bytes:
    from bot.media.pianoroll import ab_curve_png

    return ab_curve_png(chances, kept, title)


class Drawer:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def piano_roll(self, track: Track, title: str | None = None, before: Track | None = None, edit: Action | None = None) -> bytes:
        """bot.media.pianoroll.piano_roll_png, drawn in the worker process."""
        return await self._draw(_piano_roll, track, title, before, edit)

    async def learning_curve(self, rewards: list[float], title: str, scores: list | None = None, spread: list | None = None) -> bytes:
        return await self._draw(_learning_curve, list(rewards), title, scores, spread)

    async def ab_curve(self, chances: list[float | None], kept: list[bool], title: str) -> bytes:
        """bot.media.pianoroll.ab_curve_png, drawn in the worker process."""
        return await self._draw(_ab_curve, list(chances), list(kept), title)

    def worker_pids(self) -> list[int]:
        """The worker's process id, once started (the footprint benchmark reads its memory)."""
        return [] if self._pool is None else list(self._pool._processes or {})

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def _draw(self, function, *args) -> bytes:
        if self._pool is None:
            self._pool = worker_pool()
        try:
            return await in_pool(self._pool, function, *args)
        except BrokenProcessPool:
            # The worker died (killed, out of memory): this picture fails, the next one starts a new worker.
            broken, self._pool = self._pool, None
            broken.shutdown(wait=False)
            raise
