"""The track a session ends on, as files: one piece of code for every front end that writes it (a terminal session
at its end, finished or stopped; a simulation with its results), so the same session ends in the same files."""

from __future__ import annotations

from pathlib import Path

from core.midi import midi_bytes, track_to_midi
from core.music import Track
from storage.files import FINAL_TRACK


async def final_track_files(folder: Path, track: Track, renderer, audio_format: str) -> dict[Path, bytes]:
    """The files of `track` as it stands, for storage.files.write_each: FINAL_TRACK.mid in `folder` and, with a
    `renderer` (bot.media.render.Renderer; None: no audio), FINAL_TRACK.`audio_format` ("wav", "ogg") after it."""
    midi = track_to_midi(track)
    files = {folder / f"{FINAL_TRACK}.mid": midi_bytes(midi)}
    if renderer is not None:
        files[folder / f"{FINAL_TRACK}.{audio_format}"] = await renderer.render_async(midi, audio_format)
    return files

