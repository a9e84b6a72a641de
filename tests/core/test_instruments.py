"""Instruments: General MIDI programs by name, carried by the track and the session, played on the
melody's channel (chords too) while the drums stay on channel 10."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mido
import pytest

from core.engine import SessionSpec
from core.instruments import DEFAULT_PROGRAM, FAMILY_WORDS, GM_PROGRAMS, InstrumentError, parse_instrument, suggest_instruments
from core.midi import DRUM_CHANNEL, MELODY_CHANNEL, track_to_midi
from core.music import Note, generate_track, track_from_dict, track_to_dict

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")


@pytest.mark.parametrize(
    "text, program",
    [("violin", 40), ("Violin", 40), ("piano", 0), ("acoustic grand piano", 0), ("alto sax", 65), ("flute", 73),
     ("0", 0), (127, 127), ("honky tonk piano", 3), ("CELLO", 42), ("steel drums", 114)],
)  # fmt: skip
def test_instruments_by_name_alias_number_or_unique_part(text, program):
    assert parse_instrument(text) == program


@pytest.mark.parametrize("text, says", [("kazoo", "not a General MIDI"), ("128", "0-127"), ("trumpet x", "not"), ("guitar (", "several"), ("  ", "name an")])
def test_unknown_or_ambiguous_instruments_are_one_clear_error(text, says):
    with pytest.raises(InstrumentError, match=says.replace("(", r"\(")):
        parse_instrument(text)


def test_a_family_word_plays_the_instrument_the_readme_names_and_no_other_part_of_several_names_passes():
    """Found by a fresh-user trial: `sax` played Alto Sax and `guitar` Acoustic Guitar (nylon) through an
    undocumented table while `drum` was refused, though README said only a part fitting one instrument works.
    Every family word is now in README with the program it plays; a part fitting several is refused, and
    Discord's autocomplete offers a family word's program first, since that is what the word alone plays."""
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    instruments = readme.split("### Instruments", 1)[1].split("###", 1)[0]
    for word, program in FAMILY_WORDS.items():
        assert parse_instrument(word.upper()) == program and suggest_instruments(word)[0] == program
        said = instruments.split(f"`{word}`", 1)[1].split("(", 1)[1]  # "`sax` or `saxophone` (Alto Sax)"
        assert said.startswith(GM_PROGRAMS[program]), word
    assert {"sax", "saxophone", "guitar", "piano"} <= set(FAMILY_WORDS)
    assert parse_instrument("saxophone") == parse_instrument("sax") == GM_PROGRAMS.index("Alto Sax")
    ambiguous = [w for w in ("electric piano", "horn", "voice", "electric guitar", "lead", "pad") if len(suggest_instruments(w)) > 1]
    assert len(ambiguous) == 6
    for word in ambiguous:
        with pytest.raises(InstrumentError, match="could be several"):
            parse_instrument(word)


@pytest.mark.parametrize("text", ["-1", " -40 ", "+128", "128", -1, "99999999999999999999"])
def test_any_integer_outside_general_midi_is_said_to_be_a_number_out_of_range(text):
    """Found by a fresh-user trial: `--instrument -1` was told "'-1' could be several instruments (Electric Piano 1,
    ...)" while 128 was told the range: any text that is an integer gets the number's line."""
    with pytest.raises(InstrumentError, match=r"^instrument number [-+]?\d+ is not a General MIDI program \(0-127\)$"):
        parse_instrument(text)
    assert parse_instrument("+5") == parse_instrument(" 5 ") == 5


@pytest.mark.parametrize("text", ["drums", "drum", "Drum Kit", "drum-set", "drumkit", "percussion", "DRUMS"])
def test_the_drum_kit_is_refused_with_one_line_naming_pitched_percussion(text):
    """Found by a fresh-user trial: `--instrument drums` played Steel Drums (the only name holding "drums") while
    `drum` was refused as fitting three. Someone asking for drums means the kit, which plays beside the melody on
    channel 10 and is no program a melody plays on: one line for every way of naming it, pointing to the pitched
    percussion that a melody can play on (each of them a name parse_instrument takes)."""
    with pytest.raises(InstrumentError) as refused:
        parse_instrument(text)
    said = str(refused.value)
    assert said.startswith(f"'{text}': the drum kit plays beside the melody (on channel 10)") and "\n" not in said, said
    named = said.split("such as ", 1)[1].replace(" or ", ", ").split(", ")
    assert named == ["Steel Drums", "Timpani", "Xylophone", "Marimba"], said
    assert [GM_PROGRAMS[parse_instrument(name)] for name in named] == named
    assert GM_PROGRAMS[parse_instrument("steel drum")] == "Steel Drums" and GM_PROGRAMS[parse_instrument("taiko")] == "Taiko Drum"


def test_suggestions_start_with_what_is_typed_and_stay_within_discords_25():
    assert [GM_PROGRAMS[p] for p in suggest_instruments("tru")] == ["Trumpet", "Muted Trumpet"]
    assert len(suggest_instruments("")) == 25
    assert suggest_instruments("zzz") == []
    assert all("piano" in GM_PROGRAMS[p].lower() for p in suggest_instruments("piano"))


def chordal_track(instrument: int):
    track = generate_track(60, "major", 8, 120, random.Random(2))
    return replace(track.with_notes(tuple(Note(n.degree, n.duration, chord=i % 2 == 0) for i, n in enumerate(track.notes))), instrument=instrument)


def test_the_melody_and_its_chords_play_on_the_instrument_and_the_drums_stay_on_channel_10():
    midi = track_to_midi(chordal_track(40))
    programs = [(m.channel, m.program) for m in midi if m.type == "program_change"]
    assert programs == [(MELODY_CHANNEL, 40)]
    notes = [m for m in midi if m.type == "note_on" and m.velocity]
    chord_notes = sum(3 for n in chordal_track(40).notes if n.chord)
    assert sum(m.channel == MELODY_CHANNEL for m in notes) == len(chordal_track(40).notes) + chord_notes
    assert {m.channel for m in notes} == {MELODY_CHANNEL, DRUM_CHANNEL}


def test_tracks_and_specs_stored_before_instruments_load_as_pianos():
    track = chordal_track(73)
    stored = track_to_dict(track)
    assert track_from_dict(stored) == track and stored["instrument"] == 73
    old = {key: value for key, value in stored.items() if key != "instrument"}
    assert track_from_dict(old).instrument == DEFAULT_PROGRAM
    spec = SessionSpec(instrument=40)
    assert SessionSpec.from_dict(spec.to_dict()) == spec and spec.first_track().instrument == 40
    old_spec = {key: value for key, value in spec.to_dict().items() if key != "instrument"}
    assert SessionSpec.from_dict(old_spec).instrument == DEFAULT_PROGRAM


@pytest.mark.parametrize("program", [-1, 128])
def test_a_spec_refuses_a_program_outside_general_midi(program):
    with pytest.raises(ValueError, match="instrument"):
        SessionSpec(instrument=program)


def test_a_terminal_session_plays_its_rounds_on_the_chosen_instrument(tmp_path):
    result = subprocess.run(
        [CROWDTUNE, "run", "--rounds", "1", "--instrument", "alto sax", "--no-audio", "--db", "t.db", "--out", "out"],
        cwd=tmp_path, input="7\n", capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "played on Alto Sax" in result.stdout
    [midi_path] = (tmp_path / "out").rglob("round-0001.mid")
    assert [m.program for m in mido.MidiFile(midi_path) if m.type == "program_change"] == [65]


def test_an_unknown_instrument_is_one_line_and_nothing_is_written(tmp_path):
    result = subprocess.run([CROWDTUNE, "simulate", "--instrument", "kazoo", "--out", "o"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "kazoo" in result.stderr
    assert list(tmp_path.iterdir()) == []
