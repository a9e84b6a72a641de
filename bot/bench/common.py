"""What every benchmark shares: the machine it ran on, percentiles and spreads, paired ratios, the
event-loop ticker and the `crowdtune` command.

Timings on a shared machine drift with everything else it runs, so each benchmark measures what it
compares side by side, interleaved within every trial, and prints medians, spreads (10th-90th
percentile) and ratios. Nothing here asserts on time: the tests only check that the code runs and
counts correctly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ExitCode, StartupError

TIMGM6MB = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
TICK_SECONDS = 0.005


def machine_description() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    memory_kib = next((int(line.split()[1]) for line in _read_lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    fluidsynth = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True).stdout.split("\n")[0] if shutil.which("fluidsynth") else "no fluidsynth"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores, {cpu}, {memory_kib / 2**20:.1f} GiB RAM; Python {platform.python_version()}; "
        f"{fluidsynth}; load average {load}"
    )


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: list[float], scale: float = 1000.0, digits: int = 1) -> str:
    """'median [p10-p90]' in milliseconds by default."""
    return f"{statistics.median(values) * scale:.{digits}f} [{percentile(values, 10) * scale:.{digits}f}-{percentile(values, 90) * scale:.{digits}f}]"


@dataclass
class Samples:
    """Wall and CPU seconds of one measured path, trial by trial."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def paired_ratios(slower: Samples, faster: Samples) -> list[float]:
    """Trial-by-trial ratios: both were measured in the same trial, so load drift cancels out."""
    return [a / b for a, b in zip(slower.wall, faster.wall)]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# What a benchmark's own child processes (crowdtune render, the footprint's probe, the bot of `bench loop`) must not
# inherit: the user's settings and token. A bad setting would end the child after minutes of work (bench reads no
# settings: README), a good one would change what is measured (a soundfont, CROWDTUNE_VOTE_BURST), and the token
# could connect a child to Discord. They run as crowdtune runs by default, the same on every machine.
_NOT_INHERITED = ("CROWDTUNE_", "DISCORD_TOKEN")


def measured_environment(**variables: str) -> dict[str, str]:
    """This process's environment without CROWDTUNE_* and DISCORD_TOKEN (_NOT_INHERITED), plus `variables` (a
    benchmark's own, checked: CROWDTUNE_BENCH_DB), and with this crowdtune's folder first on PYTHONPATH, so that a
    child started in a scratch folder imports the same code as this process."""
    import bot

    source = str(Path(bot.__file__).resolve().parents[1])
    environment = {key: value for key, value in os.environ.items() if not key.upper().startswith(_NOT_INHERITED)}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [source, environment.get("PYTHONPATH")]))
    return {**environment, **variables}


def run_measured(name: str, command: list[str], scratch: Path, crowdtune: bool = True) -> str:
    """Run `command`, a process a benchmark measures, in the scratch folder `scratch` (where no .env is) with
    `measured_environment()`; its standard output. StartupError (one line: `name`, its exit code and the last line
    of its stderr) if it fails anyway, whose code is the child's own when it is `crowdtune` (README's "Exit codes"
    mean the same for it), 128 + N when signal N ended it, else ExitCode.BUG."""
    result = subprocess.run(command, cwd=scratch, env=measured_environment(), capture_output=True)
    if result.returncode == 0:
        return result.stdout.decode(errors="replace")
    lines = [line.strip() for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
    ended = f"signal {-result.returncode}" if result.returncode < 0 else f"exit code {result.returncode}"
    if result.returncode < 0:
        code = 128 - result.returncode
    else:
        code = result.returncode if crowdtune and result.returncode in set(ExitCode) else ExitCode.BUG
    raise StartupError(f"{name} failed ({ended}): {lines[-1] if lines else 'it said nothing on stderr'}", code)


class BenchmarkFailed(StartupError):
    """What a benchmark measures did not do its work (the bot's rounds failed): its figures would describe a bot
    doing nothing, so none is printed. One line, exit code 1 (ExitCode.BUG: a bug, of the benchmark or the bot)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.BUG)


class LoggedErrors(logging.Handler):
    """Inside it, the errors logged in this process are collected, not printed: a bot retries a failed round,
    logging its traceback, for as long as it runs. `check()` (also on leaving) raises BenchmarkFailed when any
    was, naming `what` ran, their count and the first. Warnings are printed as they would be without it."""

    def __init__(self, what: str) -> None:
        super().__init__(logging.WARNING)
        self.what = what
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.records.append(record)
        elif logging.lastResort is not None:
            logging.lastResort.handle(record)  # what logging does when no handler is configured

    def check(self) -> None:
        if not self.records:
            return
        first = self.records[0]
        cause = f": {first.exc_info[0].__name__}: {first.exc_info[1]}" if first.exc_info and first.exc_info[1] else ""
        said = f"{first.getMessage()}{cause}".splitlines()[0]
        raise BenchmarkFailed(f"{self.what}: {len(self.records)} errors logged, so no figures; the first: {said}")

    def __enter__(self) -> LoggedErrors:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, kind, problem, traceback) -> None:
        logging.getLogger().removeHandler(self)
        if kind is None:
            self.check()


def crowdtune_command() -> list[str]:
    beside_python = Path(sys.executable).parent / "crowdtune"
    if beside_python.is_file():
        return [str(beside_python)]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    """Sleeps TICK_SECONDS again and again and records how late each wake-up is: the loop's lag."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(TICK_SECONDS)
        lags.append(loop.time() - start - TICK_SECONDS)


@contextlib.contextmanager
def quiet_signal_exit() -> Iterator[None]:
    """In a benchmark's own process: Interrupted or Terminated (a signal, after the cleanup) ends it with exit code
    130 or 143 without a word: `crowdtune bench`, which passes the signal on, says it
    (bot.stopping.run_passing_signals). Its output is line-buffered meanwhile: each figure as it comes, into a
    pipe or a file too."""
    from bot.errors import Stopped

    sys.stdout.reconfigure(line_buffering=True)
    try:
        yield
    except Stopped as stop:
        sys.exit(stop.code)


def run_in_own_process(work) -> None:
    """A benchmark in a process of its own (`crowdtune bench loop|votes`): asyncio.run(work), which SIGINT and
    SIGTERM cancel so its cleanup runs (its server process stopped), then quiet_signal_exit; BenchmarkFailed is
    its one line on stderr and exit code 1."""
    from bot.stopping import signals_end_this_task

    async def stoppable() -> None:
        async with signals_end_this_task():
            await work

    with quiet_signal_exit():
        try:
            asyncio.run(stoppable())
        except BenchmarkFailed as problem:
            print(f"crowdtune bench: {problem}", file=sys.stderr)
            sys.exit(problem.code)
