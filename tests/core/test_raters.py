import importlib
import random
import statistics
from dataclasses import replace

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.actions import apply, legal_actions
from core.midi import track_to_midi
from core.music import HIHAT, KICK, REST, SCALES, SNARE, Note, Track, generate_track
from core.raters import BUILTIN_RATERS, CONTRARIAN_TASTES, HONEST_TASTES, consensus_score, default_crowd, make_rater, prefer


def varied_track(seed: int) -> Track:
    """A generated track roughed up by random legal edits, so chords, dynamics and rhythm vary too."""
    rng = random.Random(seed)
    base, scale = rng.randint(48, 72), rng.choice(sorted(SCALES))
    length, tempo = rng.randint(8, 32), rng.randint(60, 180)
    track = generate_track(base, scale, length, tempo, rng)
    for _ in range(rng.randint(0, 40)):
        track = apply(track, rng.choice(legal_actions(track)))
    return track


def tune(degrees, duration=1.0, velocity=80, percussion=(REST,) * 16, tempo=120, chords=()) -> Track:
    notes = tuple(Note(d, duration, velocity, i in chords) for i, d in enumerate(degrees))
    return Track(notes, tuple(percussion), tempo, 60, "major")


ARCH = (0, 1, 2, 3, 4, 3, 2, 1, 2, 0)
BACKBEAT = (KICK, REST, HIHAT, REST, SNARE, REST, HIHAT, REST, KICK, REST, HIHAT, REST, SNARE, REST, HIHAT, REST)
SCATTERED = (REST, KICK, REST, SNARE, REST, REST, REST, KICK, REST, SNARE, REST, REST, REST, KICK, SNARE, REST)
SLOW_SOFT = tune(
    (-3, -2, -1, 0, -1, -2, -3, -1, -2, -3), duration=2.0, velocity=48, percussion=(KICK,) + (REST,) * 15, tempo=70
)
FAST_LOUD = tune(
    (0, 4, 7, 11, 9, 7, 4, 14, 11, 7),
    duration=0.25,
    velocity=127,
    percussion=(KICK, HIHAT, SNARE, HIHAT) * 4,
    tempo=170,
)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6))
def test_every_builtin_rater_rates_within_1_and_10(seed):
    midi = track_to_midi(varied_track(seed))
    for name, factory in BUILTIN_RATERS.items():
        rater = factory(random.Random(seed), 3.0)  # loud noise, to exercise the clamp
        assert rater.name == name
        assert 1 <= rater(midi) <= 10
    assert 1 <= consensus_score(midi) <= 10


def test_same_seed_same_ratings_and_different_seeds_differ():
    midis = [track_to_midi(varied_track(seed)) for seed in range(5)]

    def ratings(seed):
        return [rating for midi in midis for _, rater in default_crowd(random.Random(seed)) for rating in [rater(midi)]]

    assert ratings(7) == ratings(7)
    assert ratings(7) != ratings(8)


def test_noise_comes_only_from_the_injected_generator():
    midi = track_to_midi(varied_track(1))
    rng = random.Random(3)
    state = rng.getstate()
    quiet = make_rater("melodist", rng, noise=0.0)
    random.seed(99)
    first = quiet(midi)
    random.seed(100)
    assert quiet(midi) == first and rng.getstate() == state

    a, b = (make_rater("melodist", random.Random(3), noise=1.0) for _ in range(2))
    random.seed(1)
    from_a = [a(midi) for _ in range(3)]
    random.seed(2)
    from_b = [b(midi) for _ in range(3)]
    assert from_a == from_b and len(set(from_a)) == 3


def test_calm_and_energetic_rank_slow_and_fast_tracks_oppositely():
    calm, energetic = make_rater("calm", random.Random(0), 0.0), make_rater("energetic", random.Random(0), 0.0)
    slow, fast = track_to_midi(SLOW_SOFT), track_to_midi(FAST_LOUD)
    assert calm(slow) > calm(fast)
    assert energetic(fast) > energetic(slow)


@pytest.mark.parametrize(
    ("taste", "liked", "disliked"),
    [
        ("harmonist", tune(ARCH, chords=(0, 2, 4, 6, 8)), tune(ARCH)),
        ("groove", tune(ARCH, percussion=BACKBEAT), tune(ARCH, percussion=SCATTERED)),
        ("melodist", tune(ARCH[:-2] + (1, 0)), tune((0, 9, 2, 11, 1, 12, 3, 10, 2, 1))),
        ("theorist", tune(ARCH), tune((0, 6, 0, 6, 0, 6, 0, 6, 0, 6))),
    ],
)
def test_each_taste_prefers_what_it_is_about(taste, liked, disliked):
    rater = make_rater(taste, random.Random(0), 0.0)
    assert rater(track_to_midi(liked)) > rater(track_to_midi(disliked))


def test_chords_please_the_harmonist_but_leave_the_theorist_indifferent():
    plain, chorded = track_to_midi(tune(ARCH)), track_to_midi(tune(ARCH, chords=(0, 2, 4, 6, 8)))
    theorist = make_rater("theorist", random.Random(0), 0.0)
    assert theorist(plain) == theorist(chorded)


def test_brigader_always_says_10():
    brigader = make_rater("brigader", random.Random(0))
    assert {brigader(track_to_midi(varied_track(seed))) for seed in range(10)} == {10.0}


def test_troll_rates_against_the_consensus():
    troll = make_rater("troll", random.Random(5))
    midis = [track_to_midi(varied_track(seed)) for seed in range(60)]
    assert statistics.correlation([troll(m) for m in midis], [consensus_score(m) for m in midis]) < -0.5


def test_a_file_without_melody_gets_the_bottom_from_honest_raters():
    silent = mido.MidiFile()
    assert consensus_score(silent) == 1.0
    assert make_rater("calm", random.Random(0), 0.0)(silent) == 1.0
    assert make_rater("troll", random.Random(0), 0.0)(silent) == 10.0


def test_prefer_picks_the_higher_rating_and_calls_ties_both():
    theorist = make_rater("theorist", random.Random(0), 0.0)
    good, bad = track_to_midi(tune(ARCH)), track_to_midi(tune((0, 6, 0, 6, 0, 6, 0, 6, 0, 6)))
    assert prefer(theorist, good, bad) == "a"
    assert prefer(theorist, bad, good) == "b"
    assert prefer(theorist, good, good) == "both"
    assert prefer(make_rater("brigader", random.Random(0)), good, bad) == "both"


def test_noise_shared_by_clips_heard_together_cancels_in_a_comparison_and_not_in_a_lone_rating():
    """Rater.together: a listener's mood of the moment moves every clip of one A/B vote alike. Each rating's
    noise stays `noise`; the difference between two clips heard together loses the shared part."""
    clip = track_to_midi(tune(ARCH))
    truth = make_rater("calm", random.Random(0), 0.0)(clip)
    alone = make_rater("calm", random.Random(1), 0.8)
    shared = make_rater("calm", random.Random(1), 0.8, shared=0.6)
    pairs = [shared.together([clip, clip]) for _ in range(4000)]
    lone = [alone(clip) for _ in range(4000)]
    assert abs(statistics.stdev(a for a, _ in pairs) - 0.8) < 0.05 and abs(statistics.stdev(lone) - 0.8) < 0.05
    # Var(a - b) = 2 (0.8² - 0.6²) = 0.56 with the mood shared, 2 x 0.8² = 1.28 without.
    assert abs(statistics.variance(a - b for a, b in pairs) - 0.56) < 0.06
    assert abs(statistics.fmean(lone) - truth) < 0.05
    # All of it shared: two clips heard together are compared without error, though each rating is noisy.
    moody = make_rater("theorist", random.Random(2), 0.8, shared=0.8)
    good, bad = track_to_midi(tune(ARCH)), track_to_midi(tune((0, 6, 0, 6, 0, 6, 0, 6, 0, 6)))
    assert {prefer(moody, good, bad) for _ in range(200)} == {"a"}
    assert statistics.stdev(moody(bad) for _ in range(200)) > 0.3  # clamped at 1 now and then
    with pytest.raises(ValueError, match="shared noise"):
        make_rater("calm", random.Random(0), 0.5, shared=0.6)


def test_without_shared_noise_clips_heard_together_draw_as_if_heard_alone():
    """The bench's figures rest on the draws: with no shared part, together() is each clip rated alone, in order."""
    clips = [track_to_midi(varied_track(seed)) for seed in range(3)]
    heard = make_rater("melodist", random.Random(5), 0.8)
    again = make_rater("melodist", random.Random(5), 0.8)
    assert heard.together(clips) == [again(clip) for clip in clips]


@pytest.mark.parametrize("crowd, tastes", [("builtin", HONEST_TASTES), ("contrarian", CONTRARIAN_TASTES)])
def test_each_crowd_has_its_tastes_a_troll_and_a_brigader_once(crowd, tastes):
    members = default_crowd(random.Random(1), crowd=crowd)
    names = [name for name, _ in members]
    assert len(set(names)) == len(names) and set(names) <= set(BUILTIN_RATERS)
    assert set(names) == set(tastes) | {"troll" if crowd == "builtin" else "contrarian_troll", "brigader"}
    assert all(rater.name == name for name, rater in members)
    with pytest.raises(ValueError, match="unknown crowd"):
        default_crowd(random.Random(1), crowd="nobody")


def test_unknown_rater_name_is_refused():
    with pytest.raises(ValueError, match="unknown rater"):
        make_rater("critic", random.Random(0))


@pytest.mark.parametrize(
    "path", ["core.raters:theory_critic", "core.raters:consensus_score", "core.theory:theory_critic"]
)
def test_a_rater_loads_from_a_dotted_path(path):
    module, _, attribute = path.partition(":")
    rater = getattr(importlib.import_module(module), attribute)
    assert 1 <= rater(track_to_midi(varied_track(0))) <= 10


def test_noise_free_raters_have_no_hidden_state():
    track = varied_track(2)
    midi = track_to_midi(track)
    for name in HONEST_TASTES:
        rater = make_rater(name, random.Random(0), 0.0)
        assert rater(midi) == rater(midi) == rater(track_to_midi(replace(track)))
