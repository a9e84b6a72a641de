"""Reading a MIDI file back as music, and a music-theory critic after Magenta's RL Tuner rules.

The critic judges the melody only (channel 0, highest note at each onset); chords and drums are left
to the taste raters in core.raters. Every rule is scaled per note or per interval, so a 32-note track
is not judged harsher or kinder than an 8-note one just for its length, and a single edit moves the
total by a bounded amount (no -100 cliffs). `score_1_to_10` squashes the total with a logistic curve,
which never saturates: even a very bad track still shows which edit makes it less bad.

Key: a MIDI file carries no key, and our tracks are in key by construction relative to a base note the
file does not record. Unless a key is passed in, the critic hears the melody in whichever of the 36
major / natural minor / harmonic minor keys makes the key-dependent rules (in key, tonic at start,
tonic at end) score best. Taking the best key keeps the landscape smooth: one edit changes every
candidate key's score by a bounded amount, so it changes their maximum by at most that much too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import mido

from core.midi import DRUM_CHANNEL, MELODY_CHANNEL
from core.music import Track, scale_intervals

DEFAULT_BPM = 120.0  # the MIDI default when a file sets no tempo


@dataclass(frozen=True, slots=True)
class MelodyNote:
    pitch: int
    start_beat: float
    duration_beats: float
    velocity: int
    chord: tuple[int, ...] = ()  # lower notes starting together with this one, ascending

    @property
    def has_chord(self) -> bool:
        return bool(self.chord)


@dataclass(frozen=True, slots=True)
class ParsedMidi:
    """What a listener hears in a file, parsed once and shared by every rule and taste."""

    melody: tuple[MelodyNote, ...]
    drums: tuple[tuple[float, int], ...]  # (beat, General MIDI drum note), in time order
    bpm: float

    @property
    def beats(self) -> float:
        return max((n.start_beat + n.duration_beats for n in self.melody), default=0.0)


def parse_midi(midi: mido.MidiFile) -> ParsedMidi:
    """One pass over the messages. The melody is the highest note starting at each onset on the melody
    channel, the lower ones starting with it are its chord; only the first tempo counts."""
    ticks_per_beat = midi.ticks_per_beat
    voices: list[list[int]] = []  # [start tick, pitch, velocity, end tick] on the melody channel
    sounding: dict[int, list[list[int]]] = {}  # pitch -> voices waiting for their note-off, oldest first
    drums: list[tuple[int, int]] = []
    tempo = None
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            kind = message.type
            if kind == "note_on" and message.velocity:
                if message.channel == MELODY_CHANNEL:
                    voice = [tick, message.note, message.velocity, -1]
                    voices.append(voice)
                    sounding.setdefault(message.note, []).append(voice)
                elif message.channel == DRUM_CHANNEL:
                    drums.append((tick, message.note))
            elif kind == "note_off" or kind == "note_on":  # a velocity-0 note-on is a note-off
                if message.channel == MELODY_CHANNEL and (waiting := sounding.get(message.note)):
                    waiting.pop(0)[3] = tick
            elif kind == "set_tempo" and tempo is None:
                tempo = message.tempo
        for waiting in sounding.values():  # a note never released lasts to the end of its track
            for voice in waiting:
                voice[3] = tick
        sounding.clear()

    voices.sort(key=lambda v: (v[0], -v[1]))
    melody: list[MelodyNote] = []
    i = 0
    while i < len(voices):
        start, pitch, velocity, end = voices[i]
        j = i + 1
        while j < len(voices) and voices[j][0] == start:
            j += 1
        chord = tuple(sorted({v[1] for v in voices[i + 1 : j] if v[1] < pitch}))
        melody.append(MelodyNote(pitch, start / ticks_per_beat, (end - start) / ticks_per_beat, velocity, chord))
        i = j
    drums.sort()
    return ParsedMidi(
        tuple(melody),
        tuple((tick / ticks_per_beat, note) for tick, note in drums),
        mido.tempo2bpm(tempo) if tempo else DEFAULT_BPM,
    )


def melody_notes(midi: mido.MidiFile) -> list[MelodyNote]:
    return list(parse_midi(midi).melody)


def drum_hits(midi: mido.MidiFile) -> list[tuple[float, int]]:
    return list(parse_midi(midi).drums)


def melody_of_track(track: Track) -> tuple[MelodyNote, ...]:
    """The melody `melody_notes(track_to_midi(track))` would read, without building the file (for speed)."""
    melody = []
    start = 0.0
    for note, pitch in zip(track.notes, track.pitches):
        chord = track.chord_pitches(note.degree) if note.chord else ()
        melody.append(MelodyNote(pitch, start, note.duration, note.velocity, chord))
        start += note.duration
    return tuple(melody)


# --- the critic ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    tonic: int  # pitch class 0-11
    pitch_classes: frozenset[int]

    @staticmethod
    def of(tonic: int, scale: str) -> Key:
        return Key(tonic % 12, frozenset((tonic + step) % 12 for step in scale_intervals(scale)))

    @staticmethod
    def of_track(track: Track) -> Key:
        return Key.of(track.base, track.scale)


CANDIDATE_KEYS = tuple(Key.of(tonic, mode) for mode in ("major", "minor", "harmonic_minor") for tonic in range(12))

# Weights: what each rule is worth for a track that satisfies it fully.
W_IN_KEY = 3.0  # all notes out of key
W_TONIC = 1.0  # each of start and end
W_REPETITION = 12.0  # per note beyond the 4th of a run of one pitch, per note of the track
W_AUTOCORRELATION = 2.0  # per lag, per unit of recurrence above the threshold
W_MOTIF = 1.0
W_REPEATED_MOTIF = 2.0
W_INTERVALS = 3.0
W_LEAPS = 1.5  # per leap, per interval: a resolved fifth is worth about as much as a step, not more
W_EXTREMES = 1.0  # each of highest and lowest
W_LENGTH = 2.0  # a one-note "tune"; nothing from TUNE_NOTES notes up

MAX_RUN = 4  # Magenta: the same note more than 4 times in a row is penalised
AUTOCORRELATION_LAGS = (1, 2, 3)
AUTOCORRELATION_THRESHOLD = 0.25  # Magenta: 0.15 on a 16th grid; note-to-note, chance alone is about 0.14
MOTIF_NOTES = 4
MOTIF_MIN_PITCHES = 3
LEAP = 7  # semitones: a fifth or more
# Magenta's compositions have a fixed length, ours shrink under "remove note"; without this rule a
# 4-note fragment would be the easiest way to satisfy every other rule.
TUNE_NOTES = 8


def interval_preference(semitones: int) -> float:
    """How good one melodic interval sounds, -1..1: steps and thirds best, sevenths and beyond an octave worst."""
    size = abs(semitones)
    if size > 12:
        return -1.0
    return _INTERVAL_PREFERENCE[size]


# By size in semitones:  0    1    2    3    4    5    6     7    8    9    10    11    12
_INTERVAL_PREFERENCE = (0.0, 1.0, 1.0, 0.7, 0.7, 0.5, -0.2, 0.4, 0.1, 0.1, -0.5, -1.0, 0.0)


@dataclass(frozen=True, slots=True)
class TheoryScore:
    """Each rule's contribution to the total (positive is good)."""

    in_key: float = 0.0
    tonic_start: float = 0.0
    tonic_end: float = 0.0
    repetition: float = 0.0
    autocorrelation: float = 0.0
    motif: float = 0.0
    repeated_motif: float = 0.0
    intervals: float = 0.0
    two_leaps: float = 0.0
    leap_resolved: float = 0.0
    extremes: float = 0.0
    length: float = 0.0
    key: Key | None = None  # the key the melody was judged in

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self) if f.name != "key")

    @property
    def score_1_to_10(self) -> float:
        return score_1_to_10(self.total)


# Calibrated on generated tracks (see tests/test_theory.py): random tracks land near 4-5,
# tracks hill-climbed with single edits reach 8-9.
SCORE_MIDPOINT = 4.7
SCORE_SPREAD = 1.5


def score_1_to_10(total: float) -> float:
    return 1.0 + 9.0 / (1.0 + math.exp(-(total - SCORE_MIDPOINT) / SCORE_SPREAD))


@dataclass(frozen=True, slots=True)
class TheoryCritic:
    """A rater after the RL Tuner rules. `key=None` hears each melody in its best-fitting key."""

    key: Key | None = None
    name: str = "theorist"

    def __call__(self, midi: mido.MidiFile) -> float:
        return self.critique(parse_midi(midi).melody).score_1_to_10

    def critique(self, melody: Sequence[MelodyNote]) -> TheoryScore:
        pitches = [n.pitch for n in melody]
        if not pitches:
            return TheoryScore(key=self.key)
        intervals = [b - a for a, b in zip(pitches, pitches[1:])]
        per_interval = 1.0 / max(1, len(intervals))
        key, in_key, tonic_start, tonic_end = self._key_rules(pitches)
        two_leaps, leap_resolved = _leap_rules(intervals)
        return TheoryScore(
            in_key=in_key,
            tonic_start=tonic_start,
            tonic_end=tonic_end,
            repetition=-W_REPETITION * _excess_repeats(pitches) / len(pitches),
            autocorrelation=-W_AUTOCORRELATION * _recurrence_excess(pitches),
            motif=W_MOTIF * _motif_variety(pitches),
            repeated_motif=W_REPEATED_MOTIF * _repeated_motifs(intervals, [n.duration_beats for n in melody]),
            intervals=W_INTERVALS * per_interval * sum(interval_preference(i) for i in intervals),
            two_leaps=W_LEAPS * per_interval * two_leaps,
            leap_resolved=W_LEAPS * per_interval * leap_resolved,
            extremes=W_EXTREMES * (1.0 / pitches.count(max(pitches)) + 1.0 / pitches.count(min(pitches))),
            length=-W_LENGTH * max(0, TUNE_NOTES - len(pitches)) / (TUNE_NOTES - 1),
            key=key,
        )

    def _key_rules(self, pitches: list[int]) -> tuple[Key, float, float, float]:
        histogram = [0] * 12
        for pitch in pitches:
            histogram[pitch % 12] += 1
        first, last = pitches[0] % 12, pitches[-1] % 12

        def rules(key: Key) -> tuple[float, float, float]:
            outside = len(pitches) - sum(histogram[pc] for pc in key.pitch_classes)
            return (
                -W_IN_KEY * outside / len(pitches),
                W_TONIC * (first == key.tonic),
                W_TONIC * (last == key.tonic),
            )

        candidates = (self.key,) if self.key else CANDIDATE_KEYS
        best = max(candidates, key=lambda k: sum(rules(k)))
        return (best, *rules(best))


theory_critic = TheoryCritic()


def _excess_repeats(pitches: list[int]) -> int:
    """Notes beyond the MAX_RUN-th of each run of one repeated pitch."""
    excess, run = 0, 1
    for previous, pitch in zip(pitches, pitches[1:]):
        run = run + 1 if pitch == previous else 1
        excess += run > MAX_RUN
    return excess


def _recurrence_excess(pitches: list[int]) -> float:
    """Sum over lags 1-3 of the share of notes equal to the note that many places before, above a threshold.

    This is the autocorrelation of the pitch identities, which is what Magenta's rule measures on its
    event grid: C-C-C recurs at lag 1, C-D-C-D at lag 2, C-D-E-C-D-E at lag 3. Correlating pitch values
    (or intervals) instead would mostly measure how smooth the contour is, and punish a plain arch.
    """
    excess = 0.0
    for lag in AUTOCORRELATION_LAGS:
        pairs = len(pitches) - lag
        if pairs > 0:
            share = sum(a == b for a, b in zip(pitches, pitches[lag:])) / pairs
            excess += max(0.0, share - AUTOCORRELATION_THRESHOLD)
    return excess


def _motif_variety(pitches: list[int]) -> float:
    """Share of 4-note windows using at least 3 distinct pitches (Magenta: a bar with >= 3 pitches is a motif)."""
    windows = [pitches[i : i + MOTIF_NOTES] for i in range(max(1, len(pitches) - MOTIF_NOTES + 1))]
    return sum(len(set(w)) >= MOTIF_MIN_PITCHES for w in windows) / len(windows)


def _interval_class(semitones: int) -> int:
    """Direction and rough size, so a motif repeated a scale step higher still counts as the same shape."""
    size = abs(semitones)
    shape = 0 if size == 0 else 1 if size <= 2 else 2 if size <= 4 else 3
    return shape if semitones >= 0 else -shape


def _has_shape(pattern: tuple) -> bool:
    """A run of equal steps or equal durations going on is not a motif coming back."""
    return len(set(pattern)) > 1


def _repeated_motifs(intervals: list[int], durations: list[float]) -> float:
    """Share of 4-note windows whose contour, and separately whose rhythm, already occurred earlier
    without overlapping (half credit each, so a motif can be built up one edit at a time)."""
    last_start = len(durations) - MOTIF_NOTES
    if last_start < MOTIF_NOTES:
        return 0.0
    shapes = [_interval_class(i) for i in intervals]
    seen_contours: set[tuple[int, ...]] = set()
    seen_rhythms: set[tuple[float, ...]] = set()
    credit = 0.0
    for start in range(MOTIF_NOTES, last_start + 1):
        earlier = start - MOTIF_NOTES  # the latest window that ends before this one begins
        seen_contours.add(tuple(shapes[earlier : earlier + MOTIF_NOTES - 1]))
        seen_rhythms.add(tuple(durations[earlier : earlier + MOTIF_NOTES]))
        contour = tuple(shapes[start : start + MOTIF_NOTES - 1])
        rhythm = tuple(durations[start : start + MOTIF_NOTES])
        credit += 0.5 * (contour in seen_contours and _has_shape(contour))
        credit += 0.5 * (rhythm in seen_rhythms and _has_shape(rhythm))
    return credit / (last_start - MOTIF_NOTES + 1)


def _leap_rules(intervals: list[int]) -> tuple[float, float]:
    """(-1 per leap followed by another leap the same way, +1 per leap answered by a step back or +0.5 by a
    third back). Magenta gives an unresolved leap nothing; the interval rule already rates its size."""
    doubled = resolved = 0.0
    for leap, following in zip(intervals, intervals[1:]):
        if abs(leap) < LEAP:
            continue
        same_direction = (leap > 0) == (following > 0) and following != 0
        if same_direction and abs(following) >= LEAP:
            doubled -= 1.0
        elif not same_direction and 0 < abs(following) <= 2:
            resolved += 1.0
        elif not same_direction and 0 < abs(following) <= 4:
            resolved += 0.5
    return doubled, resolved


def theory_prior(before: Track, after: Track, critic: TheoryCritic = theory_critic) -> float:
    """How much an edit changes the critic's 1-10 score (to seed Q-values or shape rewards)."""
    before_score, after_score = (critic.critique(melody_of_track(t)).score_1_to_10 for t in (before, after))
    return after_score - before_score
