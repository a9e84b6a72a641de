"""A person's MIDI file read into the parts core.fitting takes a melody from (the edge: bytes in).

The file passes the same checks as `crowdtune render` (bot.media.render.parse_midi: a valid Standard
MIDI File, not type 2, at most 600 s) and a size limit; anything else, a file without a melody too
(core.fitting), is one ValueError naming the file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import mido

from bot.errors import check_readable
from bot.media.render import parse_midi
from core.engine import SessionSpec
from core.fitting import Fitted, SourceNote, SourcePart, fit_melody
from core.instruments import DEFAULT_PROGRAM, parse_instrument
from core.midi import DRUM_CHANNEL
from core.words import file_text

MAX_FILE_BYTES = 1024 * 1024  # a melody is a few KiB; this bounds the work a hostile file can cause


def check_file_size(size: int, name: str) -> None:
    """ValueError naming `name` when a file of `size` bytes is over MAX_FILE_BYTES: checked before a
    download (from the size Discord gives) and again on the bytes read."""
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{name} is {-(-size // 1024)} KiB; a melody file may be at most {MAX_FILE_BYTES // 1024} KiB")
DEFAULT_TEMPO_BPM = 120.0  # Standard MIDI Files without a tempo event play at 120 bpm


def read_parts(data: bytes, name: str) -> tuple[tuple[SourcePart, ...], float, int]:
    """The notes of each (track, channel) of a MIDI file, in beats, its first tempo in bpm and its number
    of tracks. ValueError naming `name` for a file that is not a usable MIDI file."""
    check_file_size(len(data), name)
    # Also refuses SMPTE timing: a note then has no place on a beat grid. A file without notes passes, for
    # core.fitting to say there is no melody to take.
    midi = parse_midi(data, name, need_notes=False)
    tempo = next((m.tempo for track in midi.tracks for m in track if m.type == "set_tempo"), None)
    parts: list[SourcePart] = []
    for number, track in enumerate(midi.tracks, start=1):
        # Shown in lines a terminal, Discord and error messages print: read and made visible once, here.
        track_name = next((file_text(m.name) for m in track if m.type == "track_name"), "")
        by_channel = _notes_by_channel(track, midi.ticks_per_beat)
        programs = {}
        for message in track:
            if message.type == "program_change":
                programs.setdefault(message.channel, message.program)
        for channel in sorted(by_channel):
            notes = tuple(sorted(by_channel[channel], key=lambda n: (n.start, n.pitch)))
            parts.append(
                SourcePart(number, track_name, notes, channel == DRUM_CHANNEL, programs.get(channel, DEFAULT_PROGRAM))
            )
    return tuple(parts), mido.tempo2bpm(tempo) if tempo else DEFAULT_TEMPO_BPM, len(midi.tracks)


def _notes_by_channel(track: mido.MidiTrack, ticks_per_beat: int) -> dict[int, list[SourceNote]]:
    """Note-ons paired with their note-offs (a note-on at velocity 0 is a note-off; a repeated key ends
    the earliest sounding one); a note never ended lasts until the track's end."""
    sounding: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    notes: dict[int, list[SourceNote]] = defaultdict(list)
    now = 0

    def end(channel: int, pitch: int, start: int, velocity: int) -> None:
        notes[channel].append(SourceNote(start / ticks_per_beat, (now - start) / ticks_per_beat, pitch, velocity))

    for message in track:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            sounding[message.channel, message.note].append((now, message.velocity))
        elif message.type in ("note_on", "note_off") and sounding[message.channel, message.note]:
            end(message.channel, message.note, *sounding[message.channel, message.note].pop(0))
    for (channel, pitch), starts in sounding.items():
        for start, velocity in starts:
            end(channel, pitch, start, velocity)
    return notes


def melody_from_file(data: bytes, name: str, track_number: int | None = None, instrument: int | None = None) -> Fitted:
    """The file's melody fitted to the track model (core.fitting.fit_melody). ValueError (with a
    user-facing message naming the file) when the file or its melody cannot be used."""
    parts, tempo, tracks = read_parts(data, name)
    try:
        return fit_melody(parts, tempo, track_number, instrument, tracks)
    except ValueError as problem:
        raise ValueError(f"{name}: {problem}") from None


def session_from_file(path: str | None, track_number: int | None, instrument: str | None, spec: SessionSpec):
    """`crowdtune run --from FILE.mid [--from-track N] [--instrument NAME]`: (the spec with the melody's
    base, scale, length, tempo and instrument, the melody fitted: its track, and its summary as the line to
    say once the session has started, "from FILE.mid: kept ..."); without --from, (spec, None).
    UnreadableFile when the file cannot be read; ValueError with one user-facing line when its content or the
    options cannot be used."""
    if path is None:
        if track_number is not None:
            raise ValueError("--from-track names a track of the file given with --from")
        return spec, None
    check_readable([path])  # UnreadableFile (exit code FILE), before anything is made
    program = parse_instrument(instrument) if instrument else None
    fitted = melody_from_file(Path(path).read_bytes(), path, track_number, program)
    track = fitted.track
    music = dict(base=track.base, scale=track.scale, length=len(track.notes), tempo=track.tempo, instrument=track.instrument)
    return replace(spec, **music), replace(fitted, summary=f"from {path}: {fitted.summary}")
