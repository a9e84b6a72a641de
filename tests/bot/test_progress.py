"""Progress bars (bot.progress): their rate reads with a space before its unit."""

from __future__ import annotations

import io

from bot.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bars_rate_reads_with_its_unit_whole_whether_fast_or_slow():
    """Found by a fresh-user trial: render's bar read `1.15s/ file`, the unit carrying a space. Slow work is
    shown as seconds per file, fast work as files per second, each with a space before its unit."""
    with progress_bar(3, "render", "file", stream=Terminal()) as bar:
        slow = bar.format_meter(**(bar.format_dict | {"n": 2, "elapsed": 2.3, "rate": None}))
        fast = bar.format_meter(**(bar.format_dict | {"n": 2, "elapsed": 0.5, "rate": None}))
        bar.update(1)
        shown = str(bar)
    assert slow.endswith("| 2/3 [00:02<00:01, 1.15 s/file]"), slow
    assert fast.endswith("| 2/3 [00:00<00:00, 4.00 file/s]"), fast
    assert " 1/3 [" in shown and shown.endswith(" file/s]"), shown
    stream = Terminal()
    with progress_bar(None, "export", "file", stream=stream) as bar:
        counted = bar.format_meter(**(bar.format_dict | {"n": 274, "elapsed": 2.0, "rate": None}))
    assert counted == "export: 274 file [00:02, 137.00 file/s]", counted
    assert "s/ " not in stream.getvalue() and "?file" not in stream.getvalue()


def test_a_bar_is_silent_off_a_terminal():
    stream = io.StringIO()
    with progress_bar(3, "render", "file", stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""
    assert list(progress_bar(3, "x", "run", iterable=range(3), stream=stream)) == [0, 1, 2] and stream.getvalue() == ""
