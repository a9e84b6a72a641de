"""What the terminal session says about a rated round's outcome, in words (bot.terminal)."""

from __future__ import annotations

from core.crowd import rating_text
from core.engine import Outcome, SessionSpec, telling_decimals


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
    # moves a score only part of the way, so a newcomer is told what the numbers are.
    now = outcome.incumbent_score
    rescored = not outcome.kept_edit and now is not None and before is not None and spec.agent.rescore > 0
    # A rescored score is shown in as many decimals as tell it from the score before (a move of 0.008 too).
    decimals = telling_decimals(now, before, _score_text, fewest=1) if rescored else 1
    prior = f"the {before:.{decimals}f} of the track before" if before is not None else "the agent's guess before anyone listened"
    if outcome.kept_edit:
        score = f"; the track now scores {now:.1f}" if now is not None else ""
        return f"rated {given}: {outcome.verdict} ({descriptions[0]}){score}, your rating blended with {prior}"
    line = f"rated {given}: blended with {prior}, the edit scores below it, so {outcome.verdict}"
    if now is None:
        return line
    if not spec.agent.rescore:
        return f"{line} (its score stays {now:.1f})"
    moved = "hardly at all: now" if rescored and _score_text(now, decimals) == _score_text(before, decimals) else "now"
    line += f"; its score moves {spec.agent.rescore:.0%} of the way toward your rating, {moved} {now:.{decimals}f}"
    return f"{line} (the two differ by one edit, so your rating says a little about it too)" if why_rescored else line


def _score_text(score: float, decimals: int) -> str:
    return f"{score:.{decimals}f}"
