"""Memory and start-up: `crowdtune bench footprint`. The bot process and its drawing process, stage by
stage, and how fast `crowdtune --help` answers.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.bench.common import TIMGM6MB, crowdtune_command, run_measured, spread
from bot.bench.verdicts import AT_MOST, judge, judge_median, line

TARGET_RSS_MIB = 200.0
TARGET_HELP_SECONDS = 0.3

_FOOTPRINT_PROBE = """
import asyncio, tempfile, sys
from pathlib import Path

def rss_mib(pid="self"):
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

print("@python", *rss_mib())
import bot.discord.app, bot.discord.runner, bot.discord.views, bot.discord.cogs.sessions, bot.discord.cogs.moderation, bot.media.drawing, bot.conductor, storage
from bot.media.render import Renderer
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
    from bot.discord.app import CrowdtuneBot
    from bot.settings import Settings
    from storage import open_store
    with tempfile.TemporaryDirectory() as scratch:
        opened = await open_store(Path(scratch) / "f.db")
        try:  # closed however it ends: an open store kept a failed probe from ending
            bot = CrowdtuneBot(Settings(_env_file=None), Conductor(opened), renderer)
            print("@bot", *rss_mib())
            await bot.drawer.piano_roll(track, "x")
            await bot.drawer.learning_curve([5.0, 6.0, 7.0], "x")
            print("@drawer", *rss_mib(bot.drawer.worker_pids()[0]))
            bot.drawer.close()
        finally:
            await opened.close()

asyncio.run(store())
"""


def bench_footprint(help_runs: int = 10) -> dict:
    from bot.media.render import find_soundfont

    soundfont = find_soundfont(TIMGM6MB if TIMGM6MB.is_file() else None)
    with tempfile.TemporaryDirectory() as scratch:
        return _bench_footprint(soundfont, Path(scratch), help_runs)


def _bench_footprint(soundfont: Path, scratch: Path, help_runs: int) -> dict:
    probe = run_measured("the footprint's probe", [sys.executable, "-c", _FOOTPRINT_PROBE, str(soundfont)], scratch)
    # Only the probe's own lines (marked "@"): a library may print to stdout too.
    figures = [line[1:].split() for line in probe.splitlines() if line.startswith("@")]
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
    # Memory is measured once: the same code and soundfont give the same pages within a MiB or two.
    print(line(f"the bot's peak < {TARGET_RSS_MIB:.0f} MiB", judge(peak, TARGET_RSS_MIB, AT_MOST), f"{peak:.1f} MiB"))
    print(line(f"with its drawing process < {TARGET_RSS_MIB:.0f} MiB", judge(both, TARGET_RSS_MIB, AT_MOST), f"{both:.1f} MiB (shared pages counted twice)"))

    commands = {"crowdtune --help": [*crowdtune_command(), "--help"], "python -c pass (interpreter start)": [sys.executable, "-c", "pass"]}
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(help_runs):
        for name, command in commands.items():
            start = time.perf_counter()
            run_measured(name, command, scratch)
            walls[name].append(time.perf_counter() - start)
    print(f"start-up, {help_runs} runs interleaved; wall s: median [p10-p90]")
    for name, values in walls.items():
        print(f"  {name:36} {spread(values, 1, 3)}")
    help_median = statistics.median(walls["crowdtune --help"])
    print(line(f"crowdtune --help < {TARGET_HELP_SECONDS} s", *judge_median(walls["crowdtune --help"], TARGET_HELP_SECONDS, AT_MOST, " s", 3)))
    return {"stages": stages, "peak_mib": peak, "with_drawer_mib": both, "help_seconds": help_median}


main = bench_footprint
