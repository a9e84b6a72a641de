"""The `crowdtune` command. Heavy modules are imported inside each command, so --help is quick."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bot.bench import PERF_BENCHMARKS

DEFAULT_DB = Path("crowdtune-data") / "crowdtune.db"
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument: one line on stderr, exit code 2, nothing written."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of argparse's usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def one_line(text: str) -> str:
    """An error message that stays on one line: a value echoed in it may hold line breaks or
    other control characters (they are shown escaped)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _in_range(convert, low: float, high: float, name: str):
    """An argparse type: a number (int or float, as `convert` makes it) from low to high."""
    kind, show = ("a whole number", str) if convert is int else ("a number", "{:g}".format)

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, not '{text}'") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{name} must be {show(low)}-{show(high)}, not {text}")
        return value

    return parse


def _given(name: str):
    """A path or a name that must not be empty ('' would otherwise mean the current folder, or every scope)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{name} must not be empty")
        return text

    return parse


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=_given("--db"),
        default=os.environ.get("CROWDTUNE_DB") or str(DEFAULT_DB),
        help=f"SQLite database file or postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL (default: $CROWDTUNE_DB or {DEFAULT_DB})",
    )


def _add_music(parser: argparse.ArgumentParser, rounds_default: int) -> None:
    from core.music import SCALES  # small and pure: fine for --help

    parser.add_argument("--base", default="C4", help="base note: C4, F#3, Bb2 or a MIDI number (default C4)")
    parser.add_argument("--scale", default="major", choices=list(SCALES), metavar="SCALE", help=f"one of: {', '.join(SCALES)}")
    parser.add_argument("--length", type=_in_range(int, 4, 64, "--length"), default=8, help="notes in the track, 4-64 (default 8)")
    parser.add_argument("--tempo", type=_in_range(int, 40, 240, "--tempo"), default=120, help="beats per minute, 40-240 (default 120)")
    parser.add_argument("--mode", choices=["rating", "ab"], default="rating", help="rate 1-10, or choose between A and B")
    parser.add_argument("--preset", default="default", help="agent preset: default, paper, random or theory (default: default)")
    parser.add_argument("--rounds", type=_in_range(int, 1, 10_000, "--rounds"), default=rounds_default, help=f"rounds to run (default {rounds_default})")
    parser.add_argument("--seed", type=_in_range(int, 0, 2**31 - 1, "--seed"), default=0, help="random seed for the first track and the agent")


def build_parser() -> Parser:
    parser = Parser(prog="crowdtune", description="Compose music together by rating it: a Discord bot, a terminal session and a simulated crowd.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    run = commands.add_parser("run", help="the Discord bot when DISCORD_TOKEN is set, else a session in the terminal", description=(
        "With DISCORD_TOKEN set (environment or .env), run the Discord bot. Without it, run a session in the "
        "terminal where you are the crowd: each round is written to a folder and your rating is read from standard input."))
    _add_db(run)
    _add_music(run, rounds_default=10)
    run.add_argument("--out", type=_given("--out"), help="folder for each round's audio, MIDI and piano roll (default: beside the database)")
    run.add_argument("--no-audio", action="store_true", help="write MIDI and piano rolls only, do not render audio")
    run.add_argument("--aspects", action="store_true", help=(
        "in the terminal, rate musicality, novelty and coherence apart (such as 7 5 6); your vote weighs them 2:1:1"))
    run.add_argument("--shard-count", type=_in_range(int, 1, 4096, "--shard-count"), help=(
        "the Discord bot as shards: how many in all (default: $CROWDTUNE_SHARD_COUNT, or one unsharded process)"))
    run.add_argument("--shard-ids", type=_given("--shard-ids"), metavar="IDS", help=(
        "the shards this process runs, such as 0,1 (default: $CROWDTUNE_SHARD_IDS, or all of them)"))

    simulate = commands.add_parser("simulate", help="let simulated raters vote on every round", description=(
        "Run a session where simulated raters vote. A rater is a built-in short name, 'crowd' (the built-in crowd), "
        "or MODULE:FUNC, any callable taking a mido.MidiFile and returning a number in [1, 10]."))
    _add_db(simulate)
    _add_music(simulate, rounds_default=30)
    simulate.add_argument("--rater", action="append", default=[], metavar="RATER", help="a rater (repeatable; default: crowd)")
    simulate.add_argument("--noise", type=_in_range(float, 0.0, 10.0, "--noise"), default=0.8, help="noise (standard deviation, 0-10) of built-in raters (default 0.8)")
    simulate.add_argument("--out", type=_given("--out"), required=True, help="folder for round MIDI files, results.json and the learning curve")
    simulate.add_argument("--audio", action="store_true", help="also render each round to OGG Opus")

    render = commands.add_parser("render", help="render MIDI files to audio with one loaded synthesiser")
    _add_db(render)
    render.add_argument("files", nargs="+", type=_given("FILE.mid"), metavar="FILE.mid")
    render.add_argument("--out-dir", type=_given("--out-dir"), required=True, help="folder for the audio files")
    render.add_argument("--format", choices=["ogg", "wav"], default="ogg", help="ogg (Opus, for chat) or wav (default ogg)")
    render.add_argument("--soundfont", type=_given("--soundfont"), help="a .sf2 file (default: $CROWDTUNE_SOUNDFONT or the Debian soundfonts)")

    export = commands.add_parser("export", help="export compositions (MIDI), rounds, votes, audit log and Q-tables as one zip")
    _add_db(export)
    export.add_argument("--scope", type=_given("--scope"), help="one scope (e.g. guild:123, user:456, local:NAME); default: every scope")
    export.add_argument("--out", type=_given("--out"), required=True, help="the zip file to write")

    copy = commands.add_parser("copy-db", help="copy a whole database into a new, empty one (SQLite to PostgreSQL or back)", description=(
        "Copy every scope, session, round, vote, vote event, strike, audit entry and Q-value, with their ids, into an "
        "empty database; both exports are identical afterwards. Stop the bot first."))
    copy.add_argument("--from", dest="source", type=_given("--from"), required=True, metavar="DB", help="the database to copy (a SQLite file or a postgresql:// URL)")
    copy.add_argument("--to", dest="target", type=_given("--to"), required=True, metavar="DB", help="the empty database to fill (a postgresql:// URL or a new SQLite file)")

    bench = commands.add_parser("bench", help="benchmarks that print figures")
    bench.add_argument("which", choices=["learning", *PERF_BENCHMARKS], help="what to measure")
    bench.add_argument("--seeds", type=_in_range(int, 1, 1000, "--seeds"), default=20, help="seeds per configuration (learning)")
    bench.add_argument("--rounds", type=_in_range(int, 1, 10_000, "--rounds"), default=100, help="rounds per run (learning)")
    bench.add_argument("--out", type=_given("--out"), default="docs", help="folder for the report and plot (learning)")
    return parser


def _spec(args: argparse.Namespace):
    from core.engine import SessionSpec
    from core.music import parse_note

    try:
        return SessionSpec(
            base=parse_note(args.base), scale=args.scale, length=args.length, tempo=args.tempo, mode=args.mode,
            preset=args.preset, rounds=args.rounds, seed=args.seed,
        )
    except ValueError as problem:
        raise UsageError(str(problem)) from None


def _beside_db(db: str) -> Path:
    """The folder for files that go with a database: its own folder, or crowdtune-data/ for a server's."""
    from storage import is_postgres_url

    return DEFAULT_DB.parent.resolve() if is_postgres_url(db) or db == ":memory:" else Path(db).resolve().parent


async def _open_store(db: str):
    from storage import open_store

    return await open_store(db)


async def _run(args: argparse.Namespace) -> int:
    from bot.settings import load_settings

    overrides = {k: v for k, v in (("shard_count", args.shard_count), ("shard_ids", args.shard_ids)) if v is not None}
    settings = load_settings(**overrides)
    if settings.discord_token:
        from bot.discord.app import run_bot

        return await run_bot(settings, db=args.db)
    if overrides:
        raise UsageError("--shard-count and --shard-ids are for the Discord bot (set DISCORD_TOKEN)")
    spec = _spec(args)
    if args.aspects and spec.mode == "ab":
        raise UsageError("--aspects rates one version at a time: use it with --mode rating")
    renderer = None
    if not args.no_audio:
        from bot.media.render import Renderer

        renderer = Renderer.open()
    from bot.conductor import Conductor
    from bot.terminal import TerminalSession

    store = await _open_store(args.db)
    try:
        out = Path(args.out) if args.out else _beside_db(args.db) / "rounds"
        session = TerminalSession(Conductor(store), renderer, out, sys.stdin, sys.stdout, aspects=args.aspects)
        await session.run(spec)
    finally:
        await store.close()
        if renderer is not None:
            renderer.close()
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    import random

    from bot.conductor import Conductor
    from bot.simulate import load_raters, progress_bar, run_simulation

    spec = _spec(args)
    try:
        raters = load_raters(args.rater, random.Random(args.seed), args.noise)
    except ValueError as problem:
        raise UsageError(str(problem)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = await _open_store(args.db)
    try:
        scope = await _fresh_scope(store, f"sim:{spec.preset}-{spec.mode}-s{spec.seed}")
        results = await run_simulation(
            Conductor(store), spec, raters, out, scope, audio=args.audio, progress=progress_bar()
        )
    finally:
        await store.close()
    rewards = [r["reward"] for r in results["rounds"] if r["reward"] is not None]
    first, last = rewards[: max(1, len(rewards) // 10)], rewards[-max(1, len(rewards) // 10) :]
    print(
        f"{len(results['rounds'])} rounds with {len(raters)} raters; mean reward {sum(first) / len(first):.2f} in the first "
        f"tenth, {sum(last) / len(last):.2f} in the last; wrote {out}/results.json, learning-curve.png and round MIDI files"
    )
    return 0


async def _fresh_scope(store, stem: str) -> str:
    """A new scope per simulation, so the same seed gives the same results and nothing is overwritten."""
    taken = {scope_id for scope_id, _, _ in await store.scopes()}
    number = 1
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


def _render(args: argparse.Namespace) -> int:
    from bot.media.render import Renderer, render_files

    paths = [Path(f) for f in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    with Renderer.open(args.soundfont) as renderer:
        try:
            written = render_files(renderer, paths, Path(args.out_dir), args.format)
        except ValueError as problem:
            raise UsageError(str(problem)) from None
    print(f"rendered {len(written)} file(s) to {args.out_dir}")
    return 0


async def _export(args: argparse.Namespace) -> int:
    from storage.export import export_zip

    if not _exists(args.db):
        raise UsageError(f"no database at {args.db}")
    store = await _open_store(args.db)
    try:
        if args.scope and args.scope not in {s for s, _, _ in await store.scopes()}:
            raise UsageError(f"no scope '{args.scope}' in {store.path}")
        counts = await export_zip(store, Path(args.out), args.scope)
    finally:
        await store.close()
    print(f"wrote {args.out}: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    return 0


def _exists(db: str) -> bool:
    from storage import is_postgres_url

    return is_postgres_url(db) or db == ":memory:" or Path(db).exists()


async def _copy_db(args: argparse.Namespace) -> int:
    from storage.copy import copy_database

    if not _exists(args.source):
        raise UsageError(f"no database at {args.source}")
    if args.source == args.target:
        raise UsageError("--from and --to name the same database")
    source = await _open_store(args.source)
    try:
        target = await _open_store(args.target)
        try:
            counts = await copy_database(source, target)
        except ValueError as problem:
            raise UsageError(str(problem)) from None
        finally:
            await target.close()
    finally:
        await source.close()
    print(f"copied into {target.path}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.which == "learning":
        from bot.bench.learning import bench_learning

        return bench_learning(seeds=args.seeds, rounds=args.rounds, out=Path(args.out))
    from bot.bench import run

    return run(args.which)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        match args.command:
            case "run":
                return asyncio.run(_run(args))
            case "simulate":
                return asyncio.run(_simulate(args))
            case "render":
                return _render(args)
            case "export":
                return asyncio.run(_export(args))
            case "copy-db":
                return asyncio.run(_copy_db(args))
            case "bench":
                return _bench(args)
    except UsageError as problem:
        print(f"crowdtune {args.command}: error: {one_line(str(problem))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as problem:
        from bot.errors import user_facing

        message = user_facing(problem)
        if message is None:
            raise
        print(f"crowdtune {args.command}: {one_line(message)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
