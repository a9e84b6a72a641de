"""Worker processes (bot/worker.py): a burst of jobs runs at most MAX_WORKERS at once, and every job
still runs and returns its own result."""

import asyncio
import os
import time
from pathlib import Path

from bot import worker


def _job(folder: str, number: int) -> tuple[int, int]:
    """Marks itself running, notes how many jobs are running (itself included), works a while, unmarks."""
    mine = Path(folder) / f"running-{os.getpid()}"
    mine.touch()
    try:
        running = len(list(Path(folder).glob("running-*")))
        time.sleep(2)  # long enough that jobs started together would overlap: the cap is what prevents it
        return number, running
    finally:
        mine.unlink()


def test_a_burst_of_jobs_runs_at_most_max_workers_at_once(tmp_path):
    async def burst():
        return await asyncio.gather(*(worker.in_worker_process(_job, str(tmp_path), n) for n in range(5)))

    results = asyncio.run(burst())
    assert [number for number, _ in results] == list(range(5))
    assert max(running for _, running in results) <= worker.MAX_WORKERS == 2
    assert list(tmp_path.iterdir()) == []
