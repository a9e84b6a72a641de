"""Progress bars (bot.progress): their rate reads with a space before its unit."""

from __future__ import annotations

import io
import zipfile

from test_cli import crowdtune

from bot.progress import progress_bar
from storage.export import write_export


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
    assert counted == "export: 274 files [00:02, 137.00 file/s]", counted
    assert "s/ " not in stream.getvalue() and "?file" not in stream.getvalue()


def test_a_bar_is_silent_off_a_terminal():
    stream = io.StringIO()
    with progress_bar(3, "render", "file", stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""
    assert list(progress_bar(3, "x", "run", iterable=range(3), stream=stream)) == [0, 1, 2] and stream.getvalue() == ""


def test_a_bar_ends_on_its_true_count_with_its_word_in_the_plural():
    """Found by a fresh-user trial: export's bar ended on `export: 376 file [00:00, 1734.05 file/s]`: the updates of
    its last 0.1 s were never drawn (tqdm draws at most every mininterval, and close with leave=False only clears the
    line), and the word stayed singular. The last frame drawn shows the final count, in the plural where it is one."""
    for count, shown in [(462, "export: 462 files ["), (1, "export: 1 file [")]:
        stream = Terminal()
        with progress_bar(None, "export", "file", stream=stream) as bar:
            for _ in range(count):
                bar.update(1)
        frames = [frame for frame in stream.getvalue().split("\r") if frame.strip()]
        assert frames[-1].startswith(shown), frames
    stream = Terminal()
    with progress_bar(40, "render", "file", stream=stream) as bar:
        for _ in range(40):
            bar.update(1)
    frames = [frame for frame in stream.getvalue().split("\r") if frame.strip()]
    assert " 40/40 [" in frames[-1], frames


def test_the_export_bar_counts_every_file_the_zip_holds(tmp_path):
    """Found by a fresh-user trial: the export's count (376) was that of the rounds' MIDI files, while the zip held 462
    (each session's final.mid and the .jsonl and .json files too): `progress` is called once per file written."""
    crowdtune("run", "--rounds", "2", "--mode", "ab", "--no-audio", "--db", "ct.db", stdin="a\nb\n", cwd=tmp_path)
    calls = []
    write_export(str(tmp_path / "ct.db"), tmp_path / "all.zip", progress=lambda: calls.append(1))
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        files = archive.namelist()
    assert len(calls) == len(files) and len([f for f in files if f.endswith(".mid")]) == 5, files
