"""A person's own melody as a session's first track: the melody picked from the notes of a MIDI file
and fitted to the track model (one voice, scale degrees, a sixteenth grid, at most 64 notes).

Pure: the file is read at the edge (bot/media/midi_import.py) into `SourcePart`s, in beats.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.instruments import DEFAULT_PROGRAM
from core.music import (
    DRUM_CYCLE,
    DURATION_MAX,
    DURATION_MIN,
    DURATION_STEP,
    HIHAT,
    KICK,
    LENGTH_MAX,
    LENGTH_MIN,
    PERCUSSION_STEPS,
    RANGE_ABOVE,
    RANGE_BELOW,
    REST,
    SNARE,
    TEMPO_MAX,
    TEMPO_MIN,
    VELOCITY_MAX,
    VELOCITY_MIN,
    MusicError,
    Note,
    Track,
    key_name,
    scale_intervals,
)

# Krumhansl-Kessler key profiles (C. L. Krumhansl, "Cognitive Foundations of Musical Pitch", 1990, p. 30):
# how well each pitch class, from the tonic up, fits a major or a minor key.
KEY_PROFILES = {
    "major": (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
    "minor": (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
}
SAME_ONSET_BEATS = 1 / 16  # notes starting this close together sound as one chord: the melody takes the top
# General MIDI percussion folded onto the track model's three drums (by family: kicks, snares and claps, hi-hats and cymbals).
DRUM_FAMILIES = {35: KICK, 36: KICK, 37: SNARE, 38: SNARE, 39: SNARE, 40: SNARE, 42: HIHAT, 44: HIHAT, 46: HIHAT}


@dataclass(frozen=True, slots=True)
class SourceNote:
    start: float  # beats from the start of the file
    duration: float  # beats
    pitch: int  # MIDI note number
    velocity: int


@dataclass(frozen=True, slots=True)
class SourcePart:
    """The notes one MIDI track plays on one channel."""

    number: int  # the track's number in the file, from 1 (a conductor track counts): what --from-track names
    name: str
    notes: tuple[SourceNote, ...]
    drums: bool  # General MIDI channel 10
    program: int = DEFAULT_PROGRAM

    def label(self) -> str:
        return f"{self.number}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class Fitted:
    track: Track
    part: SourcePart
    summary: str  # one line: what was kept and what changed


def choose_part(parts: tuple[SourcePart, ...], number: int | None = None, tracks: int | None = None) -> SourcePart:
    """The busiest part that is not drums, of the track a person named or of the whole file. `tracks`: how
    many tracks the file has (default: the highest numbered part's), to tell a track the file lacks from one
    without a melody. MusicError, naming the tracks a melody can be taken from, when there is none."""
    melodic = [p for p in parts if not p.drums and p.notes]
    if number is not None:
        named = [p for p in melodic if p.number == number]
        if not named:
            raise MusicError(f"{_why_no_melody_in(number, parts, tracks)}; {_tracks_with_a_melody(melodic)}")
        melodic = named
    if not any(p.notes for p in parts):
        raise MusicError("the file has no notes, so there is no melody to take")
    if not melodic:
        raise MusicError("the file has notes only on the drum channel, so there is no melody to take")
    return max(melodic, key=lambda p: (len(p.notes), -p.number))


def _why_no_melody_in(number: int, parts: tuple[SourcePart, ...], tracks: int | None) -> str:
    tracks = max((p.number for p in parts), default=0) if tracks is None else tracks
    if number > tracks:
        if tracks == 1:
            return f"there is no track {number}: the file has 1 track"
        return f"there is no track {number}: the file has {tracks} tracks, numbered from 1 (a conductor track included)"
    drums = [p for p in parts if p.number == number and p.drums and p.notes]
    if drums:
        return f"track {drums[0].label()} plays only drums, so there is no melody to take"
    return f"track {number} has no notes, so there is no melody to take"


def _tracks_with_a_melody(melodic: list[SourcePart]) -> str:
    """'a melody can be taken from track 2 (Lead, 12 notes)', or that none has one."""
    notes: dict[int, int] = {}  # a track's notes on all its channels but the drums'
    names = {p.number: p.name for p in melodic}
    for part in melodic:
        notes[part.number] = notes.get(part.number, 0) + len(part.notes)
    if not notes:
        return "no track has notes outside the drum channel"
    said = [f"{n} ({names[n] + ', ' if names[n] else ''}{count} note{'s' if count != 1 else ''})" for n, count in notes.items()]
    listed = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} or {said[-1]}"
    return f"a melody can be taken from track{'s' if len(said) > 1 else ''} {listed}"


def top_voice(notes: tuple[SourceNote, ...]) -> list[SourceNote]:
    """The highest note of each onset (a chord's top), each lasting until the next onset at most."""
    ordered = sorted(notes, key=lambda n: (n.start, -n.pitch))
    voice: list[SourceNote] = []
    for note in ordered:
        if voice and note.start - voice[-1].start < SAME_ONSET_BEATS:
            continue  # a lower note of the same chord
        voice.append(note)
    return [
        SourceNote(n.start, min(n.duration, later.start - n.start), n.pitch, n.velocity) for n, later in zip(voice, voice[1:])
    ] + voice[-1:]


def detect_key(notes: list[SourceNote]) -> tuple[int, str]:
    """(tonic pitch class, "major" or "minor") whose Krumhansl-Kessler profile correlates best with the
    melody's pitch classes weighted by duration (the Krumhansl-Schmuckler key-finding algorithm)."""
    weights = [0.0] * 12
    for note in notes:
        weights[note.pitch % 12] += max(note.duration, DURATION_MIN)

    def correlation(profile: tuple[float, ...], tonic: int) -> float:
        rotated = [profile[(pc - tonic) % 12] for pc in range(12)]
        mean_w, mean_p = sum(weights) / 12, sum(rotated) / 12
        covariance = sum((w - mean_w) * (p - mean_p) for w, p in zip(weights, rotated))
        spread = (sum((w - mean_w) ** 2 for w in weights) * sum((p - mean_p) ** 2 for p in rotated)) ** 0.5
        return covariance / spread if spread else 0.0

    return max(((tonic, mode) for mode in KEY_PROFILES for tonic in range(12)), key=lambda key: correlation(KEY_PROFILES[key[1]], key[0]))


def _base_for(tonic: int, pitches: list[int]) -> int:
    """The tonic's octave that puts the most of the melody within the track's range, the lower on a tie."""
    candidates = [b for b in range(tonic, 128, 12) if b - RANGE_BELOW >= 0 and b + RANGE_ABOVE <= 127] or [60 + tonic % 12]
    median = sorted(pitches)[len(pitches) // 2]
    middle = (RANGE_ABOVE - RANGE_BELOW) / 2  # the middle of the range, above the base
    return max(candidates, key=lambda b: (sum(b - RANGE_BELOW <= p <= b + RANGE_ABOVE for p in pitches), -abs(b + middle - median), -b))


def _degree(pitch: int, base: int, scale: str) -> tuple[int, bool, bool]:
    """(nearest scale degree, whether the pitch had to be snapped, whether it was moved by octaves into range)."""
    moved = False
    while pitch < base - RANGE_BELOW:
        pitch, moved = pitch + 12, True
    while pitch > base + RANGE_ABOVE:
        pitch, moved = pitch - 12, True
    intervals = scale_intervals(scale)
    octave, offset = divmod(pitch - base, 12)
    # The nearest scale tone, the lower on a tie; the tonic an octave up counts as a candidate too.
    candidates = [(abs(offset - interval), interval, step) for step, interval in enumerate(intervals)]
    candidates.append((abs(offset - 12), 12, len(intervals)))
    _, interval, step = min(candidates)
    degree = octave * len(intervals) + step
    if base + 12 * octave + interval > base + RANGE_ABOVE:
        degree -= len(intervals)  # snapping up out of range: the same tone an octave down
    return degree, interval != offset, moved


def _percussion(parts: tuple[SourcePart, ...]) -> tuple[int, ...]:
    """The first bar of the drum channel on the sixteenth grid, folded onto kick, snare and hi-hat."""
    pattern = [REST] * PERCUSSION_STEPS
    for part in parts:
        if part.drums:
            for note in part.notes:
                step = round(note.start / (4 / PERCUSSION_STEPS))
                if step < PERCUSSION_STEPS and note.pitch in DRUM_FAMILIES and pattern[step] == REST:
                    pattern[step] = DRUM_FAMILIES[note.pitch]
    assert all(d in DRUM_CYCLE for d in pattern)
    return tuple(pattern)


def fit_melody(
    parts: tuple[SourcePart, ...], tempo: float, number: int | None = None, instrument: int | None = None, tracks: int | None = None
) -> Fitted:
    """The melody of `parts` (see choose_part, with `number` and `tracks`, and top_voice) as a Track: key and scale detected, pitches
    snapped to the scale, durations to the sixteenth grid (within the track model's 0.25-2 beats; a rest
    lengthens the note before it), at most LENGTH_MAX notes, the tempo within range. `instrument`: the
    melody's General MIDI program (default: the part's). MusicError when there is no usable melody."""
    part = choose_part(parts, number, tracks)
    voice = top_voice(part.notes)
    if len(voice) < LENGTH_MIN:
        raise MusicError(f"track {part.label()} has {len(voice)} melody notes; a track needs at least {LENGTH_MIN}")
    dropped = max(0, len(voice) - LENGTH_MAX)
    voice = voice[:LENGTH_MAX]
    tonic, scale = detect_key(voice)
    base = _base_for(tonic, [n.pitch for n in voice])
    notes, snapped, moved, regridded, rests = [], 0, 0, 0, 0
    for note, following in zip(voice, [*voice[1:], None]):
        degree, was_snapped, was_moved = _degree(note.pitch, base, scale)
        # The note lasts until the next one starts: a rest between them becomes part of it.
        span = (following.start - note.start) if following is not None else note.duration
        rests += following is not None and following.start - note.start > note.duration + SAME_ONSET_BEATS
        length = min(DURATION_MAX, max(DURATION_MIN, round(span / DURATION_STEP) * DURATION_STEP))
        regridded += abs(length - span) > 1e-6
        velocity = min(VELOCITY_MAX, max(VELOCITY_MIN, note.velocity))
        notes.append(Note(degree, length, velocity))
        snapped += was_snapped
        moved += was_moved
    bpm = min(TEMPO_MAX, max(TEMPO_MIN, round(tempo)))
    track = Track(tuple(notes), _percussion(parts), bpm, base, scale, part.program if instrument is None else instrument)
    changes = [
        f"{snapped} pitch{'es' if snapped != 1 else ''} snapped to the scale" if snapped else "",
        f"{moved} moved by octaves into range" if moved else "",
        f"{regridded} duration{'s' if regridded != 1 else ''} fitted to the sixteenth grid (0.25-2 beats)" if regridded else "",
        f"{rests} rest{'s' if rests != 1 else ''} joined to the note before" if rests else "",
        f"the {dropped} notes after the first {LENGTH_MAX} left out" if dropped else "",
        f"tempo {round(tempo)} bpm taken as {bpm}" if bpm != round(tempo) else "",
    ]
    changed = "; ".join(c for c in changes if c) or "nothing changed"
    summary = f"kept {len(notes)} notes of track {part.label()} in {key_name(base, scale)} at {bpm} bpm; {changed}"
    return Fitted(track, part, summary)
