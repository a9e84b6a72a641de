"""Text from a person's file (a MIDI track's name) shown as its author wrote it: UTF-8 read as UTF-8, and nothing a
terminal would act on (control characters, escape sequences) reaching it raw (found by a fresh-user trial)."""

import mido
import pytest

from bot.errors import ExitCode
from test_cli import crowdtune


def _two_named_tracks(path, name: str) -> None:
    """A type-1 file: a conductor track, then track 2 'Lead' (4 notes) and track 3 named `name` (8 notes), its name
    stored as most programs store it, in UTF-8."""
    midi = mido.MidiFile(type=1)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)]))
    for channel, (title, count) in enumerate((("Lead", 4), (name, 8))):
        # mido writes text meta as latin-1: a str of the UTF-8 bytes is written as those bytes.
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=title.encode().decode("latin-1"))])
        for i in range(count):
            track.append(mido.Message("note_on", channel=channel, note=60 + 2 * i - 12 * channel, velocity=80))
            track.append(mido.Message("note_off", channel=channel, note=60 + 2 * i - 12 * channel, time=480))
        midi.tracks.append(track)
    midi.save(path)


@pytest.mark.parametrize("name, shown", [
    ("Bass\x00\x07", "Bass\\x00\\x07"),
    ("Violín 🎹", "Violín 🎹"),
    (" Voilà ", "Voilà"),  # à ends in the byte 0xa0, a latin-1 space
    ("Lead\x1b[2J\x9b1m", "Lead\\x1b[2J\\x9b1m"),
])
def test_a_track_name_is_shown_decoded_and_with_its_control_characters_visible(tmp_path, name, shown):
    """`run --from multi.mid --from-track 3` printed `kept 8 notes of track 3 (Bass^@^G)` (the raw bytes on the
    terminal) and a UTF-8 name garbled (`ViolÃ\\xadn`, mido reads text as latin-1); the refusal naming the tracks too."""
    _two_named_tracks(tmp_path / "multi.mid", name)
    started = crowdtune("run", "--from", "multi.mid", "--from-track", "3", "--no-audio", "--db", "ct.db", cwd=tmp_path, stdin="q\n")
    assert f"from multi.mid: kept 8 notes of track 3 ({shown}) in " in started.stdout
    refused = crowdtune("run", "--from", "multi.mid", "--from-track", "4", "--no-audio", "--db", "x.db", cwd=tmp_path, check=False)
    assert refused.returncode == ExitCode.USAGE
    assert f"a melody can be taken from tracks 2 (Lead, 4 notes) or 3 ({shown}, 8 notes)" in refused.stderr
    for output in (started.stdout, started.stderr, refused.stderr):
        assert not any(c < " " and c != "\n" or "\x7f" <= c <= "\x9f" for c in output)


def test_file_text_keeps_latin_1_that_is_not_utf_8_and_shows_what_a_terminal_acts_on():
    from core.words import file_text

    assert file_text("Caf\xe9") == "Café"  # a latin-1 byte that starts no UTF-8 character: read as latin-1
    assert file_text(" Caf\xc3\xa9\r\nbar ") == "Café\\r\\nbar"
    assert file_text("\xe2\x80\xae evil") == "\\u202e evil"  # a right-to-left override, in UTF-8
