"""Event-loop lag of the real bot while it renders rounds and writes votes: `crowdtune bench loop`.

    python -m bot.bench.loop [--seconds 15] [--repeats 2] [--diagnose 5]

The bot (unmodified discord.py, RoundRunner, conductor, SQLite, the renderer) runs against the tests'
Discord-compatible server in a subprocess (bot/bench/fakeserver.py). Four sessions (32 notes; two in
A/B mode, so two renders a round) are voted on by a crowd reacting at up to 2,000 votes/s, 300 of them
on each round, its quorum: rounds close, settle, render and post all the time. A ticker task
sleeps 5 ms again and again in the bot's loop and records how late it wakes: the loop's lag. The same
ticker with the bot idle comes first, in the same run, as the machine's own noise. One more configuration
undoes the two changes that brought the lag down (gc.freeze() after start-up; piano rolls drawn in a
process) to show their effect. Each configuration runs --repeats times, the order alternating, and its lags are pooled.

Then, with --diagnose, the same load again while a thread samples the loop thread's stack whenever the
loop has not come back for 10 ms: where the loop blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bot.bench.common import LoggedErrors, machine_description, percentile, run_in_own_process, ticker
from bot.bench.verdicts import AT_MOST, judge, line
from bot.bench.fakeserver import ServerProcess, running_bot
from bot.media.render import Renderer
from storage import open_store

TARGET_LAG_P99_MS = 20.0

SESSIONS = 4
NOTES = 32
CROWD = 1000
VOTES_PER_SECOND = 2000
QUORUM = 300  # voters a round: rounds close often, so settling, rendering and posting never stop
STALL_SECONDS = 0.010


async def main(
    seconds: float, diagnose: float, variants: tuple[str, ...] | None = None, repeats: int = 2, idle_seconds: float = 2.0,
    settled: bool = False,
) -> dict:
    """With `settled`, each run first waits until every session has posted a round, and after the crowd until a
    vote is stored, however slow the machine: a smoke test counts what was done, not what fitted in `seconds`."""
    print(machine_description())
    print(
        f"{SESSIONS} sessions ({NOTES} notes, half A/B), a crowd of {CROWD} reacting at up to {VOTES_PER_SECOND} votes/s, "
        f"{QUORUM} voters a round (its quorum); the server in a subprocess. Lag: how late asyncio.sleep(0.005) wakes in the bot's loop."
    )
    names = list(variants or VARIANTS)
    runs = {"bot idle": [await _measure(idle_seconds, votes_per_second=0, name="bot idle")], **{name: [] for name in names}}
    for repeat in range(repeats):  # alternating the order, so drifting load falls on every variant alike
        for name in names if repeat % 2 == 0 else reversed(names):
            runs[name].append(await _measure(seconds, VOTES_PER_SECOND, changes=VARIANTS[name], settled=settled, name=name.strip()))
    print(f"\nloop lag, ms: median / p99 / max (ticks), {repeats} runs of {seconds:.0f} s pooled; what the bot did meanwhile")
    for name, results in runs.items():
        lags = [lag for result in results for lag in result["lags"]]
        votes = sum(result["votes"] for result in results) / sum(result["seconds"] for result in results)
        done = f"{sum(r['rounds'] for r in results)} rounds closed, {sum(r['renders'] for r in results)} OGG renders, {votes:.0f} votes/s stored"
        load = statistics.mean(result["load"] for result in results)
        print(
            f"  {name:38} {statistics.median(lags) * 1000:6.2f} / {percentile(lags, 99) * 1000:7.2f} / {max(lags) * 1000:7.2f} "
            f"({len(lags)})  {done if votes else ''}  load {load:.1f}"
        )
    p99 = percentile([lag for result in runs[AS_SHIPPED] for lag in result["lags"]], 99) * 1000
    print(line(f"as shipped: loop lag p99 < {TARGET_LAG_P99_MS:.0f} ms", judge(p99, TARGET_LAG_P99_MS, AT_MOST), f"{p99:.1f} ms (the pooled ticks' p99)"))
    slow = await _diagnose(diagnose) if diagnose else []
    return {"runs": runs, "p99_ms": p99, "slow": slow}


@contextlib.contextmanager
def heap_not_frozen(bot):
    """Undo `freeze_start_up_objects`: full collections walk every object again, as before it."""
    gc.unfreeze()
    yield


@contextlib.contextmanager
def piano_rolls_on_a_thread(bot):
    """Draw piano rolls on a thread of the bot's process, as before `bot.media.drawing`: matplotlib holds the
    GIL while it draws, so the loop waits although the thread is not on it. The drawer's own `_draw` is
    replaced, not `piano_roll`: the publisher's call and what is drawn stay the shipped ones whatever their
    arguments become (a copy of `piano_roll` with two of its four arguments failed every round)."""

    async def on_a_thread(function, *args):
        return await asyncio.to_thread(function, *args)

    bot.drawer._draw = on_a_thread
    try:
        yield
    finally:
        del bot.drawer._draw


AS_SHIPPED = "renders + votes, as shipped"
VARIANTS = {
    AS_SHIPPED: (),
    "  before: rolls on a thread, no freeze": (heap_not_frozen, piano_rolls_on_a_thread),
}


async def _measure(seconds: float, votes_per_second: float, changes=(), watch=None, settled: bool = False, name: str = AS_SHIPPED) -> dict:
    """One bot, one server, one crowd: the ticker's lags and what got done. `changes` are context
    managers entered with the bot once it is ready (to undo a change); `watch` an async one around the
    measured seconds only. BenchmarkFailed (naming `name`) when the bot logs an error, a round that failed:
    the figures would be those of a bot that posts nothing."""
    errors = LoggedErrors(f"loop, variant '{name}'")
    server = ServerProcess()
    try:
        with tempfile.TemporaryDirectory() as scratch, Renderer.open() as renderer, contextlib.ExitStack() as changed:
            db = Path(scratch) / "loop.db"
            store = await open_store(db)
            try:
                world = await server.call("world", users=CROWD, guilds={"loop": SESSIONS})
                async with running_bot(world, store, renderer, errors) as bot:
                    for change in changes:
                        changed.enter_context(change(bot))
                    if votes_per_second:
                        for channel in range(SESSIONS):
                            options = {"length": NOTES, "mode": "ab" if channel % 2 else "rating", "quorum": QUORUM, "rounds": 0, "round_minutes": 600.0}
                            await server.call("slash", guild="loop", command="compose", options=options, channel=channel)
                        if settled:
                            await _until(db, lambda done: done["renders"] >= SESSIONS, errors)
                    lags: list[float] = []
                    async with ticking(lags), (watch() if watch is not None else contextlib.nullcontext()):
                        if votes_per_second:
                            await server.call("crowd", guild="loop", votes_per_second=votes_per_second, seconds=seconds, per_round=QUORUM)
                            if settled:
                                await _until(db, lambda done: done["votes"] > 0, errors)
                        else:
                            await asyncio.sleep(seconds)
            finally:
                await store.close()
            return {"lags": lags, "seconds": seconds, "load": os.getloadavg()[0], **_done(db)}
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def ticking(lags: list[float]):
    stop = asyncio.Event()
    task = asyncio.create_task(ticker(lags, stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def _until(db: Path, condition, errors: LoggedErrors, limit: float = 600.0) -> None:
    """Wait until `condition(_done(db))` holds; a logged error (BenchmarkFailed) or the limit stops a broken
    bot from hanging the run."""
    waited = 0.0
    while not condition(_done(db)):
        errors.check()
        if waited > limit:
            raise RuntimeError(f"the bot did not get there in {limit:.0f} s: {_done(db)}")
        await asyncio.sleep(0.1)
        waited += 0.1


def _done(db: Path) -> dict:
    from storage import open_reader

    with open_reader(db) as reader:
        return reader.activity()


async def _diagnose(seconds: float) -> list[tuple[str, int]]:
    """The same load again, with a thread sampling the loop thread's stack whenever the loop has not come
    back for STALL_SECONDS: what holds the loop, by the innermost crowdtune frame (and the library
    function it was in). Garbage collection pauses are timed too."""
    sampler = StallSampler(threading.get_ident())
    gc_pauses: list[float] = []
    started: list[float] = []

    def time_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            gc_pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(time_gc)
    try:
        await _measure(seconds, VOTES_PER_SECOND, watch=sampler.watching, name="diagnosis")
    finally:
        gc.callbacks.remove(time_gc)
    print(
        f"\ndiagnosis ({seconds:.0f} s, same load): the loop thread's stack sampled every ms while the loop had not come back "
        f"for {STALL_SECONDS * 1000:.0f} ms; {sum(sampler.samples.values())} samples"
    )
    ranked = sampler.samples.most_common(15)
    for where, count in ranked:
        print(f"  {count:5d}  {where}")
    if gc_pauses:
        print(f"  garbage collection: {len(gc_pauses)} pauses, {sum(gc_pauses) * 1000:.0f} ms in all, the longest {max(gc_pauses) * 1000:.1f} ms")
    return ranked


class StallSampler:
    """A thread that samples the loop thread's stack while the loop is stalled (its heartbeat late)."""

    def __init__(self, loop_thread: int) -> None:
        self._loop_thread = loop_thread
        self._beat = time.monotonic()
        self._running = False
        self._thread = threading.Thread(target=self._sample, name="stall-sampler", daemon=True)
        self.samples: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def watching(self):
        """Sample while inside; a heartbeat task tells the sampler when the loop last ran."""

        async def heartbeat() -> None:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(0.001)

        beating = asyncio.create_task(heartbeat())
        self._beat = time.monotonic()
        self._running = True
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)  # so this thread gets the GIL within a millisecond to take its sample
        self._thread.start()
        try:
            yield
        finally:
            self._running = False
            self._thread.join()
            sys.setswitchinterval(switch_interval)
            beating.cancel()

    def _sample(self) -> None:
        while self._running:
            time.sleep(0.001)
            if time.monotonic() - self._beat > STALL_SECONDS:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None and self._running:  # not the loop thread joining this one at the end
                    self.samples[_where(frame)] += 1


def _where(frame) -> str:
    """The innermost frame of crowdtune's own code, and the innermost frame of all when that is elsewhere."""
    innermost = frame
    while frame is not None:
        path = frame.f_code.co_filename
        if any(f"/{package}/" in path for package in ("bot", "storage", "core")) and "site-packages" not in path:
            own = f"{Path(path).parent.name}/{Path(path).name}:{frame.f_lineno} {frame.f_code.co_name}"
            if frame is innermost:
                return own
            inner = innermost.f_code
            return f"{own}  <- in {Path(inner.co_filename).name}:{innermost.f_lineno} {inner.co_name}"
        frame = frame.f_back
    code = innermost.f_code
    return f"(library) {Path(code.co_filename).parent.name}/{Path(code.co_filename).name}:{innermost.f_lineno} {code.co_name}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the crowd votes while the lag is measured")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration, pooled")
    parser.add_argument("--diagnose", type=float, default=5.0, help="seconds of the stack-sampling pass (0: skip it)")
    arguments = parser.parse_args()
    run_in_own_process(main(arguments.seconds, arguments.diagnose, repeats=arguments.repeats))
