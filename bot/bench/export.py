"""The export of a long history: `crowdtune bench export`. A 100,000-round scope (made by direct
inserts: storage.clone_rounds) exported the way /export does it, in a worker process, while the
event loop's lag is sampled; the same loop idle, a control loop in another process sampled at the same
time (what the machine's load alone does), and a 1,000-round export run on the loop itself (as before
issue 12), in the same run for comparison.

Targets (issue 12): event-loop lag p99 under 20 ms while exporting, the export's peak memory growth
under 100 MiB; its time is reported per 1,000 rounds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from bot.bench.common import percentile, ticker
from bot.bench.verdicts import AT_MOST, judge, line

BIG_ROUNDS = 100_000
SMALL_ROUNDS = 1_000
VOTERS = 3
TARGET_LAG_P99_MS = 20.0
TARGET_MEMORY_MIB = 100.0
IDLE_SECONDS = 3.0


def measured_export(location: str, out: Path, scope_id: str) -> tuple[dict[str, int], float, float]:
    """In the worker: write_export's counts, its seconds and its peak memory growth (MiB, the
    process's maximum resident size after minus before; imports are done before it starts)."""
    from storage.export import write_export

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    counts = write_export(location, out, scope_id)
    seconds = time.perf_counter() - start
    return counts, seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


async def _scope_of(store, scope_id: str, rounds: int) -> None:
    """A scope with `rounds` closed rounds: one played through the conductor, the rest its copies."""
    from bot.conductor import Conductor
    from core.engine import SessionSpec
    from storage import clone_rounds

    conductor = Conductor(store)
    session = await conductor.start(scope_id, "guild", f"channel-{scope_id}", SessionSpec(rounds=None), actor="bench")
    played = await conductor.open_round(session.id)
    for voter in range(VOTERS):
        await conductor.vote(played.id, f"user:{voter}", 5 + voter)
    await conductor.close(played.id)
    await asyncio.to_thread(clone_rounds, store.path, played.id, rounds - 1, VOTERS)


def control_ticker(connection) -> None:
    """In a process of its own: the same ticker on an idle event loop until told to stop, then its lags
    back through `connection`. What the machine's load alone does to a loop, measured at the same time."""

    async def tick() -> list[float]:
        lags: list[float] = []
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(connection.fileno(), stop.set)
        await ticker(lags, stop)
        return lags

    connection.send(asyncio.run(tick()))


async def _lag_while(work) -> tuple[list[float], list[float], float, object]:
    """Loop lags (s) sampled while `work` (a coroutine) runs, and a control loop's in another process
    meanwhile; the work's seconds and result."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    control = context.Process(target=control_ticker, args=(theirs,), daemon=True)
    control.start()
    lags: list[float] = []
    stop = asyncio.Event()
    sampling = asyncio.create_task(ticker(lags, stop))
    await asyncio.sleep(0.5)  # the control process is up and ticking
    lags.clear()
    start = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - start
    stop.set()
    await sampling
    ours.send("stop")
    control_lags = await asyncio.to_thread(ours.recv)
    control.join()
    return lags, control_lags, seconds, result


def _lags(lags: list[float]) -> str:
    return f"p50 {percentile(lags, 50) * 1000:.2f}, p99 {percentile(lags, 99) * 1000:.2f}, max {max(lags) * 1000:.1f} ms ({len(lags)} samples)"


async def main(big_rounds: int = BIG_ROUNDS, small_rounds: int = SMALL_ROUNDS) -> dict:
    from bot.worker import in_worker_process
    from storage import open_store
    from storage.export import write_export

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        store = await open_store(folder / "history.db")
        try:
            start = time.perf_counter()
            await _scope_of(store, "guild:big", big_rounds)
            await _scope_of(store, "guild:small", small_rounds)
            print(f"scopes of {big_rounds:,} and {small_rounds:,} rounds ({VOTERS} votes each) made in {time.perf_counter() - start:.1f} s")

            idle, idle_control, _, _ = await _lag_while(asyncio.sleep(IDLE_SECONDS))
            print(f"event-loop lag, idle ({IDLE_SECONDS:g} s): {_lags(idle)}; control loop meanwhile: {_lags(idle_control)}")

            async def on_the_loop():
                return write_export(store.path, folder / "small.zip", "guild:small")

            blocked, _, seconds, _ = await _lag_while(on_the_loop())
            print(f"before (on the loop), {small_rounds:,} rounds: {seconds:.1f} s, the loop frozen for {max(blocked) * 1000:.0f} ms at once")

            bot_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            lags, control, wall, (counts, seconds, growth) = await _lag_while(
                in_worker_process(measured_export, store.path, folder / "big.zip", "guild:big")
            )
            bot_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - bot_before) / 1024
            size = (folder / "big.zip").stat().st_size
        finally:
            await store.close()
    p99 = percentile(lags, 99) * 1000
    print(f"in a worker process, {counts['rounds']:,} rounds, {counts['votes']:,} votes, {counts['compositions']:,} MIDI files, "
          f"zip {size / 2**20:.1f} MiB:")
    print(f"  {wall:.1f} s in all ({seconds:.1f} s writing: {seconds / counts['rounds'] * 1000:.2f} s per 1,000 rounds; "
          f"before, on the loop: {_per_thousand(blocked, small_rounds):.2f} s per 1,000)")
    print(f"  event-loop lag meanwhile: {_lags(lags)}")
    print(f"  a control loop in another process at the same time (the machine's load alone): {_lags(control)}")
    print(f"  the worker's peak memory growth {growth:.1f} MiB; the bot process's {bot_growth:.1f} MiB")
    print(line(f"event-loop lag p99 < {TARGET_LAG_P99_MS:g} ms", judge(p99, TARGET_LAG_P99_MS, AT_MOST), f"{p99:.2f} ms"))
    print(line(f"the worker's memory growth < {TARGET_MEMORY_MIB:g} MiB", judge(growth, TARGET_MEMORY_MIB, AT_MOST), f"{growth:.1f} MiB"))
    return {
        "lag_p99_ms": p99, "control_p99_ms": percentile(control, 99) * 1000, "worker_growth_mib": growth,
        "seconds_per_1000": seconds / counts["rounds"] * 1000,
    }


def _per_thousand(lags: list[float], rounds: int) -> float:
    return max(lags) / rounds * 1000 if lags else float("nan")
