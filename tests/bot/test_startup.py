"""Start-up problems of the Discord bot, each run as an operator runs it: `crowdtune run` in a process of
its own. Each is one line on stderr (after a line per retry when Discord is unreachable), never a
traceback nor the token, and a distinct exit code, the one README "Exit codes" gives."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakediscord import FakeDiscord

from bot.errors import ExitCode
from test_cli import IGNORING_SIGINT

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
README = Path(__file__).resolve().parents[2] / "README.md"
TOKEN = "well.formed.token"
UNREACHABLE = "http://127.0.0.1:9/api/v10"  # the discard port: nothing listens


def start(folder: Path, *, command: list[str] | None = None, **env: str | None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
    settings = {"DISCORD_TOKEN": TOKEN, "CROWDTUNE_DB": str(folder / "bot.db"), "CROWDTUNE_API_BASE": UNREACHABLE,
                "CROWDTUNE_CONNECT_RETRY_SECONDS": "0", **env}
    settings = {name: value for name, value in settings.items() if value is not None}  # None: not in the environment
    return subprocess.run(command or [CROWDTUNE, "run"], cwd=folder, env={**clean, **settings}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess, code: ExitCode, *words: str, token: str = TOKEN) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("crowdtune run: "), result.stderr
    assert "Traceback" not in result.stderr and (not token or token not in result.stderr + result.stdout)
    assert all(word in lines[0] for word in words), result.stderr
    return lines[0]


# Every setting a value can be wrong for, with such values and what the line must say is expected instead.
BAD_SETTINGS = {
    "CROWDTUNE_PRESET": (["bogus"], "one of: default, hillclimb, context, paper, random, theory"),
    "CROWDTUNE_ROUND_SECONDS": (["1", "x", "nan"], "a number of seconds from 15 to 604800 (7 days)"),
    "CROWDTUNE_QUORUM": (["-3", "1.5"], "a whole number from 1 to 100000, or 0 for none"),
    "CROWDTUNE_ROUNDS": (["abc", "-1", "10001"], "a whole number from 1 to 10000, or 0 for endless"),
    "CROWDTUNE_VOTE_BURST": (["0", "many"], "a whole number from 1 to 1000"),
    "CROWDTUNE_VOTE_REFILL_SECONDS": (["0", "nan"], "a number of seconds above 0, up to 3600"),
    "CROWDTUNE_GUILD_READY_TIMEOUT": (["soon", "99"], "a number of seconds from 0 to 60"),
    "CROWDTUNE_CONNECT_RETRY_SECONDS": (["-1"], "a number of seconds from 0 to 3600"),
    "CROWDTUNE_DEV_GUILD_ID": (["lab"], "a whole number (a server's id)"),
    "CROWDTUNE_SHARD_COUNT": (["two", "0"], "a whole number from 1 to 4096"),
    "CROWDTUNE_SHARD_IDS": (["a,b", "0,,1"], "shard numbers separated by commas, such as 0,1"),
}


@pytest.mark.parametrize("where", ["environment", ".env"])
@pytest.mark.parametrize("variable, value", [(v, x) for v, (values, _) in BAD_SETTINGS.items() for x in values])
def test_a_bad_setting_is_one_polite_line_naming_it_its_value_and_what_is_expected(tmp_path, variable, value, where):
    """Found by a fresh-user trial: CROWDTUNE_ROUNDS=abc printed pydantic's "Input should be a valid integer, unable to
    parse string as an integer", without the value or what would do. Every setting is one line in one form."""
    if where == ".env":
        (tmp_path / ".env").write_text(f"{variable}={value}\n")
        result = start(tmp_path, **{variable: None})
    else:
        result = start(tmp_path, **{variable: value})
    line = assert_one_line(result, ExitCode.SETTING)
    expected = BAD_SETTINGS[variable][1]
    assert line == f"crowdtune run: bad setting: {variable} is '{value}' (in {'the ' if where == 'environment' else ''}{where}), expected {expected}", line
    assert not (tmp_path / "bot.db").exists()  # refused before anything was written


# Every command that reads settings (copy-db and bench read none), with arguments it would otherwise run with.
READING_SETTINGS = {
    "run": ["--no-audio"], "simulate": ["--rounds", "1", "--out", "sim"], "sessions": [], "export": ["--out", "all.zip"],
    "render": ["tune.mid", "--out-dir", "."],
}


@pytest.mark.parametrize("command", READING_SETTINGS)
@pytest.mark.parametrize("variable, value", [("CROWDTUNE_ROUNDS", "abc"), ("CROWDTUNE_SHARD_IDS", "a,b")])
def test_every_command_that_reads_settings_refuses_a_bad_one_as_the_bot_does(tmp_path, command, variable, value):
    """Found by a fresh-user trial: `CROWDTUNE_ROUNDS=abc crowdtune simulate` ran, and CROWDTUNE_SHARD_IDS=a,b was
    accepted without DISCORD_TOKEN (a terminal session started). Every command that reads settings checks them all,
    in one way: one line naming the variable, its value and where it came from, exit code 3, nothing written."""
    result = start(tmp_path, command=[CROWDTUNE, command, *READING_SETTINGS[command]], DISCORD_TOKEN=None, **{variable: value})
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        f"crowdtune {command}: bad setting: {variable} is '{value}' (in the environment), expected {BAD_SETTINGS[variable][1]}"
    ], result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["bot", *READING_SETTINGS])
@pytest.mark.parametrize("settings, why", [
    ({"CROWDTUNE_SHARD_COUNT": "2", "CROWDTUNE_SHARD_IDS": "5"},
     "5 is outside 0-1, as the shard count (--shard-count, CROWDTUNE_SHARD_COUNT) is 2"),
    ({"CROWDTUNE_SHARD_IDS": "0"}, "it needs the shard count too (--shard-count, CROWDTUNE_SHARD_COUNT): how many shards in all"),
    ({"CROWDTUNE_SHARD_COUNT": "41", "CROWDTUNE_SHARD_IDS": "0"},
     "a process runs at least 2 of the 41 shards, not 1: the processes share the bot's 40 requests a second to Discord by "
     "their shards, and each needs one at least"),
], ids=["outside-the-count", "no-count", "too-few-for-a-share"])
def test_shard_ids_that_do_not_fit_the_shard_count_are_a_bad_setting_for_every_command(tmp_path, command, settings, why):
    """Found by a fresh-user trial: CROWDTUNE_SHARD_COUNT=2 CROWDTUNE_SHARD_IDS=5 passed `sessions` and a terminal
    session; only the bot refused it, with exit code 3 but a line without `bad setting:`. The two are checked
    together with the others, one way for every command."""
    argv, token = ([CROWDTUNE, "run"], TOKEN) if command == "bot" else ([CROWDTUNE, command, *READING_SETTINGS[command]], None)
    result = start(tmp_path, command=argv, DISCORD_TOKEN=token, CROWDTUNE_DB=None, **settings)
    said = "run" if command == "bot" else command
    assert (result.returncode, result.stderr.splitlines()) == (ExitCode.SETTING, [
        f"crowdtune {said}: bad setting: CROWDTUNE_SHARD_IDS is '{settings['CROWDTUNE_SHARD_IDS']}' (in the environment), "
        f"expected {BAD_SETTINGS['CROWDTUNE_SHARD_IDS'][1]}: {why}"]), result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READING_SETTINGS)
def test_a_crowdtune_db_url_that_names_no_database_is_a_bad_setting_for_every_command(tmp_path, command):
    """Found by a fresh-user trial: `render`, which opens no database, took CROWDTUNE_DB=postgresql://...:99999
    without a word, and the commands that open one refused it as a database ("the database URL postgresql://***
    cannot be read", exit 8) without naming the variable or where it was set. It is a bad setting like any other."""
    (tmp_path / ".env").write_text("CROWDTUNE_DB=postgresql://u:s3cretpw@localhost:99999/db\n")
    result = start(tmp_path, command=[CROWDTUNE, command, *READING_SETTINGS[command]], DISCORD_TOKEN=None, CROWDTUNE_DB=None)
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        f"crowdtune {command}: bad setting: CROWDTUNE_DB is 'postgresql://u:***@localhost:99999/db' (in .env), expected a SQLite file's path "
        "or a postgresql:// URL: its port is not a number from 1 to 65535 (leave out the : too for the default port, 5432)"
    ], result.stderr
    assert "s3cretpw" not in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


UNPARSED = "cannot be parsed: write NAME=VALUE, quoting a value that holds spaces or # (and closing each quote)"


@pytest.mark.parametrize("command", READING_SETTINGS)
@pytest.mark.parametrize("env_file, said", [
    ('CROWDTUNE_ROUNDS=3\n\nCROWDTUNE_DB="unterminated\n', f"line 3 of .env (CROWDTUNE_DB) {UNPARSED}"),
    ("garbage line without equals\n", f"line 1 of .env {UNPARSED}"),
    # One word without = (a later trial): python-dotenv read a name without a value, and `run` started a terminal
    # session instead of the bot. A word that is no setting's name may be the token pasted alone: never shown.
    ("DISCORD_TOKEN\n", f"line 1 of .env (DISCORD_TOKEN) {UNPARSED}"),
    ("# the bot's\nMTIz.unterminated-tok.en\n", f"line 2 of .env {UNPARSED}"),
    ("CROWDTUNE_DB=a.db\nexport CROWDTUNE_ROUNDS\n", f"line 2 of .env (CROWDTUNE_ROUNDS) {UNPARSED}"),
    ("CROWDTUNE_ROUND=5\n", "CROWDTUNE_ROUND (in .env) is no setting: did you mean CROWDTUNE_ROUNDS?"),
    ("CROWDTUNE_COLOUR=blue\n", "CROWDTUNE_COLOUR (in .env) is no setting"),
])
def test_a_dot_env_line_that_cannot_be_parsed_or_names_no_setting_is_a_bad_setting(tmp_path, command, env_file, said):
    """Found by a fresh-user trial: a .env line python-dotenv cannot parse was dropped with its own warning ("python-dotenv
    could not parse statement starting at line 1"), and a misspelled CROWDTUNE_ROUND silently left the default in force;
    the command ran on (exit 0). Now one line naming the file's line, or the name and the setting it was likely meant to be."""
    (tmp_path / ".env").write_text(env_file)
    result = start(tmp_path, command=[CROWDTUNE, command, *READING_SETTINGS[command]], DISCORD_TOKEN=None, CROWDTUNE_DB=None)
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.splitlines() == [f"crowdtune {command}: bad setting: {said}"], result.stderr
    assert "unterminated" not in result.stderr  # a value is never shown: it may be the token
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


@pytest.mark.parametrize("env_file, said", [
    ("crowdtune_rounds=3\n", "crowdtune_rounds (in .env) is no setting: did you mean CROWDTUNE_ROUNDS?"),
    ("CROWDTUNE_ROUNDS=4\ncrowdtune_rounds=3\n", "crowdtune_rounds (in .env) is no setting: did you mean CROWDTUNE_ROUNDS?"),
    ("CROWDTUNE_ROUNDS=4\n\n# the old one\nCROWDTUNE_ROUNDS=3\n", "CROWDTUNE_ROUNDS is set twice in .env (lines 1 and 4): keep one"),
    ("DISCORD_TOKEN=s3cret.one.tok\nCROWDTUNE_DB=a.db\nDISCORD_TOKEN=s3cret.two.tok\nDISCORD_TOKEN=s3cret.three.tok\n",
     "DISCORD_TOKEN is set 3 times in .env (lines 1, 3 and 4): keep one"),
    ("DISCORD_TOKN=s3cret.one.tok\n", "DISCORD_TOKN (in .env) is no setting: did you mean DISCORD_TOKEN?"),
    ("discord_token=s3cret.one.tok\n", "discord_token (in .env) is no setting: did you mean DISCORD_TOKEN?"),
])
def test_a_dot_env_name_in_the_wrong_case_near_a_setting_s_or_given_twice_is_a_bad_setting(tmp_path, env_file, said):
    """Found by a fresh-user trial: `crowdtune_rounds=3` was applied (names read in any case) and its errors then named
    CROWDTUNE_ROUNDS; after `CROWDTUNE_ROUNDS=4` it silently won; a repeated name silently took the last; and
    `DISCORD_TOKN` was ignored, so `run` started a terminal session instead of the bot. Names are case-sensitive, as
    the environment's are: each of these is one line, exit code 3, naming lines and names, never a value."""
    (tmp_path / ".env").write_text(env_file)
    result = start(tmp_path, command=[CROWDTUNE, "run", "--no-audio"], DISCORD_TOKEN=None, CROWDTUNE_DB=None)
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.splitlines() == [f"crowdtune run: bad setting: {said}"] and result.stdout == "", result.stderr
    assert "s3cret" not in result.stderr and "=3" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_a_misspelled_setting_in_the_environment_is_refused_but_another_programs_variable_is_not(tmp_path):
    """In the environment other programs may use the prefix (the tests' CROWDTUNE_KILL_SEED): only a name close to a
    setting's is taken for a typo."""
    result = start(tmp_path, command=[CROWDTUNE, "sessions"], DISCORD_TOKEN=None, CROWDTUNE_SOUNDFONTS="x.sf2")
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stderr)
    assert result.stderr.splitlines() == [
        "crowdtune sessions: bad setting: CROWDTUNE_SOUNDFONTS (in the environment) is no setting: did you mean CROWDTUNE_SOUNDFONT?"]
    for variable, meant in [("crowdtune_rounds", "CROWDTUNE_ROUNDS"), ("DISCORD_TOKN", "DISCORD_TOKEN")]:  # as in .env
        result = start(tmp_path, command=[CROWDTUNE, "sessions"], DISCORD_TOKEN=None, **{variable: "3"})
        assert result.returncode == ExitCode.SETTING and result.stderr.splitlines() == [
            f"crowdtune sessions: bad setting: {variable} (in the environment) is no setting: did you mean {meant}?"], result.stderr
    listed = start(tmp_path, command=[CROWDTUNE, "sessions"], DISCORD_TOKEN=None, CROWDTUNE_KILL_SEED="5",
                   DISCORD_BOT_TOKEN="another.bot.s", DISCORD_CLIENT_ID="5")
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr


@pytest.mark.parametrize("command", ["run", "simulate", "sessions", "export"])
def test_an_option_replaces_its_setting_which_is_then_not_checked(tmp_path, command):
    """Found by a fresh-user trial: with a bad CROWDTUNE_DB in .env, `--db good.db` was refused for the setting it
    replaces, though the README says an option wins over a setting (--db over CROWDTUNE_DB)."""
    (tmp_path / ".env").write_text("CROWDTUNE_DB=postgresql://u:s3cretpw@localhost:99999/db\n")
    made = start(tmp_path, command=[CROWDTUNE, "simulate", "--rounds", "1", "--out", "first", "--db", "good.db"],
                 DISCORD_TOKEN=None, CROWDTUNE_DB=None)
    assert made.returncode == 0, made.stderr
    args = [*READING_SETTINGS[command], "--db", "good.db"]
    result = start(tmp_path, command=[CROWDTUNE, command, *args], DISCORD_TOKEN=None, CROWDTUNE_DB=None)
    assert result.returncode == 0 or command == "run" and result.returncode == ExitCode.NO_TOKEN, (result.returncode, result.stderr)
    assert "CROWDTUNE_DB" not in result.stderr, result.stderr  # run: stdin is empty (exit 4), after the settings


@pytest.mark.parametrize("url", ["postgresql:/u:s3cretpw@h/db", "postgresql//u:s3cretpw@h/db", " postgresql://u:s3cretpw@h/db"])
def test_a_mistyped_crowdtune_db_url_is_a_bad_setting_shown_without_its_password(tmp_path, url):
    """Found by a fresh-user trial: a URL with a slash or colon missing, or a space before it, was taken for a file's
    path: "no sessions yet: there is no database at postgresql:/u:s3cretPW@h/db", and `run` made that file."""
    result = start(tmp_path, command=[CROWDTUNE, "sessions"], DISCORD_TOKEN=None, CROWDTUNE_DB=url)
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    shown = url.strip().replace("s3cretpw", "***")  # as typed (a later trial: shown as postgresql://***, host and all)
    assert line.startswith(f"crowdtune sessions: bad setting: CROWDTUNE_DB is '{shown}' (in the environment)"), line
    assert "s3cretpw" not in result.stdout + result.stderr and list(tmp_path.iterdir()) == []


def test_a_malformed_shard_ids_option_is_a_bad_argument_checked_as_the_setting_is(tmp_path):
    for token in (TOKEN, None):  # the bot or a terminal session: the same line
        result = start(tmp_path, command=[CROWDTUNE, "run", "--shard-count", "2", "--shard-ids", "a,b"], DISCORD_TOKEN=token)
        assert result.returncode == ExitCode.USAGE and result.stderr.splitlines() == [
            "crowdtune run: error: argument --shard-ids: shard ids must be whole numbers separated by commas, such as 0,1 "
            "(not 'a,b') (see crowdtune run --help)"
        ], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_setting_says_what_it_expects_and_no_bad_value_shows_a_secret(tmp_path):
    """Every setting has the words of what it expects (a new one cannot be left out); a value holding the token or
    a URL's password is never shown."""
    from bot.settings import Settings, expected

    assert all(expected(name) for name in Settings.model_fields)
    for name, field in Settings.model_fields.items():  # the words name the bounds the field is checked against
        bounds = [getattr(m, b) for m in field.metadata for b in ("ge", "gt", "le", "lt") if hasattr(m, b)]
        assert all(f" {bound:g}" in expected(name) for bound in bounds), (name, expected(name))
    line = assert_one_line(start(tmp_path, CROWDTUNE_DEV_GUILD_ID=TOKEN), ExitCode.SETTING, "CROWDTUNE_DEV_GUILD_ID")
    assert "(not shown: it holds DISCORD_TOKEN)" in line, line
    leaked = "postgresql://bot:hunter2@db.example:5432/crowdtune"
    for env, code in (({"CROWDTUNE_API_BASE": leaked}, ExitCode.BAD_URL), ({"CROWDTUNE_QUORUM": leaked}, ExitCode.SETTING)):
        line = assert_one_line(start(tmp_path, **env), code)
        assert "hunter2" not in line and "'postgresql://bot:***@db.example:5432/crowdtune'" in line, line


def test_a_round_length_that_is_not_a_number_is_refused(tmp_path):
    assert_one_line(start(tmp_path, CROWDTUNE_ROUND_SECONDS="nan"), ExitCode.SETTING, "CROWDTUNE_ROUND_SECONDS")


@pytest.mark.parametrize("token", ["", "two words", "abc", "two.parts", "a.b.c d", "a..c"])
def test_no_token_or_a_malformed_one(tmp_path, token):
    assert_one_line(start(tmp_path, DISCORD_TOKEN=token), ExitCode.NO_TOKEN, "DISCORD_TOKEN", token=token)
    assert not (tmp_path / "bot.db").exists()


@pytest.mark.parametrize("options", [["--no-audio"], ["--rounds", "3", "--mode", "ab"], ["--out", "rounds"]])
@pytest.mark.parametrize("token", ["", "abc"])
def test_an_empty_or_malformed_token_is_said_first_whatever_options_are_given(tmp_path, token, options):
    """Found by a fresh-user trial: `DISCORD_TOKEN=` in .env and `run --no-audio` said "--no-audio is for a session in
    the terminal, and DISCORD_TOKEN is set, so this runs the Discord bot", exit 2, though that bot cannot run; without
    the option it said the token is empty, exit 4. The token's line comes first, as it is what to fix."""
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={token}\n")
    line = assert_one_line(start(tmp_path, command=[CROWDTUNE, "run", *options], DISCORD_TOKEN=None), ExitCode.NO_TOKEN, token=token)
    assert "DISCORD_TOKEN (in .env) is empty or malformed" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_an_empty_token_line_says_where_it_was_set(tmp_path, where):
    """An empty DISCORD_TOKEN in the environment hides a good one in .env (the token is the one setting a blank
    does not unset: the bot's mistake, exit 4): the line says which one it means, as every setting's line does."""
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={TOKEN if where == 'environment' else ''}\n")
    line = assert_one_line(start(tmp_path, DISCORD_TOKEN="" if where == "environment" else None), ExitCode.NO_TOKEN)
    assert f"DISCORD_TOKEN (in {'the environment' if where == 'environment' else '.env'}) is empty" in line, line


@pytest.mark.parametrize("variable, url", [
    ("CROWDTUNE_API_BASE", "127.0.0.1:8080/api/v10"),
    ("CROWDTUNE_API_BASE", "http://"),
    ("CROWDTUNE_API_BASE", "http://[::1/api"),
    ("CROWDTUNE_GATEWAY_URL", "http://127.0.0.1:8080/"),
])
def test_a_bad_url_is_one_line_naming_the_setting(tmp_path, variable, url):
    assert_one_line(start(tmp_path, **{variable: url}), ExitCode.BAD_URL, variable)


@pytest.mark.parametrize("command", READING_SETTINGS)
@pytest.mark.parametrize("variable, value, code, kind", [
    ("CROWDTUNE_API_BASE", "notaurl", ExitCode.BAD_URL, "bad URL"),
    ("CROWDTUNE_GATEWAY_URL", "http://127.0.0.1:8080/", ExitCode.BAD_URL, "bad URL"),
    ("CROWDTUNE_ROUNDS", "abc", ExitCode.SETTING, "bad setting"),
])
def test_a_bad_settings_line_names_the_kind_its_exit_code_means(tmp_path, command, variable, value, code, kind):
    """Found by a fresh-user trial: CROWDTUNE_API_BASE=notaurl said "bad setting:", the words README gives exit code
    3, yet ended with 7 ("not a usable URL"). Each line begins with what its code means, for every command."""
    result = start(tmp_path, command=[CROWDTUNE, command, *READING_SETTINGS[command]], DISCORD_TOKEN=None, **{variable: value})
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.startswith(f"crowdtune {command}: {kind}: {variable} is '{value}' (in the environment), expected "), result.stderr


def test_discord_unreachable_is_retried_with_growing_pauses_then_one_line(tmp_path):
    result = start(tmp_path, CROWDTUNE_CONNECT_RETRY_SECONDS="3.5")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == ExitCode.DISCORD_UNREACHABLE and "Traceback" not in result.stderr, result.stderr
    assert [re.search(r"trying again in (\d+) s", line).group(1) for line in lines[:-1]] == ["1", "2"]
    assert lines[-1].startswith("crowdtune run: cannot reach Discord") and "3 tries" in lines[-1]
    # Found by a fresh-user trial: "2 tries in 3 s" after 1.5 s: the line gave the setting as the time taken.
    # And a newcomer's: "2 tries in 1 s (CROWDTUNE_CONNECT_RETRY_SECONDS: 3)" said not why it stopped before the 3 s.
    took = float(re.search(r"3 tries in ([\d.]+) s; the next would come 4 s later, when the 3.5 s "
                           r"CROWDTUNE_CONNECT_RETRY_SECONDS allows would have run out: ", lines[-1]).group(1))
    assert took >= 3, lines[-1]  # its two pauses alone, 1 s and 2 s
    assert TOKEN not in result.stderr


def test_discord_unreachable_at_once_counts_its_one_try_in_the_singular(tmp_path):
    """Found by a fresh-user trial: CROWDTUNE_CONNECT_RETRY_SECONDS=0 ended with "1 tries in 0 s"."""
    line = assert_one_line(start(tmp_path), ExitCode.DISCORD_UNREACHABLE, "cannot reach Discord")
    assert re.search(r", 1 try in [\d.]+ s; the next would come 1 s later, when the 0 s CROWDTUNE_CONNECT_RETRY_SECONDS "
                     r"allows would have run out: ", line), line


def test_the_unreachable_line_s_own_sum_holds(tmp_path):
    """Found by a fresh-user trial: "1 try in 0 s; the next, 1 s later, would come after the 1 s
    CROWDTUNE_CONNECT_RETRY_SECONDS allows": a try 1 s later is not after 1 s. The time the tries took and the pause
    before the next, as the line says them, reach the allowance at least (the time taken is rounded up)."""
    line = assert_one_line(start(tmp_path, CROWDTUNE_CONNECT_RETRY_SECONDS="1"), ExitCode.DISCORD_UNREACHABLE, "cannot reach")
    took, pause, allowed = re.search(r", 1 try in ([\d.]+) s; the next would come (\d+) s later, when the ([\d.]+) s "
                                     r"CROWDTUNE_CONNECT_RETRY_SECONDS allows would have run out: ", line).groups()
    assert float(took) > 0 and float(took) + float(pause) >= float(allowed) == 1, line


def database_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("bot.db*"))


async def test_a_start_that_fails_leaves_no_new_database_and_keeps_one_that_was_there(tmp_path):
    """Found by a fresh-user trial: a start that could not reach Discord left a new, empty bot.db (118 KB, every table
    made) and no line said it was made (README: "nothing is changed before these pass"). A start that fails before the
    bot connects removes the database it made, and SQLite's files beside it; one that was there stays, with its data."""
    unreachable = await asyncio.to_thread(start, tmp_path, CROWDTUNE_CONNECT_RETRY_SECONDS="1")
    line = assert_one_line(unreachable, ExitCode.DISCORD_UNREACHABLE, "cannot reach Discord")
    assert "created a new" not in line and database_files(tmp_path) == [], database_files(tmp_path)
    async with FakeDiscord() as server:  # refused later, by Discord: the same
        refused = await asyncio.to_thread(start, tmp_path, DISCORD_TOKEN="not.the-right.token", CROWDTUNE_API_BASE=server.api_base,
                                          CROWDTUNE_GATEWAY_URL=server.gateway_url)
    assert_one_line(refused, ExitCode.TOKEN_REFUSED, "refused the token", token="not.the-right.token")
    assert database_files(tmp_path) == [], database_files(tmp_path)
    from storage import open_store

    store = await open_store(tmp_path / "bot.db")
    try:
        await store.ensure_scope("guild:1", "guild", "kept")
    finally:
        await store.close()
    assert_one_line(await asyncio.to_thread(start, tmp_path), ExitCode.DISCORD_UNREACHABLE, "cannot reach Discord")
    assert database_files(tmp_path) == ["bot.db"], database_files(tmp_path)
    store = await open_store(tmp_path / "bot.db", read_only=True)
    try:
        assert await store.has_scope("guild:1")
    finally:
        await store.close()


def test_discord_unreachable_is_said_in_our_words(tmp_path):
    """Found by a fresh-user trial: an http:// CROWDTUNE_API_BASE nothing listens on was reported in aiohttp's words,
    "Cannot connect to host 127.0.0.1:9 ssl:default", naming TLS that an http:// URL never uses."""
    line = assert_one_line(start(tmp_path), ExitCode.DISCORD_UNREACHABLE, "cannot reach Discord")
    assert line.startswith("crowdtune run: cannot reach Discord at 127.0.0.1 (nothing answers on port 9: connection refused), "), line
    assert "ssl" not in line and "Cannot connect" not in line, line


@pytest.mark.parametrize("how, code", [("SIGINT", ExitCode.INTERRUPTED), ("SIGTERM", ExitCode.TERMINATED)])
def test_sigint_or_sigterm_while_discord_is_retried_ends_the_start_at_once(tmp_path, how, code):
    """Ctrl-C or SIGTERM while the bot still tries to reach Discord ends it with its exit code and no traceback,
    the database closed and unclaimed; also when it was started with SIGINT ignored, as a shell starts a command in
    the background (SIGINT did nothing then, and SIGTERM killed it outright)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
    settings = {"DISCORD_TOKEN": TOKEN, "CROWDTUNE_DB": str(tmp_path / "bot.db"), "CROWDTUNE_API_BASE": UNREACHABLE,
                "CROWDTUNE_CONNECT_RETRY_SECONDS": "600"}
    process = subprocess.Popen([*IGNORING_SIGINT, CROWDTUNE, "run"], cwd=tmp_path, env={**clean, **settings},
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()  # the first retry: the database is open and claimed by now
        assert "trying again" in first, first
        process.send_signal(getattr(signal, how))
        assert process.wait(timeout=120) == code  # a bound against a hang, not a time assertion
        rest = process.stderr.read()
    finally:
        process.kill()
        process.stderr.close()
    assert "Traceback" not in rest and TOKEN not in first + rest, rest
    assert not list(tmp_path.glob("bot.db*"))  # stopped before it connected: the database it made is not left
    result = start(tmp_path)  # the claim was released: this start fails on Discord, not on the database
    assert result.returncode == ExitCode.DISCORD_UNREACHABLE, result.stderr


async def test_an_api_base_that_is_not_discords_api_is_a_bad_url(tmp_path):
    async with FakeDiscord() as server:
        result = await asyncio.to_thread(start, tmp_path, CROWDTUNE_API_BASE=server.api_base + "/nothing-here")
    assert_one_line(result, ExitCode.BAD_URL, "CROWDTUNE_API_BASE", "HTTP 404")


async def test_a_refused_token_is_one_line(tmp_path):
    async with FakeDiscord() as server:
        result = await asyncio.to_thread(start, tmp_path, DISCORD_TOKEN="not.the-right.token", CROWDTUNE_API_BASE=server.api_base,
                                         CROWDTUNE_GATEWAY_URL=server.gateway_url)
    assert_one_line(result, ExitCode.TOKEN_REFUSED, "refused the token", token="not.the-right.token")
    # One refused request per start: a container restarted again and again (README, Docker) adds one to
    # Discord's count of invalid requests per start, which its backoff spaces out.
    assert server.request_counts == {"GET /gateway": 1, "GET /users/@me": 1}


# `crowdtune run` with one change: the intents the bot builds (bot_intents, its own function) also ask
# for a privileged one. The bot itself asks for none (so no application has to enable any), which is
# why only this can show what an operator sees if Discord refuses the intents (close code 4014).
WITH_MEMBERS_INTENT = """
import sys
import bot.discord.app as app
built = app.bot_intents
def with_members():
    intents = built()
    intents.members = True
    return intents
app.bot_intents = with_members
from bot.cli import main
sys.exit(main(["run"]))
"""


@pytest.mark.parametrize("sharding", [{}, {"CROWDTUNE_SHARD_COUNT": "2", "CROWDTUNE_SHARD_IDS": "0,1"}], ids=["one", "sharded"])
async def test_refused_intents_are_one_line(tmp_path, sharding):
    async with FakeDiscord(bot_token=TOKEN) as server:  # the members intent is not enabled for the application
        result = await asyncio.to_thread(start, tmp_path, command=[sys.executable, "-c", WITH_MEMBERS_INTENT],
                                         CROWDTUNE_API_BASE=server.api_base, CROWDTUNE_GATEWAY_URL=server.gateway_url, **sharding)
    assert_one_line(result, ExitCode.INTENTS_REFUSED, "refused the intents")


def test_a_database_that_cannot_be_used(tmp_path):
    (tmp_path / "bot.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 30)
    assert_one_line(start(tmp_path), ExitCode.DATABASE, "cannot be used")


def test_a_missing_soundfont(tmp_path):
    """Named by the setting and not there: a bad setting (exit 3); there but no SoundFont: exit 10, saying where it was set."""
    assert_one_line(start(tmp_path, CROWDTUNE_SOUNDFONT=str(tmp_path / "none.sf2")), ExitCode.SETTING, "CROWDTUNE_SOUNDFONT is", "none.sf2")
    (tmp_path / "none.sf2").write_bytes(bytes(range(256)) * 20)
    assert_one_line(start(tmp_path, CROWDTUNE_SOUNDFONT=str(tmp_path / "none.sf2")), ExitCode.NO_SOUNDFONT,
                    "CROWDTUNE_SOUNDFONT (in the environment): FluidSynth could not load the SoundFont", "none.sf2")


def test_missing_fluidsynth(tmp_path):
    """Neither the FluidSynth library (its binding cannot load) nor the fluidsynth program (not on PATH)."""
    (tmp_path / "nofs").mkdir()
    (tmp_path / "nofs" / "fluidsynth.py").write_text('raise ImportError("libfluidsynth.so.3: cannot open shared object file")\n')
    result = start(tmp_path, PYTHONPATH=str(tmp_path / "nofs"), PATH=str(tmp_path / "nofs"))
    assert_one_line(result, ExitCode.NO_SYNTHESISER, "FluidSynth", "apt-get install")


def test_the_readme_lists_every_exit_code():
    section = README.read_text().split("### Exit codes", 1)[1].split("\n#", 1)[0]
    listed = {int(number) for number in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert listed == {int(code) for code in ExitCode}


def test_a_dot_env_file_that_is_not_utf8_is_one_line(tmp_path):
    """Windows PowerShell 5's `echo DISCORD_TOKEN=... > .env` writes UTF-16."""
    (tmp_path / ".env").write_text("CROWDTUNE_QUORUM=3\n", encoding="utf-16")
    assert_one_line(start(tmp_path), ExitCode.SETTING, ".env", "UTF-8")
    assert not (tmp_path / "bot.db").exists()


BLANKABLE = ["CROWDTUNE_DB", "CROWDTUNE_BENCH_DB", "CROWDTUNE_SOUNDFONT", "CROWDTUNE_ROUNDS", "CROWDTUNE_QUORUM", "CROWDTUNE_PRESET",
             "CROWDTUNE_SHARD_IDS", "CROWDTUNE_API_BASE"]


@pytest.mark.parametrize("blank", ["", " ", "\t "])
@pytest.mark.parametrize("where", ["the environment", ".env"])
def test_a_blank_setting_counts_as_unset_in_the_environment_and_in_dotenv_alike(tmp_path, monkeypatch, blank, where):
    """Found by a fresh-user trial: CROWDTUNE_DB='' was the default database, CROWDTUNE_BENCH_DB= a private server,
    but CROWDTUNE_ROUNDS='' was refused, and a space was refused in the environment but stripped and taken in .env.
    Blank is unset, every setting, both places (the token apart: set but empty is the bot's own line, exit 4)."""
    from bot.settings import CommandSettings, Settings, load_settings

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.upper().startswith("CROWDTUNE_") or n.upper() == "DISCORD_TOKEN"]:
        monkeypatch.delenv(name)
    unset = load_settings(CommandSettings).model_dump()
    if where == ".env":
        (tmp_path / ".env").write_text("".join(f'{name}="{blank}"\n' for name in BLANKABLE))
    else:
        for name in BLANKABLE:
            monkeypatch.setenv(name, blank)
    assert load_settings(CommandSettings).model_dump() == unset
    monkeypatch.setenv("DISCORD_TOKEN", blank)
    assert load_settings(Settings).discord_token.get_secret_value() == blank


def test_a_blank_setting_in_the_environment_lets_the_one_in_dotenv_through(tmp_path, monkeypatch):
    """Unset in the environment, so .env's value is read, and a bad one is named where it was set."""
    from bot.errors import StartupError
    from bot.settings import CommandSettings, load_settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CROWDTUNE_QUORUM=7\nCROWDTUNE_ROUNDS=abc\n")
    monkeypatch.setenv("CROWDTUNE_QUORUM", " ")
    monkeypatch.setenv("CROWDTUNE_ROUNDS", "")
    with pytest.raises(StartupError, match=r"CROWDTUNE_ROUNDS is 'abc' \(in \.env\)"):
        load_settings(CommandSettings)
    monkeypatch.setenv("CROWDTUNE_ROUNDS", "5")
    assert (load_settings(CommandSettings).quorum, load_settings(CommandSettings).rounds) == (7, 5)


@pytest.mark.parametrize("options, env, token, code, said", [
    # A terminal session: the shard options are the bot's, whatever else is wrong with them.
    (["--shard-ids", "0"], {}, None, ExitCode.USAGE, "error: --shard-count and --shard-ids are for the Discord bot (set DISCORD_TOKEN)"),
    (["--shard-ids", "5", "--shard-count", "2"], {}, None, ExitCode.USAGE, "error: --shard-count and --shard-ids are for the Discord bot"),
    (["--shard-count", "2"], {"CROWDTUNE_SHARD_IDS": "5"}, None, ExitCode.USAGE, "error: --shard-count and --shard-ids are for the Discord bot"),
    # The bot: the option is named as an option, not as the setting it replaces.
    (["--shard-ids", "0"], {}, TOKEN, ExitCode.USAGE,
     "error: --shard-ids 0: it needs the shard count too (--shard-count, CROWDTUNE_SHARD_COUNT): how many shards in all"),
    (["--shard-ids", "5"], {"CROWDTUNE_SHARD_COUNT": "2"}, TOKEN, ExitCode.USAGE,
     "error: --shard-ids 5: 5 is outside 0-1, as the shard count (--shard-count, CROWDTUNE_SHARD_COUNT) is 2"),
    (["--shard-count", "2"], {"CROWDTUNE_SHARD_IDS": "5"}, TOKEN, ExitCode.USAGE,
     "error: --shard-count 2: CROWDTUNE_SHARD_IDS is '5' (in the environment), expected shard numbers separated by "
     "commas, such as 0,1: 5 is outside 0-1, as the shard count (--shard-count, CROWDTUNE_SHARD_COUNT) is 2"),
])
def test_a_shard_option_is_named_as_the_option_given_never_as_its_setting(tmp_path, options, env, token, code, said):
    """Found by a fresh-user trial: `crowdtune run --shard-ids 0` without a token said "bad setting: CROWDTUNE_SHARD_IDS
    is '0'", exit code 3, blaming a setting nobody set, where `--shard-count 2` alone said it is for the Discord bot."""
    result = start(tmp_path, command=[CROWDTUNE, "run", *options], DISCORD_TOKEN=token, **env)
    line = assert_one_line(result, code, said)
    assert "bad setting" not in line and ("CROWDTUNE_SHARD_IDS is" not in line or env)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:8080/api/v10#secretpw123", "a #fragment has no meaning in it: leave it out"),
    ("http://127.0.0.1:99999/api/v10", "its port is not a number from 1 to 65535"),
    ("http://127.0.0.1:0/api/v10", "its port is not a number from 1 to 65535"),
])
def test_a_bad_api_base_says_its_true_reason_and_never_its_fragment(tmp_path, url, reason):
    """Found by a trial: a fragment was shown as typed (it may be anything, a secret), and a port out of range was
    said only as what the setting expects."""
    line = assert_one_line(start(tmp_path, CROWDTUNE_API_BASE=url), ExitCode.BAD_URL, "CROWDTUNE_API_BASE")
    assert line.endswith(f"http://127.0.0.1:8080/api/v10: {reason}") and "secretpw123" not in line, line


@pytest.mark.parametrize("url, shown, reason", [
    ("postgresql://ct@127.0.0.1:55433/a#frag", "postgresql://ct@127.0.0.1:55433/a#***", "it ends in a #fragment, which has no meaning in a database URL"),
    ("postgresql://ct:pw@127.0.0.1:55433/a#secretfrag", "postgresql://ct:***@127.0.0.1:55433/a#***", "it ends in a #fragment"),
    ("postgresql://ct:p#w@127.0.0.1:55433/a", "postgresql://ct:***@127.0.0.1:55433/a", "percent-encode / ? # @ %"),
])
def test_a_database_url_with_a_fragment_says_so_and_never_shows_it(tmp_path, url, shown, reason):
    """Found by a trial: a #fragment, with no password in the URL, was refused as a password to percent-encode."""
    result = start(tmp_path, command=[CROWDTUNE, "sessions", "--db", url], DISCORD_TOKEN=None)
    assert result.returncode == ExitCode.DATABASE and result.stderr.count("\n") == 1, result.stderr
    assert f"the database URL {shown} cannot be used: {reason}" in result.stderr, result.stderr
    assert "frag" not in result.stderr.replace("#fragment", ""), result.stderr
