"""Musical features of an edit in its context, shared across positions, tracks, keys and scales.

`edit_features(track, action)` describes a candidate edit by a fixed-length vector: the kind of edit
(one-hot) and how the edit changes a set of whole-track descriptors (`track_descriptors`): density,
loudness, register, range, the shape of the melody (steps, leaps and whether they resolve, repeated
notes, turns), tonic at the start and end, metric placement, rhythmic repetition, chords on and off the
beat, and the drum pattern (backbeat, stray hits, hi-hats, density); and each rule of the music-theory
critic (core.theory) apart, as a descriptor whose weight is learned like any other. A few descriptors also enter
squared, so a linear model of an edit's value can learn an optimum (a preferred density, range or
length) rather than only "more is better".

Every descriptor is relative: pitches count in semitones from the track's base note or between
neighbours, positions in beats, sizes as shares of the track. Transposing a track, or moving it to
another key, leaves every vector the same; so does changing its scale when the edit moves the same
semitone intervals. A one-note edit on a long track changes the shares less than on a short one, so an
edit's expected effect shrinks with the track's length, as it does for listeners.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from core.actions import ALL_KINDS, Action, Kind, apply
from core.theory import melody_of_track, theory_critic
from core.music import (
    DURATION_MAX,
    HIHAT,
    KICK,
    PERCUSSION_STEPS,
    REST,
    SNARE,
    VELOCITY_MAX,
    VELOCITY_MIN,
    Track,
    scale_intervals,
)

CANONICAL_BASE = 60  # the critic hears every melody moved to this base note (see rule_descriptors)
STEP_MAX = 2  # semitones: a step (a second)
LEAP_MIN = 5  # semitones: a fourth or more is a leap
BACKBEAT_KICKS, BACKBEAT_SNARES = (0, 8), (4, 12)

# (name, what an increase means in words): the descriptors, in vector order. Words are for explanations.
DESCRIPTORS: tuple[tuple[str, str], ...] = (
    ("notes_per_beat", "more notes per beat (a busier rhythm)"),
    ("notes_per_second", "more notes per second"),
    ("length", "a longer track (more notes)"),
    ("loudness", "louder notes"),
    ("loudness_spread", "more contrast between loud and soft notes"),
    ("register", "a higher melody"),
    ("range", "a wider range between the lowest and highest note"),
    ("interval_size", "larger intervals between neighbouring notes"),
    ("steps", "more stepwise motion"),
    ("thirds", "more thirds"),
    ("leaps", "more leaps (a fourth or wider)"),
    ("resolved_leaps", "resolving a leap by a step back"),
    ("repeated_notes", "repeating the same pitch"),
    ("longest_repeat", "longer runs of one repeated pitch"),
    ("turns", "more changes of direction (a zigzag)"),
    ("tonic_notes", "more notes on the tonic"),
    ("tonic_start", "starting on the tonic"),
    ("tonic_end", "ending on the tonic"),
    ("final_length", "a longer final note"),
    ("on_beat", "more notes starting on the beat"),
    ("on_eighth", "more notes starting on an eighth"),
    ("rhythm_repeats", "a rhythm that repeats"),
    ("chords", "more chords"),
    ("chords_on_beat", "chords on the beat"),
    ("chords_off_beat", "chords off the beat"),
    ("drum_density", "more drum hits"),
    ("backbeat", "a backbeat (kick on 1 and 3, snare on 2 and 4)"),
    ("stray_drums", "kicks and snares off the eighths"),
    ("hihats", "hi-hats on the eighths"),
)
# The music-theory critic's rules (core.theory, after Magenta's RL Tuner), each as a descriptor of its own:
# how well the melody fits its best key, tonic at the start and end, interval consonance, leaps and their
# resolution, motifs, repetition, autocorrelation, unique extremes. Weights start at 0 like every other
# descriptor's: a crowd that likes leaps left hanging learns a negative weight for "leap_resolved".
RULES: tuple[tuple[str, str], ...] = (
    ("in_key", "notes that fit the key"),
    ("tonic_start", "starting on the home note of the key the melody fits best"),
    ("tonic_end", "ending on the home note of the key the melody fits best"),
    ("repetition", "breaking up runs of more than four of one note"),
    ("autocorrelation", "a melody that varies rather than echoing itself note for note"),
    ("motif", "a last bar with several distinct pitches (a motif)"),
    ("repeated_motif", "a motif that comes back"),
    ("intervals", "consonant intervals (steps, thirds, fifths) rather than sevenths and wide leaps"),
    ("two_leaps", "breaking up two leaps in the same direction"),
    ("leap_resolved", "a leap of a fifth or more answered by a step back"),
    ("extremes", "a highest and a lowest note heard once each"),
    ("length", "a track of at least eight notes"),
)
SQUARED = ("notes_per_second", "length", "loudness", "register", "range")  # descriptors that also enter squared
# What an increase of a squared descriptor means: moving away from the middle toward either extreme.
EXTREMES = {
    "notes_per_second": "very fast or very slow notes", "length": "a very long or very short track",
    "loudness": "very loud or very soft notes", "register": "a very high or very low melody",
    "range": "a very wide or very narrow range",
}
_INDEX = {name: i for i, (name, _) in enumerate(DESCRIPTORS)}
_SQUARED_INDEX = np.array([_INDEX[name] for name in SQUARED])

KIND_WORDS: dict[Kind, str] = {
    Kind.PITCH_UP: "raising a note by a step",
    Kind.PITCH_DOWN: "lowering a note by a step",
    Kind.LONGER: "lengthening a note",
    Kind.SHORTER: "shortening a note",
    Kind.PERCUSSION: "changing a drum step",
    Kind.REMOVE: "removing a note",
    Kind.LOUDER: "playing a note louder",
    Kind.SOFTER: "playing a note softer",
    Kind.ADD_CHORD: "adding a chord",
    Kind.DROP_CHORD: "dropping a chord",
    Kind.ADD_NOTE: "repeating a note (adding one)",
}

# Feature names in vector order: the edit's kind, then each descriptor's change, then the squared ones'.
FEATURE_NAMES: tuple[str, ...] = (
    *(f"kind:{kind.value}" for kind in ALL_KINDS),
    *(f"more:{name}" for name, _ in DESCRIPTORS),
    *(f"more:{name}^2" for name in SQUARED),
    *(f"rule:{name}" for name, _ in RULES),
)
FEATURE_WORDS: dict[str, str] = {
    **{f"kind:{kind.value}": KIND_WORDS[kind] for kind in ALL_KINDS},
    **{f"more:{name}": words for name, words in DESCRIPTORS},
    **{f"more:{name}^2": words for name, words in EXTREMES.items()},
    **{f"rule:{name}": words for name, words in RULES},
}
DIMENSION = len(FEATURE_NAMES)
_KIND_INDEX = {kind: i for i, kind in enumerate(ALL_KINDS)}


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _spread(values: Sequence[float]) -> float:
    """Population standard deviation in plain floats (statistics.pstdev is exact and ten times slower:
    this runs for every candidate edit)."""
    mean = _mean(values)
    return max(0.0, _mean([v * v for v in values]) - mean * mean) ** 0.5


def track_descriptors(track: Track) -> np.ndarray:
    """The whole-track descriptors (DESCRIPTORS order), shape (len(DESCRIPTORS),), each about 0-1.

    Pitches are semitones relative to the base note, so the vector does not depend on the key."""
    notes = track.notes
    n = len(notes)
    rel = [p - track.base for p in track.pitches]
    intervals = [b - a for a, b in zip(rel, rel[1:])]
    sizes = [abs(i) for i in intervals]
    beats = track.beats or 1.0
    onsets = list(itertools.accumulate((note.duration for note in notes), initial=0.0))[:-1]
    on_beat = [o % 1 == 0 for o in onsets]
    velocities = [note.velocity for note in notes]
    size = len(scale_intervals(track.scale))
    moves = [i for i in intervals if i]
    resolved = sum(
        1 for a, b in zip(intervals, intervals[1:]) if abs(a) >= LEAP_MIN and 0 < abs(b) <= STEP_MAX and (a > 0) != (b > 0)
    )
    leaps = sum(1 for s in sizes if s >= LEAP_MIN)
    longest, run = 1, 1
    for s in sizes:
        run = run + 1 if s == 0 else 1
        longest = max(longest, run)
    durations = [note.duration for note in notes]
    repeats = max(_share([durations[i] == durations[i - p] for i in range(p, n)]) for p in (2, 3, 4)) if n > 2 else 0.0
    strong = [note.chord for note, s in zip(notes, on_beat) if s]
    weak = [note.chord for note, s in zip(notes, on_beat) if not s]
    drums = track.percussion
    hits = [d != REST for d in drums]
    backbeat = sum(drums[s] == KICK for s in BACKBEAT_KICKS) + sum(drums[s] == SNARE for s in BACKBEAT_SNARES)
    stray = sum(1 for s, d in enumerate(drums) if s % 2 and d in (KICK, SNARE))
    hats = sum(1 for s in range(0, PERCUSSION_STEPS, 2) if drums[s] == HIHAT)
    loud = [(v - VELOCITY_MIN) / (VELOCITY_MAX - VELOCITY_MIN) for v in velocities]
    values = (
        n / beats / 4,
        n / track.seconds / 8 if track.seconds else 0.0,
        n / 16,
        _mean(loud),
        _spread(loud) if n > 1 else 0.0,
        _mean(rel) / 12,
        (max(rel) - min(rel)) / 12 if rel else 0.0,
        _mean(sizes) / 12,
        _share([0 < s <= STEP_MAX for s in sizes]),
        _share([3 <= s <= 4 for s in sizes]),
        _share([s >= LEAP_MIN for s in sizes]),
        resolved / leaps if leaps else 0.0,
        _share([s == 0 for s in sizes]),
        (longest - 1) / 4,
        _share([(a > 0) != (b > 0) for a, b in zip(moves, moves[1:])]),
        _share([note.degree % size == 0 for note in notes]),
        float(n > 0 and notes[0].degree % size == 0),
        float(n > 0 and notes[-1].degree % size == 0),
        notes[-1].duration / DURATION_MAX if n else 0.0,
        _share(on_beat),
        _share([(o * 2) % 1 == 0 for o in onsets]),
        repeats,
        _share([note.chord for note in notes]),
        _share(strong),
        _share(weak),
        _share(hits),
        backbeat / 4,
        stray / 8,
        hats / 8,
    )
    return np.array(values, dtype=float)


def rule_descriptors(track: Track) -> np.ndarray:
    """The critic's per-rule scores of the track's melody (RULES order), shape (len(RULES),). The critic
    hears the melody in its best-fitting key; among keys that fit equally well it takes the first in its own
    order, which depends on the absolute pitch, so the melody is heard moved to base note C4 first: the
    same tune in any key gets the same verdict."""
    score = theory_critic.critique(melody_of_track(replace(track, base=CANONICAL_BASE)))
    return np.array([getattr(score, name) for name, _ in RULES], dtype=float)


def _described(track: Track) -> np.ndarray:
    """Everything an edit's features are differences of: descriptors, their squares, the critic's rules."""
    descriptors = track_descriptors(track)
    return np.concatenate([descriptors, descriptors[_SQUARED_INDEX] ** 2, rule_descriptors(track)])


def edit_features(track: Track, action: Action, before: np.ndarray | None = None) -> np.ndarray:
    """The feature vector of `action` on `track`, shape (DIMENSION,): FEATURE_NAMES order.

    `before` is `_described(track)` when the caller has it (it is the same for every action)."""
    if before is None:
        before = _described(track)
    kind = np.zeros(len(ALL_KINDS))
    kind[_KIND_INDEX[action.kind]] = 1.0
    return np.concatenate([kind, _described(apply(track, action)) - before])


def candidate_features(track: Track, actions: Sequence[Action]) -> np.ndarray:
    """Feature vectors of many actions on one track, shape (len(actions), DIMENSION)."""
    before = _described(track)
    if not actions:
        return np.zeros((0, DIMENSION))
    return np.stack([edit_features(track, action, before) for action in actions])
