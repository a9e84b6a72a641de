"""Starting from a person's own melody: the melody taken from a MIDI file and fitted to the track model
(pure, core.fitting), the file read at the edge (bot.media.midi_import) and the session that plays it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from bot.media.midi_import import MAX_FILE_BYTES, melody_from_file, read_parts
from core.fitting import SourceNote, SourcePart, detect_key, fit_melody, top_voice
from core.midi import midi_bytes
from core.music import LENGTH_MAX, SCALES, MusicError, key_name

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
TPB = 480

# "Greensleeves"-like line in A minor with one chromatic note (D#5 = 75), chords under two notes.
MELODY = [(69, 0.5), (72, 1.0), (74, 0.5), (76, 0.75), (77, 0.25), (76, 0.5), (74, 1.0), (71, 0.5), (67, 0.75),
          (69, 0.25), (71, 0.5), (72, 1.0), (69, 0.5), (69, 0.75), (68, 0.25), (69, 0.5), (71, 1.0), (75, 0.5), (64, 1.5)]  # fmt: skip
CHORDS = {0: (57, 60), 11: (53, 57)}  # note index -> lower notes sounding with it


def song(program: int = 73, tempo_bpm: float = 90, melody=MELODY, rest_after: int | None = None) -> mido.MidiFile:
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)), mido.MetaMessage("track_name", name="tempo")]))
    lead = mido.MidiTrack([mido.MetaMessage("track_name", name="Lead"), mido.Message("program_change", channel=0, program=program)])
    gap = 0
    for i, (pitch, beats) in enumerate(melody):
        voices = [pitch, *CHORDS.get(i, ())]
        for j, p in enumerate(voices):
            lead.append(mido.Message("note_on", channel=0, note=p, velocity=100, time=gap if j == 0 else 0))
        gap = 0
        for j, p in enumerate(voices):
            lead.append(mido.Message("note_off", channel=0, note=p, time=round(beats * TPB) if j == 0 else 0))
        if i == rest_after:
            gap = TPB  # a beat of rest
    midi.tracks.append(lead)
    bass = mido.MidiTrack([mido.MetaMessage("track_name", name="Bass"), mido.Message("program_change", channel=1, program=33)])
    for pitch in (45, 40, 45, 43):
        bass += [mido.Message("note_on", channel=1, note=pitch, velocity=80, time=0), mido.Message("note_off", channel=1, note=pitch, time=4 * TPB)]
    midi.tracks.append(bass)
    drums = mido.MidiTrack([mido.MetaMessage("track_name", name="Drums")])
    for step, drum in ((0, 36), (4, 42), (8, 38), (12, 42)):
        drums += [mido.Message("note_on", channel=9, note=drum, velocity=100, time=0 if step == 0 else TPB - 60),
                  mido.Message("note_off", channel=9, note=drum, time=60)]  # fmt: skip
    midi.tracks.append(drums)
    return midi


def a_minor_snapped(pitches):
    """Each pitch moved to the nearest A natural minor tone, the lower on a tie (D#5 -> D5, G#4 -> G4)."""
    scale = {(57 + i) % 12 for i in SCALES["minor"]}
    return [p if p % 12 in scale else p - 1 for p in pitches]


def test_the_busiest_melodic_track_gives_its_top_voice_in_its_key_snapped():
    fitted = melody_from_file(midi_bytes(song()), "song.mid")
    track = fitted.track
    assert (fitted.part.number, fitted.part.name) == (2, "Lead")  # the conductor track is track 1
    assert key_name(track.base, track.scale) == "A minor" and track.instrument == 73 and track.tempo == 90
    assert list(track.pitches) == a_minor_snapped([p for p, _ in MELODY])
    assert [n.duration for n in track.notes] == [b for _, b in MELODY]  # already on the grid
    assert track.percussion[:13:4] == (35, 42, 38, 42)  # the drum bar, on kick, snare and hi-hat
    assert "kept 19 notes of track 2 (Lead) in A minor at 90 bpm" in fitted.summary
    assert "2 pitches snapped to the scale" in fitted.summary


def test_a_named_track_and_instrument_are_taken():
    fitted = melody_from_file(midi_bytes(song()), "song.mid", track_number=3, instrument=40)
    assert fitted.part.name == "Bass" and fitted.track.instrument == 40 and len(fitted.track.notes) == 4


def test_rests_join_the_note_before_and_off_grid_lengths_are_fitted():
    melody = [(60, 0.3), (62, 0.5), (64, 3.0), (65, 0.5), (67, 1.0)]
    fitted = melody_from_file(midi_bytes(song(melody=melody, rest_after=1)), "c.mid")
    assert [n.duration for n in fitted.track.notes] == [0.25, 1.5, 2.0, 0.5, 1.0]
    assert "1 rest joined to the note before" in fitted.summary and "2 durations fitted" in fitted.summary  # 0.3 and 3 beats


def test_a_long_melody_keeps_its_first_64_notes_and_an_extreme_tempo_is_brought_into_range():
    melody = [(60 + (i % 8), 0.25) for i in range(100)]
    fitted = melody_from_file(midi_bytes(song(melody=melody, tempo_bpm=400)), "long.mid")
    assert len(fitted.track.notes) == LENGTH_MAX and fitted.track.tempo == 240
    assert "the 36 notes after the first 64 left out" in fitted.summary and "tempo 400 bpm taken as 240" in fitted.summary


def test_pitches_far_outside_the_range_move_by_octaves():
    melody = [(60, 1), (62, 1), (64, 1), (65, 1), (120, 1), (10, 1)]
    fitted = melody_from_file(midi_bytes(song(melody=melody)), "wide.mid")
    track = fitted.track
    assert all(track.in_range(n.degree) for n in track.notes) and "2 moved by octaves" in fitted.summary
    assert track.pitches[-2] % 12 == 120 % 12  # C, in the key found (C major): moved, not snapped


def test_the_top_voice_takes_each_chords_highest_note_and_cuts_it_at_the_next_onset():
    notes = (SourceNote(0, 2, 60, 90), SourceNote(0, 2, 67, 90), SourceNote(0.01, 1, 64, 90), SourceNote(1, 1, 62, 90))
    assert top_voice(notes) == [SourceNote(0, 1, 67, 90), SourceNote(1, 1, 62, 90)]


@pytest.mark.parametrize("tonic, mode", [(0, "major"), (7, "major"), (10, "major"), (9, "minor"), (2, "minor"), (6, "minor")])
def test_a_scale_played_up_and_down_is_found_in_its_key(tonic, mode):
    steps = SCALES[mode]
    pitches = [60 + tonic + s for s in steps] + [72 + tonic] + [60 + tonic + s for s in reversed(steps)]
    notes = [SourceNote(i, 2.0 if p % 12 == tonic else 1.0, p, 90) for i, p in enumerate(pitches)]
    assert detect_key(notes) == (tonic, mode)


@pytest.mark.parametrize(
    "data, says",
    [
        (b"MThd garbage", "not a valid MIDI file"),
        (b"\0" * (MAX_FILE_BYTES + 1), "at most 1024 KiB"),
        (None, "the file has notes only on the drum channel, so there is no melody to take"),
        ("short", "has 3 melody notes; a track needs at least 4"),
        # It said render's "has no notes to play, so there is nothing to render".
        ("empty", "their.mid: the file has no notes, so there is no melody to take"),
    ],
)
def test_files_without_a_usable_melody_are_one_clear_error(data, says):
    if data is None:  # drums only
        midi = song()
        midi.tracks = [midi.tracks[0], midi.tracks[3]]
        data = midi_bytes(midi)
    elif data == "empty":
        midi = song()
        midi.tracks = midi.tracks[:1]  # the tempo track alone
        data = midi_bytes(midi)
    elif data == "short":
        data = midi_bytes(song(melody=[(60, 1), (62, 1), (64, 1)]))
        midi = mido.MidiFile(file=__import__("io").BytesIO(data))
        midi.tracks = midi.tracks[:2]
        data = midi_bytes(midi)
    with pytest.raises(ValueError, match=says) as raised:
        melody_from_file(data, "their.mid")
    assert "their.mid" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "number, why",
    [
        (9, "there is no track 9: the file has 4 tracks, numbered from 1 (a conductor track included)"),
        (1, "track 1 has no notes, so there is no melody to take"),
        (4, "track 4 (Drums) plays only drums, so there is no melody to take"),
    ],
)
def test_a_track_named_without_a_melody_says_why_and_lists_those_that_have_one(number, why):
    """Found by a fresh-user trial: `--from-track 9` of a file of 3 tracks said "track 9 has no melody to take",
    as if it existed. Each reason is now said, with the tracks a melody can be taken from."""
    with pytest.raises(ValueError) as raised:
        melody_from_file(midi_bytes(song()), "s.mid", track_number=number)
    assert str(raised.value) == f"s.mid: {why}; a melody can be taken from tracks 2 (Lead, 23 notes) or 3 (Bass, 4 notes)"
    parts, _, tracks = read_parts(midi_bytes(song()), "s.mid")
    assert tracks == 4
    with pytest.raises(MusicError, match="no track 9: the file has 4 tracks"):  # counted from the parts when not given
        fit_melody(parts, 120, number=9)


def test_fitting_is_pure_and_deterministic():
    parts = (SourcePart(1, "", tuple(SourceNote(i * 0.5, 0.5, 60 + i % 5, 80) for i in range(8)), False),)
    assert fit_melody(parts, 120) == fit_melody(parts, 120)


def edit_distance_at_most_one(a: list[int], b: list[int]) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) <= 1
    short, long = sorted((a, b), key=len)
    return len(long) - len(short) == 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_a_session_started_from_a_file_plays_that_melody_as_its_first_round(tmp_path):
    (tmp_path / "song.mid").write_bytes(midi_bytes(song()))
    result = subprocess.run(
        [CROWDTUNE, "run", "--from", "song.mid", "--rounds", "1", "--no-audio", "--db", "t.db", "--out", "out"],
        cwd=tmp_path, input="7\n", capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("from song.mid: kept 19 notes of track 2 (Lead) in A minor at 90 bpm")
    expected = a_minor_snapped([p for p, _ in MELODY])
    with sqlite3.connect(tmp_path / "t.db") as db:
        (plan,) = db.execute("SELECT plan FROM rounds WHERE idx = 0").fetchone()
    incumbent = json.loads(plan)["incumbent"]
    assert (incumbent["base"] % 12, incumbent["scale"], incumbent["instrument"]) == (9, "minor", 73)
    # The first round is the melody with the agent's one edit: its top voice is the melody, but for that edit.
    [round_midi] = (tmp_path / "out").rglob("round-0001.mid")
    heard = [m.note for m in top_voice_messages(mido.MidiFile(round_midi))]
    assert edit_distance_at_most_one(heard, expected), (heard, expected)
    assert [m.program for m in mido.MidiFile(round_midi) if m.type == "program_change"] == [73]


def test_the_line_saying_what_was_kept_comes_once_the_session_has_started(tmp_path):
    """Found by a fresh-user trial: `from song.mid: kept ...` was printed before the unfinished session was ended,
    and before a start refused (input empty from the start, exit 4), when nothing was made from the file."""
    (tmp_path / "song.mid").write_bytes(midi_bytes(song()))
    env = {"PATH": "/usr/bin:/bin"}
    run = [CROWDTUNE, "run", "--from", "song.mid", "--rounds", "1", "--no-audio", "--db", "t.db", "--out", "out"]
    refused = subprocess.run(run, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 4 and refused.stdout == "", (refused.stdout, refused.stderr)
    # A session left unfinished (its second round open), which --from ends.
    unfinished = subprocess.run([*run[:2], "--rounds", "2", *run[6:]], cwd=tmp_path, input="7\n", capture_output=True, text=True, timeout=120, env=env)
    assert unfinished.returncode == 0 and "from song.mid" not in unfinished.stdout, unfinished.stderr
    result = subprocess.run(run, cwd=tmp_path, input="7\n", capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("session 1 ended") and lines[1].startswith("from song.mid: kept 19 notes") and lines[2].startswith("session 2:")
    assert sum(line.startswith("from song.mid") for line in lines) == 1


def top_voice_messages(midi: mido.MidiFile) -> list[mido.Message]:
    """The highest note-on of each onset on the melody channel."""
    onsets: dict[float, mido.Message] = {}
    now = 0.0
    for message in midi:
        now += message.time
        if message.type == "note_on" and message.velocity and message.channel == 0:
            if now not in onsets or message.note > onsets[now].note:
                onsets[now] = message
    return [onsets[t] for t in sorted(onsets)]


@pytest.mark.parametrize("content", [b"not midi at all", None])
def test_a_bad_file_is_one_line_and_nothing_is_created(tmp_path, content):
    path = tmp_path / "bad.mid"
    if content is None:  # type 2: no single timeline
        midi = song()
        midi.type = 2
        content = midi_bytes(midi)
    path.write_bytes(content)
    result = subprocess.run([CROWDTUNE, "run", "--from", "bad.mid", "--db", "t.db", "--out", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "bad.mid" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mid"]
