"""A stop signal once `copy-db`'s copy is committed (or `export`'s zip written). Found by a fresh-user trial: SIGTERM just after the copy finished
printed "copied into c5.db ..." (the copy complete and sound) but exited 143, sometimes with "terminated" too; a script
took that for a failure, and its retry was refused, the target holding data. The copy is what was asked for: once all
its rows are handed to the target's commit, a stop changes nothing, and the command ends as a copy does, exit code 0.
Each signal comes at a fixed point (the process sends it to itself there), never at a time."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile

import pytest
from test_bad_input_start import contents, template_db  # noqa: F401 (a fixture)

# Where the signal comes: as the target closes after its commit (a new file is then still under its temporary name,
# or an existing empty file), or once the copy's line is written (the command's task done, the process ending).
WHEN = {
    "target-closing": """
        from storage.sqlite import SqliteStore
        original = SqliteStore.close
        async def close(self):
            if self.path != "good.db":  # the target, its rows committed
                os.kill(os.getpid(), signal.SIGTERM)
            await original(self)
        SqliteStore.close = close
    """,
    "line-written": """
        class Output:
            def __init__(self, stream):
                self.stream = stream
            def write(self, text):
                written = self.stream.write(text)
                if "copied into" in text:
                    os.kill(os.getpid(), signal.SIGTERM)
                return written
            def __getattr__(self, name):
                return getattr(self.stream, name)
        sys.stdout = Output(sys.stdout)
    """,
}


@pytest.mark.parametrize("target", ["new", "empty-file"])
@pytest.mark.parametrize("when", WHEN)
def test_a_stop_after_the_copy_committed_leaves_it_a_success(tmp_path, template_db, when, target):  # noqa: F811
    shutil.copy(template_db, tmp_path / "good.db")
    if target == "empty-file":
        sqlite3.connect(tmp_path / "c5.db").close()  # an empty file: a copy fills it in its transaction
    script = "import os, signal, sys\n" + textwrap.dedent(WHEN[when]) + textwrap.dedent(
        """
        from bot.entry import main
        sys.argv = ["crowdtune", "copy-db", "--from", "good.db", "--to", "c5.db"]
        sys.exit(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.startswith("copied into c5.db, rows per table: "), result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c5.db", "good.db"]  # nothing of the copy's left
    assert contents(tmp_path / "c5.db") == contents(tmp_path / "good.db")


def test_a_stop_before_the_copy_commits_still_stops_it_and_leaves_no_target(tmp_path, template_db):  # noqa: F811
    shutil.copy(template_db, tmp_path / "good.db")
    script = textwrap.dedent(
        """
        import os, signal, sys
        from storage.sqlite import SqliteStore
        original = SqliteStore.read_table
        def read_table(self, table):
            if table == "votes":  # midway: rows of the tables before it are in the target's open transaction
                os.kill(os.getpid(), signal.SIGTERM)
            return original(self, table)
        SqliteStore.read_table = read_table
        from bot.entry import main
        sys.argv = ["crowdtune", "copy-db", "--from", "good.db", "--to", "c5.db"]
        sys.exit(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout, result.stderr) == (143, "", "terminated\n"), result
    assert sorted(path.name for path in tmp_path.iterdir()) == ["good.db"]


def test_a_stop_once_an_export_is_written_leaves_it_a_success(tmp_path, template_db):  # noqa: F811
    """The same for `export`: its zip in place, a stop as the database closes ended it with 143, and a retry without
    --force was refused, the zip being there."""
    shutil.copy(template_db, tmp_path / "good.db")
    script = textwrap.dedent(
        """
        import os, signal, sys
        from storage.sqlite import SqliteStore
        original = SqliteStore.close
        async def close(self):
            os.kill(os.getpid(), signal.SIGTERM)  # the database closing, after the zip is written
            await original(self)
        SqliteStore.close = close
        from bot.entry import main
        sys.argv = ["crowdtune", "export", "--db", "good.db", "--out", "all.zip"]
        sys.exit(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.startswith("wrote all.zip: "), result.stdout
    assert zipfile.is_zipfile(tmp_path / "all.zip")


def test_a_copy_called_in_process_gives_the_callers_signal_handlers_back(tmp_path, template_db):  # noqa: F811
    """Settled signals stay ignored to the end of crowdtune's own process only: a caller that goes on (this test)
    gets its handlers back once the copy has settled."""
    import signal

    from test_bad_input import run_cli

    shutil.copy(template_db, tmp_path / "good.db")
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert run_cli(["copy-db", "--from", str(tmp_path / "good.db"), "--to", str(tmp_path / "c5.db")]) == (0, "")
    assert {number: signal.getsignal(number) for number in before} == before
