"""What a simulation writes to its --out folder (bot.simulate.run_simulation): each round's files, and at its end,
stopped early or not, results.json, the plot and the first and last tracks, each file whole (storage.files), every
one tried however many a full disk refuses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import mido

from bot.conductor import Conductor
from bot.final_track import final_track_files
from core.engine import SessionSpec
from core.midi import midi_bytes, track_to_midi
from core.music import track_from_dict
from storage import StorageError, database_errors
from storage.files import CannotWrite, write_each, write_whole

if TYPE_CHECKING:
    from bot.simulate import NamedRater


async def keep_rounds_done(
    stop: BaseException, conductor: Conductor, session, out_dir: Path | None, done: int, results: Callable[[], Awaitable[dict]]
) -> None:
    """Stop the session and write the `results()` of the `done` rounds, after `stop` ended the run. A database or
    a file that cannot be written now (the full disk that may have ended it) does not hide `stop`. What was kept is
    added to `stop` as its last note (its __notes__), one line that the command line says after `stop`'s own:
    "the session was stopped: sim/ holds the 2 rounds done, with results.json saying why", or what could not be kept.
    No `session` (stopped as it started, before it was stored): nothing to stop or keep, and no note."""
    from bot.progress import plural

    if session is None:
        return
    missed = []
    conductor.store.spend_reserve()  # the room kept for this stop, on a disk that refused a write
    try:
        await conductor.stop(session.id, "simulate")
    except (StorageError, *database_errors()) as problem:  # a full disk fails this write too
        missed.append("the session stays active in the database" + ("" if str(problem) == str(stop) else f" ({problem})"))
    try:
        await results()
    except (CannotWrite, StorageError, *database_errors()) as problem:
        said = f"{problem.filename} could not be written: {problem.strerror}" if isinstance(problem, CannotWrite) else str(problem)
        missed.append(said if said != str(stop) else "results.json could not be written")
    if missed:
        kept = f"stopped after {plural(done, 'round')}, kept in the database" if done else "stopped before any round was done"
        stop.add_note(f"{kept}; " + "; ".join(missed))
    elif out_dir is None:
        stop.add_note(f"the session was stopped after {plural(done, 'round')}")
    elif done:
        stop.add_note(f"the session was stopped: {out_dir}/ holds the {plural(done, 'round')} done, with results.json saying why")
    else:
        stop.add_note(f"the session was stopped before any round was done: {out_dir}/ holds results.json saying why")


async def write_results(
    conductor: Conductor, spec: SessionSpec, raters: list[NamedRater], out_dir: Path | None, scope_id: str, session,
    rounds: list[dict], judge: Callable[[mido.MidiFile], float] | None, stopped: str | None, renderer=None,
) -> dict:
    """The run's results (`stopped`: why it ended early, None when it ran its rounds), written to out_dir with
    the plot and the session's first and last tracks (the last as a terminal session writes it: bot.final_track,
    as OGG too with a `renderer`). Every file is tried: CannotWrite names all that could not be written."""
    final = await conductor.store.session(session.id)
    start_midi, final_midi = (track_to_midi(track_from_dict(t)) for t in (session.track, final.track))
    results = {
        "scope": scope_id,
        "session": session.id,
        "spec": spec.to_dict(),
        "raters": [r.name for r in raters],
        "final_track": final.track,
        "rounds": rounds,
        "stopped": stopped,
    }
    if judge is not None:
        results["judged"] = {"start": judge(start_midi), "final": judge(final_midi)}
    if out_dir is not None:
        # The results first: on a disk filling up, they matter most. The session's first and last tracks, for anyone
        # to judge a run with their own scorer.
        write_each({
            out_dir / "results.json": json.dumps(results, indent=1), out_dir / "learning-curve.png": _plot(results),
            out_dir / "start.mid": midi_bytes(start_midi),
            **await final_track_files(out_dir, track_from_dict(final.track), renderer, "ogg"),
        })
    return results


def write_round_files(out_dir: Path, number: int, midis: list[mido.MidiFile], renderer) -> None:
    suffixes = ["-a", "-b"] if len(midis) > 1 else [""]
    for suffix, midi in zip(suffixes, midis):
        stem = out_dir / f"round-{number:04d}{suffix}"
        write_whole(stem.with_suffix(".mid"), midi_bytes(midi))
        if renderer is not None:
            write_whole(stem.with_suffix(".ogg"), renderer.render_ogg(midi))


def _plot(results: dict) -> bytes:
    """The learning curve of `results` (write_results'), as a PNG."""
    from bot.media.pianoroll import ab_curve_png, learning_curve_png
    from bot.progress import plural

    rounds = results["rounds"]
    title = f"crowdtune simulate: {results['spec']['preset']}, {results['spec']['mode']}"
    if results["stopped"] is not None:
        title += f" (stopped after {plural(len(rounds), 'round')})"
    judged = {"noise-free judge of the kept track": [r["judge"] for r in rounds]} if rounds and "judge" in rounds[0] else None
    if results["spec"]["mode"] == "ab":
        # The crowd's favourite edit's chance, whether it stayed or not (ab_curve_png draws which).
        chances = [max((c for c in r["beat_before"] if c is not None), default=None) for r in rounds]
        png = ab_curve_png(chances, [r["kept_edit"] for r in rounds], title, judged=judged)
    else:
        rewards = [r["reward"] if r["reward"] is not None else float("nan") for r in rounds]
        png = learning_curve_png(
            rewards, title=title, extra=judged, scores=[r["score"] for r in rounds], spread=[r["spread"] for r in rounds]
        )
    return png
