"""Notes, scales and tracks: small immutable values, no I/O.

A melody note stores its pitch as a scale degree relative to the track's base note, so every
pitch is in key by construction and "one scale step up" is plain arithmetic.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace

from core.instruments import DEFAULT_PROGRAM
from core.words import WHOLE_NUMBER, quoted

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "diminished": (0, 2, 3, 5, 6, 8, 9, 11),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}

DURATIONS = (0.25, 0.5, 0.75, 1.0)  # the paper's initial choices, in beats
DURATION_STEP = 0.25
DURATION_MIN, DURATION_MAX = 0.25, 2.0
VELOCITY_STEP = 16
VELOCITY_MIN, VELOCITY_MAX = 32, 127
DEFAULT_VELOCITY = 80
LENGTH_MIN, LENGTH_MAX = 4, 64
MIN_NOTES = 2  # editing may shorten a track, never below this
TEMPO_MIN, TEMPO_MAX = 40, 240
# Melody pitches stay within an octave below and two above the base note.
RANGE_BELOW, RANGE_ABOVE = 12, 24
# The lowest melody pitch is kept audible: MIDI 21 (A0, 27.5 Hz) is the piano's lowest key; MIDI 0 is
# 8 Hz, below hearing. The highest must stay a MIDI note (127).
AUDIBLE_LOWEST = 21
BASE_MIN, BASE_MAX = AUDIBLE_LOWEST + RANGE_BELOW, 127 - RANGE_ABOVE

# General MIDI percussion (channel 10); "change percussion" cycles a step through these.
REST, KICK, SNARE, HIHAT = 0, 35, 38, 42
DRUM_CYCLE = (REST, KICK, SNARE, HIHAT)
DRUM_NAMES = {REST: "rest", KICK: "kick", SNARE: "snare", HIHAT: "hi-hat"}
PERCUSSION_STEPS = 16  # one bar of sixteenths, looped under the melody

_NOTE_NAME = re.compile(r"^\s*([A-Ga-g])([#b♯♭]?)(-?[0-9]+)\s*$")
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_LETTERS = "CDEFGAB"
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Each scale is written in the key signature of a major key: its tonic lies this many semitones above
# that key's tonic (A minor and D dorian are written like C major).
_ABOVE_PARENT_MAJOR = {
    "major": 0, "minor": 9, "harmonic_minor": 9, "diminished": 0, "major_pentatonic": 0, "minor_pentatonic": 9,
    "blues": 9, "dorian": 2, "mixolydian": 7, "lydian": 5, "phrygian": 4,
}  # fmt: skip
_FLAT_MAJOR_KEYS = {5, 10, 3, 8, 1}  # F, Bb, Eb, Ab and Db major have flats in their signatures (F# major: sharps)
# F# major's six sharps and Gb major's six flats write the same pitches: there the key is named as its tonic is
# more often written (Eb minor, Ab dorian and Bb phrygian; F# major, B lydian).
_SIX_EITHER_WAY, _FLAT_TONICS = 6, {3, 8, 10}


class MusicError(ValueError):
    """A musical parameter out of range; the message is meant for the user."""


def note_name(pitch: int, flats: bool = False) -> str:
    """60 -> 'C4'; 70 -> 'A#4', or 'Bb4' with `flats`."""
    return f"{(_FLAT_NAMES if flats else _SHARP_NAMES)[pitch % 12]}{pitch // 12 - 1}"


# The base notes check_base allows, as every message, help text and option description states them.
BASE_RANGE = f"{note_name(BASE_MIN)}-{note_name(BASE_MAX)} (MIDI {BASE_MIN}-{BASE_MAX})"


def parse_base(text: str | int) -> int:
    """A session's base note from its name or MIDI number: 'C4' -> 60, 'F#3' -> 54, 'Bb2' -> 46, '60' or 60
    -> 60 (scientific pitch, C4 = 60). MusicError, stating BASE_RANGE, for text that is not a note or a
    note outside that range (check_base)."""
    if isinstance(text, int) or (isinstance(text, str) and WHOLE_NUMBER.fullmatch(text)):
        number = int(text)
    else:
        match = _NOTE_NAME.match(str(text))
        if not match:
            raise MusicError(f"{quoted(str(text))} is not a note: use a name like C4, F#3, Bb2 or a MIDI number, {BASE_RANGE}")
        letter, accidental, octave = match.groups()
        number = (int(octave) + 1) * 12 + _PITCH_CLASS[letter.upper()]
        number += {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    check_base(number, text if isinstance(text, str) else None)  # said as typed: 104, not G#7
    return number


def uses_flats(base: int, scale: str) -> bool:
    """Whether the key of `scale` on `base` is written with flats (F major, D minor, G dorian, Eb minor...)."""
    parent = (base - _ABOVE_PARENT_MAJOR[scale]) % 12
    return parent in _FLAT_MAJOR_KEYS or (parent == _SIX_EITHER_WAY and base % 12 in _FLAT_TONICS)


def tonic_name(base: int, scale: str) -> str:
    """A key's base note with its octave, spelled as the key signature spells it: 46, 'dorian' -> 'Bb2'
    (where note_name alone says 'A#2'). Every line that names a session's key or base note uses it."""
    return note_name(base, uses_flats(base, scale))


def spelled_note_name(pitch: int, base: int, scale: str) -> str:
    """A MIDI pitch named as the key of `scale` on `base` writes it: 65 in F# major -> 'E#4', 61 in D harmonic
    minor -> 'C#4', 59 in Eb minor -> 'Cb4' (the octave number follows the letter, as in scientific pitch).
    A seven-note scale's notes take seven successive letters from the tonic's (tonic_name); a shorter or
    longer scale's notes that lie in its parent major key take that key's letters; any other pitch is
    spelled with the key signature's sharps or flats (note_name)."""
    letter, alter = _key_letters(base, scale).get(pitch % 12, (None, 0))
    if letter is None:
        return note_name(pitch, uses_flats(base, scale))
    accidental = "#" * alter if alter > 0 else "b" * -alter
    return f"{letter}{accidental}{(pitch - alter) // 12 - 1}"


def _key_letters(base: int, scale: str) -> dict[int, tuple[str, int]]:
    """Pitch class -> (letter, semitones the letter's natural note is altered by, -2 to 2) for the key's notes."""
    intervals = scale_intervals(scale)
    tonic_letter = _LETTERS.index(tonic_name(base, scale)[0])
    if len(intervals) != len(_LETTERS):
        above = _ABOVE_PARENT_MAJOR[scale]
        intervals = tuple((step - above) % 12 for step in SCALES["major"])
        tonic_letter -= SCALES["major"].index(above)  # the parent key's tonic letter
    letters = {}
    for position, step in enumerate(intervals):
        letter = _LETTERS[(tonic_letter + position) % len(_LETTERS)]
        pitch_class = (base + step) % 12
        letters[pitch_class] = (letter, (pitch_class - _PITCH_CLASS[letter] + 6) % 12 - 6)
    return letters


def key_signature(base: int, scale: str) -> str:
    """The MIDI key signature (SMF meta event 0x59, as mido names it) a notation program shows for the key:
    'Ebm' for Eb minor, 'F#' for F# major, and for a mode or another scale its parent major key's: 'C' for
    D dorian or A blues... minor ones are named as minor keys ('Am' for A blues)."""
    flats = uses_flats(base, scale)
    if scale in ("minor", "harmonic_minor", "minor_pentatonic", "blues"):
        return f"{(_FLAT_NAMES if flats else _SHARP_NAMES)[base % 12]}m"
    return (_FLAT_NAMES if flats else _SHARP_NAMES)[(base - _ABOVE_PARENT_MAJOR[scale]) % 12]


def key_name(base: int, scale: str, octave: bool = False) -> str:
    """'Bb major', 'F# minor', 'D dorian': the tonic spelled as the key signature spells it (tonic_name); with
    `octave`, the base note's octave too: 'Bb2 dorian'."""
    tonic = tonic_name(base, scale)
    return f"{tonic if octave else tonic.rstrip('-0123456789')} {scale.replace('_', ' ')}"


def scale_intervals(name: str) -> tuple[int, ...]:
    try:
        return SCALES[name]
    except KeyError:
        raise MusicError(f"unknown scale '{name}'; choose one of: {', '.join(SCALES)}") from None


def degree_to_pitch(base: int, scale: str, degree: int) -> int:
    intervals = scale_intervals(scale)
    octave, step = divmod(degree, len(intervals))
    return base + 12 * octave + intervals[step]


@dataclass(frozen=True, slots=True)
class Note:
    degree: int  # scale steps from the base note
    duration: float  # beats
    velocity: int = DEFAULT_VELOCITY
    chord: bool = False  # a triad on this degree, an octave below


@dataclass(frozen=True, slots=True)
class Track:
    notes: tuple[Note, ...]
    percussion: tuple[int, ...]  # PERCUSSION_STEPS drum numbers, REST for silence
    tempo: int
    base: int
    scale: str
    instrument: int = DEFAULT_PROGRAM  # the General MIDI program of the melody and its chords (core.instruments)
    pitches: tuple[int, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pitches", tuple(degree_to_pitch(self.base, self.scale, n.degree) for n in self.notes))

    def pitch_of(self, degree: int) -> int:
        return degree_to_pitch(self.base, self.scale, degree)

    def in_range(self, degree: int) -> bool:
        pitch = self.pitch_of(degree)
        return self.base - RANGE_BELOW <= pitch <= self.base + RANGE_ABOVE and 0 <= pitch <= 127

    def chord_pitches(self, degree: int) -> tuple[int, ...]:
        octave_down = degree - len(scale_intervals(self.scale))
        return tuple(self.pitch_of(octave_down + offset) for offset in (0, 2, 4))

    @property
    def beats(self) -> float:
        return sum(n.duration for n in self.notes)

    @property
    def seconds(self) -> float:
        return self.beats * 60.0 / self.tempo

    def with_notes(self, notes: tuple[Note, ...]) -> Track:
        return replace(self, notes=notes)

    def key(self) -> str:
        """A compact, stable text form of the whole track (the paper's state)."""
        melody = ",".join(f"{n.degree}:{n.duration:g}:{n.velocity}{'c' if n.chord else ''}" for n in self.notes)
        drums = "".join(str(DRUM_CYCLE.index(d)) for d in self.percussion)
        return f"{melody}|{drums}"


def check_base(base: int, typed: str | None = None) -> None:
    """MusicError unless every pitch a track on this base may reach (RANGE_BELOW under it to
    RANGE_ABOVE over it) is an audible MIDI note: base BASE_MIN-BASE_MAX (BASE_RANGE). The message names
    the note as `typed` (a name, as the person spelled it: Bb0, not A#0), else by its MIDI number's name."""
    if not BASE_MIN <= base <= BASE_MAX:
        shown = typed.strip() if typed is not None else note_name(base) if 0 <= base <= 127 else base
        raise MusicError(
            f"base note must be {BASE_RANGE}, not {shown}: "
            "the melody moves an octave below it and two above"
        )


def check_parameters(length: int, tempo: int) -> None:
    if not LENGTH_MIN <= length <= LENGTH_MAX:
        raise MusicError(f"length must be {LENGTH_MIN}-{LENGTH_MAX} notes, not {length}")
    if not TEMPO_MIN <= tempo <= TEMPO_MAX:
        raise MusicError(f"tempo must be {TEMPO_MIN}-{TEMPO_MAX} bpm, not {tempo}")


def generate_track(base: int, scale: str, length: int, tempo: int, rng: random.Random) -> Track:
    """A random starting track as in the paper: pitches from one octave of the scale."""
    check_base(base)
    check_parameters(length, tempo)
    degrees = len(scale_intervals(scale))
    notes = tuple(Note(rng.randint(0, degrees), rng.choice(DURATIONS)) for _ in range(length))
    percussion = tuple(rng.choice((REST, REST, KICK, SNARE, HIHAT)) for _ in range(PERCUSSION_STEPS))
    return Track(notes, percussion, tempo, base, scale)  # degrees 0..one octave: in range by check_base


def track_to_dict(track: Track) -> dict:
    return {
        "notes": [[n.degree, n.duration, n.velocity, int(n.chord)] for n in track.notes],
        "percussion": list(track.percussion),
        "tempo": track.tempo,
        "base": track.base,
        "scale": track.scale,
        "instrument": track.instrument,
    }


def track_from_dict(data: dict) -> Track:
    notes = tuple(Note(int(d), float(dur), int(v), bool(c)) for d, dur, v, c in data["notes"])
    return Track(
        notes, tuple(int(p) for p in data["percussion"]), int(data["tempo"]), int(data["base"]), str(data["scale"]),
        int(data.get("instrument", DEFAULT_PROGRAM)),  # tracks stored before instruments were chosen are pianos
    )
