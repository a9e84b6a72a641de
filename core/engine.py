"""The round engine: one round's decisions, as pure functions every front end drives.

A round is planned (the agent edits the incumbent track: one variant in rating mode, two in A/B
mode), published by a front end, voted on, closed, and settled: the ballots become a reward, the
reward becomes Q-updates, and the engine says which track the next round starts from. The caller
supplies the Q-entries the engine asks for (see `settle_keys`) and stores what it returns, in one
transaction, so a round is rewarded exactly once.
"""

from __future__ import annotations

import collections
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple
from dataclasses import asdict, dataclass, replace

from core import agent as q
from core.actions import Action, apply, describe
from core.crowd import (
    ADJUSTMENTS, NEUTRAL_RATING, PRIOR_VOTES, RATING_MAX, RATING_MIN, Ballot, ChoiceHistory, CrowdEstimate, History, ab_keep_margin, ab_tally, mean_rating,
    rating_comparison, rating_text,
)
from core.learner import Observation, Posterior
from core.instruments import DEFAULT_PROGRAM, GM_PROGRAMS
from core.music import Track, check_base, check_parameters, generate_track, scale_intervals, track_from_dict, track_to_dict

MODES = ("rating", "ab")
# How long a round may last: the one limit the check below, the options /compose and /config take (in minutes: a
# quarter of one is the least), their help, CROWDTUNE_ROUND_SECONDS and the README all state.
ROUND_SECONDS_MIN, ROUND_SECONDS_MAX = 15, 7 * 24 * 3600
ROUND_MINUTES_MIN, ROUND_MINUTES_MAX = ROUND_SECONDS_MIN / 60, ROUND_SECONDS_MAX / 60
ROUND_LENGTHS = f"{ROUND_SECONDS_MIN} s to 7 days"
# The round_minutes option's range, as its help gives it (Discord's limit on a description: 100 characters).
ROUND_MINUTES_RANGE = f"{ROUND_MINUTES_MIN:g} to {ROUND_MINUTES_MAX:g} ({ROUND_LENGTHS})"
ROUNDS_MAX = 10_000
QUORUM_MAX = 100_000
# An A/B reward (1 + 9 x the chance of beating the track before) as an improvement in rating points for the
# linear learner: a clear preference (about 8 of 10) counts as about half a point.
AB_TO_RATING = 0.25


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
    instrument: int = DEFAULT_PROGRAM  # General MIDI program of the melody and chords (specs stored before it: piano)

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
            raise ValueError(f"a round lasts {ROUND_LENGTHS}, not {self.round_seconds} s")
        if self.quorum is not None and not 1 <= self.quorum <= QUORUM_MAX:
            raise ValueError(f"quorum must be at least 1, not {self.quorum}")
        if not 0 <= self.instrument < len(GM_PROGRAMS):
            raise ValueError(f"instrument must be a General MIDI program 0-127, not {self.instrument}")

    @property
    def agent(self) -> q.AgentConfig:
        config = q.preset(self.preset)
        overrides = {"exploration": self.exploration, "state": self.state, "keep_best": self.keep_best}
        return replace(config, **{name: value for name, value in overrides.items() if value is not None})

    def first_track(self) -> Track:
        track = generate_track(self.base, self.scale, self.length, self.tempo, random.Random(self.seed))
        return replace(track, instrument=self.instrument)

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
    features: tuple[float, ...] = ()  # the linear learner's feature vector of the edit (empty for the others)
    expected: float = 0.0  # the improvement the linear learner expected of it when it was chosen (rating points)


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
                {
                    "action": p.action.key(), "key": list(p.key), "track": track_to_dict(p.track), "description": p.description,
                    "features": list(p.features), "expected": p.expected,
                }
                for p in self.proposals
            ],
        }

    @staticmethod
    def from_dict(data: dict) -> RoundPlan:
        return RoundPlan(
            data["index"],
            track_from_dict(data["incumbent"]),
            tuple(
                Proposal(
                    Action.from_key(p["action"]), tuple(p["key"]), track_from_dict(p["track"]), p["description"],
                    tuple(p.get("features", ())), p.get("expected", 0.0),
                )
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
    # The linear learner's evidence from this round: (an edit's features, its observed improvement), to be
    # added to the scope's model named `model` in the same transaction as the round's close.
    observations: tuple[Observation, ...] = ()
    # A/B: (A's features - B's, A's improvement - B's) from the votes between the edits; they inform the
    # model but are no judged edit (see core.learner.Evidence.observed).
    comparisons: tuple[Observation, ...] = ()
    model: str | None = None
    tied: bool = False  # A/B: both edits scored the same, and a coin flip (the round's seeded generator) chose
    # What became of the round's edit(s), in words every front end shows ("the edit stays", "the first edit of this
    # track stays and sets the bar", "the track before stays"...): the one place an outcome's fate is worded.
    verdict: str = ""
    # What the winner's belief had to reach for its edit to stay (the bar: rating mode, the score of the track before
    # moved by the crowd's drift; A/B, the margin over 5.5 chance needs), on `reward`'s 1-10 scale; None when nothing
    # was compared (no score before, nobody voted, a preset that keeps every edit). Reported only: decides nothing.
    bar: float | None = None
    # Rating mode, an undone edit: how low the kept track's score may wear (WEAR_LIMIT below the verdict its last kept
    # edit got; a score already under it stays), when this round's rating would have taken it lower; None otherwise.
    wear_floor: float | None = None


class Reference(NamedTuple):
    """The rating round whose edit a session kept last (it set the bar): its standing ballots, the crowd's verdict
    then (1-10), and how many of the ballots it closed with were removed since (/strike, /forget-me)."""

    ballots: Sequence[Ballot]
    verdict: float
    removed: int = 0


# Rating points: an undone edit's rating wears the kept track's score down no lower than this far below the verdict
# its last kept edit got (a score already below that stays). Wearing down removes a lucky score's luck, not a liked
# track's quality: without a limit, a track a person rated 10 wore down to the 3s they gave every later edit, until a
# 3 kept one (a trial, 40 rounds); measured from the score instead of the verdict, a 5 still replaced a track rated 10
# after nine 3s (the score of a first 10 is 7, blended with a neutral 5.5). Bench, 40 seeds x 100 rounds: no crowd
# session changed; personal sessions -0.02 ± 0.04 and +0.03 ± 0.07 after 100 rounds (1 point: -0.19 ± 0.15).
WEAR_LIMIT = 2.0


def _proposal(
    config: q.AgentConfig, incumbent: Track, action: Action, features: tuple[float, ...] = (), expected: float = 0.0
) -> Proposal:
    return Proposal(
        action, q.q_key(config, incumbent, action), apply(incumbent, action), describe(incumbent, action), features, expected
    )


def plan_keys(spec: SessionSpec, incumbent: Track) -> list[q.QKey]:
    """The Q-entries `plan_round` reads (none unless the agent learns a table)."""
    config = spec.agent
    return q.lookup_keys(config, incumbent) if config.learner == "table" else []


def plan_round(
    spec: SessionSpec,
    index: int,
    incumbent: Track,
    table: Mapping[q.QKey, q.QEntry],
    rng: random.Random,
    model: Posterior | None = None,
    unrated: bool = False,
    before: RoundPlan | None = None,
) -> RoundPlan:
    """The round's edits: one in rating mode, two different ones in A/B mode. `table` holds the Q-entries
    `plan_keys` names; `model` is the scope's linear model (`q.model_name`; None: the prior). `unrated`: the
    incumbent has no score yet (a session's first round), so a rating round's edit stays whatever the crowd
    says and the linear learner chooses it cautiously. `before`: the session's last closed round's plan; when its
    edits were undone (its incumbent is this one), none of them is proposed again (a trial was offered the edit it
    had just rated 2, on the same track; unless too few other edits are legal: `q.left_out`)."""
    config = spec.agent
    draws = 2 if spec.mode == "ab" else 1
    undone = frozenset(p.action for p in before.proposals) if before is not None and before.incumbent == incumbent else frozenset()
    if config.learner == "linear":
        chosen = q.choose_linear(config, incumbent, model, rng, draws, cautious=unrated and config.keep_best, exclude=undone)
        return RoundPlan(index, incumbent, tuple(_proposal(config, incumbent, a, x, e) for a, x, e in chosen))
    undone = q.left_out(q.candidate_actions(config, incumbent), undone, draws)
    first = q.choose(config, incumbent, table, rng, index, exclude=undone)
    actions = [first]
    if draws == 2:
        actions.append(q.choose(config, incumbent, table, rng, index, exclude=undone | frozenset(actions)))
    return RoundPlan(index, incumbent, tuple(_proposal(config, incumbent, a) for a in actions))


def settle_keys(spec: SessionSpec, plan: RoundPlan) -> list[q.QKey]:
    """The Q-entries `settle` reads: each proposal's own entry and, when the agent looks ahead, those of
    every track the session may continue from."""
    config = spec.agent
    if config.learner != "table" or not config.learns:
        return []
    keys = [p.key for p in plan.proposals]
    if config.gamma:
        for track in (plan.incumbent, *(p.track for p in plan.proposals)):
            keys += q.lookup_keys(config, track)
    return list(dict.fromkeys(keys))


# (ballots, each voter's history [(their rating, their round's id, its reward), newest first]) -> the crowd's
# verdict: a rating taken as it is, or a CrowdEstimate that settle shrinks toward the edited track's score.
Aggregator = Callable[[Sequence[Ballot], History], float | CrowdEstimate | None]


def settle(
    spec: SessionSpec,
    plan: RoundPlan,
    ballots: Sequence[Ballot],
    table: Mapping[q.QKey, q.QEntry],
    incumbent_score: float | None,
    rng: random.Random,
    aggregate: Aggregator = mean_rating,
    history: History | ChoiceHistory | None = None,
    reference: Reference | None = None,
    one_rater: bool = False,
) -> Outcome:
    """The round's outcome from its ballots. `one_rater`: the session's only voter is the person it is told to (a
    personal agent's owner, the terminal's person), so its summary says "you gave", not "the crowd gave" (`verdict_opening`).
    `history`: the voters' past votes in the scope, in rounds of
    this round's mode (`core.crowd.History` or `ChoiceHistory`), from which their trust is measured. `reference`: the round whose edit made the
    incumbent (`Reference`); the incumbent's score moves by how much the crowd's verdict on its
    ballots has moved since, as the aggregator learned who to trust (see `scale_drift`), and an undone edit's rating
    wears it down no further than WEAR_LIMIT below that round's verdict."""
    config = spec.agent
    verdict = None
    drift = 0.0
    blend = moved = ""  # a rating round's: what a kept edit's score blends, and why the bar moved since it was set
    adjustments: tuple[str, ...] = ()  # what moved a rating round's verdict off the ratings' mean (verdict_opening)
    far: tuple[float, ...] = ()  # the ratings that counted less for being far from the others (CrowdEstimate.far)
    pair: Observation | None = None
    if spec.mode == "ab":
        tally = ab_tally(ballots, history)
        if tally is None:
            return _no_votes(spec, plan, incumbent_score)
        rewards = tally.rewards
        winner = max(range(2), key=lambda i: (rewards[i], rng.random()))
        # An A/B reward says how much the crowd prefers an edit to the track before it (5.5: as good); the
        # winner must beat that by more than the better of two edits no better than it would by chance.
        beliefs, baseline = rewards, NEUTRAL_RATING + ab_keep_margin(tally.games[winner])
        # What the table learns is which of the two the crowd preferred: approval alone is cheap (a brigader
        # likes everything), and learning it would make every edit tried look better than any edit untried.
        learning_baseline = statistics.fmean(rewards)
        # The linear learner learns each edit's chance of beating the track before, scaled to rating points;
        # of an edit no vote compared with the track before nothing is learned (its 5.5 is the prior's).
        targets: list[float | None] = [AB_TO_RATING * (r - NEUTRAL_RATING) if games else None for r, games in zip(rewards, tally.games)]
        # Votes for one edit over the other measure the difference of their improvements, which the linear
        # model sees through the difference of their features (rank breaking's third comparison).
        if tally.pair_games and all(p.features for p in plan.proposals):
            difference = tuple(a - b for a, b in zip(plan.proposals[0].features, plan.proposals[1].features))
            pair = (difference, AB_TO_RATING * (RATING_MAX - RATING_MIN) * (tally.a_over_b - 0.5))
    else:
        verdict = aggregate(ballots, history or {})
        if verdict is None:
            return _no_votes(spec, plan, incumbent_score)
        crowd = verdict.rating if isinstance(verdict, CrowdEstimate) else verdict
        adjustments = verdict.adjustments if isinstance(verdict, CrowdEstimate) else ()
        far = verdict.far if isinstance(verdict, CrowdEstimate) else ()
        # Before anyone has heard the edit, the best guess of its score is the score of the track it edits:
        # the belief is the crowd's verdict shrunk toward that (the verdict itself is what gets reported).
        # A session's starting track nobody has rated yet is one edit from what the crowd just heard, so this
        # verdict measures it: the edit stays and sets the bar (shrunk toward neutral), and nothing is learned
        # about improvement, rather than holding a new track to the scope's recent best scores.
        drift = scale_drift(reference, aggregate, history or {}, incumbent_score) if incumbent_score is not None else 0.0
        baseline = incumbent_score + drift if incumbent_score is not None else None
        prior = baseline if baseline is not None else NEUTRAL_RATING
        belief = verdict.shrunk_toward(prior) if isinstance(verdict, CrowdEstimate) else verdict
        # What is learned is the crowd's own evidence; the model's expectation may inform only the keeping. The
        # belief, shrunk toward the bar, not the raw verdict: learning the raw one taught a personal agent as much
        # but lost it 0.6-0.8 after 60-100 rounds on the contrarian crowd (docs/BENCHMARKS.md, stop 18).
        targets = [belief - baseline if baseline is not None else None]
        if config.informed_keep and baseline is not None and isinstance(verdict, CrowdEstimate):
            belief = verdict.shrunk_toward(baseline + plan.proposals[0].expected)
        rewards, beliefs, winner = (crowd,), (belief,), 0
        learning_baseline = baseline
        # What a kept edit's score was blended with, in words (the summary says why the bar is not the rating).
        if isinstance(verdict, CrowdEstimate):
            blend = _blend_text(verdict, prior, baseline is None)
            if config.informed_keep and baseline is not None:
                blend = _blend_text(verdict, baseline + plan.proposals[0].expected, False, "what the agent expected of the edit")

    best = plan.proposals[winner]
    keep = not config.keep_best or baseline is None or beliefs[winner] >= baseline
    next_track = best.track if keep else plan.incumbent
    wear_floor = None
    if keep:
        next_score = beliefs[winner]
    elif spec.mode == "rating" and isinstance(verdict, CrowdEstimate):
        # The undone edit differs from the incumbent by one edit, so its verdict is weak evidence about the
        # incumbent too: it wears down a lucky score, and follows the crowd's scale as the aggregator learns
        # who to trust. A plain number from a custom aggregator is taken as it is, like its verdict.
        # Stored on the scale of the round that set the bar, like the score it replaces (see scale_drift).
        next_score = baseline + config.rescore * (verdict.rating - baseline) - drift
        if reference is not None and next_score < reference.verdict - WEAR_LIMIT:
            wear_floor = reference.verdict - WEAR_LIMIT
            next_score = max(next_score, min(incumbent_score, wear_floor))
    else:
        next_score = incumbent_score

    updates = []
    observations: list[Observation] = []
    comparisons: list[Observation] = []
    # A table that never moves or is never consulted (`random`) stores nothing: its entries share their kind with a
    # learning preset's (`context`), which would count them and choose by them.
    if config.learner == "table" and config.learns:
        working = dict(table)
        for proposal, belief, reward in zip(plan.proposals, beliefs, rewards):
            # "delta": how much better than the track before the edit is believed to be; "absolute": the verdict.
            if config.reward == "delta" and learning_baseline is None:
                continue  # the track before was never rated: nothing known about improvement
            learned = belief - learning_baseline if config.reward == "delta" else reward
            # The Bellman target values the state the edit itself leads to (the paper's s' = apply(s, a)), not
            # the winner's track: a losing A/B edit is not credited with where the session went instead.
            entry = q.learn(config, proposal.key, learned, proposal.track, working)
            working[proposal.key] = entry
            updates.append((proposal.key, entry))
    elif config.learner == "linear":
        observations = [(p.features, y) for p, y in zip(plan.proposals, targets) if y is not None and p.features]
        comparisons = [pair] if pair is not None else []

    score = rewards[winner]
    # A tie is what every front end shows as one (equal percentages, `chance_text`): reported as a tie, never
    # as a win, and two chances shown apart are never called a tie.
    tied = spec.mode == "ab" and chance_text(rewards[0]) == chance_text(rewards[1])
    verdict = fate(spec, keep, winner if spec.mode == "ab" else None, first=baseline is None)
    if spec.mode == "ab":
        summary = _ab_summary(rewards, tally.games, winner, tied, keep, baseline, best.description, verdict)
    else:
        # One sentence says the verdict and what became of the edit; the ones after it say why the number is not the
        # ratings' mean, why the bar moved since it was set, and where the bar is now (a trial found one long
        # sentence of them all too hard to read).
        opening, why = verdict_opening(score, ballots, one_rater, adjustments, far)
        if baseline is not None and config.keep_best:  # a bar set before: said by one number, today's
            moved = _moved_text(baseline, incumbent_score, getattr(reference, "removed", 0), bool(reference and reference[0]))
        if keep:
            first = baseline is None and config.keep_best
            sets = f" at {rating_text(next_score)}{f' ({blend})' if blend else ''}" if first else ""
            summary = f"{opening} and {verdict}{sets}: {best.description}.{why}"
            if config.keep_best and not first:
                summary += f" The bar is now {rating_text(next_score)}{f' ({blend})' if blend else ''}."
                named = blend and not config.informed_keep  # the blend names the old bar (not what the agent expected)
                summary += f" That {rating_text(baseline)} {moved}" if moved and named else ""
        else:
            # Said as the two numbers read: a verdict a hair under the bar reads level with it (both 6.33), and one
            # that an informed keep (`AgentConfig.informed_keep`) undoes may read above it.
            summary = (
                f"{opening}, {rating_comparison(score, baseline)} the {rating_text(baseline)} of the track before, so "
                f"{verdict}.{why}{f' The {rating_text(baseline)} {moved}.' if moved else ''} "
                f"{_undone_bar_text(score, baseline, next_score + drift, config.rescore, wear_floor)}"
            )
        summary = summary.removesuffix(".")  # each front end ends it as it ends a sentence
    return Outcome(
        reward=score,
        # An edit no vote compared with the track before has no reward (its 5.5 is only the prior's).
        variant_rewards=tuple(r if spec.mode != "ab" or tally.games[i] else None for i, r in enumerate(rewards)),
        updates=tuple(updates),
        next_track=next_track,
        incumbent_score=next_score,
        kept_edit=keep,
        winner=winner if spec.mode == "ab" else None,
        voters=len(ballots),
        summary=summary,
        observations=tuple(observations),
        comparisons=tuple(comparisons),
        model=q.model_name(config) if observations or comparisons else None,
        tied=tied,
        verdict=verdict,
        bar=baseline if config.keep_best else None,
        wear_floor=wear_floor,
    )


def fate(spec: SessionSpec, kept: bool, winner: int | None = None, first: bool = False) -> str:
    """What became of a round's edit, in words: `kept` whether the track became it (A/B: the `winner`, 0 for
    A); `first`: the track before had no score yet (a rating round's edit then stays and sets the bar). A
    preset that keeps every edit says so, so an edit rated 2/10 that stays does not read as a verdict."""
    if not kept:
        return "the track before stays" if winner is not None else "the edit is undone and the track before stays"
    edit = "the edit" if winner is None else f"{'AB'[winner]}'s edit"
    if not spec.agent.keep_best:
        keeper = f"the {spec.preset} preset" if spec.keep_best is None else "this session"
        return f"{keeper} keeps every edit, so {edit} stays"
    if first and winner is None:
        return "the first edit of this track stays and sets the bar"
    return f"{edit} stays"


def edits_text(descriptions: Sequence[str]) -> str:
    """A round's edits in words, as every front end names them: a rating round's one edit as described, an A/B round's
    each after its side, "A: removed note 4; B: removed note 1" (a trial's /status left the sides out)."""
    if len(descriptions) == 1:
        return descriptions[0]
    return "; ".join(f"{side}: {description}" for side, description in zip("AB", descriptions))


def beat_chance(reward: float) -> float:
    """An A/B edit's chance (0-1) of beating the track before it, from its reward: `core.crowd.ab_tally` gives
    1 + 9 x that chance, the 1-10 scale the learner's arithmetic uses. A front end shows the chance, never the
    reward: it is not a rating of the music (an edit of a fine track may hardly beat it)."""
    return (reward - RATING_MIN) / (RATING_MAX - RATING_MIN)


def chance_text(reward: float, decimals: int = 0) -> str:
    """An A/B edit's chance of beating the track before, as shown: "78%" (or with `decimals`: "78.4%")."""
    return f"{100 * beat_chance(reward):.{decimals}f}%"


def telling_decimals(value: float, other: float, most: int = 3) -> int:
    """The fewest decimals (0 to `most`) at which two different A/B chances (as rewards) read differently as
    `chance_text` shows them, so a sentence comparing them ("needed 58.4%" after "58.3%") never shows them
    equal; `most` if they read alike even then."""
    return next((d for d in range(most) if chance_text(value, d) != chance_text(other, d)), most)


def _ab_summary(
    rewards: Sequence[float], games: Sequence[float], winner: int, tied: bool, keep: bool, baseline: float, description: str,
    verdict: str,
) -> str:
    """An A/B close in words, every number named: each edit's chance of beating the track before, as a
    percentage (50%: as good as it; see `beat_chance`), or that no vote compared it with the track before
    (`games` 0: its 50% is only the prior); a tie says so and how it was broken (a coin flip); and, in
    `verdict` (`fate`), whether the winning edit stays or the track before does."""
    # Shown finely enough that the winner's chance reads below the one it needed, when it did not stay.
    decimals = 0 if keep else telling_decimals(rewards[winner], baseline)
    shown = [
        f"{side} {chance_text(reward, decimals)}" if played else f"{side} not compared with it"
        for side, reward, played in zip("AB", rewards, games)
    ]
    chances = f"the chance each beat the track before, from the votes: {', '.join(shown)}"
    side = "AB"[winner]
    how = f"a coin flip chose {side}" if rewards[0] == rewards[1] else f"{side}, a hair ahead, was chosen" if tied else ""
    if rewards[winner] <= NEUTRAL_RATING:
        # The votes preferred the track before to both edits: said first, even when the preset keeps an edit
        # anyway (then a tie of two losers is no "tie", only which of them the preset kept).
        if not keep:
            return f"neither edit beat the track before ({chances}), so {verdict}"
        return f"neither edit beat the track before ({chances}); {how or f'{side} came closer'} and {verdict}: {description}"
    if not keep:
        # Whether or not A and B tied, the reason is the same: neither beat the track before by enough.
        return (
            f"neither edit beat the track before clearly enough ({chances}; with these votes the better of two needed"
            f" {chance_text(baseline, decimals)}, which two edits no better than it often reach by chance),"
            f" so {verdict}"
        )
    if tied:
        each = chance_text(statistics.fmean(rewards))
        return f"A and B tied (each beat the track before with a chance of {each}, from the votes); {how} and {verdict}: {description}"
    return f"{side} won ({chances}) and {verdict}: {description}"


def _blend_text(verdict: CrowdEstimate, toward: float, first: bool, what: str = "the old bar") -> str:
    """Why a rating round's score is not its verdict (the Bayesian average, `CrowdEstimate.shrunk_toward`): "the 8 blended
    with a neutral 5.5 counted as 2 votes" (`first`: the track before had no score, so the neutral rating stood in), or
    "the 7.5 blended with the old bar, 6.3, which counts as 2 votes" (`what` names the number blended with). A
    verdict worth other than one vote says its worth ("the 6.33, 4.6 votes' worth,"), so that the numbers add up for
    whoever checks them. Why an old bar moved since it was set is a sentence of its own (`_moved_text`): a trial
    misread brackets in brackets."""
    worth = round(verdict.weight, 1)
    rating = f"the {rating_text(verdict.rating)}" + (f", {worth:g} votes' worth," if worth != 1 else "")
    if first:
        return f"{rating} blended with {prior_text(None)} counted as {PRIOR_VOTES:g} votes"
    return f"{rating} blended with {what}, {rating_text(toward)}, which counts as {PRIOR_VOTES:g} votes"


def _moved_text(bar: float, set_at: float, removed: int = 0, left: bool = True) -> str:
    """Why a bar reads otherwise than the number it was stored as, so that a member who remembers another number for it
    knows: "moved since it was set, as the votes' weights were learned" (the crowd's scale, `scale_drift`), or, when
    `removed` of the votes that set it were removed since (/strike, /forget-me), that too, the cause a member can
    check, and with none `left`, only that: the bar is then what those votes were blended with. "" when both read
    alike. The stored number is not named: one bar, one number (a trial read two as two bars)."""
    if rating_text(bar) == rating_text(set_at):
        return ""
    if removed and not left:
        gone = {1: "the vote that set it was", 2: "both votes that set it were"}.get(removed, f"all {removed} votes that set it were")
        return f"moved since it was set, as {gone} removed by /strike or /forget-me, leaving only what it was blended with"
    if removed:
        gone = f"{removed} of the votes that set it {'was' if removed == 1 else 'were'} removed by /strike or /forget-me"
        return f"moved since it was set, as {gone} and the votes' weights were learned"
    return "moved since it was set, as the votes' weights were learned"


def wear_limit_text(floor: float, what: str = "a score") -> str:
    """Why undone edits' ratings lower the kept track's score (`what`: "a score", "it") no further, the wear limit
    `floor` (Outcome.wear_floor, WEAR_LIMIT below the verdict that kept its last edit) said as a number: "undone edits'
    ratings lower a score only while it is above 8, 2 below the 10 that kept the track's last edit". True of a score held at it
    and of one already under it alike (a trial read "wear a bar down to 7 at the lowest" beside a bar of 6.67 as a
    contradiction)."""
    return (f"undone edits' ratings lower {what} only while it is above {rating_text(floor)}, {WEAR_LIMIT:g} below the "
            f"{rating_text(floor + WEAR_LIMIT)} that kept the track's last edit")


def prior_text(score: float | None) -> str:
    """What a round's ratings are blended with, in the words every front end and summary use: the `score` of the track
    before ("the 6.33 of the track before"), or, before anything was rated (None), "a neutral 5.5" (NEUTRAL_RATING)."""
    return f"a neutral {rating_text(NEUTRAL_RATING)}" if score is None else f"the {rating_text(score)} of the track before"


def _undone_bar_text(rating: float, bar: float, moved: float, rescore: float, floor: float | None = None) -> str:
    """Where an undone edit's verdict leaves the bar (`settle`'s rescore, `moved` on today's scale), a sentence: "The 6
    moves the bar 10% of the way toward it, to 6.3", or that it stays; `floor` (Outcome.wear_floor): WEAR_LIMIT stopped
    it short of that (wear_limit_text). Only today's number: the one stored on the scale of the round that set the bar
    is no second bar (`_moved_text`)."""
    limit = f": {wear_limit_text(floor, 'it')}" if floor is not None else ""
    if rating_text(moved) == rating_text(bar):
        return f"The bar stays at {rating_text(bar)}{limit}"
    if floor is not None:
        return f"The {rating_text(rating)} moves the bar down to {rating_text(moved)}, no further{limit}"
    return f"The {rating_text(rating)} moves the bar {rescore:.0%} of the way toward it, to {rating_text(moved)}"


def verdict_opening(
    score: float, ballots: Sequence[Ballot], one_rater: bool, adjustments: Sequence[str] = (), far: Sequence[float] = ()
) -> tuple[str, str]:
    """How a rating round's summary opens with its verdict `score` (1-10), the one place every front end's summary
    (Discord, terminal, simulation, export) says it: who gave it ("you gave" to a session's one rater, "the one voter
    gave" to one voter, else "the crowd gave"), or, when the verdict reads otherwise than the ratings shown (their plain
    mean), "the votes count as 7.25/10" and a sentence saying where it comes from: "Their mean is 7, but the 1, far
    from the others, counts less; each voter's usual ratings are allowed for" (each of `adjustments`,
    CrowdEstimate.adjustments: only what moved this round's verdict, in core.crowd.ADJUSTMENTS' words; `far`,
    CrowdEstimate.far, names the far ratings), or for one voter "The 7 given counts otherwise once its voter's ratings
    are put on the crowd's scale" (`core.crowd.normalised`). Returns the opening and that sentence (" The ... ." or "")."""
    ratings = [b.rating for b in ballots if b.rating is not None]
    given = statistics.fmean(ratings) if ratings else score
    counted = rating_text(score)
    if rating_text(given) == counted:
        who = "you" if one_rater else "the one voter" if len(ratings) == 1 else "the crowd"
        return f"{who} gave {counted}/10", ""
    if one_rater:
        return f"your rating counts as {counted}/10", f" Your {rating_text(given)} counts otherwise once your ratings are put on one scale."
    if len(ratings) == 1:
        return (f"the one vote counts as {counted}/10",
                f" The {rating_text(given)} given counts otherwise once its voter's ratings are put on the crowd's scale.")
    reasons = [_far_text(far) if name == "outlier" and far else ADJUSTMENTS[name] for name in adjustments]
    return f"the votes count as {counted}/10", f" Their mean is {rating_text(given)}{', but ' + '; '.join(reasons) if reasons else ''}."


def _far_text(far: Sequence[float]) -> str:
    """The ratings that counted less for being far from the others, named as the votes are listed: "the 1, far from the
    others, counts less", "the ratings 1 and 2× 9, far from the others, count less"."""
    if len(far) == 1:
        return f"the {rating_text(far[0])}, far from the others, counts less"
    counts = collections.Counter(rating_text(r) for r in far)
    named = [f"{n}× {r}" if n > 1 else r for r, n in sorted(counts.items(), key=lambda item: float(item[0]))]
    return f"the ratings {' and '.join([', '.join(named[:-1]), named[-1]] if len(named) > 1 else named)}, far from the others, count less"


def scale_drift(
    reference: Reference | tuple[Sequence[Ballot], float] | None,
    aggregate: Aggregator,
    history: History,
    score: float | None = None,
) -> float:
    """How far the bar (`score`, as stored) has moved since the ballots that set it were cast (0 without).

    A score is a verdict of its time: while the aggregator learns that a brigade's 10s or a troll's ratings
    deserve less weight, every later verdict comes out lower (or higher) for the same music, and a bar left
    where it was would undo every edit. The incumbent's score is kept on the scale of the round that set it
    and compared with today's verdicts after this correction."""
    if reference is None:
        return 0.0
    ballots, then = reference[0], reference[1]
    now = aggregate(ballots, history)
    removed = getattr(reference, "removed", 0)
    if not removed or score is None or not (now is None or isinstance(now, CrowdEstimate)):
        return 0.0 if now is None else (now.rating if isinstance(now, CrowdEstimate) else now) - then
    # Removed votes (/strike, /forget-me) change the evidence, not the scale: the bar is blended again as it was set,
    # the votes left with the prior it was blended with, and with none left it is that prior (left where the votes had
    # set it, a bar of 6.67 from a 9 struck since undid a 6). Moved by the whole change of the verdict, a bar of 6 (a
    # 6.33 of 3 votes blended with a neutral 5.5) fell to 1.67 when only a 2 was left (a trial). That prior is solved
    # from the bar, the removed votes taken to have counted as much as those left, or, none left, one voter's worth
    # each (kept on the scale, should a worn bar solve to one off it).
    share = (now.weight / len(ballots) if now is not None else 1.0) * (len(ballots) + removed)
    share /= share + PRIOR_VOTES
    prior = min(max((score - share * then) / (1 - share), RATING_MIN), RATING_MAX)
    return (now.shrunk_toward(prior) if now is not None else prior) - score


def _no_votes(spec: SessionSpec, plan: RoundPlan, incumbent_score: float | None) -> Outcome:
    config = spec.agent
    # Nothing was learned; without evidence an edit is kept only when the agent never reverts.
    keep = not config.keep_best
    verdict = fate(spec, keep, 0 if spec.mode == "ab" else None)
    return Outcome(
        reward=None,
        variant_rewards=tuple(None for _ in plan.proposals),
        updates=(),
        next_track=plan.proposals[0].track if keep else plan.incumbent,
        incumbent_score=incumbent_score,
        kept_edit=keep,
        winner=None,
        voters=0,
        summary=f"nobody voted, so nothing was learned: {verdict}",
        verdict=verdict,
    )


def quorum_reached(spec: SessionSpec, voters: int) -> bool:
    return spec.quorum is not None and voters >= spec.quorum


def round_rng(spec: SessionSpec, index: int) -> random.Random:
    """A generator per round, so a round replanned after a restart decides the same way."""
    return random.Random(f"{spec.seed}:{index}")
