"""Turning a crowd's ballots into a reward. Pure functions over immutable ballots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RATING_MIN, RATING_MAX = 1, 10
CHOICES = ("a", "b", "both", "neither")
NEUTRAL_RATING = (RATING_MIN + RATING_MAX) / 2


@dataclass(frozen=True, slots=True)
class Ballot:
    """One voter's standing vote in a round (the latest one; retracted votes are not ballots)."""

    voter: str
    rating: float | None = None
    choice: str | None = None


def check_rating(value: float) -> float:
    if not RATING_MIN <= value <= RATING_MAX:
        raise ValueError(f"a rating is a number from {RATING_MIN} to {RATING_MAX}, not {value}")
    return float(value)


def check_choice(choice: str) -> str:
    normalised = choice.strip().lower()
    if normalised not in CHOICES:
        raise ValueError(f"a vote is one of {', '.join(CHOICES)}, not '{choice}'")
    return normalised


def mean_rating(ballots: Sequence[Ballot], history: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> float | None:
    """The plain mean of the standing ratings (history unused)."""
    ratings = [b.rating for b in ballots if b.rating is not None]
    return sum(ratings) / len(ratings) if ratings else None


def ab_rewards(ballots: Sequence[Ballot]) -> tuple[float, float] | None:
    """Each variant's reward on the 1-10 scale from A/B votes.

    A vote for one side counts 1 for it; "both" counts a half for each; "neither" pulls both down.
    Laplace smoothing keeps a single vote from being a verdict.
    """
    counts = {c: sum(1 for b in ballots if b.choice == c) for c in CHOICES}
    total = sum(counts.values())
    if total == 0:
        return None
    decided = counts["a"] + counts["b"] + counts["both"]
    share_a = (counts["a"] + 0.5 * counts["both"] + 1) / (decided + 2)
    approval = (decided + 1) / (total + 1)  # the share who liked at least one side
    scale = RATING_MAX - RATING_MIN
    return RATING_MIN + scale * share_a * approval, RATING_MIN + scale * (1 - share_a) * approval
