"""A path named on the command line is echoed with what a terminal would act on (ESC sequences, a carriage return, a
line break) written visibly, as core.words.visible writes it: `copy-db --from` a file named with an escape sequence
printed it raw, and a terminal ran it (found by a command-line trial)."""

import pytest

from test_cli import crowdtune

DB, OUT, COPY = "s\x1b[2J.db", "e\x1b]0;owned\x07\n.zip", "t\rX.db"  # a screen clear, a title set, a line break, a return


def _clean(result) -> str:
    """The command's standard output, after checking nothing a terminal acts on reached either stream raw."""
    for stream in (result.stdout, result.stderr):
        assert not set(stream) & {"\x1b", "\r", "\x07"}, repr(stream)
    return result.stdout


@pytest.fixture
def database(tmp_path):
    crowdtune("simulate", "--rounds", "1", "--seed", "1", "--db", DB, "--out", "o\x1b[31m", cwd=tmp_path)
    return tmp_path


def test_every_command_echoing_a_path_shows_its_control_characters_visibly(database):
    simulated = _clean(crowdtune("simulate", "--rounds", "1", "--seed", "1", "--db", ":memory:", "--out", "o\x1b[31m", "--force", cwd=database))
    assert "wrote o\\x1b[31m/results.json" in simulated
    assert _clean(crowdtune("sessions", "--db", DB, cwd=database)).endswith("1 session in s\\x1b[2J.db\n")
    exported = _clean(crowdtune("export", "--db", DB, "--out", OUT, cwd=database))
    assert exported.startswith("wrote e\\x1b]0;owned\\x07\\n.zip: ") and exported.count("\n") == 1
    copied = _clean(crowdtune("copy-db", "--from", DB, "--to", COPY, cwd=database))
    assert copied.startswith("copied into t\\rX.db, rows per table: ") and copied.count("\n") == 1
    # The files are the ones named, byte for byte: only what is shown is escaped.
    assert {path.name for path in database.iterdir()} >= {DB, OUT, COPY, "o\x1b[31m"}
    missing = _clean(crowdtune("sessions", "--db", "n\x1b[31m\n.db", cwd=database))
    assert missing.startswith("no sessions yet: there is no database at n\\x1b[31m\\n.db (") and missing.count("\n") == 1
