"""`crowdtune bench learning`: how fast each preset learns from a crowd.

It answers "how fast does each preset learn from a crowd?" with simulated crowds driven
through the code users run: the conductor, the engine and SQLite storage (an in-memory database per
run). The crowd is the built-in one (six honest tastes with noise, a troll and a brigader); the quality
of a track is judged by the noise-free consensus of the honest tastes, which the agent never sees.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

WORKERS = 2  # the machine CI runs on has two cores
NOISE = 0.8  # standard deviation of each honest rater's noise, on the 1-10 scale
CHECKPOINTS = (10, 30, 100)  # rounds after which the table shows the quality
TARGET_ROUNDS = 25  # the target: default within 25 rounds reaches what paper reaches after 100
# "Rounds to target" counts rounds to this judged quality: a track the honest crowd rates 6/10, one point
# above where random starting tracks are.
TARGET_QUALITY = 6.0
EARLIER_SEED_OFFSET = 1_000_000  # the earlier session's starting track comes from seeds no session uses


@dataclass(frozen=True)
class Variant:
    """One line of the table: a preset, optionally with one option changed."""

    label: str
    preset: str
    group: str  # the plot panel it is drawn in
    what: str
    mode: str = "rating"
    exploration: str | None = None
    state: str | None = None
    keep_best: bool | None = None
    aggregate: str = "robust"  # "robust" (the conductor's default) or "mean" (the plain mean)
    extra_raters: tuple[str, ...] = ()  # joining the built-in crowd, e.g. more brigaders and trolls
    # Rounds of an earlier session (on another starting track, same crowd) in the same scope, so the agent
    # arrives with what it learned there: does it carry over to a new track?
    earlier_rounds: int = 0


PRESETS_GROUP, AGENT_GROUP, CROWD_GROUP = "presets", "exploration and state", "crowd, aggregation, keeping"
ATTACK = ("brigader", "brigader", "brigader", "troll", "troll")

VARIANTS = (
    Variant("random", "random", PRESETS_GROUP, "edits at random and keeps every edit: the baseline"),
    Variant("paper", "paper", PRESETS_GROUP, "the paper's agent, its bugs fixed"),
    Variant("default", "default", PRESETS_GROUP, "the best found: context state, epsilon-greedy 0.2, robust aggregation, keep-best"),
    Variant("theory", "theory", PRESETS_GROUP, "default with the music-theory prior"),
    Variant("default, A/B", "default", PRESETS_GROUP, "A/B rounds (two edits, Bradley-Terry)", mode="ab"),
    Variant("default, softmax", "default", AGENT_GROUP, "softmax (Boltzmann), temperature 0.1", exploration="softmax"),
    Variant("default, epsilon_decay", "default", AGENT_GROUP, "epsilon 0.2 decaying by 0.95 a round", exploration="epsilon_decay"),
    Variant("default, ucb", "default", AGENT_GROUP, "UCB1, c = 0.3", exploration="ucb"),
    Variant("default, track state", "default", AGENT_GROUP, "the whole track as the state (the paper's)", state="track"),
    Variant("default, relative state", "default", AGENT_GROUP, "the whole track relative to its base note", state="relative"),
    Variant("default, 2nd session", "default", AGENT_GROUP, "after a 100-round session on another track in the same scope", earlier_rounds=100),
    Variant("default, mean", "default", CROWD_GROUP, "the plain mean instead of the robust aggregation", aggregate="mean"),
    Variant("default, no keep-best", "default", CROWD_GROUP, "every edit stays, even when rated lower", keep_best=False),
    Variant("default, attacked", "default", CROWD_GROUP, "3 more brigaders and 2 more trolls join", extra_raters=ATTACK),
    Variant("default, attacked, mean", "default", CROWD_GROUP, "the same attack, plain mean", aggregate="mean", extra_raters=ATTACK),
)


@dataclass
class Run:
    label: str
    seed: int
    quality: list[float]  # the judge's score of the session's track before round 1, then after each round
    worse: list[float]  # per round: the share of its proposals the judge scored below the track they edited
    seconds: float


@dataclass
class Summary:
    variant: Variant
    runs: list[Run] = field(default_factory=list)

    def quality_at(self, rounds: int) -> list[float]:
        return [run.quality[min(rounds, len(run.quality) - 1)] for run in self.runs]

    def mean_curve(self) -> list[float]:
        return [statistics.fmean(values) for values in zip(*(run.quality for run in self.runs))]

    def rounds_to(self, target: float) -> list[int | None]:
        return [next((i for i, q in enumerate(run.quality) if q >= target), None) for run in self.runs]

    def worse_share(self) -> float:
        return statistics.fmean(statistics.fmean(run.worse) for run in self.runs)


def simulate_one(variant: Variant, seed: int, rounds: int) -> Run:
    """One session of `rounds` rounds with the built-in crowd, through conductor, engine and SQLite."""
    return asyncio.run(_simulate_one(variant, seed, rounds))


async def _simulate_one(variant: Variant, seed: int, rounds: int) -> Run:
    from bot.conductor import Conductor
    from bot.simulate import load_raters, run_simulation
    from core.actions import Action, apply
    from core.crowd import mean_rating, robust_rating
    from core.engine import SessionSpec
    from core.midi import track_to_midi
    from core.raters import consensus_score
    from storage import open_store

    started = time.perf_counter()
    spec = SessionSpec(
        mode=variant.mode, preset=variant.preset, rounds=rounds, seed=seed,
        exploration=variant.exploration, state=variant.state, keep_best=variant.keep_best,
    )
    # The crowd (its members and their noise generators) depends on the seed only: every variant meets it.
    raters = load_raters(["crowd", *variant.extra_raters], random.Random(f"crowd:{seed}"), NOISE)
    aggregate = mean_rating if variant.aggregate == "mean" else robust_rating
    store = await open_store(":memory:")
    try:
        conductor = Conductor(store, aggregate)
        if variant.earlier_rounds:
            earlier = replace(spec, rounds=variant.earlier_rounds, seed=EARLIER_SEED_OFFSET + seed)
            await run_simulation(conductor, earlier, raters, None, f"bench:{seed}")
        results = await run_simulation(conductor, spec, raters, None, f"bench:{seed}", judge=consensus_score)
    finally:
        await store.close()

    judged: dict = {}

    def judge(track) -> float:
        if track not in judged:
            judged[track] = consensus_score(track_to_midi(track))
        return judged[track]

    track = spec.first_track()
    quality, worse = [judge(track)], []
    for record in results["rounds"]:
        proposals = [apply(track, Action.from_key(key)) for key in record["actions"]]
        worse.append(statistics.fmean(judge(p) < judge(track) for p in proposals))
        if record["kept_edit"]:
            track = proposals["ab".index(record["winner"]) if record["winner"] else 0]
        quality.append(judge(track))
        # The replay must follow the session exactly, or the worse-edit share would be about other tracks.
        if abs(quality[-1] - record["judge"]) > 1e-9:
            raise RuntimeError(f"the replay of {variant.label}, seed {seed}, diverged from the session at round {record['index']}")
    return Run(variant.label, seed, quality, worse, time.perf_counter() - started)


def _simulate_job(job: tuple[Variant, int, int]) -> Run:
    return simulate_one(*job)


def run_all(variants: tuple[Variant, ...], seeds: int, rounds: int, workers: int = WORKERS, progress=None) -> list[Summary]:
    summaries = {v.label: Summary(v) for v in variants}
    jobs = [(v, seed, rounds) for seed in range(seeds) for v in variants]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done, run in enumerate(pool.imap_unordered(_simulate_job, jobs), 1):
            summaries[run.label].runs.append(run)
            if progress:
                progress(done, len(jobs))
    for summary in summaries.values():
        summary.runs.sort(key=lambda r: r.seed)
    return list(summaries.values())


# --- the report --------------------------------------------------------------------------------------


def describe_machine() -> dict[str, str]:
    def first(path: str, prefix: str) -> str | None:
        try:
            return next((line.split(":", 1)[1].strip() for line in Path(path).read_text().splitlines() if line.startswith(prefix)), None)
        except OSError:
            return None

    memory = first("/proc/meminfo", "MemTotal")
    return {
        "cores (nproc)": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "CPU": first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "RAM": f"{int(memory.split()[0]) / 1024**2:.1f} GiB" if memory else "unknown",
        "Python": platform.python_version(),
        "OS": f"{platform.system()} {platform.release()}",
    }


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {sd:.2f}"


def _median_rounds(rounds: list[int | None], limit: int) -> str:
    """The median over seeds (a seed that never got there counts as later than the last round), and how many got there."""
    median = statistics.median(limit + 1 if r is None else r for r in rounds)
    shown = f">{limit}" if median > limit else f"{median:g}"
    return f"{shown} ({sum(r is not None for r in rounds)}/{len(rounds)})"


def checkpoints_for(rounds: int) -> list[int]:
    """The rounds after which the table shows the quality: the CHECKPOINTS a run reaches, and its last."""
    return [c for c in CHECKPOINTS if c < rounds] + [rounds]


def table(summaries: list[Summary], rounds: int) -> str:
    checkpoints = checkpoints_for(rounds)
    header = ["preset / option", "start", *(f"quality@{c}" for c in checkpoints), f"rounds to {TARGET_QUALITY:g} (seeds)", "worse edits"]
    rows = [header, ["---"] * len(header)]
    for s in summaries:
        rows.append(
            [
                s.variant.label,
                f"{statistics.fmean(s.quality_at(0)):.2f}",
                *(_mean_sd(s.quality_at(c)) for c in checkpoints),
                _median_rounds(s.rounds_to(TARGET_QUALITY), rounds),
                f"{100 * s.worse_share():.0f}%",
            ]
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def verdict(summaries: list[Summary], rounds: int) -> tuple[bool, str]:
    """Whether default reaches within TARGET_ROUNDS what paper reaches at the end, and is never behind random.

    "Behind" is judged per round on the paired differences over seeds (same seed: same starting track and
    crowd): behind when the mean difference is below zero by more than two standard errors. Where both
    still edit almost at random (the first rounds), a raw mean can dip below by chance.
    """
    by = {s.variant.label: s for s in summaries}
    default, paper, rand = by["default"], by["paper"], by["random"]
    within = min(TARGET_ROUNDS, rounds)
    goal = statistics.fmean(paper.quality_at(rounds))
    reached = statistics.fmean(default.quality_at(within))
    gaps = []
    for i in range(rounds + 1):
        differences = [d - r for d, r in zip(default.quality_at(i), rand.quality_at(i))]
        error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else 0.0
        gaps.append((statistics.fmean(differences), error))
    behind = [i for i, (gap, error) in enumerate(gaps) if gap < -2 * error]
    below = [i for i, (gap, _) in enumerate(gaps) if gap < 0]
    met = reached >= goal and not behind
    worst = min(range(len(gaps)), key=lambda i: gaps[i][0])
    lines = [
        f"default after {within} rounds: {reached:.2f}; paper after {rounds}: {goal:.2f} "
        f"({'reached' if reached >= goal else f'short by {goal - reached:.2f}'}).",
        f"default is behind random at {len(behind)} of {rounds + 1} points of the curve (more than two standard errors);",
        f"its mean is below random's at {len(below)} (largest gap {gaps[worst][0]:+.3f} ± {gaps[worst][1]:.3f} after round {worst})."
        if below
        else "its mean is never below random's.",
    ]
    return met, " ".join(lines)


def plot(summaries: list[Summary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    groups = list(dict.fromkeys(s.variant.group for s in summaries))
    references = ("default", "random")
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 5), sharey=True, squeeze=False)
    for axis, group in zip(axes[0], groups):
        shown = [s for s in summaries if s.variant.group == group or s.variant.label in references]
        for s in shown:
            curve = s.mean_curve()
            reference = s.variant.group != group
            line, = axis.plot(range(len(curve)), curve, label=s.variant.label, linewidth=2.2 if s.variant.label == "default" else 1.3,
                              linestyle=":" if reference else "-", color="black" if reference and s.variant.label == "default" else None)
            if group == groups[0]:
                sd = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in zip(*(r.quality for r in s.runs))]
                axis.fill_between(range(len(curve)), [m - d for m, d in zip(curve, sd)], [m + d for m, d in zip(curve, sd)],
                                  color=line.get_color(), alpha=0.1)
        axis.axhline(TARGET_QUALITY, color="grey", linewidth=0.8, linestyle="--")
        axis.set_title(group + (" (band: ± 1 sd over seeds)" if group == groups[0] else ""))
        axis.set_xlabel("round")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel("quality of the session's track (noise-free judge, 1-10)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) one `## heading` section of a Markdown file, leaving the others alone."""
    lines = path.read_text().splitlines() if path.exists() else ["# Benchmarks"]
    section = [f"## {heading}", "", *body.strip().splitlines(), ""]
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {heading}"), None)
    if start is None:
        lines += ["", *section]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    path.write_text("\n".join(lines).rstrip() + "\n")


def findings(summaries: list[Summary], rounds: int) -> list[str]:
    """What the table says, in sentences whose numbers and verdicts are computed (so they cannot go stale)."""
    by = {s.variant.label: s for s in summaries}

    def at(label: str, r: int = rounds) -> float:
        return statistics.fmean(by[label].quality_at(r))

    def versus(a: str, b: str) -> str:
        """a vs b after the last round, with the paired difference over seeds and whether it is beyond noise."""
        differences = [x - y for x, y in zip(by[a].quality_at(rounds), by[b].quality_at(rounds))]
        gap = statistics.fmean(differences)
        error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else 0.0
        word = "level within noise" if abs(gap) <= 2 * error else "ahead" if gap > 0 else "behind"
        return f"{at(a):.2f} vs {at(b):.2f} ({word}: {gap:+.2f} ± {error:.2f} paired over seeds)"

    early = min(TARGET_ROUNDS, rounds)
    return [
        f"- `paper` goes from {at('paper', 0):.2f} to {at('paper'):.2f}: it keeps every edit, most edits of a track are "
        "for the worse, and its whole-track state never repeats, so it cannot learn which. That makes the issue's "
        f"target easy to meet; `default` is at {at('default', early):.2f} after {early} rounds, from {at('default', 0):.2f}.",
        f"- Keeping the best: `default` {versus('default', 'default, no keep-best')} when every edit is kept.",
        f"- Robust aggregation: `default` {versus('default', 'default, mean')} with the plain mean. Attacked by three more "
        f"brigaders and two more trolls: {versus('default, attacked', 'default, attacked, mean')}.",
        f"- State: the neighbourhood of the edited note {versus('default', 'default, track state')} with the paper's "
        "whole track (the relative track is the same here: one key). After an earlier session on another track in the "
        f"same scope: {versus('default, 2nd session', 'default')} without one.",
        f"- Exploration, against epsilon-greedy: softmax {versus('default, softmax', 'default')}; decaying epsilon "
        f"{versus('default, epsilon_decay', 'default')}; UCB1 {versus('default, ucb', 'default')}.",
        f"- The theory prior: {versus('theory', 'default')}, and {at('theory', min(10, rounds)):.2f} after {min(10, rounds)} rounds. The simulated "
        "tastes share the critic's core, so this benchmark flatters it: it is a preset of its own, not part of `default`.",
        f"- A/B rounds: {versus('default, A/B', 'default')} with rating rounds. The simulated voters answer a, b or both, "
        "never neither, so no A/B edit is ever undone.",
    ]


def report(summaries: list[Summary], seeds: int, rounds: int, machine: dict[str, str], command: str, timing: str) -> tuple[bool, str]:
    met, note = verdict(summaries, rounds)
    options = "; ".join(f"`{s.variant.label}`: {s.variant.what}" for s in summaries)
    body = f"""
How fast each preset learns from a crowd. Each session starts from a random 8-note track in C major (the seed
picks it) and runs {rounds} rounds in rating mode unless noted, with the built-in simulated crowd: six honest
tastes (theorist, calm, energetic, harmonist, groove, melodist), each with Gaussian noise (sd {NOISE}), a troll
who rates the mirror image of the honest consensus, and a brigader who always gives 10. Sessions go through the
conductor, the engine and SQLite (in memory) like the bot's. The quality of the session's current track is
judged by the noise-free mean of the honest tastes (`core.raters.consensus_score`), which nothing trains on.

- Command: `{command}`
- Machine: {"; ".join(f"{k} {v}" for k, v in machine.items())}
- {len(summaries)} presets/options x {seeds} seeds, {WORKERS} worker processes; {timing}.

Quality after {" and ".join(", ".join(map(str, checkpoints_for(rounds))).rsplit(", ", 1))} rounds: mean ± sd over seeds. *Rounds to {TARGET_QUALITY:g}*: the median round at
which the session's track first reaches a judged {TARGET_QUALITY:g}, and how many seeds got there. *Worse edits*: the share
of proposed edits that the judge scores below the track they edited, the rounds the crowd spends on something worse.

{table(summaries, rounds)}

What each line is: {options}.

What it shows:

{chr(10).join(findings(summaries, rounds))}

**Target** (default reaches within {TARGET_ROUNDS} rounds the quality paper reaches after {rounds}, and is never
worse than random): {"met" if met else "not met"}. {note}

![learning curves](learning.png)
"""
    return met, body


def bench_learning(seeds: int, rounds: int, out: Path) -> int:
    from bot.progress import progress_bar

    machine = describe_machine()
    command = f"crowdtune bench learning --seeds {seeds} --rounds {rounds} --out {out}"
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
    print(f"{len(VARIANTS)} presets/options x {seeds} seeds x {rounds} rounds on {WORKERS} worker processes", flush=True)

    started = time.perf_counter()
    with progress_bar(len(VARIANTS) * seeds, "bench learning", "session") as bar:
        summaries = run_all(VARIANTS, seeds, rounds, WORKERS, lambda done, total: bar.update(done - bar.n))
    wall = time.perf_counter() - started
    session_seconds = statistics.fmean(run.seconds for s in summaries for run in s.runs)
    timing = f"wall time {wall:.0f} s, {session_seconds:.2f} s per session in one process"
    met, body = report(summaries, seeds, rounds, machine, command, timing)
    print(table(summaries, rounds))
    print(verdict(summaries, rounds)[1])
    print(f"target {'met' if met else 'NOT met'}; {timing}")

    out.mkdir(parents=True, exist_ok=True)
    plot(summaries, out / "learning.png", f"crowdtune bench learning: {seeds} seeds, built-in crowd (noise {NOISE}), judged noise-free")
    write_section(out / "BENCHMARKS.md", "Learning", body)
    print(f"wrote {out / 'BENCHMARKS.md'} and {out / 'learning.png'}")
    return 0 if met else 1
