"""Work whose cost grows with the data (an export, a person's copy of their data), in a process of its
own, so the bot's event loop only waits for it.

A thread is not enough: MIDI and JSON building is pure Python and holds the GIL, so the loop would
still wait for it in 5 ms slices (sys.getswitchinterval). A fresh process per job ("spawn": the bot
process has threads) also gives its memory back to the system when the job ends.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from bot.stopping import unheard_by_children

PARENT_CHECK_SECONDS = 1.0
BACKGROUND_NICENESS = 10  # a job nobody waits on in real time yields the CPU to the bot's loop
# Worker processes at once per bot process (about 50 MiB each, and a database connection): more jobs wait
# their turn, so a burst of /export or /forget-me cannot exhaust memory or PostgreSQL's connections.
MAX_WORKERS = 2
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
T = TypeVar("T")


def exit_with(parent: int, niceness: int = 0) -> None:
    """In a worker: exit once the bot process is gone. A killed bot (SIGKILL, out of memory) cannot
    stop its pool, and the worker, which holds both ends of its own task pipe, would wait forever.
    `niceness` lowers the worker's CPU priority, so on a busy machine the bot's loop goes first."""
    if niceness:
        os.nice(niceness)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-the-bot", daemon=True).start()


def worker_pool(niceness: int = 0) -> ProcessPoolExecutor:
    """One worker process, started with "spawn", that exits with the bot (see exit_with)."""
    return ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with, initargs=(os.getpid(), niceness)
    )


def in_pool(pool: ProcessPoolExecutor, function: Callable[..., T], *args) -> asyncio.Future[T]:
    """loop.run_in_executor(pool, function, *args), in the event loop's thread. The pool's process, which it
    starts on demand, ignores SIGINT: Ctrl-C on a terminal reaches every process of the command, and the
    worker's own KeyboardInterrupt would be a traceback; the pool's owner ends it (bot.stopping.unheard_by_children)."""
    with unheard_by_children((signal.SIGINT,)):
        return asyncio.get_running_loop().run_in_executor(pool, function, *args)


async def in_worker_process(function: Callable[..., T], *args) -> T:
    """`function(*args)` in a new worker process; its result (or exception). Function, arguments and
    result must pickle. The worker runs at a lower CPU priority (BACKGROUND_NICENESS). Cancelled
    (the bot stops): the worker is ended at once. At most MAX_WORKERS run at once; later calls wait."""
    loop = asyncio.get_running_loop()
    turns = _turns.setdefault(loop, asyncio.Semaphore(MAX_WORKERS))
    async with turns:
        pool = worker_pool(BACKGROUND_NICENESS)
        try:
            return await in_pool(pool, function, *args)
        except asyncio.CancelledError:
            for process in list((pool._processes or {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
