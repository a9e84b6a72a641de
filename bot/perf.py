"""Performance benchmarks: `crowdtune bench render|loop|qtable|footprint`.

Timings on a shared machine drift with everything else it runs, so each benchmark measures what it
compares side by side, interleaved within every trial, and prints medians, spreads (10th-90th
percentile) and ratios. Nothing here asserts on time: the tests only check that the code runs and
counts correctly. The votes-at-scale benchmark needs the tests' Discord server: benchmarks/votes.py.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

TIMGM6MB = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
NOTE_COUNTS = (8, 32, 64)
RENDER_TRIALS = 15
CLI_FILES = 20  # MIDI files per `crowdtune render` run
CLI_RUNS = 3
TARGET_VS_MIDI2AUDIO = 2.5  # at least this much faster than midi2audio to WAV
TARGET_VS_SYNTHESIS = 1.5  # at most this much slower than synthesis alone
TARGET_LAG_P99_MS = 20.0
TARGET_Q_MEDIAN_MS = 1.0
TARGET_RSS_MIB = 200.0
TARGET_HELP_SECONDS = 0.3


def run(which: str) -> int:
    if which == "loop":
        return bench_loop()  # a process of its own, which describes the machine itself
    benchmarks: dict[str, Callable[[], object]] = {
        "render": bench_render,
        "qtable": lambda: asyncio.run(bench_qtable()),
        "footprint": bench_footprint,
    }
    print(machine_description())
    benchmarks[which]()
    return 0


# -- shared --------------------------------------------------------------------------------------------


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


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


@dataclass
class Samples:
    """Wall and CPU seconds of one measured path, trial by trial."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def paired_ratios(slower: Samples, faster: Samples) -> list[float]:
    """Trial-by-trial ratios: both were measured in the same trial, so load drift cancels out."""
    return [a / b for a, b in zip(slower.wall, faster.wall)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- 1. track to upload-ready audio ------------------------------------------------------------------


def benchmark_track(notes: int, seed: int = 0):
    """The anchors' clip shape: one beat a note at 120 bpm (32 notes = 16 s), a chord every fourth note, drums."""
    from core.music import generate_track

    track = generate_track(60, "major", notes, 120, random.Random(notes * 1000 + seed))
    return track.with_notes(tuple(replace(n, duration=1.0, chord=i % 4 == 0) for i, n in enumerate(track.notes)))


def midi2audio_command(soundfont: Path, midi: Path, wav: Path) -> list[str]:
    """What midi2audio runs (its FluidSynth().midi_to_audio), as the issue states it."""
    return ["fluidsynth", "-ni", str(soundfont), str(midi), "-F", str(wav), "-r", "44100"]


def bench_render(
    note_counts: tuple[int, ...] = NOTE_COUNTS, trials: int = RENDER_TRIALS, cli_files: int = CLI_FILES, cli_runs: int = CLI_RUNS
) -> dict:
    from bot.render import Renderer, synthesize_only
    from core.midi import midi_bytes, track_to_midi

    soundfont = TIMGM6MB if TIMGM6MB.is_file() else None
    results: dict = {"sizes": {}}
    with Renderer.open(soundfont) as renderer, tempfile.TemporaryDirectory() as scratch:
        print(f"soundfont {renderer.soundfont.name}, backend {renderer.backend}; {trials} trials per size, paths interleaved")
        print("wall ms: median [p10-p90]; cpu ms: median (all threads, or the child process)")
        for notes in note_counts:
            track = benchmark_track(notes)
            midi = track_to_midi(track)
            midi_path, wav_path = Path(scratch) / f"clip{notes}.mid", Path(scratch) / f"clip{notes}.wav"
            midi_path.write_bytes(midi_bytes(midi))
            paths: dict[str, Callable[[], object]] = {
                "crowdtune -> OGG Opus": lambda: renderer.render_ogg(track_to_midi(track)),
                "crowdtune -> WAV": lambda: renderer.render_wav(track_to_midi(track)),
                "OGG, level kept": lambda: renderer.render_ogg(track_to_midi(track), keep_level=True),
                "WAV, level kept": lambda: renderer.render_wav(track_to_midi(track), keep_level=True),
                "synthesis alone": lambda: synthesize_only(renderer, midi),
                "midi2audio -> WAV": lambda: subprocess.run(midi2audio_command(renderer.soundfont, midi_path, wav_path), capture_output=True, check=True),
            }
            samples = {name: Samples() for name in paths}
            for action in paths.values():  # warm-up: the 48 kHz synth, the page cache
                action()
            names = list(paths)
            for trial in range(trials):
                for name in names[trial % len(names) :] + names[: trial % len(names)]:  # rotate who goes first
                    cpu_before, child_before, start = time.process_time(), _children_cpu(), time.perf_counter()
                    paths[name]()
                    samples[name].wall.append(time.perf_counter() - start)
                    samples[name].cpu.append(time.process_time() - cpu_before + _children_cpu() - child_before)
            results["sizes"][notes] = _report_render(notes, track.seconds, samples)
        results["cli"] = _bench_render_command(renderer.soundfont, Path(scratch), cli_files, cli_runs)
    return results


def _report_render(notes: int, seconds: float, samples: dict[str, Samples]) -> dict:
    print(f"\n{notes} notes ({seconds:.0f} s of music):")
    for name, measured in samples.items():
        print(f"  {name:24} wall {spread(measured.wall):>22} ms   cpu {statistics.median(measured.cpu) * 1000:6.1f} ms")
    ogg, wav, synth, m2a = (samples[k] for k in ("crowdtune -> OGG Opus", "crowdtune -> WAV", "synthesis alone", "midi2audio -> WAV"))
    ogg_kept, wav_kept = samples["OGG, level kept"], samples["WAV, level kept"]
    ratios = {
        "levelling: OGG / level kept": paired_ratios(ogg, ogg_kept),
        "levelling: WAV / level kept": paired_ratios(wav, wav_kept),
        "WAV level kept / synthesis": paired_ratios(wav_kept, synth),
        "midi2audio / crowdtune OGG": paired_ratios(m2a, ogg),
        "midi2audio / crowdtune WAV": paired_ratios(m2a, wav),
        "crowdtune OGG / synthesis": paired_ratios(ogg, synth),
        "crowdtune WAV / synthesis": paired_ratios(wav, synth),
    }
    targets = {
        "midi2audio / crowdtune OGG": (f">= {TARGET_VS_MIDI2AUDIO}", lambda ratio: ratio >= TARGET_VS_MIDI2AUDIO),
        "crowdtune OGG / synthesis": (f"<= {TARGET_VS_SYNTHESIS}", lambda ratio: ratio <= TARGET_VS_SYNTHESIS),
    }
    for name, values in ratios.items():
        median = statistics.median(values)
        bound, met = targets.get(name, ("", None))
        note = f"  target {bound}: {verdict(met(median))}" if met else ""
        print(f"  {name:28} {median:6.2f}x  [{percentile(values, 10):.2f}-{percentile(values, 90):.2f}]{note}")
    return {name: statistics.median(values) for name, values in ratios.items()}


def _bench_render_command(soundfont: Path, scratch: Path, files: int, runs: int) -> dict:
    """`crowdtune render` over many files (one process, the soundfont loaded once) against one
    midi2audio run per file, in the same run; both include starting their programs."""
    from core.midi import midi_bytes, track_to_midi

    inputs = [scratch / f"many-{seed}.mid" for seed in range(files)]
    for seed, path in enumerate(inputs):
        path.write_bytes(midi_bytes(track_to_midi(benchmark_track(32, seed))))
    crowdtune = _crowdtune_command()
    commands = {
        "crowdtune render --format ogg": lambda: subprocess.run([*crowdtune, "render", *map(str, inputs), "--out-dir", str(scratch / "ogg"), "--format", "ogg", "--soundfont", str(soundfont)], capture_output=True, check=True),
        "crowdtune render --format wav": lambda: subprocess.run([*crowdtune, "render", *map(str, inputs), "--out-dir", str(scratch / "wav"), "--format", "wav", "--soundfont", str(soundfont)], capture_output=True, check=True),
        f"midi2audio x {files}": lambda: [subprocess.run(midi2audio_command(soundfont, p, scratch / f"{p.stem}.wav"), capture_output=True, check=True) for p in inputs],
    }  # fmt: skip
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for run_index in range(runs):
        names = list(commands)
        for name in names[run_index % len(names) :] + names[: run_index % len(names)]:
            start = time.perf_counter()
            commands[name]()
            walls[name].append(time.perf_counter() - start)
    print(f"\nmany files: {files} MIDI files of 16 s, {runs} runs interleaved; wall s: median [p10-p90]")
    for name, values in walls.items():
        print(f"  {name:32} {spread(values, 1, 2):>20} s   {statistics.median(values) / files * 1000:6.0f} ms a file")
    m2a = statistics.median(walls[f"midi2audio x {files}"])
    result = {}
    for fmt in ("ogg", "wav"):
        ratio = m2a / statistics.median(walls[f"crowdtune render --format {fmt}"])
        result[fmt] = ratio
        print(f"  midi2audio / crowdtune render ({fmt}): {ratio:.2f}x  target >={TARGET_VS_MIDI2AUDIO}: {verdict(ratio >= TARGET_VS_MIDI2AUDIO)}")
    return result


def _crowdtune_command() -> list[str]:
    beside_python = Path(sys.executable).parent / "crowdtune"
    if beside_python.is_file():
        return [str(beside_python)]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


# -- 2. event-loop lag -----------------------------------------------------------------------------------

TICK_SECONDS = 0.005
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def bench_loop() -> int:
    """The real bot against the tests' Discord-compatible server: benchmarks/loop.py, from a checkout."""
    script = BENCHMARKS / "loop.py"
    if not script.is_file() or not (BENCHMARKS.parent / "tests" / "fakediscord").is_dir():
        print(f"crowdtune bench loop runs {script} against tests/fakediscord: it needs a source checkout")
        return 1
    return subprocess.run([sys.executable, str(script)], check=False).returncode


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    """Sleeps TICK_SECONDS again and again and records how late each wake-up is: the loop's lag."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(TICK_SECONDS)
        lags.append(loop.time() - start - TICK_SECONDS)


# -- 4. big Q-tables -------------------------------------------------------------------------------------

Q_ROWS = 1_000_000
Q_TRIALS = 200


async def bench_qtable(rows: int = Q_ROWS, trials: int = Q_TRIALS, note_counts: tuple[int, ...] = (8, 64)) -> dict:
    from core.agent import QEntry, action_keys
    from core.engine import SessionSpec, plan_keys, plan_round, round_rng, settle, settle_keys
    from core.crowd import Ballot, robust_rating
    from storage import SqliteStore

    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        store = await SqliteStore.open(Path(scratch) / "q.db")
        big, small = "sim:big", "sim:small"
        for scope in (big, small):
            await store.ensure_scope(scope, "sim", scope)
        start = time.perf_counter()
        keys = _realistic_q_keys(rows)
        made = time.perf_counter() - start
        fill_rng = random.Random(1)
        start = time.perf_counter()
        await store.put_q_entries(big, ((key, QEntry(fill_rng.uniform(-3, 3), fill_rng.randint(1, 50))) for key in keys))
        filled = time.perf_counter() - start
        await store.put_q_entries(small, ((key, QEntry(0.5, 3)) for key in keys[:1000]))
        del keys  # a million tuples the bot never holds: the collector would walk them during the choices
        gc.collect()
        size = await store.q_size(big)
        print(f"scope of {size:,} state-action rows ({made:.1f} s to make the keys, {filled:.1f} s to insert them in one transaction);")
        print(f"the same work on a scope of {await store.q_size(small):,} rows, interleaved; {trials} trials; ms: median [p10-p90]")
        for notes in note_counts:
            spec = SessionSpec(length=notes)
            tracks = [SessionSpec(length=notes, seed=seed).first_track() for seed in range(trials)]
            timings = {f"{what} ({label})": [] for what in ("choose", "update: write", "update: whole close") for label in ("1e6", "small")}
            parts = {"choose, 1e6: plan_keys": [], "choose, 1e6: q_entries (SQLite)": [], "choose, 1e6: plan_round": []}
            for trial, track in enumerate(tracks):
                for scope, label in ((big, "1e6"), (small, "small")) if trial % 2 else ((small, "small"), (big, "1e6")):
                    action_keys.cache_clear()  # each choice computes its track's keys, as a round's new track does
                    start = time.perf_counter()
                    wanted = plan_keys(spec, track)
                    keyed = time.perf_counter()
                    table = await store.q_entries(scope, wanted)
                    fetched = time.perf_counter()
                    plan = plan_round(spec, trial, track, table, round_rng(spec, trial))
                    timings[f"choose ({label})"].append(time.perf_counter() - start)
                    if label == "1e6":
                        parts["choose, 1e6: plan_keys"].append(keyed - start)
                        parts["choose, 1e6: q_entries (SQLite)"].append(fetched - keyed)
                        parts["choose, 1e6: plan_round"].append(time.perf_counter() - fetched)
                    ballots = [Ballot(f"user:{v}", float(1 + (v + trial) % 10), None) for v in range(20)]
                    start = time.perf_counter()
                    before = await store.q_entries(scope, settle_keys(spec, plan))
                    outcome = settle(spec, plan, ballots, before, None, round_rng(spec, trial), robust_rating, {})
                    written = time.perf_counter()
                    await store.put_q_entries(scope, outcome.updates)
                    done = time.perf_counter()
                    timings[f"update: write ({label})"].append(done - written)
                    timings[f"update: whole close ({label})"].append(done - start)
            print(f"\n{notes}-note tracks ({len(plan_keys(spec, tracks[0]))} keys a choice):")
            for name, values in {**timings, **parts}.items():
                print(f"  {name:34} {spread(values, 1000, 3):>26}")
            choose, write = statistics.median(timings["choose (1e6)"]) * 1000, statistics.median(timings["update: write (1e6)"]) * 1000
            print(f"  choose {choose:.3f} ms, update {write:.3f} ms at the median; target < {TARGET_Q_MEDIAN_MS:.0f} ms: "
                  f"{verdict(choose < TARGET_Q_MEDIAN_MS)} / {verdict(write < TARGET_Q_MEDIAN_MS)}")  # fmt: skip
            results[notes] = {name: statistics.median(values) for name, values in {**timings, **parts}.items()}
        results["rows"] = size
        await store.close()
    return results


def _realistic_q_keys(rows: int) -> list[tuple[str, str]]:
    """The keys the presets really make over many generated tracks (context keys for default, whole
    tracks for paper), topped up to `rows` with whole-track keys of further random tracks."""
    from core.agent import preset, q_key, candidate_actions
    from core.music import generate_track

    keys: dict[tuple[str, str], None] = {}
    rng = random.Random(7)
    configs = (preset("default"), preset("paper"))
    scales = ("major", "minor", "dorian", "blues", "major_pentatonic")
    for number in range(400):
        track = generate_track(60, rng.choice(scales), rng.choice((8, 16, 32, 64)), 120, rng)
        for config in configs:
            for action in candidate_actions(config, track):
                keys[q_key(config, track, action)] = None
    # The paper's state is the whole track: a new track is a new state with one row per edit of it.
    actions = [action for _, action in itertools.islice(keys, 0, 200)]
    number = 0
    while len(keys) < rows:
        state = f"60:major:synthetic-{number}"
        for action in actions:
            keys[(state, action)] = None
            if len(keys) >= rows:
                break
        number += 1
    return list(keys)[:rows]


# -- 5. footprint ----------------------------------------------------------------------------------------

_FOOTPRINT_PROBE = """
import asyncio, tempfile, sys
from pathlib import Path

def rss_mib(pid="self"):
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

print("@python", *rss_mib())
import bot.discord_app, bot.rounds, bot.views, bot.cogs.sessions, bot.cogs.moderation, bot.drawing, bot.conductor, storage
from bot.render import Renderer
from core.midi import track_to_midi
from core.music import generate_track
import random
print("@imports", *rss_mib())
renderer = Renderer.open(sys.argv[1])
print("@soundfont", *rss_mib())
track = generate_track(60, "major", 64, 120, random.Random(1))
renderer.render_ogg(track_to_midi(track)); renderer.render_wav(track_to_midi(track))
print("@renders", *rss_mib())

async def store():
    from bot.conductor import Conductor
    from bot.discord_app import CrowdtuneBot
    from bot.settings import Settings
    from storage import SqliteStore
    with tempfile.TemporaryDirectory() as scratch:
        opened = await SqliteStore.open(Path(scratch) / "f.db")
        bot = CrowdtuneBot(Settings(_env_file=None), Conductor(opened), renderer)
        print("@bot", *rss_mib())
        await bot.drawer.piano_roll(track, "x")
        await bot.drawer.learning_curve([5.0, 6.0, 7.0], "x")
        print("@drawer", *rss_mib(bot.drawer.worker_pids()[0]))
        bot.drawer.close()
        await opened.close()

asyncio.run(store())
"""


def bench_footprint(help_runs: int = 10) -> dict:
    from bot.render import find_soundfont

    soundfont = find_soundfont(TIMGM6MB if TIMGM6MB.is_file() else None)
    probe = subprocess.run([sys.executable, "-c", _FOOTPRINT_PROBE, str(soundfont)], capture_output=True, text=True, check=True)
    # Only the probe's own lines (marked "@"): a library may print to stdout too.
    figures = [line[1:].split() for line in probe.stdout.splitlines() if line.startswith("@")]
    stages = {stage: (float(now), float(peak)) for stage, now, peak in figures}
    print(f"resident memory (MiB, now / peak), soundfont {soundfont.name}:")
    labels = {
        "python": "the bot process: the interpreter",
        "imports": "+ every bot module (discord.py, numpy)",
        "soundfont": "+ Renderer.open (soundfont loaded)",
        "renders": "+ an OGG and a WAV of 64 notes",
        "bot": "+ a store and a CrowdtuneBot",
        "drawer": "its drawing process (matplotlib), after a piano roll",
    }
    for stage, label in labels.items():
        now, peak = stages[stage]
        print(f"  {label:56} {now:7.1f} / {peak:7.1f}")
    peak = max(p for stage, (_, p) in stages.items() if stage != "drawer")
    both = peak + stages["drawer"][1]
    print(f"  the bot's peak {peak:.1f} MiB, target < {TARGET_RSS_MIB:.0f} MiB: {verdict(peak < TARGET_RSS_MIB)}")
    print(f"  with its drawing process {both:.1f} MiB (shared pages counted twice): {verdict(both < TARGET_RSS_MIB)}")

    commands = {"crowdtune --help": [*_crowdtune_command(), "--help"], "python -c pass (interpreter start)": [sys.executable, "-c", "pass"]}
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(help_runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            walls[name].append(time.perf_counter() - start)
    print(f"start-up, {help_runs} runs interleaved; wall s: median [p10-p90]")
    for name, values in walls.items():
        print(f"  {name:36} {spread(values, 1, 3)}")
    help_median = statistics.median(walls["crowdtune --help"])
    print(f"  crowdtune --help {help_median:.3f} s, target < {TARGET_HELP_SECONDS} s: {verdict(help_median < TARGET_HELP_SECONDS)}")
    return {"stages": stages, "peak_mib": peak, "with_drawer_mib": both, "help_seconds": help_median}

