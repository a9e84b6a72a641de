"""`crowdtune bench learning`: how much each preset learns from a crowd, measured against hill-climbing.

Simulated crowds vote through the code users run: the conductor, the engine and SQLite storage (an
in-memory database per session). Two crowds: `builtin` (six tastes that share the music-theory critic's
core, a troll, a brigader) and `contrarian` (five tastes that run against that critic, its own troll, a
brigader). A track's quality is judged by its crowd's noise-free scorer (the honest tastes' mean without
noise), which nothing trains on; a personal agent's by its one rater's taste without noise.

Every figure is paired: the same seed gives the same starting track and the same crowd (members and noise)
to every preset, so differences are taken seed by seed and reported as mean ± half-width of a 95% interval.

Why this module is long: one benchmark's settings, runs, paired statistics, the issue's targets and its report
belong together; split, each part would need the others' dataclasses.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.bench.verdicts import AT_LEAST, AT_MOST, NOT_BELOW, Verdict, judge, summary, worst
from bot.bench.verdicts import line as verdict_line
from bot.stopping import fork_pool
from storage.files import replacing, write_whole

WORKERS = 2  # the machine CI runs on has two cores
NOISE = 0.8  # standard deviation of each honest rater's noise, on the 1-10 scale
# "default, A/B, shared noise": half of the noise variance shared by clips heard together. Nothing measured
# this crowd's share; the line shows how much the A/B target's verdict depends on it.
SHARED_NOISE = NOISE / math.sqrt(2)
CROWDS = ("builtin", "contrarian")
CHECKPOINTS = (10, 30, 100)  # rounds after which the tables show the quality
EARLY = 30  # "the first rounds": the better-edit share and the main comparison are taken here
TARGET_SEEDS = 20  # the targets are judged over at least this many seeds
RULE = (f"met when the whole 95% interval clears the goal, not met when it all misses it, undecided when the goal is inside it, "
        f"not judged with fewer than {TARGET_SEEDS} seeds; 'not below ... beyond noise' is met unless the interval is all below")
TARGETS_PER_CROWD = 7  # what `targets` judges on a crowd when every line ran
CARRY_ROUNDS = 10  # a second session is compared with a fresh one after this many rounds
EARLIER_ROUNDS = 30  # rounds of the earlier session in the same scope (an evening's worth of ratings)
EARLIER_SEED_OFFSET = 1_000_000  # the earlier session's starting track comes from seeds no session uses
# A second session moves to another key and scale (by seed); its starting track is new as well.
OTHER_KEYS = ((62, "dorian"), (57, "minor"), (65, "mixolydian"), (55, "harmonic_minor"), (64, "phrygian"))
T95 = {n: t for n, t in ((2, 12.71), (3, 4.30), (4, 3.18), (5, 2.78), (6, 2.57), (8, 2.36), (10, 2.26), (15, 2.14), (20, 2.09), (30, 2.05), (40, 2.02))}


@dataclass(frozen=True)
class Variant:
    """One line of a crowd's table: a preset in a setting."""

    label: str
    preset: str
    what: str
    mode: str = "rating"
    exploration: str | None = None
    state: str | None = None
    keep_best: bool | None = None
    aggregate: str = "robust"  # "robust" (the conductor's default) or "mean" (the plain mean)
    attacked: bool = False  # 3 more brigaders and 2 more of the crowd's trolls join
    personal: bool = False  # one noisy rater (a taste of the crowd, by seed) instead of the crowd
    earlier_rounds: int = 0  # an earlier session in the same scope (C major, another track) first
    other_key: bool = False  # the session is in another key and scale (OTHER_KEYS)
    shared_noise: float = 0.0  # the part of each rater's noise (sd) that the clips of one A/B vote share


VARIANTS = (
    Variant("hillclimb", "hillclimb", "random edits, default's aggregation, keep-best and undo bar; learns nothing: the baseline"),
    Variant("default", "default", "Bayesian linear model of each edit's improvement over its features, Thompson sampling"),
    Variant("context", "context", "the former default: tabular Q-learning over note contexts, epsilon 0.2"),
    Variant("theory", "theory", "default plus the theory critic's verdict as a feature whose weight starts at 1"),
    Variant("paper", "paper", "the paper's agent, its bugs fixed (keeps every edit)"),
    Variant("random", "random", "random edits, every edit kept"),
    Variant("default, A/B", "default", "A/B rounds: two Thompson draws, 'neither' keeps the track before", mode="ab"),
    Variant("hillclimb, A/B", "hillclimb", "A/B rounds with two random edits", mode="ab"),
    Variant("default, A/B, shared noise", "default",
            "A/B rounds where half of each listener's noise variance is shared by the clips of one vote (heard together), "
            "which a comparison cancels and a lone rating does not (rating rounds are unchanged by it)",
            mode="ab", shared_noise=SHARED_NOISE),
    Variant("default, attacked", "default", "3 more brigaders and 2 more trolls join", attacked=True),
    Variant("hillclimb, attacked", "hillclimb", "the same attack", attacked=True),
    Variant("default, personal", "default", "one noisy rater (a taste of the crowd, by seed), judged by that taste", personal=True),
    Variant("hillclimb, personal", "hillclimb", "the same single rater", personal=True),
    Variant("default, fresh, other key", "default", "a fresh scope, in another key and scale", other_key=True),
    Variant("default, 2nd session, other key", "default",
            f"the same, after a {EARLIER_ROUNDS}-round session in C major in the same scope", other_key=True, earlier_rounds=EARLIER_ROUNDS),
    Variant("hillclimb, 2nd session, other key", "hillclimb", "the same for hillclimb (a control: it learns nothing)",
            other_key=True, earlier_rounds=EARLIER_ROUNDS),
)
ATTACK = ("brigader", "brigader", "brigader")  # plus two of the crowd's own trolls
INFORMATION_PAIRS = 30  # pairs of random edits of each seed's starting track (vote_information)
BAR_ROUNDS = 10  # rounds of ratings of the track before that make a well-known bar
BOOTSTRAP_RESAMPLES = 1000  # for vote_information's 95% intervals
# vote_information costs a fraction of a session per seed, so the bench gives it this many times its seeds
INFORMATION_SEED_FACTOR = 5


@dataclass
class Run:
    label: str
    crowd: str
    seed: int
    quality: list[float]  # the judge's score of the session's track before round 1, then after each round
    better: list[float]  # per round: the share of its proposals the judge scored above the track they edited
    worse: list[float]  # per round: ... below
    final_length: int  # notes in the track the session ends on
    too_long: bool  # the judge prefers removing some note of the final track to every note added
    seconds: float


@dataclass
class Summary:
    variant: Variant
    crowd: str
    runs: list[Run] = field(default_factory=list)

    def quality_at(self, rounds: int) -> list[float]:
        return [run.quality[min(rounds, len(run.quality) - 1)] for run in self.runs]

    def mean_curve(self) -> list[float]:
        return [statistics.fmean(values) for values in zip(*(run.quality for run in self.runs))]

    def share(self, which: str, rounds: int = EARLY) -> float:
        return statistics.fmean(statistics.fmean(getattr(run, which)[:rounds]) for run in self.runs)


def _crowd_raters(variant: Variant, crowd: str, seed: int):
    """The raters and the judge of a session: the crowd depends on the seed only, so every variant meets it."""
    from bot.simulate import NamedRater, load_raters
    from core.raters import CROWD_MEMBERS, CROWDS as TASTES, Heard, judge, make_rater

    rng = random.Random(f"crowd:{crowd}:{seed}")
    if variant.personal:
        tastes = list(TASTES[crowd])
        name = tastes[seed % len(tastes)]
        taste = TASTES[crowd][name]
        return [NamedRater(name, make_rater(name, rng, NOISE))], lambda midi: taste(Heard(midi))
    troll = CROWD_MEMBERS[crowd][-2]
    extra = [*ATTACK, troll, troll] if variant.attacked else []
    return load_raters(["crowd", *extra], rng, NOISE, crowd, variant.shared_noise), judge(crowd)


def simulate_one(variant: Variant, seed: int, rounds: int, crowd: str = "builtin") -> Run:
    """One session of `rounds` rounds, through conductor, engine and SQLite."""
    return asyncio.run(_simulate_one(variant, seed, rounds, crowd))


async def _simulate_one(variant: Variant, seed: int, rounds: int, crowd: str) -> Run:
    from bot.conductor import Conductor
    from bot.simulate import run_simulation
    from core.actions import Action, Kind, apply, legal_actions
    from core.crowd import mean_rating, robust_rating
    from core.engine import RoundPlan, SessionSpec
    from core.midi import track_to_midi
    from storage import open_store

    started = time.perf_counter()
    base, scale = OTHER_KEYS[seed % len(OTHER_KEYS)] if variant.other_key else (60, "major")
    spec = SessionSpec(
        base=base, scale=scale, mode=variant.mode, preset=variant.preset, rounds=rounds, seed=seed,
        exploration=variant.exploration, state=variant.state, keep_best=variant.keep_best,
    )
    raters, judge_midi = _crowd_raters(variant, crowd, seed)
    aggregate = mean_rating if variant.aggregate == "mean" else robust_rating
    store = await open_store(":memory:")
    scope = f"bench:{crowd}:{seed}"
    try:
        conductor = Conductor(store, aggregate)
        if variant.earlier_rounds:
            earlier = replace(spec, base=60, scale="major", rounds=variant.earlier_rounds, seed=EARLIER_SEED_OFFSET + seed)
            await run_simulation(conductor, earlier, raters, None, scope)
        results = await run_simulation(conductor, spec, raters, None, scope, judge=judge_midi)
        # The session's own starting track: a scope that was rated opens a new one with edits (core.agent.opening).
        first = (await store.rounds_of(results["session"]))[0]
        start = RoundPlan.from_dict(first.plan).incumbent
    finally:
        await store.close()

    judged: dict = {}

    def judge(track) -> float:
        if track not in judged:
            judged[track] = judge_midi(track_to_midi(track))
        return judged[track]

    track = start
    quality, better, worse = [judge(track)], [], []
    for record in results["rounds"]:
        proposals = [apply(track, Action.from_key(key)) for key in record["actions"]]
        better.append(statistics.fmean(judge(p) > judge(track) + 1e-9 for p in proposals))
        worse.append(statistics.fmean(judge(p) < judge(track) - 1e-9 for p in proposals))
        if record["kept_edit"]:
            track = proposals["ab".index(record["kept"]) if "kept" in record else 0]  # a rating round has one
        quality.append(judge(track))
        # The replay must follow the session exactly, or the edit shares would be about other tracks.
        if abs(quality[-1] - record["judge"]) > 1e-9:
            raise RuntimeError(f"the replay of {variant.label}, seed {seed}, diverged from the session at round {record['index']}")
    edits = legal_actions(track, (Kind.REMOVE, Kind.ADD_NOTE))
    removed = max((judge(apply(track, a)) for a in edits if a.kind is Kind.REMOVE), default=-1.0)
    added = max((judge(apply(track, a)) for a in edits if a.kind is Kind.ADD_NOTE), default=-1.0)
    return Run(variant.label, crowd, seed, quality, better, worse, len(track.notes),
               removed > max(added, judge(track)), time.perf_counter() - started)


def _simulate_job(job: tuple[Variant, int, int, str]) -> Run:
    return simulate_one(*job)


def run_all(variants, crowds, seeds: int, rounds: int, workers: int = WORKERS, progress=None, first_seed: int = 0) -> list[Summary]:
    """Every variant on every crowd for seeds first_seed .. first_seed + seeds - 1."""
    summaries = {(v.label, c): Summary(v, c) for c in crowds for v in variants}
    jobs = [(v, seed, rounds, c) for seed in range(first_seed, first_seed + seeds) for c in crowds for v in variants]
    with fork_pool(workers) as pool:
        for done, run in enumerate(pool.imap_unordered(_simulate_job, jobs), 1):
            summaries[(run.label, run.crowd)].runs.append(run)
            if progress:
                progress(done, len(jobs))
    for summary in summaries.values():
        summary.runs.sort(key=lambda r: r.seed)
    return list(summaries.values())


# --- the report --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteInformation:
    """How much one round of a crowd's votes says about an edit: the squared correlation (R²), over `edits`
    random edits of the seeds' starting tracks, between the round's evidence and the edit's judged change
    (the crowd's noise-free judge of the edited track minus that of the track before)."""

    crowd: str
    edits: int
    rating_one_round: float  # the verdict on the edit minus a verdict on the track before, one round each
    rating_known_bar: float  # the verdict on the edit minus the track before's mean verdict over BAR_ROUNDS rounds
    ab: float  # an A/B round's chance that the edit beats the track before (`core.crowd.ab_tally`)
    # 95% intervals of ab_round_share against each bar (one round, well-known), bootstrapped over seeds
    intervals: tuple[tuple[float, float], tuple[float, float]] = ((math.nan, math.nan), (math.nan, math.nan))

    @staticmethod
    def bits(r2: float) -> float:
        """R² as information in bits, -1/2 log2(1 - R²): the mutual information of two jointly Gaussian
        variables (Cover and Thomas, Elements of Information Theory, 2nd ed., eq. 8.56); an approximation
        here, since many edits change nothing the judge hears."""
        return -0.5 * math.log2(1.0 - min(r2, 1.0 - 1e-12))

    def ab_round_share(self, rating_r2: float) -> float:
        """An A/B round's information about its two edits (at most twice one edit's: they share the votes)
        as a share of a rating round's about its one edit, whose evidence has `rating_r2`."""
        return 2 * self.bits(self.ab) / self.bits(rating_r2) if rating_r2 > 0 else math.nan


def _information_job(job: tuple[str, int, int]) -> list[tuple[float, float, float, float]]:
    """(judged change, rating evidence against one round, against a well-known bar, A/B chance) of each
    edit A of `pairs` random pairs of edits of one seed's starting track, its crowd voting as in a session."""
    from core.actions import apply, legal_actions
    from core.crowd import Ballot, ab_tally, robust_rating
    from core.engine import SessionSpec, beat_chance
    from core.midi import track_to_midi
    from core.raters import prefer

    crowd, seed, pairs = job
    raters, judge = _crowd_raters(next(v for v in VARIANTS if v.label == "default"), crowd, seed)  # the whole crowd
    rng = random.Random(f"information:{crowd}:{seed}")
    track = SessionSpec(seed=seed).first_track()
    before = track_to_midi(track)

    def verdict(midi) -> float:
        return robust_rating([Ballot(r.name, rating=r.rate(midi)) for r in raters]).rating

    rows = []
    for _ in range(pairs):
        edit_a, edit_b = (track_to_midi(apply(track, action)) for action in rng.sample(legal_actions(track), 2))
        rated = verdict(edit_a)
        bar = statistics.fmean(verdict(before) for _ in range(BAR_ROUNDS))
        tally = ab_tally([Ballot(r.name, choice=prefer(r.rate, edit_a, edit_b, before)) for r in raters])
        rows.append((judge(edit_a) - judge(before), rated - verdict(before), rated - bar, beat_chance(tally.rewards[0])))
    return rows


def _measured_information(crowd: str, groups: list[list[tuple[float, float, float, float]]]) -> VoteInformation:
    """VoteInformation of `_information_job`'s rows (one list a seed): each evidence's R² with the judged change."""
    rows = [row for rows in groups for row in rows]
    changes = [row[0] for row in rows]

    def r2(column: int) -> float:
        values = [row[column] for row in rows]
        if statistics.pstdev(values) == 0 or statistics.pstdev(changes) == 0:
            return 0.0
        return statistics.correlation(changes, values) ** 2

    return VoteInformation(crowd, len(rows), r2(1), r2(2), r2(3))


def vote_information(
    crowd: str, seeds: int, pairs: int = INFORMATION_PAIRS, workers: int = WORKERS, first_seed: int = 0
) -> VoteInformation:
    """How much one round's votes say about an edit, rating against A/B (`VoteInformation`), over `pairs`
    pairs of random edits of each of `seeds` seeds' starting tracks (from `first_seed`), the bench's crowd voting."""
    with fork_pool(workers) as pool:
        by_seed = pool.map(_information_job, [(crowd, seed, pairs) for seed in range(first_seed, first_seed + seeds)])

    # Seeds, not edits, are resampled: the edits of one starting track share its crowd and its judge.
    rng = random.Random(f"information:{crowd}:bootstrap")
    resampled = [_measured_information(crowd, [rng.choice(by_seed) for _ in by_seed]) for _ in range(BOOTSTRAP_RESAMPLES)]

    def interval(share) -> tuple[float, float]:
        values = sorted(v for v in map(share, resampled) if not math.isnan(v))
        if not values:
            return math.nan, math.nan
        return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]

    information = _measured_information(crowd, by_seed)
    return replace(information, intervals=(
        interval(lambda i: i.ab_round_share(i.rating_one_round)), interval(lambda i: i.ab_round_share(i.rating_known_bar)),
    ))


INFORMATION_HEADING = "### What one round's votes say about an edit"


def information_text(information: list[VoteInformation], seeds: int) -> str:
    """The report's account of `vote_information`: what was measured, and the table."""
    return f"""For each of {seeds} seeds, {INFORMATION_PAIRS} pairs of random edits of the starting track, each crowd voting once
as in a session (no history, so everyone counts fully). *R²*: the squared correlation between a round's
evidence about edit A and A's judged change; in bits, -1/2 log2(1 - R²). Rating: the crowd's verdict on A
(`robust_rating`) minus its verdict on the track before, heard in one round, or over {BAR_ROUNDS} (a well-known
bar; a rating round's bar lies between: one round's verdict, worn down by the edits undone since). A/B: A's chance
of beating the track before in an A/B round of A and B (`ab_tally`). *A/B round / rating round*: the information
an A/B round gives about its two edits (at most twice one edit's) as a share of a rating round's about its one,
against each bar (95% interval, bootstrapped over seeds). Every voter gives one vote in either round, so this
is information per vote.

""" + information_table(information)


def information_table(information: list[VoteInformation]) -> str:
    """A Markdown table of `vote_information` results, one line per crowd."""
    lines = [
        "| crowd | edits | rating, bar from one round | rating, well-known bar | A/B, each edit | A/B round / rating round |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for info in information:
        cells = [f"R² {r2:.3f} ({info.bits(r2):.3f} bits)" for r2 in (info.rating_one_round, info.rating_known_bar, info.ab)]
        shares = " / ".join(
            f"{info.ab_round_share(r2):.0%} ({lo:.0%}-{hi:.0%})"
            for r2, (lo, hi) in zip((info.rating_one_round, info.rating_known_bar), info.intervals)
        )
        lines.append(f"| {info.crowd} | {info.edits} | {' | '.join(cells)} | {shares} |")
    return "\n".join(lines)


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


def _t95(n: int) -> float:
    """Student's t for a two-sided 95% interval with n - 1 degrees of freedom (n samples)."""
    return T95.get(n) or T95[max(k for k in T95 if k <= n)] if n >= 2 else 0.0


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the seed-by-seed differences a - b and the half-width of its 95% interval: infinite for one seed,
    whose difference bounds nothing (never "beyond noise")."""
    differences = [x - y for x, y in zip(a, b)]
    if len(differences) < 2:
        return (differences[0] if differences else 0.0), math.inf
    return statistics.fmean(differences), _t95(len(differences)) * statistics.stdev(differences) / len(differences) ** 0.5


# One seed gives a mean but no spread: said so, not as a spread of 0.
ONE_SEED = "(n=1)"


def _mean_sd(values: list[float]) -> str:
    spread = f"± {statistics.stdev(values):.2f}" if len(values) > 1 else ONE_SEED
    return f"{statistics.fmean(values):.2f} {spread}"


def _versus(gap: tuple[float, float]) -> str:
    return f"{gap[0]:+.2f} {f'± {gap[1]:.2f}' if math.isfinite(gap[1]) else ONE_SEED}"


def checkpoints_for(rounds: int) -> list[int]:
    """The rounds after which the table shows the quality: the CHECKPOINTS a run reaches, and its last."""
    return [c for c in CHECKPOINTS if c < rounds] + [rounds]


def table(summaries: list[Summary], crowd: str, rounds: int) -> str:
    mine = [s for s in summaries if s.crowd == crowd]
    by = {s.variant.label: s for s in mine}
    checkpoints = checkpoints_for(rounds)
    early = min(EARLY, rounds)
    header = ["preset / setting", "start", *(f"quality@{c}" for c in checkpoints), f"vs hillclimb@{early}",
              f"better edits r1-{early}", f"worse edits r1-{early}", "final notes"]
    rows = [header, ["---"] * len(header)]
    for s in mine:
        reference = _reference(s.variant, by)
        gap = _versus(paired(s.quality_at(early), reference.quality_at(early))) if reference and reference is not s else ""
        rows.append([
            s.variant.label, f"{statistics.fmean(s.quality_at(0)):.2f}", *(_mean_sd(s.quality_at(c)) for c in checkpoints), gap,
            f"{100 * s.share('better', early):.0f}%", f"{100 * s.share('worse', early):.0f}%",
            f"{statistics.fmean(r.final_length for r in s.runs):.1f}",
        ])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _reference(variant: Variant, by: dict[str, Summary]) -> Summary | None:
    """The hillclimb line run in the same setting (same starting tracks and crowd), or None: a comparison
    with another setting's line would not be paired."""
    for summary in by.values():
        v = summary.variant
        if v.preset == "hillclimb" and (v.mode, v.attacked, v.personal, v.other_key, v.earlier_rounds) == (
            variant.mode, variant.attacked, variant.personal, variant.other_key, variant.earlier_rounds
        ):
            return summary
    return None


# The units a target's figure is in: the judge's score (1-10) for a quality or its gap, percent for a share, whose
# spread is in percentage points ("50% ± 127%" read as a relative spread).
QUALITY, SHARE = " quality points", " percentage points"


def _judged(gap: tuple[float, float], goal: float, kind: str, seeds: int, measured_in: str = QUALITY) -> Verdict:
    """The verdict on a paired gap (mean, 95% half-width, in `measured_in`) over `seeds` seeds (bot.bench.verdicts' rule)."""
    mean, half = gap
    return judge(mean, goal, kind, (mean - half, mean + half), seeds, TARGET_SEEDS, "seeds", "--seeds {} or more", measured_in)


def _share(summary: Summary, which: str, rounds: int) -> tuple[float, float]:
    """A share over a line's seeds (each seed's share of its proposals in the first `rounds`): mean, 95% half-width."""
    shares = [statistics.fmean(getattr(run, which)[:rounds]) for run in summary.runs]
    return paired(shares, [0.0] * len(shares))


def targets(summaries: list[Summary], crowd: str, rounds: int) -> list[tuple[str, Verdict, str]]:
    """The issue's targets on one crowd, those its lines can judge: (target, verdict, the figures)."""
    by = {s.variant.label: s for s in summaries if s.crowd == crowd}
    early = min(EARLY, rounds)
    found: list[tuple[str, Verdict, str]] = []

    def have(*labels: str) -> bool:
        return all(label in by for label in labels)

    seeds = len(by["default"].runs) if have("default") else 0
    if have("default"):
        share = tuple(100 * x for x in _share(by["default"], "better", early))  # in percent, as the goal
        found.append((f"better edits in rounds 1-{early} >= 35%", _judged(share, 35.0, AT_LEAST, seeds, SHARE),
                      f"default {share[0]:.0f}%" + (f" ± {share[1]:.0f}{SHARE}" if math.isfinite(share[1]) else "")
                      + (f", hillclimb {100 * by['hillclimb'].share('better', early):.0f}%" if have("hillclimb") else "")))
    if have("default", "hillclimb"):
        gap = paired(by["default"].quality_at(early), by["hillclimb"].quality_at(early))
        found.append((f"quality@{early} >= hillclimb + 0.75", _judged(gap, 0.75, AT_LEAST, seeds), f"{_versus(gap)} (paired, 95%)"))
        gaps = [paired(by["default"].quality_at(i), by["hillclimb"].quality_at(i)) for i in range(rounds + 1)]
        behind = sum(g + h < 0 for g, h in gaps)
        worst_round = min(range(rounds + 1), key=lambda i: gaps[i][0])
        # Judged at the round nearest to being below beyond noise; too few seeds to judge say the widest interval.
        lowest = min(gaps, key=lambda gap: gap[0] + gap[1]) if seeds >= TARGET_SEEDS else max(gaps, key=lambda gap: gap[1])
        found.append(("never below hillclimb beyond noise", _judged(lowest, 0.0, NOT_BELOW, seeds),
                      f"below (95% interval under 0) at {behind} of {rounds + 1} rounds; smallest gap "
                      f"{_versus(gaps[worst_round])} after round {worst_round}"))
    if have("default, 2nd session, other key", "default, fresh, other key"):
        at = min(CARRY_ROUNDS, rounds)
        gap = paired(by["default, 2nd session, other key"].quality_at(at), by["default, fresh, other key"].quality_at(at))
        found.append((f"2nd session, other key and scale, >= fresh + 0.5 after {at} rounds", _judged(gap, 0.5, AT_LEAST, seeds), _versus(gap)))
    if have("default, A/B", "default"):
        gap = paired(by["default, A/B"].quality_at(rounds), by["default"].quality_at(rounds))
        lengths = (statistics.fmean(r.final_length for r in by["default, A/B"].runs), statistics.fmean(r.final_length for r in by["default"].runs))
        too_long = paired([100.0 * r.too_long for r in by["default, A/B"].runs], [0.0] * seeds)  # in percent
        found.append((f"A/B within noise of rating per vote after {rounds} rounds, no longer than the crowd wants",
                      worst(_judged(gap, 0.0, NOT_BELOW, seeds), _judged(too_long, 50.0, AT_MOST, seeds, SHARE)),
                      f"A/B - rating {_versus(gap)}; final notes A/B {lengths[0]:.1f}, rating {lengths[1]:.1f}; "
                      f"the judge would rather lose a note than gain one for {too_long[0]:.0f}% of A/B's final tracks"
                      + (f"; with half the noise shared by the clips of a vote: A/B - rating "
                         f"{_versus(paired(by['default, A/B, shared noise'].quality_at(rounds), by['default'].quality_at(rounds)))}"
                         if have("default, A/B, shared noise") else "")))
    if have("default, attacked", "default"):
        gap = paired(by["default, attacked"].quality_at(early), by["default"].quality_at(early))
        found.append((f"attacked within 0.3 of unattacked after {early} rounds", _judged(gap, -0.3, AT_LEAST, seeds), _versus(gap)))
    if have("default, personal", "hillclimb, personal"):
        gap = paired(by["default, personal"].quality_at(early), by["hillclimb, personal"].quality_at(early))
        end = paired(by["default, personal"].quality_at(rounds), by["hillclimb, personal"].quality_at(rounds))
        found.append(("personal agent not below hillclimb", worst(_judged(gap, 0.0, NOT_BELOW, seeds), _judged(end, 0.0, NOT_BELOW, seeds)),
                      f"after {early}: {_versus(gap)}" + (f"; after {rounds}: {_versus(end)}" if rounds > early else "")))
    return found


def plot(summaries: list[Summary], crowd: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = (
        ("presets", ("hillclimb", "default", "context", "theory", "paper", "random")),
        ("A/B, attack, personal", ("hillclimb", "default", "default, A/B", "default, A/B, shared noise", "hillclimb, A/B",
                                   "default, attacked", "default, personal", "hillclimb, personal")),
        ("another key: fresh vs 2nd session", ("default, fresh, other key", "default, 2nd session, other key", "hillclimb, 2nd session, other key")),
    )
    by = {s.variant.label: s for s in summaries if s.crowd == crowd}
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5), sharey=True, squeeze=False)
    for axis, (name, labels) in zip(axes[0], panels):
        for label in labels:
            if label not in by:
                continue
            s = by[label]
            curve = s.mean_curve()
            line, = axis.plot(range(len(curve)), curve, label=label, linewidth=2.2 if label.startswith("default") else 1.3)
            if label in ("default", "hillclimb"):
                sd = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in zip(*(r.quality for r in s.runs))]
                axis.fill_between(range(len(curve)), [m - d for m, d in zip(curve, sd)], [m + d for m, d in zip(curve, sd)],
                                  color=line.get_color(), alpha=0.1)
        axis.set_title(name + (" (band: ± 1 sd over seeds)" if name == "presets" else ""))
        axis.set_xlabel("round")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # a panel none of whose lines ran (--only) has no legend to draw
            axis.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel(f"quality of the session's track ({crowd} crowd's noise-free judge, 1-10)")
    fig.suptitle(title)
    fig.tight_layout()
    with replacing(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
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
    write_whole(path, "\n".join(lines).rstrip() + "\n")


def report(
    summaries: list[Summary], crowds, seeds: int, rounds: int, machine: dict[str, str], command: str, timing: str,
    information: list[VoteInformation] = (), first_seed: int = 0,
) -> tuple[list[Verdict], str]:
    """The Markdown section and the verdicts on its targets."""
    from bot.progress import plural

    what = "; ".join(f"`{v.label}`: {v.what}" for v in dict.fromkeys(s.variant for s in summaries))
    parts = [f"""
How much each preset learns from a crowd, against `hillclimb` (the same aggregation, keep-best and undo bar with
random edits, nothing learned). Each session starts from a random 8-note track (the seed picks it) in C major
unless noted and runs {rounds} rounds in rating mode unless noted. Two simulated crowds, each with Gaussian noise
(sd {NOISE}) on every honest rating, its own troll (the mirror image of its consensus) and a brigader (always 10):
`builtin` (six tastes sharing the theory critic's core) and `contrarian` (five tastes that run against the critic:
leaps left hanging, drones, off-key colour and off-tonic endings, syncopation, restless zigzags). Quality is the
crowd's noise-free judge, which nothing trains on. Sessions go through the conductor, the engine and SQLite.

- Command: `{command}`
- Machine: {"; ".join(f"{k} {v}" for k, v in machine.items())}
- {len(summaries)} crowd x setting lines x {plural(seeds, 'seed')} ({first_seed}-{first_seed + seeds - 1}), {plural(WORKERS, 'worker process', 'worker processes')}; {timing}.

Quality after {" and ".join(", ".join(map(str, checkpoints_for(rounds))).rsplit(", ", 1))} rounds (*quality@n*): mean ± sd over seeds. *vs hillclimb*: the paired difference with hillclimb in the same setting,
mean ± half-width of the 95% interval. *Better/worse edits*: the share of proposed edits the judge scores above /
below the track they edit (the rest change nothing the judge hears). *Final notes*: the final track's length.

What each line is: {what}.
"""]
    verdicts: list[Verdict] = []
    for crowd in crowds:
        lines = [f"### The {crowd} crowd", "", table(summaries, crowd, rounds), "", f"Targets ({RULE}):", ""]
        for name, verdict, figures in targets(summaries, crowd, rounds):
            verdicts.append(verdict)
            lines.append(f"- {name}: **{verdict.word.lower()}** ({figures}{f'; {verdict.why}' if verdict.why else ''})")
        lines += ["", f"![learning curves, {crowd} crowd](learning-{crowd}.png)", ""]
        parts.append("\n".join(lines))
    if information:
        parts.append(INFORMATION_HEADING + "\n\n" + information_text(information, INFORMATION_SEED_FACTOR * seeds))
    return verdicts, "\n".join(parts)


def _shown(out: Path) -> str:
    """The folder `out` as the report (shared: docs/BENCHMARKS.md) names it: relative to the current folder, or by
    its own name when it is outside it, never an absolute path that tells this host's file layout."""
    try:
        return str(out.resolve().relative_to(Path.cwd()))
    except ValueError:
        return out.name


def _seconds(seconds: float) -> str:
    """A duration in seconds, in words that never read 0 s for work that took some: "0.31 s", "4.2 s", "1461 s"."""
    return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def bench_learning(seeds: int, rounds: int, out: Path, crowds=CROWDS, only: tuple[str, ...] = (), first_seed: int = 0) -> int:
    """Run the learning benchmark on seeds first_seed .. first_seed + seeds - 1 and write its report and plots
    into `out`; 0 (the figures say which targets were met). A `first_seed` past the seeds the presets were
    tuned on (0-39) checks their figures out of sample."""
    from bot.progress import plural, progress_bar

    started = time.perf_counter()  # the wall time runs from here to the report: every part of the benchmark's work
    machine = describe_machine()
    variants = tuple(v for v in VARIANTS if not only or v.label in only)
    unknown = set(only) - {v.label for v in VARIANTS}
    if unknown:
        # Line names hold commas ("default, A/B"), so each is quoted as it would be typed.
        raise ValueError(
            f"--only names {plural(len(unknown), 'unknown line')} ({', '.join(repr(u) for u in sorted(unknown))}); "
            f"choose from: {', '.join(repr(v.label) for v in VARIANTS)}"
        )
    command = f"crowdtune bench learning --seeds {seeds}{f' --first-seed {first_seed}' if first_seed else ''} --rounds {rounds} --out {_shown(out)}"
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
    counts = " x ".join(plural(n, word) for n, word in ((len(variants), "setting"), (len(crowds), "crowd"), (seeds, "seed"), (rounds, "round")))
    print(f"{counts} on {plural(WORKERS, 'worker process', 'worker processes')}", flush=True)

    running = time.perf_counter()
    with progress_bar(len(variants) * len(crowds) * seeds, "bench learning", "session") as bar:
        summaries = run_all(variants, crowds, seeds, rounds, WORKERS, lambda done, total: bar.update(done - bar.n), first_seed)
    session_seconds = statistics.fmean(run.seconds for s in summaries for run in s.runs)
    parts = [f"its sessions {_seconds(time.perf_counter() - running)} ({session_seconds:.2f} s per session in one process)"]
    # The A/B target compares A/B with rating rounds per vote; how much a vote says bounds what either can learn.
    information = []
    if any(v.mode == "ab" for v in variants):
        print("measuring what one round's votes say about an edit (rating and A/B)", flush=True)
        measuring = time.perf_counter()
        # Disjoint seed ranges of the bench give disjoint ones here.
        information = [
            vote_information(crowd, INFORMATION_SEED_FACTOR * seeds, first_seed=INFORMATION_SEED_FACTOR * first_seed) for crowd in crowds
        ]
        parts.append(f"what one round's votes say {_seconds(time.perf_counter() - measuring)}")
    plotting = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for crowd in crowds:
        plot(summaries, crowd, out / f"learning-{crowd}.png",
             f"crowdtune bench learning: {seeds} seeds, {crowd} crowd (noise {NOISE}), judged noise-free")
    parts.append(f"its plots {_seconds(time.perf_counter() - plotting)}")
    timing = f"wall time {_seconds(time.perf_counter() - started)} from the benchmark's start to its report: {', '.join(parts)}"
    verdicts, body = report(summaries, crowds, seeds, rounds, machine, command, timing, information, first_seed)
    for crowd in crowds:
        print(f"\n{crowd} crowd")
        print(table(summaries, crowd, rounds))
        for name, verdict, figures in targets(summaries, crowd, rounds):
            print(verdict_line(name, verdict, figures))
    if information:
        print("\n" + INFORMATION_HEADING.lstrip("# ") + " (explained in the report written below)\n" + information_table(information))
    print(timing)
    write_section(out / "BENCHMARKS.md", "Learning", body)
    print(f"wrote {out / 'BENCHMARKS.md'} and learning-*.png there")
    # A benchmark reports; a target it shows unmet is a finding, not a failure of the command (exit 0).
    judged = len(verdicts)
    if not judged:
        print("no target can be judged from these lines (each compares lines that did not run, such as default and hillclimb)")
    else:
        total = TARGETS_PER_CROWD * len(crowds)
        partly = f" ({judged} of {total} measured: the rest compare lines that did not run)" if judged < total else ""
        print(summary(verdicts) + partly)
    return 0
