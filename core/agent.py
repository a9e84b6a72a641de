"""The agents: tabular Q-learning over track edits, and a Bayesian linear model of each edit's improvement.

Which one a preset uses is its `learner`: "table" (the paper's agent and the former default), "linear"
(`default`, `theory`: core.features and core.learner; see `choose_linear`) or "none" (`hillclimb`).

The agent never holds the Q-table: callers pass in the entries it needs (from SQLite or a dict),
so a scope's table can be far larger than memory and every update is one row.

A Q-entry is keyed by (state key, action key). What those keys are is the state encoding:
- "track": the whole track with its base note and scale, the action with its note index (the paper).
- "relative": the whole track relative to its base note (the paper's open question 2), so a session
  in another key that reaches the same tune shares what was learned.
- "context": the musical neighbourhood of the edited note and the action kind alone, so what one round
  teaches ("lowering a note after an upward leap helps") carries over to other notes and tracks.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from core.actions import ALL_KINDS, PAPER_KINDS, Action, Kind, apply, legal_actions
from core.features import FEATURE_NAMES, candidate_features
from core.learner import Evidence, KindMeans, Posterior, cautious_choice, generator, thompson_choices
from core.music import PERCUSSION_STEPS, Track, scale_intervals
from core.theory import melody_of_track, theory_critic
from core.words import quoted

QKey = tuple[str, str]

STATE_ENCODINGS = ("track", "relative", "context")
EXPLORATIONS = ("epsilon", "epsilon_decay", "softmax", "ucb")
REWARDS = ("absolute", "delta")
# "table": tabular Q-learning over (state key, action key) entries; "linear": a Bayesian linear model of an
# edit's improvement over its musical features (core.learner), choosing by Thompson sampling; "none": edits
# at random and learns nothing (the hill-climbing baseline).
LEARNERS = ("table", "linear", "none")


@dataclass(frozen=True, slots=True)
class QEntry:
    value: float = 0.0
    visits: int = 0


@dataclass(frozen=True)
class AgentConfig:
    state: str = "context"
    kinds: tuple[Kind, ...] = ALL_KINDS
    exploration: str = "epsilon"
    epsilon: float = 0.5
    epsilon_decay: float = 0.9  # per round, for "epsilon_decay"
    epsilon_min: float = 0.05
    temperature: float = 1.0  # for "softmax", in reward units
    ucb_c: float = 1.0  # for "ucb", in reward units
    alpha: float = 0.1
    # Average an entry's first 1/alpha rewards exactly (learning rate 1/visits), so a single noisy
    # reward is not both trusted fully and, with a small alpha, nearly ignored.
    averaging: bool = False
    gamma: float = 0.9
    # "absolute": the crowd's rating is the reward (the paper). "delta": the rating minus the
    # incumbent's, so Q measures how much an edit improves a track rather than how good it was.
    reward: str = "absolute"
    keep_best: bool = False  # revert an edit the crowd rated below the incumbent
    # The music-theory critic's verdict on an edit (its change of the 1-10 score), times this weight,
    # is what the agent expects of an edit it has not tried; 0 turns the prior off.
    theory_prior: float = 0.0
    prior_visits: float = 2.0  # how many rewards the theory prior is worth
    # How far the crowd's verdict on an undone edit pulls the incumbent's score toward it (see engine.settle).
    rescore: float = 0.0
    learner: str = "table"
    # Candidate edits the linear learner scores per choice (a random subset of the legal ones beyond that):
    # featurising an edit costs ~0.4 ms on a 64-note track, which has ~500 legal edits.
    max_candidates: int = 96
    # Keep-best with the linear learner: the Bayesian average of an edit's score shrinks the crowd's verdict
    # toward the track before's score plus the improvement the model expects of the edit (not plus nothing).
    informed_keep: bool = False

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("state encoding", self.state, STATE_ENCODINGS),
            ("exploration", self.exploration, EXPLORATIONS),
            ("reward", self.reward, REWARDS),
            ("learner", self.learner, LEARNERS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {name} {quoted(str(value))}; choose one of: {', '.join(allowed)}")

    @property
    def learns(self) -> bool:
        """Whether ratings change what the agent chooses: not without a learner (`hillclimb`), nor with a table
        that never moves (alpha 0, without averaging) or is never consulted (epsilon-greedy with epsilon 1:
        every edit random), as `random`'s."""
        if self.learner == "none":
            return False
        if self.learner == "table":
            frozen = self.alpha == 0 and not self.averaging
            ignored = self.exploration == "epsilon" and self.epsilon >= 1
            return not (frozen or ignored)
        return True


def q_update(q: float, reward: float, max_next: float, alpha: float, gamma: float) -> float:
    """The Bellman update, with the target on the *next* state (the paper's code used the same state)."""
    return q + alpha * (reward + gamma * max_next - q)


# --- state encodings ------------------------------------------------------------------------------


_KIND_NAMES = {kind: kind.value for kind in Kind}  # an Enum's .value is a slow descriptor; this is hot


class _Keys:
    """Q-keys of actions on one track. What depends on the track only (its text form, each note's onset,
    each position's context) is computed once: a 64-note track has some 500 legal actions."""

    def __init__(self, config: AgentConfig, track: Track) -> None:
        self.track = track
        self._state: str | None = None
        self._drum_contexts: dict[int, str] = {}
        self._note_contexts: dict[int, str] = {}
        match config.state:
            case "track":
                self._state = f"{track.base}:{track.scale}:{track.key()}"
            case "relative":
                self._state = f"{track.scale}:{track.key()}"
            case _:
                self._onsets = list(itertools.accumulate((n.duration for n in track.notes), initial=0.0))
                self._scale_size = len(scale_intervals(track.scale))

    def __call__(self, action: Action) -> QKey:
        if self._state is not None:
            return self._state, action.key()
        i = action.index
        if action.kind is Kind.PERCUSSION:
            contexts, context_of = self._drum_contexts, self._drum_context
        else:
            contexts, context_of = self._note_contexts, self._note_context
        context = contexts.get(i)
        if context is None:
            context = contexts[i] = context_of(i)
        return context, _KIND_NAMES[action.kind]

    def _drum_context(self, i: int) -> str:
        # Within half a bar: steps 0 and 8 are where a backbeat puts its kicks, 4 and 12 its snares.
        drums = self.track.percussion
        return f"p{i % 8}:{drums[i]}:{drums[i - 1]}:{drums[(i + 1) % PERCUSSION_STEPS]}"

    def _note_context(self, i: int) -> str:
        notes = self.track.notes
        note = notes[i]

        def step(a: int, b: int) -> str:
            return str(max(-4, min(4, notes[b].degree - notes[a].degree)))

        before = step(i - 1, i) if i > 0 else "^"
        after = step(i, i + 1) if i + 1 < len(notes) else "$"
        strong = "s" if self._onsets[i] % 1 == 0 else "w"
        return f"n{before}:{after}:{note.degree % self._scale_size}:{note.duration:g}:{strong}{'c' if note.chord else ''}:{note.velocity // 32}"


def q_key(config: AgentConfig, track: Track, action: Action) -> QKey:
    return _Keys(config, track)(action)


def candidate_actions(config: AgentConfig, track: Track) -> tuple[Action, ...]:
    return legal_actions(track, config.kinds)


@functools.lru_cache(maxsize=16)
def action_keys(config: AgentConfig, track: Track) -> tuple[tuple[Action, QKey], ...]:
    """Every legal action on the track with its Q-key. Cached: one round looks them up to fetch the
    Q-entries and again to choose (twice in A/B mode); configs and tracks are immutable."""
    keys = _Keys(config, track)
    return tuple((action, keys(action)) for action in candidate_actions(config, track))


def lookup_keys(config: AgentConfig, track: Track) -> list[QKey]:
    """Every Q-key the agent may read to act on this track (and to value it as a next state)."""
    return list(dict.fromkeys(key for _, key in action_keys(config, track)))


# --- what the agent expects of each edit ----------------------------------------------------------


class Estimate(NamedTuple):  # made ~500 times a choice at 64 notes: a tuple cuts plan_round by a quarter
    action: Action
    value: float  # the expected reward (with the theory prior while the entry has few visits)
    visits: int


def theory_gain(track: Track, after: Track, before_score: float | None = None) -> float:
    """How much the critic's 1-10 score rises from `track` to `after` (negative: it falls)."""
    if before_score is None:
        before_score = theory_critic.critique(melody_of_track(track)).score_1_to_10
    return theory_critic.critique(melody_of_track(after)).score_1_to_10 - before_score


def estimates(
    config: AgentConfig, track: Track, table: Mapping[QKey, QEntry], exclude: frozenset[Action] = frozenset()
) -> list[Estimate]:
    unseen = QEntry()
    pairs = action_keys(config, track)
    if exclude:
        pairs = [(a, key) for a, key in pairs if a not in exclude]
    actions = [a for a, _ in pairs]
    entries = [table.get(key, unseen) for _, key in pairs]
    if not config.theory_prior:
        return [Estimate(a, e.value, e.visits) for a, e in zip(actions, entries)]
    before = theory_critic.critique(melody_of_track(track)).score_1_to_10
    k = config.prior_visits
    result = []
    for action, entry in zip(actions, entries):
        # The critic hears the melody only: drum, dynamics and chord edits get a prior of 0.
        prior = config.theory_prior * theory_gain(track, apply(track, action), before)
        result.append(Estimate(action, (entry.visits * entry.value + k * prior) / (entry.visits + k), entry.visits))
    return result


def state_value(config: AgentConfig, track: Track, table: Mapping[QKey, QEntry]) -> float:
    """max_a Q(s', a) over the legal actions of a track; 0 for a state never seen."""
    if config.gamma == 0:
        return 0.0  # no need to look
    return max((e.value for e in estimates(config, track, table) if e.visits), default=0.0)


def epsilon_at(config: AgentConfig, round_index: int) -> float:
    if config.exploration == "epsilon_decay":
        return max(config.epsilon_min, config.epsilon * config.epsilon_decay**round_index)
    return config.epsilon


def _argmax_random(values: Sequence[float], rng: random.Random) -> int:
    best = max(values)
    # Random tie-breaking: the paper's first-index ties made 72 of 80 entries "raise note 1".
    return rng.choice([i for i, v in enumerate(values) if v == best])


def left_out(candidates: Sequence[Action], exclude: frozenset[Action], draws: int = 1) -> frozenset[Action]:
    """The edits a choice of `draws` different ones among `candidates` leaves out: `exclude` (a round's edits just undone
    on this track: `choose`'s and `choose_linear`'s `exclude`), unless fewer than `draws` others would be left; then
    none, so that a round always has its edits. Every learner plans with this one rule (core.engine.plan_round)."""
    if exclude and sum(a not in exclude for a in candidates) < draws:
        return frozenset()
    return exclude


def choose(
    config: AgentConfig,
    track: Track,
    table: Mapping[QKey, QEntry],
    rng: random.Random,
    round_index: int = 0,
    exclude: frozenset[Action] = frozenset(),
) -> Action:
    options = estimates(config, track, table, exclude)
    if not options:
        raise ValueError("no legal action on this track")
    values = [o.value for o in options]
    match config.exploration:
        case "epsilon" | "epsilon_decay":
            if rng.random() < epsilon_at(config, round_index):
                return rng.choice(options).action
            return options[_argmax_random(values, rng)].action
        case "softmax":
            top = max(values)
            weights = [math.exp((v - top) / max(config.temperature, 1e-6)) for v in values]
            return rng.choices(options, weights=weights)[0].action
        case "ucb":
            total = sum(o.visits for o in options) + 1
            # Unvisited actions first (infinite bonus), then optimism shrinking with visits.
            scores = [
                o.value + config.ucb_c * math.sqrt(2 * math.log(total) / o.visits) if o.visits else math.inf
                for o in options
            ]
            return options[_argmax_random(scores, rng)].action
    raise AssertionError(config.exploration)


def learn(
    config: AgentConfig,
    key: QKey,
    reward: float,
    next_track: Track,
    table: Mapping[QKey, QEntry],
) -> QEntry:
    """The new entry for `key` after `reward`, valuing the next state from `table`."""
    old = table.get(key, QEntry())
    alpha = max(config.alpha, 1.0 / (old.visits + 1)) if config.averaging else config.alpha
    new_value = q_update(old.value, reward, state_value(config, next_track, table), alpha, config.gamma)
    return QEntry(new_value, old.visits + 1)


# --- the linear learner ----------------------------------------------------------------------------

THEORY_FEATURE = "theory"


def model_name(config: AgentConfig) -> str | None:
    """The name a scope stores this learner's statistics under (None: the learner keeps none). Feature sets
    of another size are another model, so statistics of different shapes never mix."""
    if config.learner != "linear":
        return None
    return f"edits-v1{'+theory' if config.theory_prior else ''}"


def feature_names(config: AgentConfig) -> tuple[str, ...]:
    return (*FEATURE_NAMES, THEORY_FEATURE) if config.theory_prior else FEATURE_NAMES


def initial_model(config: AgentConfig, kind_spread: float = 0.0) -> Posterior:
    """The linear learner's prior: the theory feature's weight starts at `theory_prior`; a kind of edit's effect has
    sd KIND_PRIOR_SD, or `kind_spread` (rating points) where the scope's kinds measured further apart (scope_model)."""
    return Posterior.prior(
        feature_names(config), {THEORY_FEATURE: config.theory_prior} if config.theory_prior else None, kind_spread
    )


def scope_model(config: AgentConfig, evidence: Evidence | None, shared: Sequence[Evidence] = (), measured_kinds: bool = True) -> Posterior:
    """The posterior a scope's agent chooses with: its prior, its own evidence and, when the scope opted in
    to shared learning, other opted-in scopes' evidence (see Posterior.updated). The kinds' prior is as wide as the
    scope's own judged edits show kinds differ (empirical Bayes, KindMeans.spread), KIND_PRIOR_SD at least: a person who
    rates the edit they are told of (an added chord 9-10, anything else 2) makes kinds differ by points, which a
    prior of 0.3 made the model spread over descriptors (a removal of a note without a chord "adds chords"), and a new
    session then opened with removals the person always rated 2. `measured_kinds` False keeps KIND_PRIOR_SD, for what is
    said of the crowd (Conductor.lessons), which reads kinds from the judged edits themselves (core.learner.kind_contrasts):
    a model whose kinds fit such a person leaves the bar's ups and downs to its descriptors, fitted so closely that
    lessons read from it named ten of them a session."""
    by_kind = KindMeans.of(evidence, feature_names(config)) if evidence is not None and measured_kinds else None
    prior = initial_model(config, by_kind.spread() if by_kind is not None else 0.0)
    return prior.updated(evidence if evidence is not None else Evidence.empty(prior.dimension), shared)


def featurize(config: AgentConfig, track: Track, actions: Sequence[Action]) -> np.ndarray:
    """Feature vectors of `actions` on `track`, shape (len(actions), len(feature_names(config)))."""
    features = candidate_features(track, actions)
    if not config.theory_prior:
        return features
    before = theory_critic.critique(melody_of_track(track)).score_1_to_10
    gains = np.array([theory_gain(track, apply(track, action), before) for action in actions])
    return np.column_stack([features, gains])


def choose_linear(
    config: AgentConfig,
    track: Track,
    model: Posterior | None,
    rng: random.Random,
    draws: int = 1,
    cautious: bool = False,
    exclude: frozenset[Action] = frozenset(),
) -> list[tuple[Action, tuple[float, ...], float]]:
    """`draws` different edits by Thompson sampling over (at most max_candidates of) the legal ones but those in
    `exclude` (unless fewer than `draws` others are legal: `left_out`), each with its feature vector and the improvement
    the posterior mean expects of it (rating points). With no model yet, the prior (`initial_model`) decides. `cautious`
    (one draw: an edit that will stay whatever the crowd says) takes the best lower confidence bound instead
    (`core.learner.cautious_choice`)."""
    actions = list(candidate_actions(config, track))
    if not actions:
        raise ValueError("no legal action on this track")
    exclude = left_out(actions, exclude, draws)
    actions = [a for a in actions if a not in exclude]
    if len(actions) > config.max_candidates:
        actions = rng.sample(actions, config.max_candidates)
    features = featurize(config, track, actions)
    posterior = model if model is not None else initial_model(config)
    if cautious and draws == 1:
        chosen = [cautious_choice(posterior, features)]
    else:
        chosen = thompson_choices(posterior, features, draws, generator(rng))
    expected = features[chosen] @ posterior.mean()
    return [(actions[i], tuple(float(v) for v in features[i]), float(e)) for i, e in zip(chosen, expected)]


# At most this many edits open a new session of a scope that has been rated (bench-tuned: 3, 8, 16 and 32 tried; the
# expectation falling to 0 stops it first in most sessions), and at most one per JUDGED_PER_OPENING_EDIT judged edits
# the model rests on: with a few ratings its mean is mostly noise (bench-tuned: 2 and 3 tried, "The opening").
OPENING_EDITS = 16
JUDGED_PER_OPENING_EDIT = 3


def opening(config: AgentConfig, track: Track, model: Posterior | None, limit: int = OPENING_EDITS) -> list[Action]:
    """The edits a scope's model expects to improve a new session's random starting `track`, in the order applied
    (each to the track the ones before made): while the best candidate's expected improvement (the posterior mean,
    rating points) is above 0, at most `limit` and one per JUDGED_PER_OPENING_EDIT judged edits the model rests on
    (the scope's own, and other scopes' at their weight when it shares learning). Nobody hears them one by one: a session of a scope that has been
    rated starts from what its ratings taught. [] for a learner with no model, a model that is still the prior (no
    rating of the scope's own nor shared: the theory preset's prior alone would open with the critic's taste), or a
    track with no legal edit. Deterministic: every legal edit is scored, none sampled.

    The expectation, not a lower bound: nobody rates these edits, so a cautious bound only leaves improvements for
    the crowd to find again. Paired over 200 seeds, a lower bound of mean - 0.3 sd opened 0.4-1.1 points lower and
    was 0.1-0.5 behind after 10 rounds (docs/BENCHMARKS.md, "The opening")."""
    if config.learner != "linear" or model is None:
        return []
    # A model that is still the prior rests on no judged edit, so this cap leaves it no edit too.
    limit = min(limit, int((model.count + model.shared) // JUDGED_PER_OPENING_EDIT))
    mean = model.mean()
    opened: list[Action] = []
    while len(opened) < limit:
        actions = list(candidate_actions(config, track))
        if not actions:
            break
        expected = featurize(config, track, actions) @ mean
        best = int(np.argmax(expected))
        if expected[best] <= 0.0:
            break
        opened.append(actions[best])
        track = apply(track, actions[best])
    return opened


# The paper's agent, its bugs fixed. Its code decays epsilon as 0.5 x 0.01^episode, an episode being 8 ratings.
PAPER = AgentConfig(
    state="track", kinds=PAPER_KINDS, exploration="epsilon_decay", epsilon=0.5, epsilon_decay=0.01 ** (1 / 8),
    epsilon_min=0.0, alpha=0.1, gamma=0.9,
)
RANDOM = AgentConfig(state="context", exploration="epsilon", epsilon=1.0, alpha=0.0, gamma=0.0)
# The tabular agent that was `default` until the linear learner replaced it: Q-values per note context.
# Softmax, UCB, coarser contexts, looking ahead (gamma > 0) and a confidence margin measured no better.
CONTEXT = AgentConfig(
    state="context",
    exploration="epsilon",
    epsilon=0.2,
    epsilon_decay=0.95,  # for an "epsilon_decay" override: from 0.2 to the minimum in about 45 rounds
    epsilon_min=0.02,
    temperature=0.1,  # for a "softmax" override
    ucb_c=0.3,  # for a "ucb" override
    alpha=0.1,
    averaging=True,
    gamma=0.0,
    reward="delta",
    keep_best=True,
    rescore=0.1,
)
# The honest baseline: exactly the same aggregation, keep-best and undo bar, every edit chosen at random,
# nothing learned. Every claim about learning is measured against it (docs/BENCHMARKS.md).
HILLCLIMB = replace(CONTEXT, learner="none", epsilon=1.0)
# The best found with `crowdtune bench learning`: a Bayesian linear model of each edit's improvement over
# features shared across positions, tracks and keys, Thompson sampling, keep-best.
DEFAULT = replace(CONTEXT, learner="linear")
# Default plus the music-theory critic's verdict on each edit as one more feature, whose weight starts at 1
# (a head start the crowd's ratings can overturn); reported on its own, since one simulated crowd's tastes
# share that critic's core and the other's run against it.
THEORY = replace(DEFAULT, theory_prior=1.0)

# In the order --help, /config and every line listing them give them: the default, its baseline, then the rest.
PRESETS: dict[str, AgentConfig] = {
    "default": DEFAULT, "hillclimb": HILLCLIMB, "context": CONTEXT, "paper": PAPER, "random": RANDOM, "theory": THEORY,
}
PRESET_NAMES = tuple(PRESETS)


def preset(name: str) -> AgentConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}") from None
