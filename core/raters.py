"""Simulated crowd members: honest tastes, a troll and a brigader.

A rater is any callable `rater(midi: mido.MidiFile) -> float` in [1, 10]. Each honest taste blends a
shared core of musical sense (the theory critic's verdict, CORE_WEIGHT of the score) with what that
taste cares about, so tastes disagree on style but agree that a tune beats noise. A rater's noise
comes only from the `random.Random` it was built with.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, partial, wraps
from typing import Literal

import mido

from core.music import HIHAT, KICK, SNARE
from core.theory import W_TONIC, ParsedMidi, TheoryScore, parse_midi, theory_critic

__all__ = [
    "BUILTIN_RATERS",
    "Brigader",
    "HONEST_TASTES",
    "Heard",
    "Rater",
    "RaterLike",
    "consensus_score",
    "CONTRARIAN_TASTES",
    "CROWDS",
    "CROWD_MEMBERS",
    "default_crowd",
    "heard_together",
    "judge",
    "make_rater",
    "prefer",
    "theory_critic",
]

RATING_MIN, RATING_MAX = 1.0, 10.0
DEFAULT_NOISE = 0.8
CORE_WEIGHT = 0.35

# A General MIDI bar of sixteenths: where a rock backbeat puts its kick and snare.
BACKBEAT_KICKS = (0, 8)
BACKBEAT_SNARES = (4, 12)
STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16


class Heard:
    """One listening of a file: parsed once, the critic consulted at most once, shared by every taste."""

    def __init__(self, midi: mido.MidiFile) -> None:
        self.parsed: ParsedMidi = parse_midi(midi)

    @cached_property
    def theory(self) -> TheoryScore:
        return theory_critic.critique(self.parsed.melody)

    @cached_property
    def theory_unit(self) -> float:
        return (self.theory.score_1_to_10 - RATING_MIN) / (RATING_MAX - RATING_MIN)

    @cached_property
    def pitches(self) -> list[int]:
        return [n.pitch for n in self.parsed.melody]

    @cached_property
    def intervals(self) -> list[int]:
        return [b - a for a, b in zip(self.pitches, self.pitches[1:])]

    @cached_property
    def notes_per_second(self) -> float:
        seconds = self.parsed.beats * 60.0 / self.parsed.bpm
        return len(self.pitches) / seconds if seconds else 0.0

    @cached_property
    def drums_per_beat(self) -> float:
        return len(self.parsed.drums) / self.parsed.beats if self.parsed.beats else 0.0

    @cached_property
    def drum_pattern(self) -> dict[int, set[int]]:
        """Drum notes at each sixteenth of the bar, over all bars."""
        pattern: dict[int, set[int]] = {}
        for beat, drum in self.parsed.drums:
            pattern.setdefault(round(beat * STEPS_PER_BEAT) % STEPS_PER_BAR, set()).add(drum)
        return pattern


def _ramp(value: float, zero_at: float, one_at: float) -> float:
    """0 at `zero_at`, 1 at `one_at`, linear between and flat outside (either direction)."""
    return min(1.0, max(0.0, (value - zero_at) / (one_at - zero_at)))


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _blend(heard: Heard, weighted_features: list[tuple[float, float]]) -> float:
    """The shared core plus a taste's own features (weight, value in [0, 1]; weights sum to 1), as 1-10."""
    own = sum(weight * value for weight, value in weighted_features)
    return RATING_MIN + (RATING_MAX - RATING_MIN) * (CORE_WEIGHT * heard.theory_unit + (1 - CORE_WEIGHT) * own)


def _mean_velocity(heard: Heard) -> float:
    return statistics.fmean(n.velocity for n in heard.parsed.melody)


def _pitch_range(heard: Heard) -> int:
    return max(heard.pitches) - min(heard.pitches)


def _stepwise(heard: Heard) -> float:
    return _share([0 < abs(i) <= 2 for i in heard.intervals])


def _direction_changes(heard: Heard) -> float:
    moves = [i for i in heard.intervals if i]
    return _share([(a > 0) != (b > 0) for a, b in zip(moves, moves[1:])])


def _rhythm_repetition(heard: Heard) -> float:
    """How well the durations repeat with a short period (2, 3 or 4 notes)."""
    durations = [n.duration_beats for n in heard.parsed.melody]
    return max(
        _share([durations[i] == durations[i - period] for i in range(period, len(durations))]) for period in (2, 3, 4)
    )


def _honest(taste: Callable[[Heard], float]) -> Callable[[Heard], float]:
    """An honest taste gives a file with no melody at all the lowest rating (and needs no guard of its own)."""

    @wraps(taste)
    def rate(heard: Heard) -> float:
        return taste(heard) if heard.pitches else RATING_MIN

    return rate


@_honest
def theorist(heard: Heard) -> float:
    return heard.theory.score_1_to_10


@_honest
def calm(heard: Heard) -> float:
    return _blend(
        heard,
        [
            (0.25, _ramp(heard.notes_per_second, 6.0, 1.0)),
            (0.2, _ramp(_mean_velocity(heard), 120, 50)),  # energetic's mirror: no loudness bias in the crowd
            (0.15, _ramp(statistics.fmean(heard.pitches), 84, 48)),
            (0.2, _ramp(heard.drums_per_beat, 2.5, 0.0)),
            (0.1, _ramp(statistics.fmean(abs(i) for i in heard.intervals) if heard.intervals else 0, 8, 1)),
            (0.1, _ramp(heard.parsed.bpm, 160, 60)),
        ],
    )


@_honest
def energetic(heard: Heard) -> float:
    return _blend(
        heard,
        [
            (0.3, _ramp(heard.notes_per_second, 1.5, 7.0)),
            (0.2, _ramp(_mean_velocity(heard), 50, 120)),
            (0.25, _ramp(heard.drums_per_beat, 0.5, 3.0)),
            (0.15, _ramp(_pitch_range(heard), 5, 20)),
            (0.1, _ramp(heard.parsed.bpm, 80, 180)),
        ],
    )


@_honest
def harmonist(heard: Heard) -> float:
    melody = heard.parsed.melody
    on_beat = [n.start_beat.is_integer() for n in melody]
    chords_on_beats = _share([n.has_chord for n, strong in zip(melody, on_beat) if strong])
    chords_off_beats = _share([n.has_chord for n, strong in zip(melody, on_beat) if not strong])
    return _blend(
        heard,
        [
            (0.5, chords_on_beats * (1 - 0.5 * chords_off_beats)),  # harmony that moves with the pulse
            (0.3, _ramp(_stepwise(heard), 0.0, 0.8)),
            (0.2, _share(on_beat)),
        ],
    )


@_honest
def groove(heard: Heard) -> float:
    pattern = heard.drum_pattern
    kicks = sum(KICK in pattern.get(step, ()) for step in BACKBEAT_KICKS)
    snares = sum(SNARE in pattern.get(step, ()) for step in BACKBEAT_SNARES)
    stray = sum(1 for step, drums in pattern.items() if step % 2 and drums & {KICK, SNARE})
    hats = sum(HIHAT in pattern.get(step, ()) for step in range(0, STEPS_PER_BAR, 2))
    on_eighths = _share([(n.start_beat * 2).is_integer() for n in heard.parsed.melody])
    return _blend(
        heard,
        [
            (0.45, (kicks + snares) / 4 * (1 - 0.5 * min(1.0, stray / 4))),  # kick/snare off the 8ths muddy it
            (0.15, hats / 8),
            (0.25, _rhythm_repetition(heard)),
            (0.15, on_eighths),
        ],
    )


@_honest
def melodist(heard: Heard) -> float:
    last = heard.parsed.melody[-1]
    return _blend(
        heard,
        [
            (0.25, _ramp(_pitch_range(heard), 19, 12)),  # a voice's comfortable range
            (0.25, _share([abs(i) <= 4 for i in heard.intervals])),
            (0.2, heard.theory.tonic_end / W_TONIC),
            (0.1, _ramp(last.duration_beats, 0.5, 1.5)),  # a held final note closes the phrase
            (0.2, _ramp(_direction_changes(heard), 0.8, 0.3)),  # a zigzag is not singable
        ],
    )


HONEST_TASTES: dict[str, Callable[[Heard], float]] = {
    "theorist": theorist,
    "calm": calm,
    "energetic": energetic,
    "harmonist": harmonist,
    "groove": groove,
    "melodist": melodist,
}


# --- the contrarian crowd: tastes that run against the theory critic ---------------------------------


def _against(heard: Heard, weighted_features: list[tuple[float, float]]) -> float:
    """Like _blend, but the shared core is the critic's verdict turned upside down."""
    own = sum(weight * value for weight, value in weighted_features)
    return RATING_MIN + (RATING_MAX - RATING_MIN) * (CORE_WEIGHT * (1 - heard.theory_unit) + (1 - CORE_WEIGHT) * own)


def _unresolved_leaps(heard: Heard) -> float:
    """The share of leaps (a fourth or more) not followed by a step back: what the critic's rule rewards, undone."""
    pairs = list(zip(heard.intervals, heard.intervals[1:]))
    leaps = [(a, b) for a, b in pairs if abs(a) >= 5]
    return _share([not (0 < abs(b) <= 2 and (a > 0) != (b > 0)) for a, b in leaps]) if leaps else 0.0


@_honest
def leaper(heard: Heard) -> float:
    """Loves wide leaps left hanging and a wide range: the critic's leap rules reversed."""
    return _against(
        heard,
        [
            (0.35, _ramp(statistics.fmean(abs(i) for i in heard.intervals) if heard.intervals else 0, 2, 9)),
            (0.3, _unresolved_leaps(heard)),
            (0.35, _ramp(_pitch_range(heard), 7, 24)),
        ],
    )


@_honest
def droner(heard: Heard) -> float:
    """Loves a hypnotic drone: the same pitch again and again, few distinct pitches, steady loud notes."""
    distinct = len(set(heard.pitches))
    return _against(
        heard,
        [
            (0.4, _share([i == 0 for i in heard.intervals])),
            (0.3, _ramp(distinct, 7, 2)),
            (0.3, _ramp(_mean_velocity(heard), 60, 120)),
        ],
    )


@_honest
def outsider(heard: Heard) -> float:
    """Loves colour outside the key and a line that never comes home: off-tonic ends, no tonic at the start."""
    score = heard.theory
    return _against(
        heard,
        [
            (0.4, _ramp(score.in_key, 0.0, -1.0)),  # the critic's in-key rule is negative per note outside the key
            (0.3, 1.0 - score.tonic_end / W_TONIC),
            (0.3, 1.0 - score.tonic_start / W_TONIC),
        ],
    )


@_honest
def syncopator(heard: Heard) -> float:
    """Loves the off-beat: notes and chords between the beats, kicks and snares off the eighths, no backbeat."""
    melody = heard.parsed.melody
    off_beat = [not n.start_beat.is_integer() for n in melody]
    pattern = heard.drum_pattern
    stray = sum(1 for step, drums in pattern.items() if step % 2 and drums & {KICK, SNARE})
    backbeat = sum(KICK in pattern.get(s, ()) for s in BACKBEAT_KICKS) + sum(SNARE in pattern.get(s, ()) for s in BACKBEAT_SNARES)
    return _against(
        heard,
        [
            (0.35, _share(off_beat)),
            (0.2, _share([n.has_chord for n, off in zip(melody, off_beat) if off])),
            (0.25, min(1.0, stray / 4)),
            (0.2, 1.0 - backbeat / 4),
        ],
    )


@_honest
def restless(heard: Heard) -> float:
    """Loves a fast zigzag: many notes a second, a change of direction at every note, short last notes."""
    last = heard.parsed.melody[-1]
    return _against(
        heard,
        [
            (0.4, _ramp(heard.notes_per_second, 2.0, 8.0)),
            (0.4, _ramp(_direction_changes(heard), 0.3, 1.0)),
            (0.2, _ramp(last.duration_beats, 1.0, 0.25)),
        ],
    )


CONTRARIAN_TASTES: dict[str, Callable[[Heard], float]] = {
    "leaper": leaper,
    "droner": droner,
    "outsider": outsider,
    "syncopator": syncopator,
    "restless": restless,
}
# A crowd: its honest tastes (judged by their noise-free mean, which nothing trains on); each crowd also
# has a troll who mirrors that mean and a brigader.
CROWDS: dict[str, dict[str, Callable[[Heard], float]]] = {"builtin": HONEST_TASTES, "contrarian": CONTRARIAN_TASTES}


def _consensus_of(tastes: dict[str, Callable[[Heard], float]], heard: Heard) -> float:
    return statistics.fmean(taste(heard) for taste in tastes.values())


def _consensus(heard: Heard) -> float:
    return _consensus_of(HONEST_TASTES, heard)


def troll(heard: Heard) -> float:
    """Adversarial: the mirror image of the honest consensus, so it pulls learning the wrong way."""
    return RATING_MAX + RATING_MIN - _consensus(heard)


def contrarian_troll(heard: Heard) -> float:
    """The contrarian crowd's troll: the mirror image of that crowd's consensus."""
    return RATING_MAX + RATING_MIN - _consensus_of(CONTRARIAN_TASTES, heard)


def _clamp(rating: float) -> float:
    return min(RATING_MAX, max(RATING_MIN, rating))


@dataclass(frozen=True)
class Rater:
    name: str
    taste: Callable[[Heard], float]
    rng: random.Random | None = None
    noise: float = 0.0  # standard deviation of the Gaussian added to each rating
    shared: float = 0.0  # the part of `noise` (a standard deviation) that clips heard together share: see together

    def __post_init__(self) -> None:
        if not 0 <= self.shared <= self.noise:
            raise ValueError(f"shared noise {self.shared} must be from 0 to the rater's noise {self.noise}")

    def __call__(self, midi: mido.MidiFile) -> float:
        rating = self.taste(Heard(midi))
        if self.noise and self.rng is not None:
            rating += self.rng.gauss(0.0, self.noise)
        return _clamp(rating)

    def together(self, midis: Sequence[mido.MidiFile]) -> list[float]:
        """Ratings of clips heard together, as in one A/B vote (the edits and the track before): one draw of
        sd `shared` common to all of them (the listener's mood or anchor of the moment, which a comparison
        cancels and a lone rating does not) plus each clip's own draw of sd sqrt(noise² - shared²), so each
        rating's noise is still `noise`. With `shared` 0 these are the ratings of each clip heard alone, with
        the same draws in the same order."""
        if not self.shared or self.rng is None:
            return [self(midi) for midi in midis]
        mood = self.rng.gauss(0.0, self.shared)
        own = math.sqrt(self.noise**2 - self.shared**2)
        return [_clamp(self.taste(Heard(midi)) + mood + self.rng.gauss(0.0, own)) for midi in midis]


@dataclass(frozen=True)
class Brigader:
    """Votes 10 for everything without listening."""

    name: str = "brigader"

    def __call__(self, midi: mido.MidiFile) -> float:
        return RATING_MAX


RaterLike = Callable[[mido.MidiFile], float]
RaterFactory = Callable[[random.Random, float], RaterLike]

BUILTIN_RATERS: dict[str, RaterFactory] = {
    **{name: partial(Rater, name, taste) for name, taste in HONEST_TASTES.items()},
    "troll": partial(Rater, "troll", troll),
    "brigader": lambda rng, noise: Brigader(),  # no noise: it does not listen
    **{name: partial(Rater, name, taste) for name, taste in CONTRARIAN_TASTES.items()},
    "contrarian_troll": partial(Rater, "contrarian_troll", contrarian_troll),
}
# The built-in raters whose ratings have no noise (the brigader does not listen): --noise means nothing to them.
NOISELESS_RATERS = frozenset({"brigader"})
# Each crowd's members, by rater name: its honest tastes, its troll and a brigader.
CROWD_MEMBERS: dict[str, tuple[str, ...]] = {
    "builtin": (*HONEST_TASTES, "troll", "brigader"),
    "contrarian": (*CONTRARIAN_TASTES, "contrarian_troll", "brigader"),
}


def make_rater(name: str, rng: random.Random, noise: float = DEFAULT_NOISE, shared: float = 0.0) -> RaterLike:
    """A built-in rater; `shared`: the part of its noise that clips heard together share (Rater.together)."""
    try:
        factory = BUILTIN_RATERS[name]
    except KeyError:
        raise ValueError(f"unknown rater '{name}'; choose one of: {', '.join(BUILTIN_RATERS)}") from None
    rater = factory(rng, noise)
    return replace(rater, shared=shared) if shared and isinstance(rater, Rater) else rater


def default_crowd(
    rng: random.Random, noise: float = DEFAULT_NOISE, crowd: str = "builtin", shared: float = 0.0
) -> list[tuple[str, RaterLike]]:
    """Every member of a crowd (CROWD_MEMBERS) once. Each gets its own generator seeded from `rng`, so one
    member's noise does not depend on how often the others were asked; `shared`: see Rater.together."""
    try:
        members = CROWD_MEMBERS[crowd]
    except KeyError:
        raise ValueError(f"unknown crowd '{crowd}'; choose one of: {', '.join(CROWD_MEMBERS)}") from None
    return [(name, make_rater(name, random.Random(rng.getrandbits(64)), noise, shared)) for name in members]


def consensus_score(midi: mido.MidiFile, crowd: str = "builtin") -> float:
    """A crowd's honest tastes' mean without noise: a benchmark yardstick, never a training signal."""
    return _consensus_of(CROWDS[crowd], Heard(midi))


def judge(crowd: str) -> Callable[[mido.MidiFile], float]:
    """The noise-free scorer of a crowd (see consensus_score)."""
    if crowd not in CROWDS:
        raise ValueError(f"unknown crowd '{crowd}'; choose one of: {', '.join(CROWDS)}")
    return partial(consensus_score, crowd=crowd)


def prefer(
    rater: RaterLike, midi_a: mido.MidiFile, midi_b: mido.MidiFile, before: mido.MidiFile | None = None
) -> Literal["a", "b", "both", "neither"]:
    """An A/B vote: the variant the rater rates higher (a tie is "both"); "neither" when both rate below
    `before`, the track the rater heard last, when given. The clips are heard together (`heard_together`)."""
    a, b, *rest = (round(r, 2) for r in heard_together(rater, [midi_a, midi_b] + ([before] if before is not None else [])))
    if rest and max(a, b) < rest[0]:
        return "neither"
    return "both" if a == b else "a" if a > b else "b"


def heard_together(rater: RaterLike, midis: Sequence[mido.MidiFile]) -> list[float]:
    """A rater's ratings of clips heard together: its own `together(midis)` when it has one (Rater.together),
    else each clip rated alone, in order."""
    together = getattr(rater, "together", None)
    return list(together(midis)) if together is not None else [rater(midi) for midi in midis]
