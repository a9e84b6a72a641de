"""Tabular Q-learning over track edits.

The agent never holds the Q-table: callers pass in the entries it needs (from SQLite or a dict),
so a scope's table can be far larger than memory and every update is one row.

A Q-entry is keyed by (state key, action key). What those keys are is the state encoding:
- "track": the whole track with its base note and scale, the action with its note index (the paper).
- "relative": the whole track relative to its base note (the paper's open question 2).
- "context": the musical neighbourhood of the edited note, the action kind alone, so what one round
  teaches ("lowering a note after an upward leap helps") carries over to other notes and tracks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.actions import ALL_KINDS, PAPER_KINDS, Action, Kind, legal_actions
from core.music import PERCUSSION_STEPS, Track, scale_intervals

QKey = tuple[str, str]

STATE_ENCODINGS = ("track", "relative", "context")
EXPLORATIONS = ("epsilon", "epsilon_decay", "softmax", "ucb")


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
    temperature: float = 1.0  # for "softmax"
    ucb_c: float = 1.0  # for "ucb"
    alpha: float = 0.1
    gamma: float = 0.9
    # "absolute": the crowd's rating is the reward (the paper). "delta": the rating minus the
    # incumbent's, so Q measures how much an edit improves a track rather than how good it was.
    reward: str = "absolute"
    keep_best: bool = False  # revert an edit the crowd rated below the incumbent

    def __post_init__(self) -> None:
        if self.state not in STATE_ENCODINGS:
            raise ValueError(f"unknown state encoding '{self.state}'; choose one of: {', '.join(STATE_ENCODINGS)}")
        if self.exploration not in EXPLORATIONS:
            raise ValueError(f"unknown exploration '{self.exploration}'; choose one of: {', '.join(EXPLORATIONS)}")
        if self.reward not in ("absolute", "delta"):
            raise ValueError("reward must be 'absolute' or 'delta'")


def q_update(q: float, reward: float, max_next: float, alpha: float, gamma: float) -> float:
    """The Bellman update, with the target on the *next* state (the paper's code used the same state)."""
    return q + alpha * (reward + gamma * max_next - q)


def _context_key(track: Track, action: Action) -> str:
    if action.kind is Kind.PERCUSSION:
        i = action.index
        drums = track.percussion
        return f"p{i % 4}:{drums[i]}:{drums[i - 1]}:{drums[(i + 1) % PERCUSSION_STEPS]}"
    notes, i = track.notes, action.index
    note = notes[i]
    size = len(scale_intervals(track.scale))

    def step(a: int, b: int) -> str:
        return str(max(-4, min(4, notes[b].degree - notes[a].degree)))

    before = step(i - 1, i) if i > 0 else "^"
    after = step(i, i + 1) if i + 1 < len(notes) else "$"
    onset = sum(n.duration for n in notes[:i])
    strong = "s" if onset % 1 == 0 else "w"
    return f"n{before}:{after}:{note.degree % size}:{note.duration:g}:{strong}{'c' if note.chord else ''}:{note.velocity // 32}"


def q_key(config: AgentConfig, track: Track, action: Action) -> QKey:
    match config.state:
        case "track":
            return f"{track.base}:{track.scale}:{track.key()}", action.key()
        case "relative":
            return f"{track.scale}:{track.key()}", action.key()
        case _:
            return _context_key(track, action), action.kind.value


def candidate_actions(config: AgentConfig, track: Track) -> tuple[Action, ...]:
    return legal_actions(track, config.kinds)


def lookup_keys(config: AgentConfig, track: Track) -> list[QKey]:
    """Every Q-key the agent may read to act on this track (and to value it as a next state)."""
    return list(dict.fromkeys(q_key(config, track, a) for a in candidate_actions(config, track)))


def state_value(config: AgentConfig, track: Track, table: Mapping[QKey, QEntry]) -> float:
    """max_a Q(s', a) over the legal actions of a track; 0 for a state never seen."""
    values = [table[k].value for k in lookup_keys(config, track) if k in table]
    return max(values, default=0.0)


def epsilon_at(config: AgentConfig, round_index: int) -> float:
    if config.exploration == "epsilon_decay":
        return max(config.epsilon_min, config.epsilon * config.epsilon_decay**round_index)
    return config.epsilon


def _argmax_random(values: Sequence[float], rng: random.Random) -> int:
    best = max(values)
    # Random tie-breaking: the paper's first-index ties made 72 of 80 entries "raise note 1".
    return rng.choice([i for i, v in enumerate(values) if v == best])


def choose(
    config: AgentConfig,
    track: Track,
    table: Mapping[QKey, QEntry],
    rng: random.Random,
    round_index: int = 0,
    exclude: frozenset[Action] = frozenset(),
) -> Action:
    actions = [a for a in candidate_actions(config, track) if a not in exclude]
    if not actions:
        raise ValueError("no legal action on this track")
    entries = [table.get(q_key(config, track, a), QEntry()) for a in actions]
    values = [e.value for e in entries]
    match config.exploration:
        case "epsilon" | "epsilon_decay":
            if rng.random() < epsilon_at(config, round_index):
                return rng.choice(actions)
            return actions[_argmax_random(values, rng)]
        case "softmax":
            top = max(values)
            weights = [math.exp((v - top) / max(config.temperature, 1e-6)) for v in values]
            return rng.choices(actions, weights=weights)[0]
        case "ucb":
            total = sum(e.visits for e in entries) + 1
            # Unvisited actions first (infinite bonus), then optimism shrinking with visits.
            scores = [
                e.value + config.ucb_c * math.sqrt(2 * math.log(total) / e.visits) if e.visits else math.inf
                for e in entries
            ]
            return actions[_argmax_random(scores, rng)]
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
    new_value = q_update(old.value, reward, state_value(config, next_track, table), config.alpha, config.gamma)
    return QEntry(new_value, old.visits + 1)


PAPER = AgentConfig(state="track", kinds=PAPER_KINDS, exploration="epsilon", epsilon=0.5, alpha=0.1, gamma=0.9)
RANDOM = AgentConfig(state="context", exploration="epsilon", epsilon=1.0, alpha=0.0, gamma=0.0)
DEFAULT = AgentConfig(
    state="context",
    exploration="ucb",
    ucb_c=1.0,
    alpha=0.3,
    gamma=0.5,
    reward="delta",
    keep_best=True,
)

PRESETS: dict[str, AgentConfig] = {"paper": PAPER, "default": DEFAULT, "random": RANDOM}


def preset(name: str) -> AgentConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}") from None
