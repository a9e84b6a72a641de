"""The `crowdtune` command. Heavy modules are imported inside each command, so --help is quick.

Why this module is long: it is the whole command line, every subcommand's arguments and its short
handler (run, simulate, render, export, sessions, copy-db, bench; forget-user and reset in bot.operator), each
importing its work lazily.
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m bot.cli`: through the console script's entry, which hears signals from its first line
    import sys

    from bot.entry import main as entry  # imports this module again, as bot.cli, once the signals are heard

    sys.exit(entry())

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from bot.bench import PERF_BENCHMARKS
from bot.errors import ExitCode, UnreadableFile, check_readable, check_writable, folder_name, user_path
from core.words import one_of, quoted, visible, whole_number

DEFAULT_DB = Path("crowdtune-data") / "crowdtune.db"
EXIT_USAGE = int(ExitCode.USAGE)
SEED_MAX = 2**31 - 1
MODES, CROWDS, AUDIO_FORMATS = ("rating", "ab"), ("builtin", "contrarian"), ("ogg", "wav")  # the fixed words of options
BENCHMARKS = ("learning", *PERF_BENCHMARKS)
# core.raters.BUILTIN_RATERS' names, for --help without importing the raters (tests/test_cli.py keeps them equal).
RATER_NAMES = ("crowd", "theorist", "calm", "energetic", "harmonist", "groove", "melodist", "troll", "brigader",
               "leaper", "droner", "outsider", "syncopator", "restless", "contrarian_troll")


class UsageError(Exception):
    """A bad argument: one line on stderr, exit code 2, nothing written (a simulation's rater that fails mid-run too,
    but its rounds done are kept: bot.simulate.run_simulation)."""


class ArgumentError(UsageError):
    """An argument, or arguments together, that a command refuses after parsing (an option it would ignore, a value
    only it can check): said as the parser says its own, the line ending "(see crowdtune COMMAND --help)"."""


class Parser(argparse.ArgumentParser):
    """argparse's parser, with every problem one line naming the command (`crowdtune run: error: ...`).

    An unknown option is named before anything else is checked (a mistyped `--outt` is the news, not the
    missing `--out`), and an abbreviation is no option: `--see` for `--seed` would change its meaning the day
    an option `--seen` is added."""

    def __init__(self, *args, **kwargs) -> None:
        self.option_names: set[str] = set()  # filled by add_argument (argparse's own table is private)
        self.has_commands = False
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def add_subparsers(self, **kwargs):
        self.has_commands = True
        return super().add_subparsers(**kwargs)

    def add_argument(self, *names, **kwargs):
        self.option_names.update(name for name in names if name.startswith("-"))
        return super().add_argument(*names, **kwargs)

    def error(self, message: str) -> None:  # one clear line instead of argparse's usage dump
        message = _plain(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        if (unknown := self._unknown_option(args)) is not None:
            self.error(f"unknown option {unknown}")
        if (repeated := self._repeated_option(args)) is not None:
            self.error(repeated)
        namespace, extra = super().parse_known_args(args, namespace)
        if extra:  # a subcommand's parser says it itself, naming its command, rather than its caller
            self.error(f"unexpected argument '{extra[0]}'")
        return namespace, extra

    def _unknown_option(self, args: list[str]) -> str | None:
        """The first of `args` that is an option this parser does not know (its name, without any =VALUE). A
        parser with subcommands looks only before the command: the rest is the subcommand's to check."""
        for before, arg in zip([None, *args], args):
            if arg == "--" or (self.has_commands and not arg.startswith("-")):
                return None
            name = arg.split("=", 1)[0]
            if arg.startswith("-") and len(arg) > 1 and not _is_number(arg) and name not in self.option_names:
                # After an option that wants a value (`--db --rounds`), the value is what is missing: argparse says so.
                takes = self._option_string_actions.get(before or "")
                return None if takes is not None and takes.nargs is None and takes.const is None else name
        return None


    def _repeated_option(self, args: list[str]) -> str | None:
        """Why `args` are refused when they give an option that takes one value more than once (argparse keeps the last
        silently, README: options are not silently dropped), naming it and its values; None otherwise. Options meant to
        repeat (append: --rater, --only) and flags, which lose nothing, are not counted. As `_unknown_option`, a parser
        with subcommands looks only before the command."""
        given: dict[str, list[str]] = {}
        wants_value = None  # the option whose value is the next argument
        for arg in args:
            if wants_value is not None:
                given[wants_value].append(arg)
                wants_value = None
                continue
            if arg == "--" or (self.has_commands and not arg.startswith("-")):
                break
            name, equals, value = arg.partition("=")
            action = self._option_string_actions.get(name) if arg.startswith("-") and not _is_number(arg) else None
            if action is None or action.nargs is not None or action.const is not None or isinstance(action, argparse._AppendAction):
                continue
            values = given.setdefault(action.option_strings[-1], [])
            if equals:
                values.append(value)
            else:
                wants_value = action.option_strings[-1]
        for name, values in given.items():
            if len(values) > 1:
                times = "twice" if len(values) == 2 else f"{len(values)} times"
                return f"{name} is given {times} ({', then '.join(quoted(v) for v in values)}): give it once"
        return None


def _plain(message: str) -> str:
    """argparse's `message` said as crowdtune's other bad-argument lines are: "--db needs a value" (not "argument
    --db: expected one argument"), "--scale must be one of: major, minor, ..., not 'klingon'" (not "invalid choice:
    ... (choose from ...)"), and an option's own message without argparse's "argument --tempo: " before its name."""
    if (needs := re.fullmatch(r"argument (\S+): expected one argument", message)) is not None:
        return f"{needs[1]} needs a value"
    if (choice := re.fullmatch(r"argument (\S+): invalid choice: (.*) \(choose from (.*)\)", message)) is not None:
        choices = ", ".join(re.findall(r"'([^']*)'", choice[3]))
        return f"{choice[1]} must be one of: {choices}, not {choice[2]}"
    if (named := re.fullmatch(r"argument (\S+): (.*)", message)) is not None and named[2].startswith(named[1] + " "):
        return named[2]
    return message


class _Version(argparse.Action):
    """--version: "crowdtune X.Y.Z" from the installed package's metadata (read only when asked), exit 0."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            shown = version("crowdtune")
        except PackageNotFoundError:  # run from a source folder that was never installed (python -m bot.cli)
            shown = "(not installed as a package: version unknown)"
        print(f"crowdtune {shown}")
        parser.exit(0)


def _is_number(text: str) -> bool:
    """Whether `text` reads as a number ('-1', '-0.5'): an option's value, never an option."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def one_line(text: str) -> str:
    """A message (an error, or what a command did) that stays on one line: a value echoed in it, a path named on the
    command line too, may hold line breaks or other control characters (they are shown escaped: core.words.visible)."""
    return visible(text)


def _in_range(convert, low: float, high: float, name: str):
    """An argparse type: a number (int or float, as `convert` makes it) from low to high."""
    kind, show = ("a whole number", str) if convert is int else ("a number", "{:g}".format)

    def parse(text: str):
        try:
            if not text.isascii():  # float() and int() also read digits of other scripts ('５', '٣')
                raise ValueError(text)
            value = whole_number(text) if convert is int else convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, not '{text}'") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{name} must be {show(low)}-{show(high)}, not {text}")
        return value

    return parse


def _given(name: str):
    """A name that must not be empty ('' would otherwise mean every scope)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{name} must not be empty")
        return text

    return parse


def _one_of(name: str, choices):
    """An argparse type: one of the fixed words `choices` (or a function giving them, called only when the option is
    given, so --help stays quick), typed in any case, also as sessions print it ('harmonic minor', 'Default', 'AB'):
    core.words.one_of. Every option (or argument) of fixed words takes this, so all take them alike."""

    def parse(text: str) -> str:
        try:
            return one_of(text, choices() if callable(choices) else choices, name)
        except ValueError as problem:
            raise argparse.ArgumentTypeError(str(problem)) from None

    parse.choices = choices  # what it takes, for tests/bot/test_cli_edges.py
    return parse


def _presets() -> tuple[str, ...]:
    from core.agent import PRESET_NAMES  # heavy: imported only when --preset is given

    return PRESET_NAMES


def _shard_ids(text: str) -> str:
    """--shard-ids as given, checked as CROWDTUNE_SHARD_IDS is (bot.discord.shards.parse_shard_ids)."""
    from bot.discord.shards import parse_shard_ids

    try:
        parse_shard_ids(text)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None
    return text


def _path(name: str):
    """The type of every option naming a file, a folder or a database (a --rater too: PATH.py:FUNC): not empty ('' would mean the current
    folder), not '-' (which other tools read as standard input or output, and here would be a file named -),
    ~ the home folder as the shell would have made it unquoted (bot.errors.user_path)."""
    given = _given(name)

    def parse(text: str) -> str:
        if text == "-":
            raise argparse.ArgumentTypeError(
                f"{name} takes a path, not '-': standard input and output are not used (a file named - is ./-)")
        return user_path(given(text))

    return parse


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=_path("--db"),  # default: _database()
        help=f"SQLite database file or postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL (default: CROWDTUNE_DB, from the environment or .env, or {DEFAULT_DB})",
    )


# The music options' defaults are filled in after parsing (None: not given), so a resumed terminal
# session can say which options given on the command line it does not apply.
MUSIC_DEFAULTS = {"base": "C4", "scale": "major", "length": 8, "tempo": 120, "instrument": "piano", "mode": "rating", "preset": "default"}


# The settings that stand in for options not given in a terminal session, as they do for /compose: round
# defaults that mean the same there (CROWDTUNE_PRESET, CROWDTUNE_ROUNDS; a round's length and quorum do not).
SESSION_SETTINGS = ("preset", "rounds")


def _add_music(parser: argparse.ArgumentParser, rounds_default: int, from_settings: bool = False) -> None:
    """The music options; `from_settings`: SESSION_SETTINGS are their defaults (`crowdtune run`), which --help says."""
    from core.music import BASE_RANGE, LENGTH_MAX, LENGTH_MIN, SCALES, TEMPO_MAX, TEMPO_MIN  # small and pure: fine for --help

    def default(name: str, value: str, meaning: str = "") -> str:
        setting = f"CROWDTUNE_{name.upper()}, from the environment or .env{meaning}, else " if from_settings else ""
        return f"(default: {setting}{value})"

    parser.set_defaults(rounds_default=rounds_default)
    parser.add_argument("--base", help=f"base note: C4, F#3, Bb2 or a MIDI number, {BASE_RANGE} (default C4)")
    parser.add_argument("--scale", type=_one_of("--scale", SCALES), metavar="SCALE", help=f"one of: {', '.join(SCALES)} (default major)")
    parser.add_argument("--length", type=_in_range(int, LENGTH_MIN, LENGTH_MAX, "--length"),
                        help=f"notes in the track, {LENGTH_MIN}-{LENGTH_MAX} (default 8)")
    parser.add_argument("--tempo", type=_in_range(int, TEMPO_MIN, TEMPO_MAX, "--tempo"), help=f"beats per minute, {TEMPO_MIN}-{TEMPO_MAX} (default 120)")
    parser.add_argument("--instrument", help="the melody's General MIDI instrument: piano (default), violin, 'alto sax', 0-127...")
    parser.add_argument("--mode", type=_one_of("--mode", MODES), choices=MODES, help="rate 1-10, or choose between A and B (default rating)")
    parser.add_argument("--preset", type=_one_of("--preset", _presets), metavar="PRESET", help=f"agent preset: default, hillclimb, context, paper, random or theory {default('preset', 'default')}")
    # A terminal session may be endless, as with CROWDTUNE_ROUNDS=0 and /compose; a simulation must end.
    endless = " or 0" if from_settings else ""  # what 0 means, the default's words say
    parser.add_argument("--rounds", type=_in_range(int, 0 if from_settings else 1, 10_000, "--rounds"), help=(
        f"rounds to run, 1-10000{endless} {default('rounds', str(rounds_default), ', 0 meaning endless')}"))
    parser.add_argument("--seed", type=_in_range(int, 0, SEED_MAX, "--seed"), help=(
        "random seed for the first track and the agent's choices (default: a fresh one, printed; --seed repeats a run "
        "whose agent has learned the same: a simulation's always, a session's only with the same ratings in its scope)"))


def _option(dest: str) -> str:
    """The command-line option that sets the attribute `dest` (--from for from_file)."""
    return {"from_file": "--from"}.get(dest, "--" + dest.replace("_", "-"))


def _refuse_given(args: argparse.Namespace, dests: Iterable[str], why: str) -> None:
    """UsageError naming the first of the options `dests` given on the command line (their attributes not None
    nor False), followed by `why`: what takes it instead. An option a command would ignore is refused, not
    silently dropped, so nobody believes it changed something."""
    for dest in dests:
        if getattr(args, dest) not in (None, False):
            raise ArgumentError(f"{_option(dest)} {why}")


# What `run` uses only in a terminal session, not when it runs the bot (whose sessions take /compose's options).
TERMINAL_ONLY = (*MUSIC_DEFAULTS, "rounds", "seed", "out", "no_audio", "from_file", "from_track", "new", "aspects")
# What a melody from a file (--from) sets itself.
FROM_FILE_SETS = ("base", "scale", "length", "tempo")
# `bench learning`'s defaults.
BENCH_SEEDS, BENCH_ROUNDS = 20, 100
# The options each benchmark takes: a benchmark not listed takes none (the one table of what is refused, and why).
BENCH_OPTIONS = {"learning": ("seeds", "first_seed", "rounds", "out", "force", "crowd", "only"), "scaling": ("rounds",)}


def _refuse_bench_options(args: argparse.Namespace) -> None:
    """UsageError for an option that bench `args.which` does not take (BENCH_OPTIONS), naming every benchmark that
    takes it and what this one takes."""
    taken = BENCH_OPTIONS.get(args.which, ())
    own = f"takes only {', '.join(_option(dest) for dest in taken)}" if taken else "takes no options"
    for dest in dict.fromkeys(dest for dests in BENCH_OPTIONS.values() for dest in dests if dest not in taken):
        takers = " and ".join(f"bench {which}" for which, dests in BENCH_OPTIONS.items() if dest in dests)
        _refuse_given(args, [dest], f"is for {takers} only; bench {args.which} {own}")


def _given_music(args: argparse.Namespace) -> frozenset[str]:
    """The music options named on the command line."""
    return frozenset(name for name in (*MUSIC_DEFAULTS, "rounds", "seed") if getattr(args, name) is not None)


def _settings_in_use(args: argparse.Namespace, settings) -> dict[str, str]:
    """The SESSION_SETTINGS set (in the environment or .env) and not overridden by an option, each as it was
    set ("CROWDTUNE_ROUNDS=0"), so a resumed session can say which of them it does not apply."""
    from bot.settings import variable_name

    return {
        name: f"{variable_name(name)}={getattr(settings, name)}"
        for name in SESSION_SETTINGS if name in settings.model_fields_set and getattr(args, name) is None
    }


def build_parser() -> Parser:
    parser = Parser(prog="crowdtune", description="Compose music together by rating it: a Discord bot, a terminal session and a simulated crowd.")
    parser.add_argument("--version", action=_Version, help="print crowdtune's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    run = commands.add_parser("run", help="the Discord bot when DISCORD_TOKEN is set, else a session in the terminal", description=(
        "With DISCORD_TOKEN set (environment or .env), run the Discord bot. Without it, run a session in the "
        "terminal where you are the crowd: each round is written to a folder and your rating is read from standard input."))
    _add_db(run)
    _add_music(run, rounds_default=10, from_settings=True)
    run.add_argument("--out", type=_path("--out"), help=(
        "a folder that gets a new folder per session, <database>-session-<n>-<date>/, for each round's audio, MIDI and "
        "piano roll (default: rounds/ beside the database)"))
    run.add_argument("--no-audio", action="store_true", help="write MIDI and piano rolls only, do not render audio")
    run.add_argument("--from", dest="from_file", type=_path("--from"), metavar="FILE.mid", help="a new session from your own melody")
    run.add_argument("--from-track", type=_in_range(int, 1, 10_000, "--from-track"), metavar="N", help="with --from: the melody of track N (from 1)")
    run.add_argument("--new", action="store_true", help=(
        "end the unfinished terminal session (stopped: nothing learned from its open round) and start one with these "
        "options; without it an unfinished session is resumed as it was started"))
    run.add_argument("--aspects", action="store_true", help=(
        "in the terminal, rate musicality, novelty and coherence apart (such as 7 5 6); your vote weighs them 2:1:1. "
        "A session keeps it: resumed, it asks as it was started"))
    run.add_argument("--shard-count", type=_in_range(int, 1, 4096, "--shard-count"), help=(
        "the Discord bot as shards: how many in all (default: $CROWDTUNE_SHARD_COUNT, or one unsharded process)"))
    run.add_argument("--shard-ids", type=_shard_ids, metavar="IDS", help=(
        "the shards this process runs, such as 0,1 (default: $CROWDTUNE_SHARD_IDS, or all of them)"))

    sessions = commands.add_parser("sessions", help="list the sessions in the database", description=(
        "List every session in the database: its number, status, where it runs, its options and rounds done."))
    _add_db(sessions)

    simulate = commands.add_parser("simulate", help="let simulated raters vote on every round", description=(
        f"Run a session where simulated raters vote. A rater is a built-in name ({', '.join(RATER_NAMES)}: 'crowd' is every "
        "member of the --crowd; theorist follows music-theory rules; calm, energetic, harmonist, groove and melodist are "
        "taste profiles with --noise; leaper, droner, outsider, syncopator and restless are the contrarian crowd's tastes, "
        "against those rules; troll, contrarian_troll and brigader attack) or MODULE:FUNC or PATH.py:FUNC, any callable taking a "
        "mido.MidiFile and returning a number in [1, 10]; MODULE is imported from the current folder too, as with python -m; "
        "PATH.py is loaded from that file. Either is imported as Python imports a module: its top-level code runs first, "
        "before FUNC is looked for, so name only a file you trust."))
    _add_db(simulate)
    _add_music(simulate, rounds_default=30)
    # A rater may be a file (PATH.py:FUNC), its ~ expanded as every path option's is.
    simulate.add_argument("--rater", action="append", default=[], type=_path("--rater"), metavar="RATER", help="a rater (repeatable; default: crowd)")
    simulate.add_argument("--crowd", type=_one_of("--crowd", CROWDS), choices=CROWDS, help=(
        "which simulated crowd the rater 'crowd' is: builtin (tastes that share the theory critic's core) or "
        "contrarian (tastes that run against it) (default builtin); only with the rater 'crowd'"))
    simulate.add_argument("--noise", type=_in_range(float, 0.0, 10.0, "--noise"), help=(
        "noise (standard deviation, 0-10) of the built-in raters' ratings (default 0.8); only with a built-in rater that has noise"))
    simulate.add_argument("--out", type=_path("--out"), required=True, help="a new or empty folder for round MIDI files, results.json and the learning curve")
    simulate.add_argument("--force", action="store_true", help="write into --out even if it holds files (of another run)")
    simulate.add_argument("--audio", action="store_true", help="also render each round to OGG Opus")

    render = commands.add_parser("render", help="render MIDI files to audio with one loaded synthesiser", description=(
        "Render MIDI files (type 0 or 1, with at least one note, at most 600 s long, timed in ticks per beat with "
        "tempos above 0) to OGG Opus or WAV, one synthesiser for all, into --out-dir as FILE.ogg (or .wav). Every file is "
        "checked before anything is written, and an audio file that exists is replaced only with --force."))
    render.add_argument("files", nargs="+", type=_path("FILE.mid"), metavar="FILE.mid")
    render.add_argument("--out-dir", type=_path("--out-dir"), required=True, help="folder for the audio files")
    render.add_argument("--force", action="store_true", help="replace audio files that exist in --out-dir")
    render.add_argument("--format", type=_one_of("--format", AUDIO_FORMATS), choices=AUDIO_FORMATS, default="ogg", help="ogg (Opus, for chat) or wav (default ogg)")
    render.add_argument("--soundfont", type=_path("--soundfont"), help="a .sf2 file (default: CROWDTUNE_SOUNDFONT, from the environment or .env, or the Debian soundfonts)")
    render.add_argument("--keep-level", action="store_true", help="keep the synthesiser's level instead of bringing each file to -16 LUFS (true peak -1 dBTP)")

    export = commands.add_parser("export", help="export compositions (MIDI), rounds, votes, audit log and Q-tables as one zip", description=(
        "Write the database's data, of every scope or of --scope, to one zip file: every composition as MIDI, rounds.jsonl, "
        "votes.jsonl (retractions and aspects included), audit.jsonl, sessions.jsonl, qtable.json and models.json (the "
        "learned statistics). Rounds are numbered from 1, as sessions show them. The database is only read (the bot may "
        "run meanwhile), and an existing file is replaced only with --force."))
    _add_db(export)
    export.add_argument("--scope", type=_given("--scope"), help="one scope (e.g. guild:123, user:456, local:NAME); default: every scope")
    export.add_argument("--out", type=_path("--out"), required=True, help="the zip file to write (not the database itself)")
    export.add_argument("--force", action="store_true", help="replace --out if it exists")

    copy = commands.add_parser("copy-db", help="copy a whole database into a new, empty one (SQLite to PostgreSQL or back)", description=(
        "Copy every scope, session, round (with the ids of the Discord messages that carry it), vote (with its aspects), "
        "vote event, reaction withheld from a round, strike, audit entry, announcement still to post, Q-value, learned "
        "model, deployment value and confirmed request not yet carried out (never an interaction token), with their ids, "
        "into an empty database; both exports are identical afterwards. "
        "Stop the bot first: a database a running crowdtune holds is refused."))
    copy.add_argument("--from", dest="source", type=_path("--from"), required=True, metavar="DB", help="the database to copy (a SQLite file or a postgresql:// URL)")
    copy.add_argument("--to", dest="target", type=_path("--to"), required=True, metavar="DB", help="the empty database to fill (a postgresql:// URL or a new SQLite file)")

    bench = commands.add_parser("bench", help="benchmarks that print figures", description=(
        "learning: presets and options against a simulated crowd (--seeds, --first-seed, --rounds, --out, --force, --crowd and "
        "--only apply to it only, --rounds to scaling too); "
        "render: the rendering paths; loop and votes: the bot's event-loop lag and vote throughput under load (a source "
        "checkout); qtable: Q-table "
        "lookups and writes; footprint: memory and start-up time; scaling: SQLite against PostgreSQL with 1, 2 and 4 "
        "processes (a source checkout; on the database CROWDTUNE_BENCH_DB names, else a private server). See docs/BENCHMARKS.md."))
    bench.add_argument("which", type=_one_of("BENCHMARK", BENCHMARKS), choices=BENCHMARKS, metavar="BENCHMARK", help=(
        f"what to measure: {', '.join(['learning', *PERF_BENCHMARKS])}"))
    bench.add_argument("--seeds", type=_in_range(int, 1, 1000, "--seeds"), help=f"seeds per configuration (learning; default {BENCH_SEEDS})")
    bench.add_argument("--rounds", type=_in_range(int, 1, 10_000, "--rounds"), help=(
        f"rounds per run (learning; default {BENCH_ROUNDS}); scaling: rounds each session runs (default 4)"))
    bench.add_argument("--first-seed", type=_in_range(int, 0, 1_000_000, "--first-seed"), help=(
        "learning: the first seed (default 0); the presets were tuned on seeds 0-39, so --first-seed 40 checks them out of sample"))
    bench.add_argument("--out", type=_path("--out"), help=(
        "learning: a new or empty folder for the report (BENCHMARKS.md) and plot (default: a new bench-learning-DATE folder)"))
    bench.add_argument("--force", action="store_true", help="learning: write into --out even if it holds files (docs/ in a checkout)")
    bench.add_argument("--crowd", type=_one_of("--crowd", CROWDS), choices=CROWDS, action="append", help="learning: a crowd to run (repeatable; default both)")
    bench.add_argument("--only", action="append", metavar="LINE", help="learning: run only this line of the table (repeatable), e.g. 'default'")
    from bot.operator import add_commands  # forget-user and reset: an operator's moderation

    add_commands(commands)
    return parser


def _spec(args: argparse.Namespace, settings=None):
    """The SessionSpec the options ask for. With `settings` (bot.settings.Settings, checked), its round
    defaults that mean the same in a terminal as on Discord (CROWDTUNE_ROUNDS, CROWDTUNE_PRESET) stand in
    for options not given, as they do for /compose."""
    import secrets

    from core.engine import SessionSpec
    from core.instruments import parse_instrument
    from core.music import parse_base

    # A fresh seed per run, so every newcomer does not hear the same first track; it is printed.
    seed = args.seed if args.seed is not None else secrets.randbelow(SEED_MAX + 1)
    defaults = {**MUSIC_DEFAULTS, "rounds": args.rounds_default}
    if settings is not None:
        from bot.settings import round_defaults

        defaults |= {name: round_defaults(settings)[name] for name in SESSION_SETTINGS}
    music = {name: default if getattr(args, name) is None else getattr(args, name) for name, default in defaults.items()}
    rounds = music.pop("rounds") or None  # 0: endless (a terminal session's --rounds; the setting is already None)
    try:
        music |= {"base": parse_base(music["base"]), "instrument": parse_instrument(music["instrument"])}
        return SessionSpec(**music, rounds=rounds, seed=seed)
    except ValueError as problem:
        raise ArgumentError(str(problem)) from None


def _beside_db(db: str) -> Path:
    """The folder for files that go with a database: its own folder, or crowdtune-data/ for a server's."""
    from storage import is_postgres_url

    return DEFAULT_DB.parent.resolve() if is_postgres_url(db) else Path(db).resolve().parent


def _settings(kind=None, **options):
    """The settings (`kind`: bot.settings.Settings for `run`; else CommandSettings, every one but the token), each
    checked as the bot checks them (bot.settings.load_settings): StartupError, exit code SETTING (BAD_URL for a URL),
    for a bad one, whether or not this command uses it. Every command that reads a setting calls this first.
    `options`: the command's options that replace a setting (db, soundfont, shard_count, shard_ids). One given
    wins, and the setting it replaces is neither read nor checked; a --db is checked as a database (storage.
    check_location: StorageError, exit code DATABASE), not as the setting."""
    from bot.settings import CommandSettings, load_settings
    from storage import check_location

    given = {name: value for name, value in options.items() if value is not None}
    if "db" in given:
        check_location(given["db"])
    return load_settings(kind or CommandSettings, **given)


def _database(settings) -> str:
    """The database a command uses: --db, else CROWDTUNE_DB (both in `settings`, from `_settings`), else DEFAULT_DB."""
    return settings.db or str(DEFAULT_DB)


def _check_database(db: str, create: bool, throwaway: bool = False) -> None:
    """UnreadableFile (exit code FILE) unless the SQLite file `db` can be read, or with `create` made if it
    is not there (its folder must exist, but for DEFAULT_DB's: that one is made). StorageError (exit code DATABASE)
    for a URL that is no PostgreSQL one, or cannot be read (storage.check_location), and for ":memory:" to a command
    that writes what must outlast it (a terminal session, the bot, a copy), unless `throwaway` (a simulation, whose
    results are all in --out). A PostgreSQL URL has its other problems reported by the store when it is opened."""
    from storage import IN_MEMORY, IN_MEMORY_GONE, StorageError, check_location, is_postgres_url

    check_location(db)
    if db == IN_MEMORY and create and not throwaway:
        raise StorageError(IN_MEMORY_GONE)
    if is_postgres_url(db) or db == IN_MEMORY:
        return
    if create and (not os.path.lexists(db) or os.path.isdir(db)):  # a folder: said as what is to be written
        check_writable(db, "the database ", make_parents=Path(db) == DEFAULT_DB, example="crowdtune.db")
    else:
        check_readable([db], "the database ", example="crowdtune.db")




async def _open_to_write(db: str):
    """The store of a command that writes the database `db`, checked writable at once (storage.open_to_write)."""
    from storage import open_to_write

    return await open_to_write(db)


START_A_SESSION = "start a session with crowdtune run or crowdtune simulate"


async def _open_to_read(db: str, nothing: str | None):
    """The store of a command that only reads the database `db` (storage.open_store's read_only: nothing is made,
    migrated or written, so a file in a folder that cannot be written is read too). UnreadableFile (exit code
    FILE) when the file cannot be read (a folder, no permission), and when there is no database there (or one
    holding no crowdtune data yet), `nothing` ("nothing to export") saying what that means; with `nothing`
    None, NoDatabase then, for a command to which it is no error."""
    from storage import NoDatabase, is_postgres_url, open_store

    # A file that is not there is said by the store, which makes nothing; a folder's name (data/) is no file.
    if is_postgres_url(db) or os.path.lexists(db) or folder_name(db) is not None:
        _check_database(db, create=False)
    try:
        return await open_store(db, read_only=True)
    except NoDatabase as absent:
        if nothing is None:
            raise
        raise UnreadableFile(f"{absent}, so {nothing} ({START_A_SESSION})") from None


def _check_shard_options(args: argparse.Namespace, settings, runs_bot: bool) -> None:
    """ArgumentError for --shard-count or --shard-ids given to a terminal session, or that do not go together (or with
    the setting of the other): named as the options given, whose settings are not read (bot.settings.load_settings
    leaves the pair's check to this, then)."""
    from bot.discord.shards import ids_problem
    from bot.settings import setting_problem

    if args.shard_count is None and args.shard_ids is None:
        return
    if not runs_bot:
        raise ArgumentError("--shard-count and --shard-ids are for the Discord bot (set DISCORD_TOKEN)")
    if (why := ids_problem(settings.shard_count, settings.shard_ids)) is None:
        return
    if args.shard_ids is not None:
        raise ArgumentError(f"--shard-ids {args.shard_ids}: {why}")
    raise ArgumentError(f"--shard-count {args.shard_count}: {setting_problem('shard_ids', settings.shard_ids, reason=why)}")


async def _run(args: argparse.Namespace) -> int:
    from bot.settings import Settings, bot_token, open_renderer
    from storage import is_postgres_url

    settings = _settings(Settings, db=args.db, shard_count=args.shard_count, shard_ids=args.shard_ids)
    args.db = _database(settings)
    runs_bot = settings.discord_token is not None  # set, even empty: the bot (an empty token is one clear line there)
    if runs_bot:
        bot_token(settings)
        _refuse_given(args, TERMINAL_ONLY, (
            "is for a session in the terminal, and DISCORD_TOKEN is set, so this runs the Discord bot (its sessions take "
            "their options from /compose): leave it out, or unset DISCORD_TOKEN for a terminal session"))
    _check_shard_options(args, settings, runs_bot)
    _check_database(args.db, create=True)
    if runs_bot:
        from bot.discord.app import run_bot

        return await run_bot(settings, db=args.db)
    out_refused = None
    if args.out:  # before a session is started, or a database made
        try:
            check_writable(args.out, "the folder ", folder=True)
        except UnreadableFile as problem:
            # A session resumed keeps its folder, so its --out is named as not applied, whatever it names: refused
            # only once a session would write there (bot.terminal), or here when one must start (no database yet).
            if args.new or args.from_file or not (is_postgres_url(args.db) or os.path.isfile(args.db)):
                raise
            out_refused = problem
    if args.from_file:
        _refuse_given(args, FROM_FILE_SETS, "comes from the file with --from (the melody keeps its key, length and tempo): leave it out")
    spec = _spec(args, settings)
    if args.aspects and spec.mode == "ab":
        raise ArgumentError("--aspects rates one version at a time: use it with --mode rating")
    from bot.media.midi_import import session_from_file

    try:  # --from FILE.mid: a file that cannot be used creates nothing
        spec, first_track = session_from_file(args.from_file, args.from_track, args.instrument, spec)
    except ValueError as problem:
        raise UsageError(str(problem)) from None
    from bot.conductor import Conductor
    from bot.terminal import TerminalSession, nothing_to_rate, terminal_scope
    from storage import NewDatabase

    with contextlib.ExitStack() as opened:
        renderer = None if args.no_audio else opened.enter_context(open_renderer(settings))
        reader = await nothing_to_rate(sys.stdin)  # before the database is opened (or made)
        # Absolute, as the default is. Made only as the session writes its first file into it: a resumed session
        # keeps its own folder, and a start refused (a held database) makes nothing. One that cannot be made was
        # refused above (check_writable tries it, exit 12).
        out = Path(args.out).resolve() if args.out else _beside_db(args.db) / "rounds"
        if out_refused is not None and not await _keeps_its_folder(args.db, out):
            raise out_refused  # before the database is opened to write, which would upgrade an older one
        new, session = NewDatabase(args.db), None
        store = await _open_to_write(args.db)
        try:
            # One process per database, as for the bot: two terminals on one session would close each
            # other's rounds, and the rating typed into the slower one would be lost.
            await store.claim_instance(f"crowdtune run in a terminal, process {os.getpid()}")
            await store.claim_scope(terminal_scope())  # on PostgreSQL, which bots share, the claim is the scope's
            session = TerminalSession(Conductor(store), renderer, out, sys.stdin, sys.stdout, aspects=args.aspects, reader=reader,
                                      out_given=args.out, data_folder=_beside_db(args.db), out_refused=out_refused)
            await session.run(spec, given=_given_music(args), new=args.new, first_track=first_track,
                              settings_given=_settings_in_use(args, settings))
        finally:
            await store.close()
            if session is not None and session.started:  # else stopped before its start: no new file left
                new.keep()
            new.end()
    return 0


async def _keeps_its_folder(db: str, out: Path) -> bool:
    """Whether `run` on the database `db` resumes this login's unfinished session into the folder it keeps, so that
    --out (`out`) is not used, read without changing the database (storage.viewing); False when that cannot be told
    without upgrading it (an older PostgreSQL database, not copied to be read): a refusal changes nothing, its schema included."""
    from bot.session_files import session_files
    from bot.terminal import terminal_scope
    from storage import NoDatabase, viewing

    try:
        async with viewing(db) as view:
            if view is None:
                return False
            session = await view.store.active_session_in(terminal_scope())
            return session is not None and session_files(session, view.name, out, _beside_db(db)).note is None
    except NoDatabase:
        return False


async def _simulate(args: argparse.Namespace) -> int:
    import random

    from bot.conductor import Conductor
    from bot.settings import open_renderer
    from bot.simulate import RaterError, has_noise, load_raters, stop_interrupted
    from core.raters import DEFAULT_NOISE, judge as crowd_judge
    from storage import NewDatabase

    settings = _settings(db=args.db)  # a simulation's rounds and preset are its options' alone (SESSION_SETTINGS are run's)
    spec = _spec(args)
    with_crowd = not args.rater or "crowd" in args.rater
    if args.crowd and not with_crowd:  # it would change nothing: say so rather than run without it
        raise ArgumentError(f"--crowd chooses who the rater 'crowd' is, and the raters given ({', '.join(args.rater)}) "
                         "do not include it: add --rater crowd, or leave --crowd out")
    crowd = args.crowd or "builtin"
    if args.noise is not None and not any(map(has_noise, args.rater or ["crowd"])):
        raise ArgumentError(f"--noise sets the built-in raters' noise, and the raters given ({', '.join(args.rater)}) have none: "
                         "leave --noise out")
    try:
        raters = load_raters(args.rater, random.Random(spec.seed), DEFAULT_NOISE if args.noise is None else args.noise, crowd)
    except ValueError as problem:
        raise UsageError(str(problem)) from None
    # With the crowd among the raters, its noise-free judge (which nothing trains on) says how the music went.
    judge = crowd_judge(crowd) if with_crowd else None
    # Every check (the folder, the soundfont, the database) before anything is made, so a failed start leaves nothing.
    args.db = _database(settings)
    _check_database(args.db, create=True, throwaway=True)
    out = _fresh_folder(Path(args.out), args.force)
    with contextlib.ExitStack() as opened:
        renderer = opened.enter_context(open_renderer(settings)) if args.audio else None
        new = NewDatabase(args.db)
        store = await _open_to_write(args.db)
        made = False
        try:
            await store.claim_instance(f"crowdtune simulate, process {os.getpid()}")
            scope = await _fresh_scope(store, f"sim:{spec.preset}-{spec.mode}-s{spec.seed}")
            await store.claim_scope(scope)
            for line in await stop_interrupted(Conductor(store), scope):
                print(line)
            made = not out.exists()
            out.mkdir(exist_ok=True)  # once nothing can refuse the run: its every end writes results.json there
            # Its database, a new one too, is kept once its session is stored: stopped before, neither is left.
            await _simulated(Conductor(store), spec, raters, out, scope, renderer, judge, crowd, new.keep)
        except Exception as problem:
            # A rater that failed, or a database or file that cannot be written now (a full disk): stopped, as by a
            # signal, the rounds done kept in the database and in --out with results.json saying why (README "Exit codes").
            from bot.errors import StartupError, user_facing

            known = (str(problem), ExitCode.USAGE) if isinstance(problem, RaterError) else user_facing(problem)
            if known is None or not (notes := getattr(problem, "__notes__", None)):  # a bug, or no session started
                raise
            what_kept = notes[-1]  # what was kept, in words (bot.simulate._keep_rounds_done)
            if known[1] == ExitCode.USAGE:
                raise UsageError(f"{known[0]}; {what_kept}") from None
            raise StartupError(f"{known[0]}; {what_kept}", known[1]) from None
        finally:
            await store.close()
            new.end()
            if made:  # a folder it made and could write nothing into (a full disk) is not left: rmdir takes only an empty one
                with contextlib.suppress(OSError):
                    out.rmdir()
    return 0


async def _simulated(conductor, spec, raters, out: Path, scope: str, renderer, judge, crowd: str, started) -> None:
    """Run the claimed simulation's rounds (bot.simulate.run_simulation) and say how it went, or, stopped by a signal,
    how far it got (main then says which). Its own step, so that line reads only what exists wherever a signal lands:
    one during the start (the claim, stopping simulations left active) ends with main's line alone, no round begun."""
    from bot.progress import plural, progress_bar
    from bot.simulate import raters_words, report, run_simulation
    from bot.stopping import why_stopped
    from bot.terminal import describe_spec

    done = kept = 0
    try:
        with progress_bar(spec.rounds, "simulate", "round") as bar:

            def advance(rounds_done: int, total: int, record: dict) -> None:
                nonlocal done, kept
                done, kept = rounds_done, kept + record["kept_edit"]
                bar.update(1)
                bar.set_postfix_str(f"{kept} kept", refresh=False)

            results = await run_simulation(conductor, spec, raters, out, scope, renderer, progress=advance, judge=judge,
                                           started=started)
        # Said before the store closes: a signal that comes as it closes must not swallow a finished run's summary.
        print(
            f"{raters_words(raters)}, {describe_spec(spec)}; "
            f"{report(results, crowd if judge is not None else None)}; wrote {_simulation_files(out)}"
        )
    except (asyncio.CancelledError, KeyboardInterrupt) as stop:  # a signal: main then says which
        print(f"stopped after {done} of {plural(spec.rounds, 'round')}: {why_stopped(stop)}; wrote {_simulation_files(out)}")
        raise


def _simulation_files(out: Path) -> str:
    """What a simulation wrote to --out `out`, in words, finished or stopped early (bot.simulate.run_simulation): the
    files there (--out is new or empty at the start), its rounds' by kind, so a stop before any round names none."""
    names = {path.name for path in out.iterdir()} if out.is_dir() else set()
    whole = [name for name in ("results.json", "learning-curve.png", "start.mid", "final.mid", "final.ogg") if name in names]
    kinds = [kind for kind, suffix in (("MIDI", ".mid"), ("OGG", ".ogg"))
             if any(name.startswith("round-") and name.endswith(suffix) for name in names)]
    parts = [*whole, *([f"round {' and '.join(kinds)} files"] if kinds else [])]
    from storage.files import named_files

    return one_line(named_files([out / part for part in parts]) if parts else f"nothing to {out}")


async def _sessions(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from bot.terminal import describe_spec
    from core.engine import SessionSpec
    from storage import NoDatabase

    args.db = _database(_settings(db=args.db))
    try:
        store = await _open_to_read(args.db, None)
    except NoDatabase as absent:  # a listing of nothing, as on a fresh checkout: no error
        print(one_line(f"no sessions yet: {absent} ({START_A_SESSION})"))
        return 0
    try:
        sessions = await store.all_sessions()
    finally:
        await store.close()
    if not sessions:  # as helpful as for a file with no crowdtune data in it (the bot's before its first /compose)
        print(one_line(f"no sessions yet: the database {store.path} holds none ({START_A_SESSION})"))
        return 0
    for s in sessions:
        # In UTC, said so, as the sessions' folders are named (bot.session_files): the same in every time zone.
        started = datetime.fromtimestamp(s.created_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        # A terminal session's channel is its scope (bot.terminal): said once.
        where = f"{s.scope_id}" + (f" #{s.channel_id}" if s.channel_id and s.channel_id != s.scope_id else "")
        print(f"{s.id:>4}  {s.status:<8}  {started}  {where}: {describe_spec(SessionSpec.from_dict(s.spec), s.options)}; {s.rounds_done} done")
    print(one_line(f"{len(sessions)} session{'s' if len(sessions) != 1 else ''} in {store.path}"))
    return 0


async def _fresh_scope(store, stem: str) -> str:
    """A new scope per simulation, so the same seed gives the same results and nothing is overwritten."""
    taken = {scope_id for scope_id, _, _ in await store.scopes()}
    return next(f"{stem}-{n}" for n in range(1, len(taken) + 2) if f"{stem}-{n}" not in taken)  # one is free


def _render(args: argparse.Namespace) -> int:
    from bot.progress import plural, progress_bar
    from bot.media.render import render_files, render_targets
    from bot.settings import open_renderer

    settings = _settings(soundfont=args.soundfont)
    check_readable(args.files)  # every file, as typed (data/ is no file), before the synthesiser is loaded or anything written
    check_writable(args.out_dir, "the folder ", folder=True)
    paths = [Path(f) for f in args.files]
    try:
        there = [t for t in render_targets(paths, Path(args.out_dir), args.format) if t.exists()]
    except ValueError as problem:
        raise ArgumentError(str(problem)) from None
    if there and not args.force:
        more = f" (and {plural(len(there) - 1, 'other')})" if len(there) > 1 else ""
        raise UsageError(f"{there[0]} exists{more}; add --force to replace it")
    for target in there:  # --force replaces a regular file only: not a device, a FIFO, a folder
        check_writable(target, "the file ")
    with open_renderer(settings, option="--soundfont" if args.soundfont is not None else None) as renderer, progress_bar(len(paths), "render", "file") as bar:
        try:
            written = render_files(renderer, paths, Path(args.out_dir), args.format, lambda _: bar.update(1), args.keep_level)
        except ValueError as problem:
            raise UsageError(str(problem)) from None
    print(one_line(f"rendered {plural(len(written), 'file')} to {args.out_dir}"))
    return 0


async def _export(args: argparse.Namespace) -> int:
    from bot.progress import counted, progress_bar
    from bot.stopping import settle
    from storage.export import COUNTED, export_zip

    args.db = _database(_settings(db=args.db))
    store = await _open_to_read(args.db, "nothing to export")
    try:
        check_writable(args.out, "the zip file ", example="export.zip")  # as typed: data/ is a folder's name
        _fresh_output(args.out, args.db, args.force)
        scopes = sorted(s for s, _, _ in await store.scopes())
        if args.scope and args.scope not in scopes:
            raise UsageError(f"no scope '{args.scope}' in {store.path}; its scopes: {', '.join(scopes) or 'none yet'}")
        with progress_bar(None, "export", "file") as bar:
            # Settled in the writing thread as its zip goes into place: a stop after must not fail a run whose retry
            # --out would then refuse; one before leaves no zip (the thread goes on after the task is cancelled).
            counts = await export_zip(store, Path(args.out), args.scope, progress=lambda: bar.update(1), committing=settle)
    finally:
        await store.close()
    print(one_line(f"wrote {args.out}: {counted(counts, COUNTED)}"))
    return 0


def _fresh_output(out: str, db: str, force: bool) -> None:
    """An output file (--out) that may be written: ArgumentError when it is the database `db` or one of its
    journals (replacing it would lose the database), UsageError when it exists and not `force`."""
    there, database = Path(out).resolve(), Path(db).resolve()
    # Only a database file has journals beside it.
    journals = {database.with_name(database.name + end) for end in ("", "-wal", "-shm", "-journal")}
    if database.is_file() and there in journals:
        raise ArgumentError(f"--out {out} is the database (or its journal); choose another file")
    if there.exists() and not force:
        raise UsageError(f"{out} exists; add --force to replace it")


async def _copy_db(args: argparse.Namespace) -> int:
    from bot.stopping import settle
    from storage.copy import copy_into

    if args.source == args.target:
        raise ArgumentError("--from and --to name the same database")
    source = await _open_to_read(args.source, "nothing to copy")
    try:
        # The copy is one snapshot: what a running bot writes after it would be lost, as --help warns.
        await source.refuse_if_held("stop it first, then copy: what it writes after the copy would not be in it")
        _check_database(args.target, create=True)
        try:
            # Claims the target atomically (no look, then write); once its rows all go to the commit, a stop changes
            # nothing: the copy is what was asked for, and a script must not take it for a failure.
            copied, counts = await copy_into(source, args.target, settle)
        except ValueError as problem:
            raise UsageError(str(problem)) from None
    finally:
        await source.close()
    print(one_line(f"copied into {copied}, rows per table: " + ", ".join(f"{table} {n}" for table, n in counts.items())))
    return 0


def _fresh_folder(out: Path, force: bool, default: bool = False) -> Path:
    """`out`, checked (its maker makes it): UnreadableFile if it is a file or its folder does not exist (a
    `default` one the program names may be made), UsageError if it holds files (of another run) and not `force`."""
    check_writable(out, "the folder ", folder=True, make_parents=default)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} already holds files (another run's?); choose a new folder, or add --force to write into it")
    return out


def _bench(args: argparse.Namespace) -> int:
    _refuse_bench_options(args)
    if args.which != "learning":
        from bot.bench import run

        if args.which != "scaling":
            return run(args.which)
        # Checked here, with every setting, and handed on: the benchmark's process runs in the checkout, away from this
        # .env; unset (or blank: bot.settings) is handed on as empty, so a blank one in the environment is not read there.
        arguments = ["--rounds", str(args.rounds)] if args.rounds else []
        return run(args.which, {"CROWDTUNE_BENCH_DB": _settings().bench_db or ""}, arguments)
    from datetime import datetime

    from bot.bench.learning import bench_learning

    # Never into the checkout's tracked docs/ by default: a new folder per run.
    default = Path(f"bench-learning-{datetime.now():%Y%m%d-%H%M%S}")
    out = _fresh_folder(Path(args.out) if args.out else default, args.force, default=not args.out)
    try:
        return bench_learning(
            seeds=args.seeds or BENCH_SEEDS, rounds=args.rounds or BENCH_ROUNDS, out=out,
            crowds=tuple(args.crowd or ("builtin", "contrarian")), only=tuple(args.only or ()), first_seed=args.first_seed or 0,
        )
    except ValueError as problem:
        raise ArgumentError(str(problem)) from None


def _until_signal(work) -> int:
    """Run the coroutine `work` in a new event loop; SIGINT and SIGTERM cancel it, so its cleanup runs, and
    end it as Interrupted or Terminated (bot.stopping)."""
    from bot.stopping import signals_end_this_task

    async def stoppable() -> int:
        async with signals_end_this_task():
            return await work

    return asyncio.run(stoppable())


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` (default: sys.argv's, this process's own command, which ends with it: bot.stopping's
    signals_heard `process`) and return its exit code (README "Exit codes"). Standard
    output that cannot be written (a full disk, `> /dev/full`) ends any command with one line, exit code FILE,
    its cleanup done as for any other end; what is still unwritten is flushed here, not at the interpreter's exit."""
    from bot.errors import Interrupted, Stopped
    from bot.stopping import say_stopped, signals_heard

    try:
        with signals_heard(process=argv is None):  # from here to the end: a signal while the arguments are read, too
            return _main(argv)
    except (KeyboardInterrupt, Stopped) as stop:
        stop = Interrupted() if isinstance(stop, KeyboardInterrupt) else stop
        say_stopped(stop.words)  # one line, as for Ctrl-C: a signal is an end like any other
        return int(stop.code)


def _main(argv: list[str] | None) -> int:
    """`main`'s work, a signal apart: the command's exit code, whatever standard output does."""
    from bot.errors import GuardedOutput, OutputFailed

    given, sys.stdout = sys.stdout, GuardedOutput(sys.stdout)
    # argparse names the command in it as soon as it is read, before the command's own options (its --help) are.
    parsed = argparse.Namespace()
    try:
        try:
            args = build_parser().parse_args(argv, parsed)  # --help and --version write here too
            return _command(args)
        finally:  # after argparse's SystemExit too: its --help and --version
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader of our output went away (`crowdtune sessions | head -1`): stop quietly, as other
        # command-line tools do.
        _discard_output(given)
        return int(ExitCode.BROKEN_PIPE)
    except OutputFailed as problem:
        with contextlib.suppress(OSError):
            command = getattr(parsed, "command", None)
            print(f"crowdtune{f' {command}' if command else ''}: {problem}", file=sys.stderr)
        _discard_output(given)
        return int(ExitCode.FILE)
    finally:
        sys.stdout = given


def _discard_output(stream) -> None:
    """Point `stream` (standard output) at /dev/null, so the interpreter's flush at exit finds nowhere to fail
    (what Python's documentation advises for a BrokenPipeError)."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _command(args: argparse.Namespace) -> int:
    """Run the parsed command; every problem a user can fix is one line on stderr and its exit code."""
    try:
        match args.command:
            case "run":
                return _until_signal(_run(args))
            case "simulate":
                return _until_signal(_simulate(args))
            case "sessions":
                return _until_signal(_sessions(args))
            case "render":
                return _render(args)
            case "export":
                return _until_signal(_export(args))
            case "copy-db":
                return _until_signal(_copy_db(args))
            case "bench":
                return _bench(args)
            case "forget-user" | "reset" | "upgrade":
                from bot import operator

                work = {"forget-user": operator.forget_user, "reset": operator.reset, "upgrade": operator.upgrade}[args.command]
                return _until_signal(work(args))
    except UsageError as problem:
        ending = f" (see crowdtune {args.command} --help)" if isinstance(problem, ArgumentError) else ""
        print(f"crowdtune {args.command}: error: {one_line(str(problem))}{ending}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as problem:  # Interrupted and Terminated too: `main` says them
        from bot.errors import user_facing

        if (known := user_facing(problem)) is None:
            raise
        print(f"crowdtune {args.command}: {one_line(known[0])}", file=sys.stderr)  # the line, then its exit code
        return int(known[1])
    return 0

