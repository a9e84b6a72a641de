"""Benchmarks that print figures: `crowdtune bench learning|render|loop|votes|qtable|footprint|scaling`.

One module a benchmark, imported only when it runs (the CLI stays fast): `learning` (simulated crowds,
the agents' quality over rounds), `render` (track to audio), `loop` and `votes` (the real bot against
the tests' Discord-compatible server in a process of its own: `fakeserver`; they need a source
checkout), `qtable` (a million-row scope), `footprint` (memory, start-up) and `scaling` (SQLite against
PostgreSQL with 1, 2 and 4 processes, on the tests' private PostgreSQL server: a source checkout too).
`common` holds what they share.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

PERF_BENCHMARKS = ("render", "loop", "votes", "qtable", "footprint", "export", "scaling")
CHECKOUT = Path(__file__).resolve().parents[2]


def run(which: str, environment: dict[str, str] | None = None, arguments: list[str] | None = None) -> int:
    """Run one performance benchmark by name (see PERF_BENCHMARKS); its exit code. `environment`: variables
    added to those of a benchmark run in a process of its own (CROWDTUNE_BENCH_DB, checked, for `scaling`);
    `arguments`: its command line's, checked (`--rounds N` for `scaling`)."""
    if which in ("loop", "votes", "scaling"):
        # A process of their own (they start a server process and describe the machine themselves).
        if not (CHECKOUT / "tests" / "fakediscord").is_dir():
            print(f"crowdtune bench {which} uses the tests' servers (tests/): it needs a source checkout")
            return 1
        from bot.stopping import run_passing_signals

        from bot.bench.common import measured_environment

        # A signal is passed on: the benchmark stops what it started (scaling: its private server) and ends. Its bot
        # reads no setting of this one's (measured_environment): only `environment`, checked here.
        return run_passing_signals(
            [sys.executable, "-m", f"bot.bench.{which}", *(arguments or [])], cwd=CHECKOUT, env=measured_environment(**(environment or {})),
        )
    from bot.bench.common import machine_description

    print(machine_description())
    module = importlib.import_module(f"bot.bench.{which}")
    result = module.main()
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    return 0
