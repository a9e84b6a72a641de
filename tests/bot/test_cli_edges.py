"""The command line's edges a newcomer meets first, as a subprocess the way a user runs it: --version, an
unknown option, an option the command would ignore, and the commands that only read a database (before
there is one, and on a database they may not write beside)."""

import importlib.metadata
import re
import subprocess
from pathlib import Path

import pytest

from bot.errors import ExitCode
from test_cli import CROWDTUNE, _midi_bytes, crowdtune, mode_bits_bind_root

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


@pytest.mark.parametrize("option, typed", [
    ("--rounds", "５"), ("--rounds", "٣"), ("--length", "１２"), ("--tempo", "９０"), ("--seed", "７"), ("--base", "６０"),
    ("--base", "C４"), ("--instrument", "４０"), ("--noise", "０.５"), ("--rounds", "²"),
])
def test_a_number_in_digits_nobody_types_is_refused_as_anywhere_else(tmp_path, option, typed):
    """Found by a fresh-user trial: `--rounds ５` (fullwidth) or `--base C４` started a session, while the same digit
    in CROWDTUNE_ROUNDS or at the rating prompt is refused: every number typed is ASCII digits (core.words)."""
    argv = ["simulate", "--out", "sim", "--db", "t.db", option, typed]
    result = crowdtune(*argv, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert result.stderr.count("\n") == 1 and typed in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, option", [(["sessions", "--db", "--rounds"], "--db"), (["run", "--db", "--rounds", "3"], "--db"),
                                          (["simulate", "--out", "--bogus"], "--out"), (["simulate", "--rater"], "--rater")])
def test_an_option_without_its_value_says_so(tmp_path, argv, option):
    """`sessions --db --rounds` said "unknown option --rounds" (the news is that --db has no value), and `run --db
    --rounds 3` argparse's "argument --db: expected one argument"."""
    result = crowdtune(*argv, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    prog = f"crowdtune {argv[0]}"
    assert one_line(result) == f"{prog}: error: {option} needs a value (see {prog} --help)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, said", [
    (["bench", "nope"], "BENCHMARK must be one of: learning, render, loop, votes, qtable, footprint, export, scaling, not 'nope'"),
    (["frobnicate"], "COMMAND must be one of: run, sessions, simulate, render, export, copy-db, bench, forget-user, reset, upgrade, not 'frobnicate'"),
    (["run", "--preset", "foo"], "--preset must be one of: default, hillclimb, context, paper, random, theory, not 'foo'"),
    (["simulate", "--preset", "foo", "--out", "sim"], "--preset must be one of: default, hillclimb, context, paper, random, theory, not 'foo'"),
    (["simulate", "--crowd", "x", "--out", "sim"], "--crowd must be one of: builtin, contrarian, not 'x'"),
    (["run", "--tempo", "9"], "--tempo must be 40-240, not 9"),
    (["run", "--scale", "Klingon"], "--scale must be one of: major, minor, harmonic_minor, diminished, major_pentatonic, "
                                    "minor_pentatonic, blues, dorian, mixolydian, lydian, phrygian, not 'Klingon'"),
])
def test_a_bad_choice_is_said_in_one_form_naming_the_choices_as_help_lists_them(tmp_path, argv, said):
    """`bench nope` said "argument which: invalid choice" (an internal name), `--preset foo` "unknown preset 'foo'; choose
    one of: paper, default, random, ..." in another order than --help's and without "(see ... --help)", and `--tempo 9`
    "argument --tempo: --tempo must be 40-240"."""
    result = crowdtune(*argv, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    prog = " ".join(["crowdtune", *argv[:1]]) if argv[0] != "frobnicate" else "crowdtune"
    assert one_line(result) == f"{prog}: error: {said} (see {prog} --help)"
    assert list(tmp_path.iterdir()) == []
    if "--preset" in argv:  # --help lists them in the same order
        listed = " ".join(crowdtune(argv[0], "--help", cwd=tmp_path).stdout.split())
        assert "agent preset: default, hillclimb, context, paper, random or theory" in listed


@pytest.mark.parametrize("only, said", [(["nope"], "1 unknown line ('nope')"), (["nope", "x"], "2 unknown lines ('nope', 'x')")])
def test_an_unknown_bench_line_is_named_with_the_choices(tmp_path, only, said):
    """`bench learning --only nope` said "unknown bench line(s) 'nope'"."""
    result = crowdtune("bench", "learning", *[a for o in only for a in ("--only", o)], "--seeds", "1", "--rounds", "2",
                       cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    line = one_line(result)
    assert line.startswith(f"crowdtune bench: error: --only names {said}; choose from: 'hillclimb', 'default',"), line
    assert list(tmp_path.iterdir()) == []


def test_an_argument_a_command_does_not_take_is_named_with_its_command(tmp_path):
    result = crowdtune("sessions", "all", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    assert one_line(result) == "crowdtune sessions: error: unexpected argument 'all' (see crowdtune sessions --help)"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given", [["--seeds", "3"], ["--first-seed", "40"], ["--rounds", "5"], ["--out", "report"], ["--force"],
                                   ["--crowd", "builtin"], ["--only", "default"]])
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


# -- commands that only read a database ------------------------------------------------------------------


@pytest.mark.parametrize("db", [None, "typo/x.db", "empty.db"])
def test_sessions_before_there_is_a_database_says_so_and_how_to_start_one_and_makes_nothing(tmp_path, db):
    """On a fresh checkout `crowdtune sessions` said "cannot read the database crowdtune-data/crowdtune.db (no such
    file)", exit 12: a listing of nothing is no error."""
    (tmp_path / "empty.db").write_bytes(b"")
    result = crowdtune("sessions", *(["--db", db] if db else []), cwd=tmp_path, check=False)
    assert result.returncode == 0 and result.stderr == "", (result.returncode, result.stderr)
    [line] = result.stdout.splitlines()
    where = db or "crowdtune-data/crowdtune.db"
    said = f"the database {where} holds no crowdtune data yet" if db == "empty.db" else f"there is no database at {where}"
    assert line == f"no sessions yet: {said} (start a session with crowdtune run or crowdtune simulate)", line
    assert [(p.name, p.read_bytes()) for p in tmp_path.iterdir()] == [("empty.db", b"")]


def test_sessions_on_a_crowdtune_database_without_sessions_says_so_as_helpfully(tmp_path):
    """Found by a fresh-user trial: an empty file got "holds no crowdtune data yet (start a session with ...)" but
    a crowdtune database without sessions (the bot's, before its first /compose) a bare "0 sessions in bot2.db"."""
    import asyncio

    from storage import open_store

    async def make_empty() -> None:
        await (await open_store(str(tmp_path / "bot2.db"))).close()

    asyncio.run(make_empty())
    result = crowdtune("sessions", "--db", "bot2.db", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "no sessions yet: the database bot2.db holds none (start a session with crowdtune run or crowdtune simulate)"]


@pytest.mark.parametrize("argv, nothing", [
    (["export", "--out", "all.zip"], "nothing to export"),
    (["export", "--out", "all.zip", "--db", "empty.db"], "nothing to export"),
    (["copy-db", "--from", "none.db", "--to", "copy.db"], "nothing to copy"),
    (["copy-db", "--from", "empty.db", "--to", "copy.db"], "nothing to copy"),
])
def test_exporting_or_copying_a_database_that_is_not_there_is_one_line_and_makes_nothing(tmp_path, argv, nothing):
    (tmp_path / "empty.db").write_bytes(b"")
    result = crowdtune(*argv, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.FILE
    line = one_line(result)
    assert f", so {nothing} (start a session with crowdtune run or crowdtune simulate)" in line, line
    assert ("holds no crowdtune data yet" if "empty.db" in argv else "there is no database at") in line, line
    assert [(p.name, p.read_bytes()) for p in tmp_path.iterdir()] == [("empty.db", b"")]


@pytest.mark.parametrize("locked", [True, False], ids=["read-only", "writable"])
def test_commands_that_only_read_read_a_database_in_a_folder_they_cannot_write_and_change_nothing(tmp_path, locked):
    """On a read-only file system, or in a folder without write permission (a backup), sessions, export and
    copy-db's source were refused ("its folder cannot be written, and crowdtune writes beside its database even
    to read it"): they opened it as a writer does. Reading now writes nothing in the file or beside it, whether
    or not it could (no -wal, no -shm left behind); a command that writes is still refused there, saying so."""
    folder = tmp_path / "ro"
    folder.mkdir()
    crowdtune("simulate", "--rounds", "2", "--db", "ro/ct.db", "--out", "sim", cwd=tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    prefix = ()
    if locked:
        (folder / "ct.db").chmod(0o444)
        folder.chmod(0o555)
        prefix = mode_bits_bind_root()
    try:
        listed = crowdtune("sessions", "--db", "ro/ct.db", cwd=tmp_path, prefix=prefix)
        exported = crowdtune("export", "--db", "ro/ct.db", "--out", "all.zip", cwd=tmp_path, prefix=prefix)
        crowdtune("copy-db", "--from", "ro/ct.db", "--to", "copy.db", cwd=tmp_path, prefix=prefix)
        written = crowdtune("simulate", "--rounds", "1", "--db", "ro/ct.db", "--out", "sim2", cwd=tmp_path, check=False, prefix=prefix)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before or not locked
    finally:
        folder.chmod(0o755)
        (folder / "ct.db").chmod(0o644)
    assert re.search(r"^1 session in ro/ct.db$", listed.stdout, re.M), listed.stdout
    assert "wrote all.zip: 3 compositions, 2 rounds" in exported.stdout, exported.stdout
    assert re.search(r"^1 session in copy.db$", crowdtune("sessions", "--db", "copy.db", cwd=tmp_path).stdout, re.M)
    if locked:
        assert written.returncode == ExitCode.DATABASE, (written.returncode, written.stderr)
        assert "move the file to a folder you can write" in one_line(written)
    else:
        assert written.returncode == 0, written.stderr
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        crowdtune("sessions", "--db", "ro/ct.db", cwd=tmp_path)
        crowdtune("export", "--db", "ro/ct.db", "--out", "all.zip", "--force", cwd=tmp_path)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# -- standard output that cannot be written ------------------------------------------------------------------


@pytest.mark.parametrize("argv, command, stdin", [
    (["--version"], "", ""),
    (["--help"], "", ""),
    (["run", "--help"], " run", ""),  # the command is named as soon as it is read, --help or not
    (["bench", "--help"], " bench", ""),
    (["sessions", "--db", "ct.db"], " sessions", ""),
    (["simulate", "--rounds", "2", "--out", "sim", "--db", "ct.db"], " simulate", ""),
    (["run", "--no-audio", "--rounds", "1", "--db", "ct.db"], " run", "5\n"),
])
@pytest.mark.parametrize("output, reason", [("full", "no space left on device"), ("closed", "bad file descriptor")])
def test_standard_output_that_cannot_be_written_is_one_line(tmp_path, argv, command, stdin, output, reason):
    """`crowdtune sessions > /dev/full` (a full disk) ended in a traceback, "OSError: [Errno 28] No space left on
    device", exit code 1 (a bug), also when only the interpreter's flush at exit failed: now one line and exit code 12,
    the work cleaned up as for any other end (a terminal session's round stays open to resume). A later trial:
    standard output closed (`>&-`, sys.stdout None) was "AttributeError: 'NoneType' object has no attribute 'flush'"."""
    if "sessions" in argv:  # a database with a session to list
        crowdtune("simulate", "--rounds", "1", "--out", "first", "--db", "ct.db", cwd=tmp_path)
    with open("/dev/full", "w") as full:
        closed = ["sh", "-c", 'exec "$0" "$@" >&-'] if output == "closed" else []  # `crowdtune ... >&-`
        result = subprocess.run([*closed, CROWDTUNE, *argv], cwd=tmp_path, input=stdin, stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    assert result.returncode == ExitCode.FILE, result.stderr
    assert one_line(result) == f"crowdtune{command}: cannot write to standard output: {reason}"
    if "run" in argv and "--help" not in argv:
        listed = crowdtune("sessions", "--db", "ct.db", cwd=tmp_path).stdout
        assert re.search(r"^ +1  active .*; 0 done$", listed, re.M), listed  # its round open, to resume


# -- an in-memory database -----------------------------------------------------------------------------------


GONE = "an in-memory database (:memory:) is gone when the command ends, so nothing written to it could be resumed or read: use a database file"


@pytest.mark.parametrize("argv, env, code, said", [
    (["run", "--db", ":memory:", "--no-audio"], {}, ExitCode.DATABASE, f"crowdtune run: {GONE}"),
    (["run", "--db", ":memory:"], TOKEN, ExitCode.DATABASE, f"crowdtune run: {GONE}"),
    (["copy-db", "--from", "ct.db", "--to", ":memory:"], {}, ExitCode.DATABASE, f"crowdtune copy-db: {GONE}"),
    (["sessions", "--db", ":memory:"], {}, ExitCode.DATABASE, "crowdtune sessions: an in-memory database holds nothing to read: use a database file"),
    (["run", "--no-audio"], {"CROWDTUNE_DB": ":memory:"}, ExitCode.SETTING,
     f"crowdtune run: bad setting: CROWDTUNE_DB is ':memory:' (in the environment), expected a SQLite file's path or a postgresql:// URL: {GONE}"),
    (["simulate", "--out", "sim"], {"CROWDTUNE_DB": ":memory:"}, ExitCode.SETTING, None),
])
def test_an_in_memory_database_is_refused_where_what_is_written_must_last(tmp_path, argv, env, code, said):
    """`crowdtune run --db :memory:` said "the next crowdtune run resumes it" (it cannot: the database is gone) and
    made crowdtune-data/rounds/memory-session-1-.../; `copy-db --to :memory:` said "copied into :memory:"."""
    crowdtune("simulate", "--rounds", "1", "--out", "first", "--db", "ct.db", cwd=tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = crowdtune(*argv, cwd=tmp_path, stdin="q\n", env_extra=env, check=False)
    assert result.returncode == code, result.stderr
    line = one_line(result)
    assert line == said or said is None and line.endswith(GONE), line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_scale_and_a_preset_are_taken_as_sessions_print_them(tmp_path):
    """Found by a fresh-user trial: sessions print "Bb3 harmonic minor" and "preset default", but `--scale 'harmonic
    minor'` and `--preset Default` were refused: what is printed can be typed back."""
    result = crowdtune("simulate", "--scale", "Harmonic Minor", "--preset", "Default", "--rounds", "1", "--out", "sim",
                       "--db", "t.db", cwd=tmp_path)
    assert ", C4 harmonic minor, " in result.stdout and ", preset default, " in result.stdout, result.stdout


def test_a_simulation_may_use_an_in_memory_database_its_results_all_in_out(tmp_path):
    """A simulation's results are all in --out: a database it throws away is a real use, with no false promise."""
    result = crowdtune("simulate", "--rounds", "2", "--out", "sim", "--db", ":memory:", cwd=tmp_path)
    assert ", 2 rounds; " in result.stdout and "resume" not in result.stdout, result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["sim"]


@pytest.mark.parametrize("argv, env, code, said", [
    (["copy-db", "--from", "ct.db", "--to", "postgresql://..."], {}, ExitCode.DATABASE,
     "crowdtune copy-db: the database URL postgresql://... cannot be used: its host '...'"),
    (["sessions"], {"CROWDTUNE_DB": "postgresql://..."}, ExitCode.SETTING,
     "crowdtune sessions: bad setting: CROWDTUNE_DB is 'postgresql://...' (in the environment), expected a SQLite file's path "
     "or a postgresql:// URL: its host '...'"),
])
def test_a_url_whose_host_is_no_host_name_is_one_line(tmp_path, argv, env, code, said):
    """`copy-db --to postgresql://...`, README's placeholder typed as it is, said "cannot connect to the database
    postgresql://...: encoding with 'idna' codec failed (UnicodeError: label empty or too long)"."""
    crowdtune("simulate", "--rounds", "1", "--out", "first", "--db", "ct.db", cwd=tmp_path)
    result = crowdtune(*argv, cwd=tmp_path, env_extra=env, check=False)
    assert result.returncode == code, result.stderr
    assert one_line(result).startswith(said + " cannot be a host's name"), result.stderr


# -- ~ in every path option -----------------------------------------------------------------------------------


# Every option that names a file, a folder or a database, per command (README: ~ works in every path option).
PATH_OPTIONS = {
    "run": {"--db", "--out", "--from"}, "sessions": {"--db"}, "simulate": {"--db", "--out", "--rater"},
    "render": {"FILE.mid", "--out-dir", "--soundfont"}, "export": {"--db", "--out"}, "copy-db": {"--from", "--to"},
    "bench": {"--out"}, "forget-user": {"--db", "--out"}, "reset": {"--db"}, "upgrade": {"--db"},
}


def test_every_path_option_expands_a_quoted_tilde_in_one_way(monkeypatch, tmp_path):
    """`simulate --rater '~/raters/mine.py:my_rater'` said "cannot read the rater module ~/raters/mine.py (no such
    file)", though every other path option took a quoted ~: each now has the one path type (bot.errors.user_path)."""
    from bot.cli import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    found = {}
    for name, command in commands.items():
        for action in command._actions:
            if getattr(action.type, "__qualname__", "") == "_path.<locals>.parse":
                found.setdefault(name, set()).add(action.option_strings[0] if action.option_strings else action.metavar)
                assert action.type("~/raters/mine.py:rate") == f"{tmp_path}/raters/mine.py:rate"
    assert found == PATH_OPTIONS


def test_a_rater_file_named_with_a_quoted_tilde_is_loaded(tmp_path):
    (tmp_path / "raters").mkdir()
    (tmp_path / "raters" / "mine.py").write_text("def rate(midi):\n    return 5\n")
    result = crowdtune("simulate", "--rater", "~/raters/mine.py:rate", "--rounds", "1", "--out", "sim", "--db", "t.db",
                       cwd=tmp_path, env_extra={"HOME": str(tmp_path)})
    assert result.stdout.startswith("1 rater, rating mode, ") and ", 1 round; " in result.stdout, result.stdout


# Two damages, each (the page damaged given the votes table's root page, the bytes written at its start, what SQLite
# says): a page's header of garbage (SQLite's check lists the page), and a leaf page of garbage (the check itself fails).
DAMAGES = {
    "a page's header": (lambda root: 4, lambda size: b"\xff" * 200, "Page 4: btreeInitPage() returns error code 11"),
    "a whole page": (lambda root: root, lambda size: b"\x0d" + b"\xff" * (size - 1), "database disk image is malformed"),
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("argv", [["sessions"], ["export", "--out", "all.zip"], ["simulate", "--rounds", "1", "--out", "sim"]])
def test_a_damaged_database_is_one_plain_line_saying_what_is_damaged_and_what_to_do(tmp_path, argv, damage):
    """Found by a fresh-user trial: `damaged (*** in database main ***\\nPage 4: btreeInitPage() returns error code
    11)`: SQLite's banner, its line break shown as \\n, and *** that reads as a hidden password. Each damage is said
    alike: SQLite's first problem as it words it, without its banner, and what to do."""
    import sqlite3

    crowdtune("simulate", "--rounds", "2", "--out", "first", "--db", "ct.db", cwd=tmp_path)
    db = tmp_path / "ct.db"
    with sqlite3.connect(db) as raw:
        (page_size,) = raw.execute("PRAGMA page_size").fetchone()
        (root,) = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'votes'").fetchone()
    page, garbage, said = DAMAGES[damage]
    start, written = (page(root) - 1) * page_size, garbage(page_size)
    data = bytearray(db.read_bytes())
    data[start : start + len(written)] = written
    db.write_bytes(bytes(data))
    result = crowdtune(*argv, "--db", "ct.db", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.DATABASE, result.stderr
    assert one_line(result) == (
        f"crowdtune {argv[0]}: the database ct.db is damaged (SQLite says: {said}); left as it is: restore a backup (a copy "
        "of the file made while no crowdtune ran), or name another database with --db or CROWDTUNE_DB (a new file starts empty)")


def test_every_fixed_choice_is_taken_in_any_case_as_typed_and_a_wrong_one_quoted(tmp_path, monkeypatch):
    """Found by a fresh-user trial: `--scale Major` and `--preset Default` were taken, `--mode AB` refused. Every
    option (or argument) that takes one of fixed words takes it in any case, with spaces or hyphens for underscores,
    as --scale does; a word that is none of them is quoted as typed. CROWDTUNE_PRESET too, as --preset."""
    from bot.cli import build_parser
    from bot.settings import CommandSettings, load_settings

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    checked = set()
    for name, command in commands.items():
        for action in command._actions:
            choices = getattr(action.type, "choices", None)  # an argparse type of fixed words says which
            if action.choices and not isinstance(action.choices, dict):
                assert choices is not None, (name, action.dest)  # no fixed choice is left to argparse's exact match
            if choices is None:
                continue
            for choice in choices() if callable(choices) else choices:
                typed = f" {choice.upper().replace('_', ' ')} "
                assert action.type(typed) == choice, (name, action.dest, typed)
            with pytest.raises(Exception, match=r"must be one of: .*, not 'Klingon'"):
                action.type("Klingon")
            checked.add(action.dest)
    assert checked == {"mode", "scale", "preset", "crowd", "format", "which"}
    from bot import cli
    from core.engine import MODES

    assert cli.MODES == MODES  # the command line's own copy, kept so --help need not import the engine
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CROWDTUNE_PRESET", "Hillclimb")
    assert load_settings(CommandSettings).preset == "hillclimb"
    refused = crowdtune("run", "--mode", "vote", cwd=tmp_path, check=False)
    assert one_line(refused) == "crowdtune run: error: --mode must be one of: rating, ab, not 'vote' (see crowdtune run --help)"


def test_every_command_s_help_has_a_description_and_run_s_out_says_where_the_rounds_go(tmp_path):
    """Found by a fresh-user trial: `export --help` had no paragraph saying what it does, unlike every other command;
    and `run --out FOLDER` wrote into a new crowdtune-session-N-.../ folder inside FOLDER, where --help said FOLDER
    itself held the rounds. --help, README and the files agree."""
    from bot.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert [name for name, command in commands.items() if not command.description] == []
    helped = " ".join(crowdtune("run", "--help", cwd=tmp_path).stdout.split())
    said = ("--out OUT a folder that gets a new folder per session, <database>-session-<n>-<date>/, for each round's audio, "
            "MIDI and piano roll (default: rounds/ beside the database)")
    assert said in helped, helped
    crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", "--out", "mine", stdin="5\n", cwd=tmp_path)
    (session,) = (tmp_path / "mine").iterdir()
    assert re.fullmatch(r"ct-session-1-\d{8}-\d{6}", session.name) and (session / "round-0001.mid").is_file(), session
    assert "`--out FOLDER` puts that folder in FOLDER instead of `rounds/`" in README.read_text()


def test_a_rater_file_is_said_to_be_imported_its_top_level_code_running(tmp_path):
    """Found by a fresh-user trial: `--rater file.py:f` ran the whole file's top-level code before saying it "has no
    'f'", as Python's import does; neither --help nor README said the file is imported."""
    (tmp_path / "mine.py").write_text("open('ran', 'w').close()\n")
    refused = crowdtune("simulate", "--rater", "./mine.py:f", "--out", "sim", "--db", "t.db", cwd=tmp_path, check=False)
    assert refused.returncode == ExitCode.USAGE and "has no 'f'" in refused.stderr and (tmp_path / "ran").exists(), refused.stderr
    helped = " ".join(crowdtune("simulate", "--help", cwd=tmp_path).stdout.split())
    assert "Either is imported as Python imports a module: its top-level code runs first, before FUNC is looked for" in helped, helped
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert "Either is imported as Python imports a module: its top-level code runs first" in readme


@pytest.mark.parametrize("argv, said", [
    (["run", "--rounds", "3", "--rounds", "4"], "crowdtune run: error: --rounds is given twice ('3', then '4'): give it once"),
    (["sessions", "--db", "a.db", "--db=b.db"], "crowdtune sessions: error: --db is given twice ('a.db', then 'b.db'): give it once"),
    (["simulate", "--out", "s", "--seed", "1", "--seed", "1", "--seed", "2"],
     "crowdtune simulate: error: --seed is given 3 times ('1', then '1', then '2'): give it once"),
    (["render", "x.mid", "--out-dir", "a", "--out-dir", "b"], "crowdtune render: error: --out-dir is given twice ('a', then 'b'): give it once"),
    (["forget-user", "1", "--out", "a.json", "--out", "b\x1b.json"],
     "crowdtune forget-user: error: --out is given twice ('a.json', then 'b\\x1b.json'): give it once"),
])
def test_a_single_valued_option_given_twice_is_refused_not_silently_replaced(tmp_path, argv, said):
    """Found by a fresh-user trial: `--rounds 3 --rounds 4` ran 4 rounds and `sessions --db a.db --db b.db` read b.db,
    the first value dropped without a word."""
    result = crowdtune(*argv, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE
    assert one_line(result) == f"{said} (see {said.split(': error')[0]} --help)"
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_an_option_meant_to_repeat_still_repeats(tmp_path):
    result = crowdtune("bench", "learning", "--seeds", "1", "--rounds", "1", "--only", "default", "--only", "bogus", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and "--only names 1 unknown line ('bogus')" in one_line(result)
