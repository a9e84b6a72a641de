"""The command line's edges a newcomer meets first, as a subprocess the way a user runs it: --version, an
unknown option, an option the command would ignore, and the commands that only read a database (before
there is one, and on a database they may not write beside)."""

import importlib.metadata
import re
from pathlib import Path

import pytest

from bot.errors import ExitCode
from test_cli import _midi_bytes, crowdtune

README = Path(__file__).resolve().parents[2] / "README.md"


def one_line(result) -> str:
    """The single line a refused command prints on stderr (and no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_version_prints_the_installed_packages_version(tmp_path):
    """`crowdtune --version` said "the following arguments are required: COMMAND"."""
    result = crowdtune("--version", cwd=tmp_path)
    assert result.stdout == f"crowdtune {importlib.metadata.version('crowdtune')}\n" and result.stderr == ""
    assert list(tmp_path.iterdir()) == []
    assert "\ncrowdtune --version " in README.read_text()  # in the list of commands


@pytest.mark.parametrize("argv, prog, option", [
    (["--bogus"], "crowdtune", "--bogus"),
    (["--bogus", "sessions"], "crowdtune", "--bogus"),
    (["run", "--bogus"], "crowdtune run", "--bogus"),
    (["run", "--bogus=3", "--rounds", "2"], "crowdtune run", "--bogus"),
    (["sessions", "--db", "x.db", "--verbose"], "crowdtune sessions", "--verbose"),
    (["simulate", "--outt", "sim"], "crowdtune simulate", "--outt"),  # not "required: --out": the typo is the news
    (["export", "--out", "x.zip", "-q"], "crowdtune export", "-q"),
    (["bench", "render", "--bogus"], "crowdtune bench", "--bogus"),
    (["copy-db", "--form", "a.db", "--to", "b.db"], "crowdtune copy-db", "--form"),
    (["run", "--see", "3"], "crowdtune run", "--see"),  # an abbreviation of --seed is no option: a new option would change its meaning
])
def test_an_unknown_option_is_named_with_its_command(tmp_path, argv, prog, option):
    """`crowdtune --bogus` said "the following arguments are required: COMMAND", and `crowdtune run --bogus`
    "crowdtune: error: unrecognized arguments": neither named the command whose option it is not."""
    result = crowdtune(*argv, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    assert one_line(result) == f"{prog}: error: unknown option {option} (see {prog} --help)"
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_an_argument_a_command_does_not_take_is_named_with_its_command(tmp_path):
    result = crowdtune("sessions", "all", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    assert one_line(result) == "crowdtune sessions: error: unexpected argument 'all' (see crowdtune sessions --help)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given", [["--seeds", "3"], ["--rounds", "5"], ["--out", "report"], ["--force"], ["--crowd", "builtin"],
                                   ["--only", "default"]])
@pytest.mark.parametrize("which", ["render", "qtable"])
def test_a_bench_refuses_an_option_only_another_bench_uses(tmp_path, which, given):
    """`bench render --seeds 3` ran the render benchmark, the seeds silently ignored (they are bench learning's)."""
    result = crowdtune("bench", which, *given, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    line = one_line(result)
    assert line.startswith(f"crowdtune bench: error: {given[0]} ") and "bench learning" in line and f"bench {which}" in line, line
    assert result.stdout == "" and list(tmp_path.iterdir()) == []  # nothing run


TOKEN = {"DISCORD_TOKEN": "MTIz.NDU2.Nzg5"}  # three parts, as a real token has: its form is no reason to stop


@pytest.mark.parametrize("given, option", [
    (["--rounds", "3"], "--rounds"), (["--mode", "ab"], "--mode"), (["--no-audio"], "--no-audio"), (["--new"], "--new"),
    (["--out", "rounds"], "--out"), (["--aspects"], "--aspects"), (["--seed", "4"], "--seed"), (["--from", "song.mid"], "--from"),
])
def test_the_bot_refuses_options_only_a_terminal_session_uses(tmp_path, given, option):
    """With DISCORD_TOKEN set, `run --rounds 3` ran the bot, the rounds silently ignored (a session on Discord takes
    its options from /compose)."""
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    result = crowdtune("run", *given, "--db", "ct.db", cwd=tmp_path, env_extra=TOKEN, check=False)
    assert result.returncode == ExitCode.USAGE
    line = one_line(result)
    assert f"{option} is for a session in the terminal" in line and "DISCORD_TOKEN" in line and "/compose" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid"]  # no database


@pytest.mark.parametrize("option, value", [("--base", "D4"), ("--scale", "minor"), ("--length", "12"), ("--tempo", "90")])
def test_a_melody_from_a_file_refuses_the_music_options_the_file_sets(tmp_path, option, value):
    """`run --from tune.mid --tempo 90` played the file's tempo, the option silently ignored."""
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    result = crowdtune("run", "--from", "song.mid", option, value, "--no-audio", "--db", "ct.db", cwd=tmp_path, stdin="5\n",
                       check=False)
    assert result.returncode == ExitCode.USAGE
    line = one_line(result)
    assert f"{option} comes from the file with --from" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid"]


def test_noise_without_a_builtin_rater_that_has_noise_is_refused(tmp_path):
    """--noise sets the built-in raters' noise: with only your own rater (or the brigader, who does not listen)
    it was silently ignored."""
    (tmp_path / "mine.py").write_text("def rate(midi):\n    return 5\n")
    for raters in (["--rater", "mine:rate"], ["--rater", "brigader"]):
        result = crowdtune("simulate", *raters, "--noise", "2", "--out", "sim", "--db", "t.db", cwd=tmp_path, check=False)
        assert result.returncode == ExitCode.USAGE
        line = one_line(result)
        assert "--noise" in line and raters[1] in line, line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py"]
    crowdtune("simulate", "--rater", "mine:rate", "--rater", "calm", "--noise", "2", "--rounds", "1", "--out", "sim", "--db", "t.db",
              cwd=tmp_path)
