"""The simulated crowd: a front end where raters are functions of a MIDI file.

It drives the same conductor, engine and storage as the Discord bot and the terminal session,
so what it measures is the code users run.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import importlib.util
import json
import numbers
import os
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido

from bot.conductor import Conductor
from bot.errors import UnreadableFile, check_readable
from bot.progress import plural
from bot.sim_files import keep_rounds_done, write_results, write_round_files
from bot.stopping import why_stopped
from core.crowd import rating_text
from core.engine import Outcome, SessionSpec, beat_chance
from core.midi import track_to_midi
from storage import SessionRow, StorageError

Rater = Callable[[mido.MidiFile], float]


@dataclass(frozen=True)
class NamedRater:
    name: str
    rate: Rater


def has_noise(spec: str) -> bool:
    """Whether the rater `spec` (as load_raters takes it) is a built-in one whose ratings have noise: the
    crowd, or any built-in rater but the noiseless ones (core.raters.NOISELESS_RATERS)."""
    from core.raters import BUILTIN_RATERS, NOISELESS_RATERS

    return spec == "crowd" or (spec in BUILTIN_RATERS and spec not in NOISELESS_RATERS)


def load_raters(specs: list[str], rng: random.Random, noise: float, crowd: str = "builtin", shared: float = 0.0) -> list[NamedRater]:
    """Raters by built-in short name ('crowd' is every member of the crowd named `crowd`: 'builtin' or
    'contrarian') or as MODULE:FUNC. `shared`: the part of a built-in rater's noise that clips heard together
    share (core.raters.Rater.together)."""
    from core import raters as builtin

    loaded: list[NamedRater] = []
    for spec in specs or ["crowd"]:
        if spec == "crowd":
            loaded += [NamedRater(name, rater) for name, rater in builtin.default_crowd(rng, noise, crowd, shared)]
        elif spec in builtin.BUILTIN_RATERS:
            loaded.append(NamedRater(spec, builtin.make_rater(spec, rng, noise, shared)))
        elif ":" in spec:
            loaded.append(NamedRater(_rater_name(spec), _import_rater(spec)))
        else:
            names = ", ".join(["crowd", *builtin.BUILTIN_RATERS])
            raise ValueError(f"unknown rater '{spec}': use one of {names}, or MODULE:FUNC or FILE.py:FUNC")
    names = [r.name for r in loaded]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        # Voters are identified by name; the same name twice would be one voter.
        counter: dict[str, int] = {}
        renamed = []
        for r in loaded:
            counter[r.name] = counter.get(r.name, 0) + 1
            renamed.append(NamedRater(f"{r.name}#{counter[r.name]}" if r.name in duplicates else r.name, r.rate))
        loaded = renamed
    return loaded


def raters_words(raters: list[NamedRater]) -> str:
    """How many `raters` (load_raters') vote, in words, saying of a rater given more than once (named twice, or
    `troll` beside the crowd's own) that each votes apart, by the names load_raters gave them: "2 raters (troll
    given twice: they vote apart, as troll#1 and troll#2)"."""
    apart: dict[str, list[str]] = {}
    for rater in raters:
        stem, mark, number = rater.name.rpartition("#")
        if mark and number.isdigit():
            apart.setdefault(stem, []).append(rater.name)
    notes = [f"{stem} given {'twice' if len(names) == 2 else f'{len(names)} times'}: they vote apart, as "
             + " and ".join(", ".join(names).rsplit(", ", 1)) for stem, names in apart.items()]
    return plural(len(raters), "rater") + (f" ({'; '.join(notes)})" if notes else "")


def _rater_name(spec: str) -> str:
    """The name (its votes' voter, in results.json and exports) of the rater MODULE:FUNC or PATH.py:FUNC `spec`: a
    file's by its name alone (mine.py:rate), never its folders, which would tell whoever reads them this host's file
    layout (/home/alice/...)."""
    module_name, _, attribute = spec.rpartition(":")
    return f"{os.path.basename(module_name)}:{attribute}" if _is_file(module_name) else spec


def _is_file(module_name: str) -> bool:
    """Whether a rater's MODULE names a file (PATH.py: a / in it, or ending in .py) rather than an importable module."""
    return "/" in module_name or module_name.endswith(".py")


def _import_rater(spec: str) -> Rater:
    """The callable `spec` names: MODULE:FUNC (a module importable from the current folder too, as with
    `python -m`) or PATH:FUNC (a Python file: a MODULE with a / or ending in .py). FUNC may be dotted
    (Class.method). UnreadableFile when the module's file is not there or cannot be read; ValueError when
    it fails as it is run, or has no such callable."""
    module_name, _, attribute = spec.rpartition(":")  # a file's path may hold ':' itself, a function's name not
    if not module_name.strip():
        raise ValueError(f"rater '{spec}' names no module: use MODULE:FUNC or FILE.py:FUNC")
    is_file = _is_file(module_name)
    try:
        module = _load_file(module_name) if is_file else _import_module(module_name)
    except (UnreadableFile, KeyboardInterrupt):
        raise
    except BaseException as exc:  # any other failure (a sys.exit() too) is the user's module's, reported plainly
        raise ValueError(f"cannot import rater module '{module_name}': {type(exc).__name__}: {exc}") from None
    target = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"module '{module_name}' has no '{attribute}'")
    if not callable(target):
        raise ValueError(f"'{spec}' is not callable")
    return target


def _import_module(module_name: str):
    # Modules in the current folder are importable, as with `python -m`, without setting PYTHONPATH.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    _check_module_readable(module_name)
    return importlib.import_module(module_name)


def _load_file(path: str):
    """The module the Python file at `path` holds, run once however many raters name it (as an import
    would be). Its folder is appended to the import path, so that it imports the modules beside it as it
    would when run with `python FILE`, without hiding any other module."""
    check_readable([path], "the rater module ")
    resolved = Path(path).resolve()
    name = f"crowdtune_rater_file:{resolved}"  # not a name an import could ever take
    if name in sys.modules:
        return sys.modules[name]
    if str(resolved.parent) not in sys.path:
        sys.path.append(str(resolved.parent))
    found = importlib.util.spec_from_file_location(name, resolved, loader=importlib.machinery.SourceFileLoader(name, str(resolved)))
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module  # before it runs, as an import does (dataclasses and pickle look it up)
    try:
        found.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _check_module_readable(module_name: str) -> None:
    """UnreadableFile (exit code FILE, as for any file named on the command line) when the module is not
    there or its file cannot be read; found before it is imported, so a module that fails as it runs is
    told apart (its parent packages are imported to find it)."""
    try:
        found = importlib.util.find_spec(module_name)
    except ModuleNotFoundError as missing:
        if not f"{module_name}.".startswith(f"{missing.name}."):
            raise  # a module that a parent package imports is missing: that package's problem
        found = None
    if found is None:
        raise UnreadableFile(
            f"cannot read the rater module {module_name} (no such file: no {module_name.replace('.', '/')}.py in the "
            "current folder or on the Python path)"
        )
    if found.has_location and found.origin:
        check_readable([found.origin], "the rater module ")


class RaterError(ValueError):
    """A rater raised, or returned something other than a number from 1 to 10; the message names the
    rater, the round and what it returned."""


def _checked(rater: NamedRater, midi: mido.MidiFile, number: int) -> float:
    (value,) = _checked_ratings(rater, lambda: [rater.rate(midi)], number)
    return value


def _checked_ratings(rater: NamedRater, rate: Callable[[], list], number: int) -> list[float]:
    """What `rate()` returns, each a rating from 1 to 10, or a RaterError naming the rater and the round."""
    try:
        values = rate()
    except KeyboardInterrupt:  # Ctrl-C while it ran: the user's, not the rater's
        raise
    except BaseException as exc:  # the rater's own bug (a sys.exit() too), reported as such
        raise RaterError(f"rater '{rater.name}' failed in round {number}: {type(exc).__name__}: {exc}") from None
    for value in values:
        # bool is a Real too, but True is not a rating; NaN fails the range comparison.
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 1 <= value <= 10:
            raise RaterError(f"rater '{rater.name}' returned {value!r} in round {number}: a rater returns a number from 1 to 10")
    return [float(value) for value in values]


@dataclass(frozen=True)
class _CheckedRater:
    """A rater as one round hears it: every rating checked (`_checked`), clips heard together when the
    rater can hear them so (core.raters.heard_together)."""

    rater: NamedRater
    number: int

    def __call__(self, midi: mido.MidiFile) -> float:
        return _checked(self.rater, midi, self.number)

    def together(self, midis) -> list[float]:
        from core.raters import heard_together

        return _checked_ratings(self.rater, lambda: heard_together(self.rater.rate, midis), self.number)


def ab_choice(
    rater: NamedRater, midi_a: mido.MidiFile, midi_b: mido.MidiFile, number: int, before: mido.MidiFile | None = None
) -> str:
    """A rater votes for the variant it rates higher (a tie is a vote for both), or "neither" when it rates
    both below the track before them, the one it heard last."""
    from core.raters import prefer

    return prefer(_CheckedRater(rater, number), midi_a, midi_b, before)


async def run_simulation(
    conductor: Conductor,
    spec: SessionSpec,
    raters: list[NamedRater],
    out_dir: Path | None,
    scope_id: str,
    renderer=None,
    progress: Callable[[int, int, dict], None] | None = None,
    judge: Callable[[mido.MidiFile], float] | None = None,
    started: Callable[[], object] = lambda: None,
) -> dict:
    """Run a whole session with simulated raters; write its files to out_dir (if given), each round also
    as OGG Opus when a `renderer` (bot.media.render.Renderer, opened and closed by the caller) is given.
    results["stopped"] is None. Stopped early (Ctrl-C, SIGTERM, a rater's failure, a full disk: anything raised), the
    session is stopped and out_dir still gets results.json, start.mid, final.mid (and final.ogg with a `renderer`) and the
    plot for the rounds done, with `stopped` saying why (bot.stopping.why_stopped), before the exception goes on, its last note saying what was kept
    (and what a database or disk that cannot be written kept from being kept: bot.sim_files.keep_rounds_done).
    `started()` once its session is stored (its caller keeps a new database then); stopped before, nothing is left to end."""
    session: SessionRow | None = None

    def stored(row: SessionRow) -> None:
        nonlocal session
        session = row
        started()

    rounds: list[dict] = []
    total = spec.rounds or 0
    try:
        await conductor.start(scope_id, "sim", None, spec, actor="simulate", scope_name=scope_id, started=stored)
        while (open_round := await conductor.open_round(session.id)) is not None:
            plan = open_round.plan
            midis = [track_to_midi(p.track) for p in plan.proposals]
            record: dict = {
                "index": plan.index + 1,
                "actions": [p.action.key() for p in plan.proposals],
                "descriptions": [p.description for p in plan.proposals],
            }
            try:
                if spec.mode == "ab":
                    before = track_to_midi(plan.incumbent)
                    votes = {r.name: ab_choice(r, midis[0], midis[1], plan.index + 1, before) for r in raters}
                    record["votes"] = votes
                else:
                    votes = {r.name: _checked(r, midis[0], plan.index + 1) for r in raters}
                    record["ratings"] = votes
            except RaterError:
                # Its round is cancelled with the reason in the audit log; the session is stopped below.
                await conductor.store.cancel_round(open_round.id, "simulate", "a rater failed")
                raise
            for voter, value in votes.items():
                await conductor.vote(open_round.id, voter, value)
            outcome, stopping = await _close_whole(conductor, open_round.id)
            if spec.mode == "ab":
                # An A/B reward is each edit's chance of beating the track before (scaled to 1-10 for the
                # learner): recorded as that chance, not as a reward or a score of the music. `kept` names the
                # edit the track became, or none: the crowd's favourite of the two stays only past a margin.
                record.update(
                    beat_before=[None if r is None else beat_chance(r) for r in outcome.variant_rewards],
                    kept="ab"[outcome.winner] if outcome.kept_edit else None,
                    bar=None if outcome.bar is None else beat_chance(outcome.bar),
                )
            else:
                record.update(reward=outcome.reward, bar=outcome.bar, score=outcome.incumbent_score, spread=statistics.pstdev(votes.values()))
            record["kept_edit"] = outcome.kept_edit
            if judge is not None:
                record["judge"] = judge(track_to_midi(outcome.next_track))
            # Recorded as soon as it closed (nothing above waits), before its files: a stop from here on, or a disk
            # too full for them, keeps it.
            rounds.append(record)
            if out_dir is not None:
                write_round_files(out_dir, plan.index + 1, midis, renderer)
            if progress:
                progress(len(rounds), total, record)
            if stopping is not None:
                raise stopping
            # What the agent has learned so far, counted as what it is (none for an agent that learns nothing);
            # read after the round is recorded, since it waits on the database.
            learned = await conductor.learned(scope_id, spec.agent)
            if learned is not None:
                record[learned[0]] = learned[1]
        return await write_results(conductor, spec, raters, out_dir, scope_id, session, rounds, judge, None, renderer)
    except BaseException as stop:
        # Ctrl-C (or any other failure) ends the session too: a simulation is never resumed, so it must
        # not stay active with a round open. Its open round is cancelled; nothing is learned from it.
        stopped = why_stopped(stop)
        await keep_rounds_done(
            stop, conductor, session, out_dir, len(rounds),
            lambda: write_results(conductor, spec, raters, out_dir, scope_id, session, rounds, judge, stopped, renderer),
        )
        raise


async def stop_interrupted(conductor: Conductor, own_scope: str) -> list[str]:
    """Stop the simulations left active by a process that ended without stopping them (SIGKILL, a crash, a power
    cut: a signal's clean end stops its own), as none is ever resumed; the lines that say so. Only those whose
    scope this process can hold (claim_scope: on SQLite, the one-run lock it already holds; on PostgreSQL, the
    scope's lock, which a simulation running beside holds), so a running one is never stopped."""
    store = conductor.store
    simulations = {scope_id for scope_id, kind, _ in await store.scopes() if kind == "sim" and scope_id != own_scope}
    lines = []
    for session in await store.active_sessions():
        if session.scope_id not in simulations:
            continue
        try:
            await store.claim_scope(session.scope_id)
        except StorageError:  # its simulation runs now, in another process
            continue
        if await conductor.stop(session.id, "simulate") is not None:
            rounds = SessionSpec.from_dict(session.spec).rounds
            lines.append(f"session {session.id}, a simulation interrupted after {session.rounds_done} of {rounds} rounds "
                         "(its process ended without stopping it), is stopped now")
    return lines


async def _close_whole(conductor: Conductor, round_id: int) -> tuple[Outcome, asyncio.CancelledError | None]:
    """Close a round: its outcome, and the stop (a signal's cancellation) that came meanwhile, if one did. The close
    is waited for to its end all the same (the database may have committed it already), so that the caller records
    the round before it lets the stop go on: results.json then holds every round the database closed."""
    closing = asyncio.ensure_future(conductor.close(round_id, actor="simulate"))
    try:
        return await asyncio.shield(closing), None
    except asyncio.CancelledError as stop:
        await asyncio.wait([closing])
        return closing.result(), stop


def report(results: dict, judged_by: str | None = None) -> str:
    """What a simulation measured, in words, for its mode: in rating mode the crowd's (or one rater's) verdict on each proposal
    (1-10) in the first and the last tenth of the rounds (at least one round each, named by their number); in
    A/B mode the share of votes that preferred an
    edit to the track before (an A/B round gives no 1-10 verdict); then how many rounds kept an edit and,
    with `judged_by` (the crowd whose noise-free judge scored the run: results["judged"]), the judge's score
    of the starting and the final track."""
    rounds = results["rounds"]
    tenth = max(1, len(rounds) // 10)
    span = "round" if tenth == 1 else f"{tenth} rounds"
    parts = {f"the first {span}": rounds[:tenth], f"the last {span}": rounds[-tenth:]} if len(rounds) > 1 else {"its one round": rounds}
    if results["spec"]["mode"] == "ab":
        shares = {}
        for name, part in parts.items():
            votes = [v for r in part for v in r["votes"].values()]
            shares[name] = f"{sum(v != 'neither' for v in votes) / len(votes):.0%}" if votes else "none"
        words = ["votes preferring an edit to the track before: " + ", ".join(f"{share} in {name}" for name, share in shares.items())]
    else:
        means = {}
        for name, part in parts.items():
            verdicts = [r["reward"] for r in part if r["reward"] is not None]
            means[name] = rating_text(statistics.fmean(verdicts)) if verdicts else "none"
        # One rater is no crowd: its verdict is named as its own, a built-in one's by its name ("the theorist's"),
        # another by what it is ("the rater mymodule:my_rater", to which no 's can be added).
        raters = {name for r in rounds for name in r.get("ratings", {})}
        verdict = "the crowd's verdict" if len(raters) != 1 else _one_raters_verdict(next(iter(raters)))
        words = [f"{verdict} on each proposal: " + ", ".join(f"{mean} on average in {name}" for name, mean in means.items())]
    words.append(f"an edit kept in {sum(r['kept_edit'] for r in rounds)} of {plural(len(rounds), 'round')}")
    if judged_by is not None and "judged" in results:
        start, final = results["judged"]["start"], results["judged"]["final"]
        words.append(f"the {judged_by} crowd's noise-free judge scores the starting track {rating_text(start)} and the final one {rating_text(final)}")
    return "; ".join(words)


def _one_raters_verdict(name: str) -> str:
    """A single rater's verdict, in words: "the theorist's verdict" (a built-in rater), "the verdict of the rater
    mymodule:my_rater" (MODULE:FUNC or PATH.py:FUNC)."""
    from core.raters import BUILTIN_RATERS

    return f"the {name}'s verdict" if name in BUILTIN_RATERS else f"the verdict of the rater {name}"
