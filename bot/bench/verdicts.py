"""The one rule every benchmark's targets are judged by, and the lines that say it.

A target bounds a measured figure: at least a goal, at most a goal, or not below a goal beyond noise. The figure
comes with its 95% interval (a paired mean's over seeds, a median's over trials), or with none when it is
measured exactly (a memory peak). The verdict:

- MET: the whole interval is on the target's side of the goal;
- NOT MET: the whole interval is on the wrong side;
- UNDECIDED: the goal lies inside the interval (more seeds or trials decide; neither met nor missed);
- NOT JUDGED: fewer samples than the target asks for, whose interval is too wide to say anything.

"Not below beyond noise" is met unless the whole interval is below the goal, which is why it needs its samples
most: with two seeds almost anything meets it. A target of several figures takes the worst verdict of them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

AT_LEAST, AT_MOST, NOT_BELOW = "at least", "at most", "not below beyond noise"
MET, NOT_MET, UNDECIDED, NOT_JUDGED = "MET", "NOT MET", "UNDECIDED", "NOT JUDGED"
_WORST_FIRST = (NOT_JUDGED, NOT_MET, UNDECIDED, MET)
_WIDTH = max(map(len, _WORST_FIRST))


@dataclass(frozen=True)
class Verdict:
    word: str  # MET, NOT_MET, UNDECIDED or NOT_JUDGED
    why: str = ""  # said after the figures when the verdict is not plainly MET or NOT MET


def judge(value: float, goal: float, kind: str = AT_LEAST, interval: tuple[float, float] | None = None,
          samples: int | None = None, enough: int = 0, unit: str = "samples", more: str = "{} or more",
          measured_in: str = "") -> Verdict:
    """The verdict on `value` (its 95% `interval` (low, high), or None for a figure measured exactly) against
    `goal` by the module's rule. `samples` (counted in `unit`, "seeds") below `enough`: NOT_JUDGED, saying the
    interval's half-width in the figure's unit (`measured_in`, " quality points") and how to get enough by `more`
    formatted with `enough` ("--seeds {} or more")."""
    low, high = interval if interval is not None else (value, value)
    if samples is not None and samples < enough:
        spread = f"± {(high - low) / 2:.2f}{measured_in}" if math.isfinite(high - low) else "no interval"
        counted = f"{samples} {unit if samples != 1 else unit.removesuffix('s')}"
        return Verdict(NOT_JUDGED, f"not judged: {counted} give{'s' if samples == 1 else ''} {spread}; use {more.format(enough)}")
    if kind == AT_MOST:
        low, high, goal = -high, -low, -goal
    if kind == NOT_BELOW:
        return Verdict(MET if high >= goal else NOT_MET)
    if low >= goal:
        return Verdict(MET)
    if high < goal:
        return Verdict(NOT_MET)
    return Verdict(UNDECIDED, "undecided: the goal lies inside the 95% interval")


def worst(*verdicts: Verdict) -> Verdict:
    """The verdict on a target of several figures: its worst one (NOT_JUDGED, NOT_MET, UNDECIDED, MET)."""
    return min(verdicts, key=lambda v: _WORST_FIRST.index(v.word))


def median_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """A 95% interval of the median of `values` (distribution-free: the order statistics whose binomial
    coverage is at least 95%), or None when there are too few (under 6) to give one."""
    ordered = sorted(values)
    n = len(ordered)
    for k in range(n // 2, -1, -1):  # the narrowest symmetric pair of ranks k..n-1-k covering 95%
        coverage = sum(math.comb(n, i) for i in range(k + 1, n - k)) / 2**n if n - k > k + 1 else 0.0
        if coverage >= 0.95:
            return ordered[k], ordered[n - 1 - k]
    return None


def judge_median(values: Sequence[float], goal: float, kind: str = AT_LEAST, unit: str = "", digits: int = 2) -> tuple[Verdict, str]:
    """The verdict on the median of repeated measurements (paired ratios, timings in `unit`), and its figures:
    'median [95% interval]'. Too few measurements for an interval (under 6): NOT_JUDGED."""
    median = statistics.median(values)
    interval = median_interval(values)
    if interval is None:
        verdict = judge(median, goal, kind, (-math.inf, math.inf), len(values), 6, "trials", "{} trials or more")
        return verdict, f"{median:.{digits}f}{unit} (median of {len(values)})"
    return judge(median, goal, kind, interval), f"{median:.{digits}f}{unit} [{interval[0]:.{digits}f}-{interval[1]:.{digits}f}] (median, 95% interval)"


def line(name: str, verdict: Verdict, figures: str) -> str:
    """One target's line, the same in every benchmark: its verdict first, the target, the figures, then why."""
    return f"  {verdict.word:{_WIDTH}} {name}: {figures}" + (f"; {verdict.why}" if verdict.why else "")


def summary(verdicts: Iterable[Verdict]) -> str:
    """The last line over a run's targets: 'every target judged met' only when every one was MET."""
    words = [v.word for v in verdicts]
    counts = [(words.count(word), label) for word, label in (
        (NOT_MET, "not met"), (UNDECIDED, "undecided (the goal inside the interval)"), (NOT_JUDGED, "not judged (too few samples)"),
    )]  # fmt: skip
    if not any(count for count, _ in counts):
        return "every target judged met"
    return "targets: " + ", ".join(f"{count} {label}" for count, label in counts if count) + f", {words.count(MET)} met"
