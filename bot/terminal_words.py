"""What the terminal session says about a rated round's outcome, in words (bot.terminal)."""

from __future__ import annotations

from core.crowd import rating_text
from core.engine import Outcome, SessionSpec


def explain(
    outcome: Outcome, spec: SessionSpec, descriptions: list[str], before: float | None, vote: float | str, why_rescored: bool = True
) -> str:
    """One line saying what happened to the round and what its numbers are. `before` is the score the
    track before the edit had (None: not rated yet); `vote` the person's (a rating, in rating mode). What became of the edit is
    the engine's words (`Outcome.verdict`), as every front end shows them. An undone edit's rating also moves the
    kept track's score (`core.engine.settle`, the preset's `rescore`); `why_rescored` adds why (the first time)."""
    if spec.mode == "ab":
        return outcome.summary  # the engine's words, as every front end posts them
    given = f"{rating_text(float(vote))}/10"
    # The engine blends the rating with the score of the track before (Bayesian average): one rating
    # moves a score only part of the way, so a newcomer is told what the numbers are. A score is on a rating's
    # scale and shown as one is (rating_text), so the same score reads alike in every line.
    now = outcome.incumbent_score
    prior = f"the {rating_text(before)} of the track before" if before is not None else "the agent's guess before anyone listened"
    if outcome.kept_edit:
        score = f"; the track now scores {rating_text(now)}" if now is not None else ""
        return f"rated {given}: {outcome.verdict} ({descriptions[0]}){score}, your rating blended with {prior}"
    line = f"rated {given}: blended with {prior}, the edit scores below it, so {outcome.verdict}"
    if now is None:
        return line
    if not spec.agent.rescore:
        return f"{line} (its score stays {rating_text(now)})"
    # A move of less than 0.005 reads as none: said, so the rating does not seem ignored.
    moved = "hardly at all: now" if before is not None and rating_text(now) == rating_text(before) else "now"
    line += f"; its score moves {spec.agent.rescore:.0%} of the way toward your rating, {moved} {rating_text(now)}"
    return f"{line} (the two differ by one edit, so your rating says a little about it too)" if why_rescored else line
