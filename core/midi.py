"""Track to Standard MIDI File (mido values; writing bytes is the caller's business)."""

from __future__ import annotations

import io
import math

import mido

from core.music import PERCUSSION_STEPS, REST, Track, key_signature

TICKS_PER_BEAT = 480
MELODY_CHANNEL = 0
DRUM_CHANNEL = 9  # General MIDI channel 10
CHORD_VELOCITY_SCALE = 0.7  # chords sit under the melody
DRUM_VELOCITY = 90
TICKS_PER_STEP = TICKS_PER_BEAT // 4  # percussion is a sixteenth grid


# An event before it becomes a message: (absolute tick, order at that tick, message type, its fields).
Event = tuple[int, int, str, dict]


def _to_track(events: list[Event], name: str) -> mido.MidiTrack:
    """Absolute-time events to a delta-time MidiTrack; note-offs sort before note-ons at one tick.
    Each message is made once, with its delta time (mido checks every field of every message made)."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, kind, fields in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(mido.Message(kind, time=tick - now, **fields))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def track_to_midi(track: Track) -> mido.MidiFile:
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(track.tempo), time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            # So notation programs write the track in its key (F# major with six sharps, not C with accidentals).
            mido.MetaMessage("key_signature", key=key_signature(track.base, track.scale), time=0),
            mido.MetaMessage("end_of_track", time=0),
        ]
    )
    midi.tracks.append(conductor)

    events: list[Event] = [(0, 1, "program_change", {"channel": MELODY_CHANNEL, "program": track.instrument})]
    start = 0
    for note, pitch in zip(track.notes, track.pitches):
        length = round(note.duration * TICKS_PER_BEAT)
        voices = [(pitch, note.velocity)]
        if note.chord:
            voices += [(p, max(1, round(note.velocity * CHORD_VELOCITY_SCALE))) for p in track.chord_pitches(note.degree)]
        for voice_pitch, velocity in voices:
            events.append((start, 2, "note_on", {"channel": MELODY_CHANNEL, "note": voice_pitch, "velocity": velocity}))
            events.append((start + length, 0, "note_off", {"channel": MELODY_CHANNEL, "note": voice_pitch, "velocity": 0}))
        start += length
    midi.tracks.append(_to_track(events, "melody"))

    drum_events: list[Event] = []
    bars = max(1, math.ceil(start / (TICKS_PER_STEP * PERCUSSION_STEPS)))
    for step in range(bars * PERCUSSION_STEPS):
        drum = track.percussion[step % PERCUSSION_STEPS]
        tick = step * TICKS_PER_STEP
        if drum == REST or tick >= start:
            continue
        drum_events.append((tick, 2, "note_on", {"channel": DRUM_CHANNEL, "note": drum, "velocity": DRUM_VELOCITY}))
        drum_events.append((tick + TICKS_PER_STEP, 0, "note_off", {"channel": DRUM_CHANNEL, "note": drum, "velocity": 0}))
    midi.tracks.append(_to_track(drum_events, "percussion"))
    return midi


def midi_bytes(midi: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()
