import random
import statistics

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.actions import apply, legal_actions
from core.midi import TICKS_PER_BEAT, TICKS_PER_STEP, track_to_midi
from core.music import DRUM_CYCLE, PERCUSSION_STEPS, REST, SCALES, Note, Track, generate_track, scale_intervals
from core.theory import (
    Key,
    MelodyNote,
    TheoryCritic,
    drum_hits,
    interval_preference,
    melody_notes,
    melody_of_track,
    parse_midi,
    score_1_to_10,
    theory_critic,
    theory_prior,
)

C_MAJOR = TheoryCritic(key=Key.of(60, "major"))


@st.composite
def tracks(draw) -> Track:
    scale = draw(st.sampled_from(sorted(SCALES)))
    size = len(scale_intervals(scale))
    note = st.builds(
        Note,
        degree=st.integers(-size, 2 * size),  # exactly the allowed range: an octave below to two above
        duration=st.integers(1, 8).map(lambda quarters: quarters * 0.25),
        velocity=st.integers(32, 127),
        chord=st.booleans(),
    )
    return Track(
        notes=tuple(draw(st.lists(note, min_size=2, max_size=32))),
        percussion=tuple(draw(st.tuples(*[st.sampled_from(DRUM_CYCLE)] * PERCUSSION_STEPS))),
        tempo=draw(st.integers(40, 240)),
        base=draw(st.integers(40, 80)),
        scale=scale,
    )


def random_track(rng: random.Random) -> Track:
    base, scale = rng.randint(48, 72), rng.choice(sorted(SCALES))
    length, tempo = rng.randint(8, 32), rng.randint(60, 180)
    return generate_track(base, scale, length, tempo, rng)


def melody(*pitches: int, duration: float = 1.0) -> list[MelodyNote]:
    return [MelodyNote(pitch, i * duration, duration, 80) for i, pitch in enumerate(pitches)]


# --- reading MIDI back -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(tracks())
def test_melody_and_drums_round_trip_through_midi(track):
    midi = track_to_midi(track)
    notes = melody_notes(midi)
    assert [n.pitch for n in notes] == list(track.pitches)
    assert [n.duration_beats for n in notes] == [n.duration for n in track.notes]
    assert [n.velocity for n in notes] == [n.velocity for n in track.notes]
    assert [n.chord for n in notes] == [track.chord_pitches(n.degree) if n.chord else () for n in track.notes]
    assert notes == list(melody_of_track(track))

    end_tick = round(track.beats * TICKS_PER_BEAT)
    expected_drums = [
        (step * TICKS_PER_STEP / TICKS_PER_BEAT, drum)
        for step in range(end_tick // TICKS_PER_STEP + 1)
        if step * TICKS_PER_STEP < end_tick and (drum := track.percussion[step % PERCUSSION_STEPS]) != REST
    ]
    assert drum_hits(midi) == expected_drums
    assert parse_midi(midi).bpm == pytest.approx(track.tempo, abs=0.01)


def test_foreign_midi_with_running_note_on_zero_offs_and_one_track():
    """A type-0 file that ends notes with velocity-0 note-ons and puts a lower voice under the tune."""
    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    midi.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=48, velocity=50, time=0),
                mido.Message("note_on", note=72, velocity=90, time=0),
                mido.Message("note_on", note=72, velocity=0, time=48),
                mido.Message("note_on", note=74, velocity=70, time=0),
                mido.Message("note_on", note=48, velocity=0, time=48),
                mido.Message("note_on", note=74, velocity=0, time=0),
                mido.Message("note_on", channel=9, note=38, velocity=100, time=0),
            ]
        )
    )
    assert melody_notes(midi) == [MelodyNote(72, 0.0, 0.5, 90, (48,)), MelodyNote(74, 0.5, 0.5, 70)]
    assert drum_hits(midi) == [(1.0, 38)]
    assert parse_midi(midi).bpm == 120


# --- each rule ---------------------------------------------------------------------------------------

RULE_CASES = {
    # rule: (melody the rule likes, melody it likes less)
    "in_key": (melody(60, 62, 64, 65, 67, 65, 64, 60), melody(60, 62, 64, 66, 67, 66, 64, 60)),
    "tonic_start": (melody(60, 62, 64, 62, 64, 65, 64, 62), melody(62, 64, 65, 64, 62, 65, 64, 62)),
    "tonic_end": (melody(64, 62, 64, 65, 64, 62, 64, 60), melody(64, 62, 64, 65, 64, 62, 64, 62)),
    "repetition": (melody(62, 60, 60, 60, 60, 64, 62, 60), melody(60, 60, 60, 60, 60, 64, 62, 60)),
    "autocorrelation": (melody(60, 62, 64, 65, 64, 67, 65, 64, 62, 60), melody(60, 62, 60, 62, 60, 62, 60, 62, 60, 62)),
    "motif": (melody(60, 62, 64, 62, 60, 62, 64, 60), melody(60, 62, 60, 62, 60, 62, 60, 62)),
    "repeated_motif": (melody(60, 62, 64, 62, 65, 67, 69, 67, 64), melody(60, 62, 64, 62, 65, 64, 62, 64, 67)),
    "intervals": (melody(60, 62, 64, 65, 67, 65, 64, 62, 60), melody(60, 62, 64, 65, 76, 65, 64, 62, 60)),
    "two_leaps": (melody(60, 67, 65, 64, 62, 60, 62, 60), melody(60, 67, 74, 72, 71, 69, 67, 60)),
    "leap_resolved": (melody(60, 62, 69, 67, 64, 62, 60, 62), melody(60, 62, 69, 71, 64, 62, 60, 62)),
    "extremes": (melody(60, 62, 64, 67, 65, 64, 62, 59), melody(60, 62, 67, 64, 67, 64, 62, 60)),
    "length": (melody(60, 62, 64, 65, 64, 62, 64, 60), melody(60, 62, 64, 60)),
}


@pytest.mark.parametrize("rule", RULE_CASES)
def test_each_rule_prefers_its_good_case(rule):
    liked, disliked = (C_MAJOR.critique(m) for m in RULE_CASES[rule])
    assert getattr(liked, rule) > getattr(disliked, rule)


@pytest.mark.parametrize("rule", ["repetition", "intervals", "two_leaps", "leap_resolved", "tonic_end", "extremes"])
def test_rules_named_in_the_brief_move_the_whole_score(rule):
    liked, disliked = (theory_critic.critique(m) for m in RULE_CASES[rule])
    assert liked.score_1_to_10 > disliked.score_1_to_10


def test_interval_preferences_favour_steps_and_punish_sevenths_and_wide_leaps():
    assert interval_preference(2) == interval_preference(-1) == max(interval_preference(i) for i in range(25))
    assert interval_preference(11) < 0 < interval_preference(7)
    assert interval_preference(13) < 0 and interval_preference(-19) < 0


def test_a_five_times_repeated_note_is_penalised_but_four_is_not():
    assert theory_critic.critique(melody(60, 60, 60, 60, 60, 62, 64, 60)).repetition < 0
    assert theory_critic.critique(melody(60, 60, 60, 60, 62, 64, 62, 60)).repetition == 0


def test_the_key_is_inferred_from_the_melody_when_not_given():
    a_minor_tune = theory_critic.critique(melody(69, 71, 72, 74, 72, 71, 68, 69))
    assert a_minor_tune.key.tonic == 9 and a_minor_tune.in_key == 0
    assert a_minor_tune.tonic_start > 0 and a_minor_tune.tonic_end > 0


def test_a_known_tune_beats_the_typical_random_track():
    twinkle = melody(60, 60, 67, 67, 69, 69, 67, 65, 65, 64, 64, 62, 62, 60)
    assert theory_critic.critique(twinkle).score_1_to_10 > 5


# --- the 1-10 scale ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(tracks())
def test_score_is_always_within_1_and_10(track):
    assert 1 <= theory_critic(track_to_midi(track)) <= 10


def test_score_mapping_is_monotonic_and_bounded():
    totals = [-1000, -10, 0, 3, 6, 10, 1000]
    scores = [score_1_to_10(t) for t in totals]
    assert scores == sorted(scores) and 1 <= scores[0] and scores[-1] <= 10


def test_an_empty_file_scores_near_the_bottom():
    assert 1 <= theory_critic(mido.MidiFile()) < 2


def test_random_tracks_land_in_the_middle():
    rng = random.Random(2024)
    scores = [quick_score(random_track(rng)) for _ in range(200)]
    assert 3 <= statistics.median(scores) <= 6.5


def quick_score(track: Track) -> float:
    """The critic's score without building a MIDI file (the round-trip test shows it is the same melody)."""
    return theory_critic.critique(melody_of_track(track)).score_1_to_10


def hill_climb(track: Track, edits: int) -> float:
    score = quick_score(track)
    for _ in range(edits):
        candidates = [apply(track, action) for action in legal_actions(track)]
        best_score, best = max(((quick_score(t), t) for t in candidates), key=lambda c: c[0])
        if best_score <= score:
            break
        score, track = best_score, best
    return theory_critic(track_to_midi(track))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_legal_edits_climb_a_random_track_to_a_good_score(seed):
    rng = random.Random(seed)
    track = generate_track(60, rng.choice(sorted(SCALES)), 16, 120, rng)
    assert hill_climb(track, edits=60) >= 7.5


def test_theory_prior_is_the_score_change_an_edit_makes():
    before = Track(tuple(Note(d, 1.0) for d in (0, 1, 2, 6, 4, 2, 1, 0)), (REST,) * 16, 120, 60, "major")
    after = before.with_notes(before.notes[:3] + (Note(3, 1.0),) + before.notes[4:])  # the major 7th leap goes
    expected = theory_critic(track_to_midi(after)) - theory_critic(track_to_midi(before))
    assert theory_prior(before, after) == pytest.approx(expected)
    assert theory_prior(before, after) > 0
