"""Piano roll and learning curve PNGs."""

from __future__ import annotations

import io
import random
from concurrent.futures import ThreadPoolExecutor

import matplotlib.image
import pytest

from bot.media.pianoroll import ab_curve_png, learning_curve_png, piano_roll_png
from core.music import HIHAT, KICK, PERCUSSION_STEPS, REST, SNARE, Note, Track, generate_track

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decoded_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    return pixels.shape[1], pixels.shape[0]


def hand_made_track() -> Track:
    """Soft and loud notes, a chord, a long note and every drum."""
    notes = (Note(0, 1.0, 32), Note(4, 0.5, 127, chord=True), Note(7, 2.0, 80), Note(-3, 0.25, 96))
    drums = tuple((KICK, REST, HIHAT, SNARE)[step % 4] for step in range(PERCUSSION_STEPS))
    return Track(notes, drums, 90, 62, "minor")


@pytest.mark.parametrize(
    "track",
    [hand_made_track(), generate_track(60, "major", 32, 120, random.Random(1)), generate_track(48, "blues", 64, 200, random.Random(2))],
    ids=["hand-made", "32-notes", "64-notes"],
)
def test_piano_roll_is_an_800_by_400_png(track):
    png = piano_roll_png(track, "round 3 A")
    assert decoded_size(png) == (800, 400)
    assert len(png) < 100 * 1024


def test_piano_roll_has_a_default_title_and_draws_the_same_every_time():
    track = hand_made_track()
    assert piano_roll_png(track) == piano_roll_png(track)
    assert piano_roll_png(track) != piano_roll_png(track, "another title")


def test_piano_roll_of_a_track_without_drums():
    track = Track((Note(0, 1.0), Note(2, 1.0)), (REST,) * PERCUSSION_STEPS, 120, 60, "major")
    assert decoded_size(piano_roll_png(track)) == (800, 400)


def test_pictures_can_be_drawn_from_several_threads_at_once():
    track = hand_made_track()
    with ThreadPoolExecutor(4) as pool:
        rolls = list(pool.map(lambda _: piano_roll_png(track), range(8)))
    assert all(roll == rolls[0] for roll in rolls)


@pytest.mark.parametrize(
    "rewards, extra",
    [
        ([random.Random(i).uniform(1, 10) for i in range(150)], None),
        ([5.0, float("nan"), 6.5, 7.0], {"judge": [4.0, 5.0, 6.0, 7.5]}),
        ([8.0], None),
        ([], None),
    ],
    ids=["150-rounds", "gap-and-extra", "one-round", "no-rounds"],
)
def test_learning_curve_is_an_800_by_400_png(rewards, extra):
    png = learning_curve_png(rewards, "crowdtune: reward per round", extra=extra)
    assert decoded_size(png) == (800, 400)
    assert len(png) < 200 * 1024


@pytest.mark.parametrize(
    "chances, kept, judged",
    [([0.7, None, 0.3, 0.55], [True, False, False, True], {"judge": [5.0, 5.0, 5.0, 6.0]}), ([0.6], [True], None), ([], [], None)],
    ids=["gap-and-judge", "one-round", "no-rounds"],
)
def test_the_ab_curve_is_an_800_by_400_png(chances, kept, judged):
    png = ab_curve_png(chances, kept, "crowdtune: A/B rounds", judged=judged)
    assert decoded_size(png) == (800, 400)
    assert len(png) < 200 * 1024


def edit_pixels(png: bytes) -> int:
    """Pixels of the edit's colour (bot.media.pianoroll.EDIT_COLOUR, #e4572e)."""
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    return int((abs(pixels - (0xE4 / 255, 0x57 / 255, 0x2E / 255)).max(axis=-1) < 0.02).sum())


@pytest.mark.parametrize("kind, index", [("pitch_up", 2), ("remove", 1), ("percussion", 3), ("add_note", 0), ("longer", 0)])
def test_the_note_or_drum_step_an_edit_touched_is_marked(kind, index):
    from core.actions import Action, Kind, apply

    before = hand_made_track()
    action = Action(Kind(kind), index)
    after = apply(before, action)
    assert edit_pixels(piano_roll_png(after)) == 0
    marked = piano_roll_png(after, None, before, action)
    assert edit_pixels(marked) > 50 and marked == piano_roll_png(after, None, before, action)


def test_a_removed_note_is_drawn_even_where_no_other_note_reaches():
    from core.actions import Action, Kind, apply

    before = hand_made_track().with_notes((Note(0, 1.0), Note(1, 1.0), Note(14, 1.0), Note(2, 1.0)))  # one note far above
    after = apply(before, Action(Kind.REMOVE, 2))
    assert edit_pixels(piano_roll_png(after, None, before, Action(Kind.REMOVE, 2))) > 50
    # The last note: it lies past the end of the shorter track, so the picture spans the track before.
    last = Action(Kind.REMOVE, len(before.notes) - 1)
    assert edit_pixels(piano_roll_png(apply(before, last), None, before, last)) > 50


@pytest.mark.parametrize(
    "base, scale, names",
    [(70, "major", ["Bb4", "Eb5", "Gb5"]), (62, "minor", ["Bb4", "Eb5", "Gb5"]), (67, "major", ["A#4", "D#5", "F#5"]), (67, "dorian", ["Bb4", "Eb5", "Gb5"])],
)
def test_pitches_are_spelled_with_flats_in_flat_keys(base, scale, names):
    from bot.media.pianoroll import pitch_labels

    assert pitch_labels(Track((Note(0, 1.0),), (REST,) * PERCUSSION_STEPS, 120, base, scale), [70, 75, 78]) == names


@pytest.mark.parametrize(
    "base, scale, pitches, names",
    [
        (66, "major", [65, 66, 70], ["E#4", "F#4", "A#4"]),  # F# major: its seventh is E#, not F
        (63, "minor", [59, 63, 71], ["Cb4", "Eb4", "Cb5"]),  # Eb minor: its sixth is Cb (the octave number follows the letter)
        (62, "harmonic_minor", [61, 70, 73], ["C#4", "Bb4", "C#5"]),  # D harmonic minor: C#, not Db, beside Bb
        (67, "harmonic_minor", [66, 70], ["F#4", "Bb4"]),  # G harmonic minor: F#, not Gb
        (68, "harmonic_minor", [67, 79], ["F##4", "F##5"]),  # G# harmonic minor: the leading note is F double sharp
        (60, "major", [59, 60, 61], ["B3", "C4", "C#4"]),  # a pitch outside the key: the key signature's way
    ],
)
def test_every_pitch_of_the_key_is_spelled_with_its_own_letter(base, scale, pitches, names):
    """The notes of a seven-note scale take seven letters in order (F# major's seventh is E#, D harmonic minor's
    C#), as a musician reading the piano roll expects; a pitch outside the key is spelled as its signature
    spells (sharps or flats)."""
    from bot.media.pianoroll import pitch_labels

    assert pitch_labels(Track((Note(0, 1.0),), (REST,) * PERCUSSION_STEPS, 120, base, scale), pitches) == names


@pytest.mark.parametrize("kind", ["louder", "pitch_up", "remove", "percussion"])
def test_an_edit_at_either_end_of_the_track_is_outlined_in_full(kind):
    """The outline of the first or last note (or drum step) lies on the frame of the axes: it is drawn
    whole, with as many pixels of the edit's colour as the same outline in the middle of the track."""
    from core.actions import Action, Kind, apply

    # 16 equal notes of half a beat: two bars, so drum step 15's last repeat ends the track too.
    before = Track(tuple(Note(0, 0.5, 80) for _ in range(16)), (KICK,) * PERCUSSION_STEPS, 120, 60, "major")

    def outlined(index: int) -> int:
        action = Action(Kind(kind), index)
        return edit_pixels(piano_roll_png(apply(before, action), None, before, action))

    middle = outlined(7 if kind != "percussion" else 4)  # drum step 4 repeats at step 20: both inside
    for end in (0, 15):
        assert abs(outlined(end) - middle) <= 0.03 * middle, (end, outlined(end), middle)


def test_a_learning_curve_with_one_voter_a_round_names_no_crowd_spread():
    """Found by a fresh-user trial: a personal agent's /stats (one voter, so each round's spread is 0) drew a legend
    "crowd spread (± 1 sd)" for a band no one can see. With no round spread, the curve is the one drawn without
    spreads; with one, the band and its legend are drawn."""
    rewards, scores = [8.0, 6.0, 7.0], [6.33, 6.3, 6.5]
    plain = learning_curve_png(rewards, "c", scores=scores)
    assert learning_curve_png(rewards, "c", scores=scores, spread=[0.0, None, 0.0]) == plain
    assert learning_curve_png(rewards, "c", scores=scores, spread=[0.0, 1.5, 0.0]) != plain
