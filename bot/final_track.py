"""The track a session ends on, as files: one piece of code for every front end that writes it (a terminal session
at its end, finished or stopped; a simulation with its results), so the same session ends in the same files."""

from __future__ import annotations

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
    ("your track: /x/final.mid and final.wav"), or which could not be written and why. A file that cannot be written
    is said, not raised: what the session stored stays whole, and its track is also in the database (export)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)  # a session stopped before its first file
        files = await final_track_files(folder, track, renderer, audio_format)
        write_each(files)
    except OSError as problem:  # CannotWrite names the files
        return f"your track could not be written: {problem.filename}: {problem.strerror}"
    return f"your track: {named_files(list(files))}{_older_audio_gone(folder / f'{FINAL_TRACK}.{audio_format}', renderer)}"


def _older_audio_gone(audio: Path, renderer) -> str:
    """Without a `renderer`, remove `audio`, the final track's audio an earlier run with audio wrote (a session resumed
    with --no-audio): beside the new final.mid it would be another track. What that did, in words after the line's
    files ("" when there was none)."""
    if renderer is not None or not audio.is_file():
        return ""
    try:
        audio.unlink()
    except OSError as problem:
        return f" (no audio this run, and the {audio.name} of an earlier run, an older track, could not be removed: {problem.strerror})"
    return f" (no audio this run: the {audio.name} of an earlier run removed, as it no longer matches)"
