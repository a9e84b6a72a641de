"""Track to upload-ready audio: `crowdtune bench render`. crowdtune's in-process renderer (OGG Opus and
WAV) against synthesis alone and against midi2audio, per clip and over many files.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bot.bench.common import TIMGM6MB, Samples, children_cpu, crowdtune_command, paired_ratios, percentile, run_measured, spread
from bot.bench.verdicts import AT_LEAST, AT_MOST, judge_median, line

NOTE_COUNTS = (8, 32, 64)
RENDER_TRIALS = 15
CLI_FILES = 20  # MIDI files per `crowdtune render` run
CLI_RUNS = 6  # the fewest whose median has a 95% interval (bot.bench.verdicts)
TARGET_VS_MIDI2AUDIO = 2.5  # at least this much faster than midi2audio to WAV
TARGET_VS_SYNTHESIS = 1.5  # at most this much slower than synthesis alone


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
    from bot.media.render import Renderer, synthesize_only
    from bot.progress import progress_bar
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
                "midi2audio -> WAV": lambda: run_measured("midi2audio (fluidsynth)", midi2audio_command(renderer.soundfont, midi_path, wav_path), Path(scratch), crowdtune=False),
            }
            samples = {name: Samples() for name in paths}
            for action in paths.values():  # warm-up: the 48 kHz synth, the page cache
                action()
            names = list(paths)
            for trial in progress_bar(trials, f"{notes} notes", "trial", iterable=range(trials)):
                for name in names[trial % len(names) :] + names[: trial % len(names)]:  # rotate who goes first
                    cpu_before, child_before, start = time.process_time(), children_cpu(), time.perf_counter()
                    paths[name]()
                    samples[name].wall.append(time.perf_counter() - start)
                    samples[name].cpu.append(time.process_time() - cpu_before + children_cpu() - child_before)
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
    targets = {"midi2audio / crowdtune OGG": (TARGET_VS_MIDI2AUDIO, AT_LEAST, ">="), "crowdtune OGG / synthesis": (TARGET_VS_SYNTHESIS, AT_MOST, "<=")}
    for name, values in ratios.items():
        print(f"  {name:28} {statistics.median(values):6.2f}x  [{percentile(values, 10):.2f}-{percentile(values, 90):.2f}]")
    print(f"  targets ({notes} notes):")
    for name, (goal, kind, sign) in targets.items():
        print(line(f"{name} {sign} {goal}x", *judge_median(ratios[name], goal, kind, "x")))
    return {name: statistics.median(values) for name, values in ratios.items()}


def _bench_render_command(soundfont: Path, scratch: Path, files: int, runs: int) -> dict:
    """`crowdtune render` over many files (one process, the soundfont loaded once) against one
    midi2audio run per file, in the same run; both include starting their programs."""
    from bot.progress import progress_bar
    from core.midi import midi_bytes, track_to_midi

    inputs = [scratch / f"many-{seed}.mid" for seed in range(files)]
    for seed, path in enumerate(inputs):
        path.write_bytes(midi_bytes(track_to_midi(benchmark_track(32, seed))))
    crowdtune = crowdtune_command()
    # --force: every run after the first writes the same files again (render replaces none without it).
    commands = {
        f"crowdtune render --format {fmt}": lambda fmt=fmt: run_measured(f"crowdtune render --format {fmt}", [*crowdtune, "render", *map(str, inputs), "--out-dir", str(scratch / fmt), "--format", fmt, "--force", "--soundfont", str(soundfont)], scratch)
        for fmt in ("ogg", "wav")
    } | {
        f"midi2audio x {files}": lambda: [run_measured("midi2audio (fluidsynth)", midi2audio_command(soundfont, p, scratch / f"{p.stem}.wav"), scratch, crowdtune=False) for p in inputs],
    }  # fmt: skip
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for run_index in progress_bar(runs, "many files", "run", iterable=range(runs)):
        names = list(commands)
        for name in names[run_index % len(names) :] + names[: run_index % len(names)]:
            start = time.perf_counter()
            commands[name]()
            walls[name].append(time.perf_counter() - start)
    print(f"\nmany files: {files} MIDI files of 16 s, {runs} runs interleaved; wall s: median [p10-p90]")
    for name, values in walls.items():
        print(f"  {name:32} {spread(values, 1, 2):>20} s   {statistics.median(values) / files * 1000:6.0f} ms a file")
    m2a = walls[f"midi2audio x {files}"]
    result = {}
    for fmt in ("ogg", "wav"):
        ratios = [a / b for a, b in zip(m2a, walls[f"crowdtune render --format {fmt}"])]  # run by run: paired
        result[fmt] = statistics.median(ratios)
        print(line(f"midi2audio / crowdtune render ({fmt}) >= {TARGET_VS_MIDI2AUDIO}x", *judge_median(ratios, TARGET_VS_MIDI2AUDIO, AT_LEAST, "x")))
    return result


main = bench_render
