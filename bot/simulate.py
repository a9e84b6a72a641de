"""The simulated crowd: a front end where raters are functions of a MIDI file.

It drives the same conductor, engine and storage as the Discord bot and the terminal session,
so what it measures is the code users run.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido

from bot.conductor import Conductor
from core.engine import SessionSpec
from core.midi import track_to_midi

Rater = Callable[[mido.MidiFile], float]


@dataclass(frozen=True)
class NamedRater:
    name: str
    rate: Rater


def load_raters(specs: list[str], rng: random.Random, noise: float) -> list[NamedRater]:
    """Raters by built-in short name ('crowd' is the whole default crowd) or as MODULE:FUNC."""
    from core import raters as builtin

    loaded: list[NamedRater] = []
    for spec in specs or ["crowd"]:
        if spec == "crowd":
            loaded += [NamedRater(name, rater) for name, rater in builtin.default_crowd(rng, noise)]
        elif spec in builtin.BUILTIN_RATERS:
            loaded.append(NamedRater(spec, builtin.BUILTIN_RATERS[spec](rng, noise)))
        elif ":" in spec:
            loaded.append(NamedRater(spec, _import_rater(spec)))
        else:
            names = ", ".join(["crowd", *builtin.BUILTIN_RATERS])
            raise ValueError(f"unknown rater '{spec}': use one of {names}, or MODULE:FUNC")
    names = [r.name for r in loaded]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        # Voters are identified by name; the same name twice would be one voter.
        counter: dict[str, int] = {}
        renamed = []
        for r in loaded:
            counter[r.name] = counter.get(r.name, 0) + 1
            renamed.append(NamedRater(f"{r.name}#{counter[r.name]}" if r.name in duplicates else r.name, r.rate))
        loaded = renamed
    return loaded


def _import_rater(spec: str) -> Rater:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure to import is the user's module's problem, reported plainly
        raise ValueError(f"cannot import rater module '{module_name}': {exc}") from None
    target = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"module '{module_name}' has no '{attribute}'")
    if not callable(target):
        raise ValueError(f"'{spec}' is not callable")
    return target


def _checked(rater: NamedRater, midi: mido.MidiFile) -> float:
    value = float(rater.rate(midi))
    if not 1 <= value <= 10:
        raise ValueError(f"rater '{rater.name}' returned {value}, outside 1-10")
    return value


def ab_choice(rater: NamedRater, midi_a: mido.MidiFile, midi_b: mido.MidiFile) -> str:
    """A rater votes for the variant it rates higher; a tie is a vote for both."""
    from core.raters import prefer

    return prefer(lambda midi: _checked(rater, midi), midi_a, midi_b)


async def run_simulation(
    conductor: Conductor,
    spec: SessionSpec,
    raters: list[NamedRater],
    out_dir: Path | None,
    scope_id: str,
    audio: bool = False,
    progress: Callable[[int, int, float | None], None] | None = None,
    judge: Callable[[mido.MidiFile], float] | None = None,
) -> dict:
    """Run a whole session with simulated raters; write its files to out_dir (if given)."""
    session = await conductor.start(scope_id, "sim", None, spec, actor="simulate", scope_name=scope_id)
    renderer = None
    if audio and out_dir is not None:
        from bot.media.render import Renderer

        renderer = Renderer.open()
    rounds: list[dict] = []
    total = spec.rounds or 0
    try:
        while (open_round := await conductor.open_round(session.id)) is not None:
            plan = open_round.plan
            midis = [track_to_midi(p.track) for p in plan.proposals]
            record: dict = {
                "index": plan.index + 1,
                "actions": [p.action.key() for p in plan.proposals],
                "descriptions": [p.description for p in plan.proposals],
            }
            if spec.mode == "ab":
                votes = {r.name: ab_choice(r, midis[0], midis[1]) for r in raters}
                record["votes"] = votes
            else:
                votes = {r.name: _checked(r, midis[0]) for r in raters}
                record["ratings"] = votes
            for voter, value in votes.items():
                await conductor.vote(open_round.id, voter, value)
            outcome = await conductor.close(open_round.id, actor="simulate")
            record.update(
                reward=outcome.reward,
                kept_edit=outcome.kept_edit,
                winner="ab"[outcome.winner] if outcome.winner is not None else None,
                q_size=await conductor.store.q_size(scope_id),
            )
            if judge is not None:
                record["judge"] = judge(track_to_midi(outcome.next_track))
            if out_dir is not None:
                _write_round_files(out_dir, plan.index + 1, midis, renderer)
            rounds.append(record)
            if progress:
                progress(len(rounds), total, outcome.reward)
    finally:
        if renderer is not None:
            renderer.close()
    final = await conductor.store.session(session.id)
    results = {
        "scope": scope_id,
        "session": session.id,
        "spec": spec.to_dict(),
        "raters": [r.name for r in raters],
        "final_track": final.track,
        "rounds": rounds,
    }
    if out_dir is not None:
        _write_results(out_dir, results)
    return results


def _write_round_files(out_dir: Path, number: int, midis: list[mido.MidiFile], renderer) -> None:
    suffixes = ["-a", "-b"] if len(midis) > 1 else [""]
    for suffix, midi in zip(suffixes, midis):
        stem = out_dir / f"round-{number:04d}{suffix}"
        midi.save(str(stem.with_suffix(".mid")))
        if renderer is not None:
            stem.with_suffix(".ogg").write_bytes(renderer.render_ogg(midi))


def _write_results(out_dir: Path, results: dict) -> None:
    from bot.media.pianoroll import learning_curve_png

    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    rewards = [r["reward"] if r["reward"] is not None else float("nan") for r in results["rounds"]]
    extra = {"judge": [r["judge"] for r in results["rounds"]]} if results["rounds"] and "judge" in results["rounds"][0] else None
    (out_dir / "learning-curve.png").write_bytes(
        learning_curve_png(rewards, title=f"crowdtune simulate: {results['spec']['preset']}, {results['spec']['mode']}", extra=extra)
    )


def progress_bar(stream=sys.stderr) -> Callable[[int, int, float | None], None] | None:
    """A one-line progress bar on a terminal; nothing when output is piped."""
    if not stream.isatty():
        return None

    def show(done: int, total: int, reward: float | None) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        last = "-" if reward is None else f"{reward:.2f}"
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} reward {last} ")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
