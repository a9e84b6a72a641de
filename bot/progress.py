"""Progress bars for long work (tqdm), shown only on a terminal, and plural words for counts."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO


def progress_bar(total: int | None, what: str, unit: str = "it", stream: TextIO | None = None, iterable=None):
    """A tqdm bar on `stream` (standard error) when it is a terminal; a silent one otherwise, so piped
    and logged output stays clean. Use as a context manager and `.update(n)`, or iterate over it
    (with `iterable`). It reads "render: 67%|###  | 2/3 [00:02<00:01, 1.15 s/file]"; without a total,
    "export: 274 files [00:01, 180.00 file/s]". Its last frame, drawn as it closes, shows the final count."""
    from tqdm import tqdm

    class Bar(tqdm):
        # tqdm writes its rate against the unit ("1.15s/file"; a unit given with a space read "1.15s/ file")
        # and has no field for it spaced: `pace` is the same rate (tqdm's smoothed one, else n / elapsed; per
        # unit when under one a second) said with a space. tqdm's {unit} is the word as given ("274 file"):
        # `counted` is the count with its word in the plural where it is one (plural).
        @staticmethod
        def format_meter(n, total, elapsed, rate=None, initial=0, **rest):
            rate = rate or ((n - initial) / elapsed if elapsed else None)
            pace = "?" if not rate else f"{1 / rate:.2f} s/{unit}" if rate < 1 else f"{rate:.2f} {unit}/s"
            return tqdm.format_meter(n, total, elapsed, rate=rate, initial=initial, pace=pace, counted=plural(n, unit), **rest)

        def close(self):
            # tqdm draws at most every mininterval (0.1 s), so the last updates of fast work go undrawn, and close
            # does not draw them either (with leave=False it only clears the line): draw the final count first.
            if not self.disable:
                self.refresh()
            super().close()

    stream = stream or sys.stderr
    counted = "{n_fmt}/{total_fmt} [{elapsed}<{remaining}" if total else "{counted} [{elapsed}"
    return Bar(
        iterable, total=total, desc=what, unit=unit, file=stream, disable=not stream.isatty(), leave=False, dynamic_ncols=True,
        bar_format=("{l_bar}{bar}| " if total else "{desc}: ") + counted + ", {pace}{postfix}]",
    )


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 rater', '2 raters'; `many` for irregular words ('1 entry', '3 entries')."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def plural_agreeing(count: int, word: str, verbs: tuple[str, str], many: str | None = None) -> str:
    """`plural` with its verb agreeing, `verbs` its (one, many) forms: '1 person has', '3 people have' (a trial read
    "when 1 have voted")."""
    return f"{plural(count, word, many)} {verbs[count != 1]}"


def duration(seconds: float) -> str:
    """A length of time in seconds, to the second, in the units that say it plainly: "15 s", "5 min", "1 min 30 s",
    "1 h 30 min", "7 days" (not "0.25 min")."""
    rest, parts = round(seconds), []
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min"), (1, "s")):
        count, rest = divmod(rest, size)
        if count:
            parts.append(plural(count, unit) if unit == "day" else f"{count} {unit}")
    return " ".join(parts) or "0 s"


def counted(counts: Mapping[str, int], words: Mapping[str, tuple[str, str | None]]) -> str:
    """'3 rounds, 1 audit entry': each of `counts`, in its order, with its word from `words` ((one, many), as plural)."""
    return ", ".join(plural(count, *words[key]) for key, count in counts.items())


def stored(votes: int, agent: str | None) -> str:
    """What is stored of a person (/forget-me, `crowdtune forget-user`), naming only what there is: "5 votes",
    "2 votes and your personal agent" (`agent`: the words for it, or None when they have none); "nothing"."""
    parts = [plural(votes, "vote")] if votes else []
    if agent is not None:
        parts.append(agent)
    return " and ".join(parts) or "nothing"
