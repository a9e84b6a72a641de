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


def _sigint_ignored() -> bool:
    import signal

    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _ignores_sigint(pid: int) -> bool:
    """Whether process `pid` ignores SIGINT (signal 2: bit 1 of /proc's SigIgn mask)."""
    mask = next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << 1))


def test_worker_processes_ignore_ctrl_c_their_owner_ends_them():
    """A terminal's Ctrl-C reaches every process of the command: the bot's drawing and export workers printed a
    KeyboardInterrupt traceback each (found with `bench votes`, whose bot draws). They ignore SIGINT; the bot
    ends them (shutdown, terminate, or exit_with when it is gone)."""
    import random

    from bot.media.drawing import Drawer
    from core.music import generate_track

    # As this process found it: a suite started in the background by a script (`make test &`) ignores SIGINT from
    # its start, which only the workers' own setting may not depend on.
    heeded_before = not _ignores_sigint(os.getpid())
    assert asyncio.run(worker.in_worker_process(_sigint_ignored))
    drawer = Drawer()
    try:
        asyncio.run(drawer.piano_roll(generate_track(60, "major", 8, 120, random.Random(1))))
        [pid] = drawer.worker_pids()
        assert _ignores_sigint(pid)
    finally:
        drawer.close()
    assert (not _ignores_sigint(os.getpid())) == heeded_before  # this process's own action is left as it was
