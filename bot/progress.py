"""Progress bars for long work (tqdm), shown only on a terminal, and plural words for counts."""

from __future__ import annotations

import sys
from typing import TextIO


def progress_bar(total: int | None, what: str, unit: str = "it", stream: TextIO | None = None, iterable=None):
    """A tqdm bar on `stream` (standard error) when it is a terminal; a silent one otherwise, so piped
    and logged output stays clean. Use as a context manager and `.update(n)`, or iterate over it
    (with `iterable`)."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    return tqdm(
        iterable, total=total, desc=what, unit=f" {unit}", file=stream, disable=not stream.isatty(), leave=False,
        dynamic_ncols=True,
    )


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 rater', '2 raters'; `many` for irregular words ('1 entry', '3 entries')."""
    return f"{count} {word if count == 1 else many or word + 's'}"
