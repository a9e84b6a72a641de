"""Edits the agent can make to a track. Only legal actions are ever offered, so applying one
always yields a valid track (pitch range, duration and velocity bounds, note count)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from core.music import (
    DRUM_CYCLE,
    DRUM_NAMES,
    DURATION_MAX,
    DURATION_MIN,
    DURATION_STEP,
    LENGTH_MAX,
    MIN_NOTES,
    PERCUSSION_STEPS,
    VELOCITY_MAX,
    VELOCITY_MIN,
    VELOCITY_STEP,
    Note,
    Track,
)


class Kind(str, Enum):
    PITCH_UP = "pitch_up"
    PITCH_DOWN = "pitch_down"
    LONGER = "longer"
    SHORTER = "shorter"
    PERCUSSION = "percussion"
    REMOVE = "remove"
    LOUDER = "louder"
    SOFTER = "softer"
    ADD_CHORD = "add_chord"
    DROP_CHORD = "drop_chord"
    ADD_NOTE = "add_note"


PAPER_KINDS = (Kind.PITCH_UP, Kind.PITCH_DOWN, Kind.LONGER, Kind.SHORTER, Kind.PERCUSSION, Kind.REMOVE)
ALL_KINDS = tuple(Kind)


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    index: int  # the note edited (for PERCUSSION: the drum step index % 16)

    def key(self) -> str:
        return f"{self.kind.value}@{self.index}"

    @staticmethod
    def from_key(text: str) -> Action:
        kind, _, index = text.partition("@")
        return Action(Kind(kind), int(index))


# Whether each kind of edit may be made to note i of a track (i in range): one table both for offering
# actions and for checking one before it is applied.
_ALLOWED: dict[Kind, Callable[[Track, Note, int], bool]] = {
    Kind.PITCH_UP: lambda track, note, i: track.in_range(note.degree + 1),
    Kind.PITCH_DOWN: lambda track, note, i: track.in_range(note.degree - 1),
    Kind.LONGER: lambda track, note, i: note.duration + DURATION_STEP <= DURATION_MAX,
    Kind.SHORTER: lambda track, note, i: note.duration - DURATION_STEP >= DURATION_MIN,
    Kind.PERCUSSION: lambda track, note, i: i < PERCUSSION_STEPS,
    Kind.REMOVE: lambda track, note, i: len(track.notes) > MIN_NOTES,
    Kind.LOUDER: lambda track, note, i: note.velocity + VELOCITY_STEP <= VELOCITY_MAX,
    Kind.SOFTER: lambda track, note, i: note.velocity - VELOCITY_STEP >= VELOCITY_MIN,
    Kind.ADD_CHORD: lambda track, note, i: not note.chord and all(0 <= p <= 127 for p in track.chord_pitches(note.degree)),
    Kind.DROP_CHORD: lambda track, note, i: note.chord,
    Kind.ADD_NOTE: lambda track, note, i: len(track.notes) < LENGTH_MAX,
}
# Actions are immutable values: one of each is made once, not on every round (a 64-note track has ~700).
_ACTIONS: dict[Kind, tuple[Action, ...]] = {kind: tuple(Action(kind, i) for i in range(LENGTH_MAX)) for kind in Kind}


def is_legal(track: Track, action: Action) -> bool:
    i = action.index
    return 0 <= i < len(track.notes) and _ALLOWED[action.kind](track, track.notes[i], i)


def legal_actions(track: Track, kinds: tuple[Kind, ...] = ALL_KINDS) -> tuple[Action, ...]:
    made = _ACTIONS if len(track.notes) <= LENGTH_MAX else {k: tuple(Action(k, i) for i in range(len(track.notes))) for k in kinds}
    checks = [(_ALLOWED[kind], made[kind]) for kind in kinds]
    return tuple(actions[i] for i, note in enumerate(track.notes) for allowed, actions in checks if allowed(track, note, i))


def apply(track: Track, action: Action) -> Track:
    if not is_legal(track, action):
        raise ValueError(f"action {action.key()} is not legal on this track")
    notes = list(track.notes)
    i, note = action.index, track.notes[action.index]
    match action.kind:
        case Kind.PITCH_UP | Kind.PITCH_DOWN:
            notes[i] = replace(note, degree=note.degree + (1 if action.kind is Kind.PITCH_UP else -1))
        case Kind.LONGER | Kind.SHORTER:
            notes[i] = replace(note, duration=note.duration + (DURATION_STEP if action.kind is Kind.LONGER else -DURATION_STEP))
        case Kind.LOUDER | Kind.SOFTER:
            notes[i] = replace(note, velocity=note.velocity + (VELOCITY_STEP if action.kind is Kind.LOUDER else -VELOCITY_STEP))
        case Kind.ADD_CHORD | Kind.DROP_CHORD:
            notes[i] = replace(note, chord=action.kind is Kind.ADD_CHORD)
        case Kind.REMOVE:
            del notes[i]
        case Kind.ADD_NOTE:
            notes.insert(i + 1, replace(note, chord=False))
        case Kind.PERCUSSION:
            drums = list(track.percussion)
            drums[i] = DRUM_CYCLE[(DRUM_CYCLE.index(drums[i]) + 1) % len(DRUM_CYCLE)]
            return replace(track, percussion=tuple(drums))
    return track.with_notes(tuple(notes))


def describe(track: Track, action: Action) -> str:
    """What the edit did, in words, for the round's message ('raised note 5 by one step')."""
    n = action.index + 1
    match action.kind:
        case Kind.PITCH_UP:
            return f"raised note {n} by one step"
        case Kind.PITCH_DOWN:
            return f"lowered note {n} by one step"
        case Kind.LONGER:
            return f"lengthened note {n} by a sixteenth"
        case Kind.SHORTER:
            return f"shortened note {n} by a sixteenth"
        case Kind.LOUDER:
            return f"played note {n} louder"
        case Kind.SOFTER:
            return f"played note {n} softer"
        case Kind.ADD_CHORD:
            return f"added a chord under note {n}"
        case Kind.DROP_CHORD:
            return f"dropped the chord under note {n}"
        case Kind.REMOVE:
            return f"removed note {n}"
        case Kind.ADD_NOTE:
            return f"repeated note {n}"
        case Kind.PERCUSSION:
            old = track.percussion[action.index]
            new = DRUM_CYCLE[(DRUM_CYCLE.index(old) + 1) % len(DRUM_CYCLE)]
            return f"changed drum step {n} from {DRUM_NAMES[old]} to {DRUM_NAMES[new]}"
    raise AssertionError(action.kind)
