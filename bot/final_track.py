"""The track a session ends on, as files: one piece of code for every front end that writes it (a terminal session
at its end, finished or stopped; a simulation with its results), so the same session ends in the same files."""

from __future__ import annotations

import contextlib
from pathlib import Path

from core.midi import midi_bytes, track_to_midi
from core.music import Track
from storage.files import FINAL_TRACK, named_files, write_each


async def final_track_files(folder: Path, track: Track, renderer, audio_format: str) -> dict[Path, bytes]:
    """The files of `track` as it stands, for storage.files.write_each: FINAL_TRACK.mid in `folder` and, with a
    `renderer` (bot.media.render.Renderer; None: no audio), FINAL_TRACK.`audio_format` ("wav", "ogg") after it."""
    midi = track_to_midi(track)
    files = {folder / f"{FINAL_TRACK}.mid": midi_bytes(midi)}
    if renderer is not None:
        files[folder / f"{FINAL_TRACK}.{audio_format}"] = await renderer.render_async(midi, audio_format)
    return files


async def write_final_track(folder: Path, track: Track, renderer, audio_format: str) -> str:
    """Write `final_track_files` (every one tried: storage.files.write_each) and return the one line that says where
    ("your track: /x/final.mid and final.wav"), or which could not be written and why (and which were, if any). A file
    that cannot be written is said, not raised: what the session stored stays whole, and its track is also in the
    database (export)."""
    midi, before = folder / f"{FINAL_TRACK}.mid", None
    with contextlib.suppress(OSError):  # the track an earlier run ended on, if any
        before = midi.read_bytes()
    try:
        folder.mkdir(parents=True, exist_ok=True)  # a session stopped before its first file
        files = await final_track_files(folder, track, renderer, audio_format)
        write_each(files)
    except OSError as problem:  # CannotWrite names the files; with `written`, those that were
        if written := getattr(problem, "written", None):
            return f"your track: {named_files(written)}; {problem.filename} could not be written: {problem.strerror}"
        return f"your track could not be written: {problem.filename}: {problem.strerror}"
    audio = folder / f"{FINAL_TRACK}.{audio_format}"
    return f"your track: {named_files(list(files))}{_older_audio(audio, renderer, files[midi] == before)}"


def _older_audio(audio: Path, renderer, same_track: bool) -> str:
    """Without a `renderer`, what becomes of `audio`, the final track's audio an earlier run with audio wrote (a session
    resumed with --no-audio), in words after the line's files ("" when there is none): kept when it is of the
    `same_track` (the session's track did not change since: final.mid is as it was), else removed, as beside the new
    final.mid it would be another track's."""
    if renderer is not None or not audio.is_file():
        return ""
    if same_track:
        return f" and {audio.name} (no audio this run: the {audio.name} an earlier run wrote is of this same track)"
    try:
        audio.unlink()
    except OSError as problem:
        return f" (no audio this run, and the {audio.name} of an earlier run, an older track, could not be removed: {problem.strerror})"
    return f" (no audio this run: the {audio.name} of an earlier run removed, as it no longer matches)"
