"""The round engine: one round's decisions, as pure functions every front end drives.

A round is planned (the agent edits the incumbent track: one variant in rating mode, two in A/B
mode), published by a front end, voted on, closed, and settled: the ballots become a reward, the
reward becomes Q-updates, and the engine says which track the next round starts from. The caller
supplies the Q-entries the engine asks for (see `settle_keys`) and stores what it returns, in one
transaction, so a round is rewarded exactly once.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from core import agent as q
from core.actions import Action, apply, describe
from core.crowd import NEUTRAL_RATING, Ballot, CrowdEstimate, ab_rewards, mean_rating, typical_reward
from core.music import Track, check_base, check_parameters, generate_track, scale_intervals, track_from_dict, track_to_dict

MODES = ("rating", "ab")
ROUND_SECONDS_MIN, ROUND_SECONDS_MAX = 10, 7 * 24 * 3600
ROUNDS_MAX = 10_000


@dataclass(frozen=True)
class SessionSpec:
    base: int = 60
    scale: str = "major"
    length: int = 8
    tempo: int = 120
    mode: str = "rating"
    preset: str = "default"
    rounds: int | None = 10  # None: endless
    round_seconds: float = 300.0
    quorum: int | None = None  # close early once this many have voted
    seed: int = 0
    exploration: str | None = None  # overrides the preset's exploration strategy
    state: str | None = None  # overrides the preset's state encoding
    keep_best: bool | None = None  # overrides whether the preset reverts edits rated below the incumbent

    def __post_init__(self) -> None:
        check_base(self.base)
        scale_intervals(self.scale)
        check_parameters(self.length, self.tempo)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not '{self.mode}'")
        self.agent  # validates the preset and its overrides
        if self.rounds is not None and not 1 <= self.rounds <= ROUNDS_MAX:
            raise ValueError(f"rounds must be 1-{ROUNDS_MAX} (or endless), not {self.rounds}")
        if not ROUND_SECONDS_MIN <= self.round_seconds <= ROUND_SECONDS_MAX:
            raise ValueError(f"a round lasts {ROUND_SECONDS_MIN} s to 7 days, not {self.round_seconds} s")
        if self.quorum is not None and not 1 <= self.quorum <= 100_000:
            raise ValueError(f"quorum must be at least 1, not {self.quorum}")

    @property
    def agent(self) -> q.AgentConfig:
        config = q.preset(self.preset)
        overrides = {"exploration": self.exploration, "state": self.state, "keep_best": self.keep_best}
        return replace(config, **{name: value for name, value in overrides.items() if value is not None})

    def first_track(self) -> Track:
        return generate_track(self.base, self.scale, self.length, self.tempo, random.Random(self.seed))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> SessionSpec:
        return SessionSpec(**data)


@dataclass(frozen=True)
class Proposal:
    action: Action
    key: q.QKey
    track: Track
    description: str


@dataclass(frozen=True)
class RoundPlan:
    index: int
    incumbent: Track
    proposals: tuple[Proposal, ...]  # one in rating mode; A then B in A/B mode

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "incumbent": track_to_dict(self.incumbent),
            "proposals": [
                {"action": p.action.key(), "key": list(p.key), "track": track_to_dict(p.track), "description": p.description}
                for p in self.proposals
            ],
        }

    @staticmethod
    def from_dict(data: dict) -> RoundPlan:
        return RoundPlan(
            data["index"],
            track_from_dict(data["incumbent"]),
            tuple(
                Proposal(Action.from_key(p["action"]), tuple(p["key"]), track_from_dict(p["track"]), p["description"])
                for p in data["proposals"]
            ),
        )


@dataclass(frozen=True)
class Outcome:
    reward: float | None  # what the crowd gave the round (rating mode: the aggregate; A/B: the winner's)
    variant_rewards: tuple[float | None, ...]
    updates: tuple[tuple[q.QKey, q.QEntry], ...]
    next_track: Track
    incumbent_score: float | None  # what the engine believes the next track scores (the bar for the next edit)
    kept_edit: bool
    winner: int | None  # index of the winning proposal in A/B mode
    voters: int
    summary: str
    tied: bool = False  # A/B: both edits scored the same, and a coin flip (the round's seeded generator) chose


def _proposal(config: q.AgentConfig, incumbent: Track, action: Action) -> Proposal:
    return Proposal(action, q.q_key(config, incumbent, action), apply(incumbent, action), describe(incumbent, action))


def plan_keys(spec: SessionSpec, incumbent: Track) -> list[q.QKey]:
    """The Q-entries `plan_round` reads."""
    return q.lookup_keys(spec.agent, incumbent)


def plan_round(
    spec: SessionSpec, index: int, incumbent: Track, table: Mapping[q.QKey, q.QEntry], rng: random.Random
) -> RoundPlan:
    config = spec.agent
    first = q.choose(config, incumbent, table, rng, index)
    chosen = [first]
    if spec.mode == "ab":
        chosen.append(q.choose(config, incumbent, table, rng, index, exclude=frozenset(chosen)))
    return RoundPlan(index, incumbent, tuple(_proposal(config, incumbent, a) for a in chosen))


def settle_keys(spec: SessionSpec, plan: RoundPlan) -> list[q.QKey]:
    """The Q-entries `settle` reads: each proposal's own entry and, when the agent looks ahead, those of
    every track the session may continue from."""
    config = spec.agent
    keys = [p.key for p in plan.proposals]
    if config.gamma:
        for track in (plan.incumbent, *(p.track for p in plan.proposals)):
            keys += q.lookup_keys(config, track)
    return list(dict.fromkeys(keys))


# (ballots, each voter's history [(their rating, their round's reward), newest first]) -> the crowd's
# verdict: a rating taken as it is, or a CrowdEstimate that settle shrinks toward the edited track's score.
Aggregator = Callable[[Sequence[Ballot], Mapping[str, Sequence[tuple[float, float]]]], float | CrowdEstimate | None]


def settle(
    spec: SessionSpec,
    plan: RoundPlan,
    ballots: Sequence[Ballot],
    table: Mapping[q.QKey, q.QEntry],
    incumbent_score: float | None,
    rng: random.Random,
    aggregate: Aggregator = mean_rating,
    history: Mapping[str, Sequence[tuple[float, float]]] | None = None,
) -> Outcome:
    config = spec.agent
    verdict = None
    if spec.mode == "ab":
        rewards = ab_rewards(ballots)
        if rewards is None:
            return _no_votes(config, plan, incumbent_score)
        winner = max(range(2), key=lambda i: (rewards[i], rng.random()))
        # An A/B reward says how much the crowd prefers an edit to the track before it (5.5: as good).
        beliefs, baseline = rewards, NEUTRAL_RATING
        # What the agent learns is which of the two the crowd preferred: approval alone is cheap (a brigader
        # likes everything), and learning it would make every edit tried look better than any edit untried.
        learning_baseline = statistics.fmean(rewards)
    else:
        verdict = aggregate(ballots, history or {})
        if verdict is None:
            return _no_votes(config, plan, incumbent_score)
        # A track nobody has rated yet is assumed to score like the scope's recent rounds.
        baseline = incumbent_score if incumbent_score is not None else typical_reward(history or {})
        crowd = verdict.rating if isinstance(verdict, CrowdEstimate) else verdict
        # Before anyone has heard the edit, the best guess of its score is the score of the track it edits:
        # the belief is the crowd's verdict shrunk toward that (the verdict itself is what gets reported).
        belief = verdict.shrunk_toward(baseline) if isinstance(verdict, CrowdEstimate) else verdict
        rewards, beliefs, winner = (crowd,), (belief,), 0
        learning_baseline = baseline

    best = plan.proposals[winner]
    keep = not config.keep_best or beliefs[winner] >= baseline
    next_track = best.track if keep else plan.incumbent
    if keep:
        next_score = beliefs[winner]
    elif spec.mode == "rating" and isinstance(verdict, CrowdEstimate):
        # The undone edit differs from the incumbent by one edit, so its verdict is weak evidence about the
        # incumbent too: it wears down a lucky score, and follows the crowd's scale as the aggregator learns
        # who to trust. A plain number from a custom aggregator is taken as it is, like its verdict.
        next_score = baseline + config.rescore * (verdict.rating - baseline)
    else:
        next_score = incumbent_score

    updates = []
    working = dict(table)
    for proposal, belief, reward in zip(plan.proposals, beliefs, rewards):
        # "delta": how much better than the track before the edit is believed to be; "absolute": the verdict.
        learned = belief - learning_baseline if config.reward == "delta" else reward
        entry = q.learn(config, proposal.key, learned, next_track, working)
        working[proposal.key] = entry
        updates.append((proposal.key, entry))

    score = rewards[winner]
    # A tie is what the summary would show as one (equal to its 0.1): reported as a tie, never as a win.
    tied = spec.mode == "ab" and f"{rewards[0]:.1f}" == f"{rewards[1]:.1f}"
    if spec.mode == "ab":
        summary = _ab_summary(rewards, winner, tied, keep, baseline, best.description)
    elif keep:
        summary = f"the crowd gave {score:.1f}/10 and the edit stays: {best.description}"
    else:
        summary = f"the crowd gave {score:.1f}/10, below the {baseline:.1f} of the track before, so the edit is undone"
    return Outcome(
        reward=score,
        variant_rewards=tuple(rewards),
        updates=tuple(updates),
        next_track=next_track,
        incumbent_score=next_score,
        kept_edit=keep,
        winner=winner if spec.mode == "ab" else None,
        voters=len(ballots),
        summary=summary,
        tied=tied,
    )


def _ab_summary(rewards: Sequence[float], winner: int, tied: bool, keep: bool, baseline: float, description: str) -> str:
    """An A/B close in words, every number named: each edit's score is its chance of beating the track
    before on the 1-10 scale (5.5: as good as it); a tie says so and how it was broken (a coin flip)."""
    scores = f"A {rewards[0]:.1f}, B {rewards[1]:.1f}"
    if not keep:
        both = "A and B tied" if tied else "the crowd preferred the track before to both edits"
        return f"{both} ({scores} against {baseline:.1f} for the track before, on a 1-10 scale), so the track before stays"
    if tied:
        how = "a coin flip kept" if rewards[0] == rewards[1] else "kept the one ahead by less than 0.05,"
        return (
            f"A and B tied ({scores}: each one's chance of beating the track before, on a 1-10 scale); "
            f"{how} {'AB'[winner]}: {description}"
        )
    return f"{'AB'[winner]} won ({scores}: each one's chance of beating the track before, on a 1-10 scale): {description}"


def _no_votes(config: q.AgentConfig, plan: RoundPlan, incumbent_score: float | None) -> Outcome:
    # Nothing was learned; without evidence an edit is kept only when the agent never reverts.
    keep = not config.keep_best
    return Outcome(
        reward=None,
        variant_rewards=tuple(None for _ in plan.proposals),
        updates=(),
        next_track=plan.proposals[0].track if keep else plan.incumbent,
        incumbent_score=incumbent_score,
        kept_edit=keep,
        winner=None,
        voters=0,
        summary="nobody voted, so nothing was learned",
    )


def quorum_reached(spec: SessionSpec, voters: int) -> bool:
    return spec.quorum is not None and voters >= spec.quorum


def round_rng(spec: SessionSpec, index: int) -> random.Random:
    """A generator per round, so a round replanned after a restart decides the same way."""
    return random.Random(f"{spec.seed}:{index}")
