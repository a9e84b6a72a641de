"""A stop signal once a command's outcome is decided (bot.stopping.settle) changes nothing, at every point to the
process's very end; one before leaves nothing made. Found by a trial: `copy-db` killed in the tenth of a second after
"copied into ..." died BY the signal (the interpreter's shutdown puts SIG_DFL back in place of Python's handlers);
`export` stopped as its thread finished said "terminated", 143, with the zip complete; `upgrade` stopped just after its
commit said "terminated" with the file upgraded; `run` died silently after its session finished. Each signal comes at
a fixed point (the process sends it to itself there), never at a time; "exit" is after the interpreter's shutdown,
from C's exit (glibc's on_exit, registered once the command returned 0)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile

import pytest
from dbrows import as_of_schema
from test_bad_input_start import contents, template_db  # noqa: F401 (a fixture)

# Sent by C's exit, after Python's finalization: killpg(status, SIGTERM) with status 0, the process's own group (it
# runs in a session of its own); registered only once the command returned 0, so it can name no other group.
AT_EXIT = """
    import ctypes
    def signal_at_exit(code):
        if code == 0:
            libc = ctypes.CDLL(None)
            libc.on_exit(ctypes.cast(libc.killpg, ctypes.c_void_p), ctypes.c_void_p(int(signal.SIGTERM)))
        return code
"""


def crowdtune_with(tmp_path, before: str, argv: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    """Run `crowdtune argv` in `tmp_path` with the Python `before` run first (its hooks), to its end."""
    script = "import os, signal, sys\n" + textwrap.dedent(AT_EXIT) + textwrap.dedent(before) + textwrap.dedent(
        f"""
        from bot.entry import main
        sys.argv = ["crowdtune", *{argv!r}]
        sys.exit(signal_at_exit(main()))
        """
    )
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          input=stdin, start_new_session=True)


def test_a_stop_during_shutdown_after_a_copy_leaves_it_a_success(tmp_path, template_db):  # noqa: F811
    shutil.copy(template_db, tmp_path / "good.db")
    result = crowdtune_with(tmp_path, "", ["copy-db", "--from", "good.db", "--to", "c5.db"])
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.startswith("copied into c5.db, rows per table: "), result.stdout
    assert contents(tmp_path / "c5.db") == contents(tmp_path / "good.db")


def test_a_stop_during_shutdown_after_an_export_leaves_it_a_success(tmp_path, template_db):  # noqa: F811
    shutil.copy(template_db, tmp_path / "good.db")
    result = crowdtune_with(tmp_path, "", ["export", "--db", "good.db", "--out", "all.zip"])
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.startswith("wrote all.zip: ") and zipfile.is_zipfile(tmp_path / "all.zip"), result


# `heard` is set once the loop's signal handler has run (bot.stopping._heard); the export's writer, to be wrapped.
HEARD = textwrap.dedent("""
    import threading
    import bot.stopping, storage.export
    heard, original_heard = threading.Event(), bot.stopping._heard
    def _heard(number):
        original_heard(number)
        heard.set()
    bot.stopping._heard = _heard
    original_write = storage.export.write_export
""")


def test_a_stop_while_the_export_is_written_leaves_no_zip(tmp_path, template_db):  # noqa: F811
    """The signal is heard (the loop's handler has run) while the writing thread is at its last file: the thread
    then stops short of renaming its zip into place. It used to finish and rename it, the command saying 143."""
    shutil.copy(template_db, tmp_path / "good.db")
    before = HEARD + textwrap.dedent("""
        def write_export(location, out, scope, progress, *rest):
            def last():
                progress()
                if not heard.is_set() and out.name == "all.zip":
                    os.kill(os.getpid(), signal.SIGTERM)
                    assert heard.wait(60)  # a limit on waiting, never a measure
            return original_write(location, out, scope, last, *rest)
        storage.export.write_export = write_export
    """)
    result = crowdtune_with(tmp_path, before, ["export", "--db", "good.db", "--out", "all.zip"])
    assert (result.returncode, result.stdout, result.stderr) == (143, "", "terminated\n"), result
    assert sorted(path.name for path in tmp_path.iterdir()) == ["good.db"]


def test_a_stop_early_in_the_export_stops_its_thread_at_the_next_row_and_leaves_no_zip(tmp_path, template_db):  # noqa: F811
    """A stop (SIGTERM) at the export's first file: its thread, told to stop, writes no file of the next row, and
    nothing is left. It used to write the whole zip (slow on a big database) only to discard it. The count of files
    written after the stop is read from a file beside the database, outside the folder the export writes in."""
    shutil.copy(template_db, tmp_path / "good.db")
    whole = crowdtune_with(tmp_path, "", ["export", "--db", "good.db", "--out", "whole.zip"])
    files = len(zipfile.ZipFile(tmp_path / "whole.zip").namelist())
    (tmp_path / "whole.zip").unlink()
    before = HEARD + textwrap.dedent(f"""
        def write_export(location, out, scope, progress, committing, stop=None):
            written = []
            def counted():
                progress()
                written.append(heard.is_set())
                if len(written) == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
                    assert heard.wait(60) and (stop is None or stop.wait(60))  # limits on waiting, never measures
                with open({str(tmp_path / "after")!r}, "w") as count:
                    count.write(str(sum(written)))
            given = dict() if stop is None else dict(stop=stop)  # a writer that takes no stop is tested as it is
            return original_write(location, out, scope, counted, committing, **given)
        storage.export.write_export = write_export
    """)
    (tmp_path / "out").mkdir()
    result = crowdtune_with(tmp_path, before, ["export", "--db", "good.db", "--out", "out/all.zip"])
    assert (whole.returncode, result.returncode, result.stdout, result.stderr) == (0, 143, "", "terminated\n"), result
    assert list((tmp_path / "out").iterdir()) == []
    # A round's other proposal (an A/B round's B) may follow its first: its row is one; the next row is never begun.
    assert files > 4 and int((tmp_path / "after").read_text() or 0) <= 1, (files, (tmp_path / "after").read_text())


OLDER = 12  # a schema an upgrade takes to today's (tests/bot/test_older_database.py)
UPGRADE_AT = {
    # After the commit: the file is upgraded, whatever comes.
    "committed": """
        from storage.sqlite import SqliteStore
        original = SqliteStore.schema_version
        async def schema_version(self):
            os.kill(os.getpid(), signal.SIGTERM)
            return await original(self)
        SqliteStore.schema_version = schema_version
    """,
    "exit": "",
}


@pytest.mark.parametrize("when", UPGRADE_AT)
def test_a_stop_once_an_upgrade_is_committed_leaves_it_a_success(tmp_path, template_db, when):  # noqa: F811
    shutil.copy(template_db, tmp_path / "old.db")
    as_of_schema(str(tmp_path / "old.db"), OLDER)
    result = crowdtune_with(tmp_path, UPGRADE_AT[when], ["upgrade", "--db", "old.db"])
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.startswith("upgraded the database old.db to this crowdtune's schema"), result.stdout
    with sqlite3.connect(tmp_path / "old.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] > OLDER


def test_a_stop_before_an_upgrade_commits_leaves_the_file_as_it_was(tmp_path, template_db):  # noqa: F811
    shutil.copy(template_db, tmp_path / "old.db")
    as_of_schema(str(tmp_path / "old.db"), OLDER)
    # The stop is heard before the commit is settled: the hook waits for the cancellation the signal brings (a stop
    # that came in the same loop turn as the last migration's result was heard only after the settling, on an idle
    # machine most runs: then the upgrade rightly went on to its end).
    before = """
        import asyncio
        from storage import sqlite
        original = sqlite._Tx.execute
        async def execute(self, sql, *args, **kwargs):
            if sql.startswith("PRAGMA user_version"):  # the migrations run, not yet committed
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.Event().wait()  # ended only by the stop's cancellation
            return await original(self, sql, *args, **kwargs)
        sqlite._Tx.execute = execute
    """
    result = crowdtune_with(tmp_path, before, ["upgrade", "--db", "old.db"])
    assert (result.returncode, result.stdout, result.stderr) == (143, "", "terminated\n"), result
    with sqlite3.connect(tmp_path / "old.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == OLDER


RUN_AT = {
    # As the store closes, every line of the finished session said and its files written.
    "closing": """
        from storage.sqlite import SqliteStore
        original = SqliteStore.close
        async def close(self):
            os.kill(os.getpid(), signal.SIGTERM)
            await original(self)
        SqliteStore.close = close
    """,
    "exit": "",
}


@pytest.mark.parametrize("when", RUN_AT)
def test_a_stop_once_a_session_has_finished_leaves_it_a_success(tmp_path, when):
    result = crowdtune_with(tmp_path, RUN_AT[when], ["run", "--new", "--db", "z.db", "--rounds", "1", "--no-audio", "--out", "r"], "7\n")
    assert (result.returncode, result.stderr) == (0, ""), result
    assert "session 1 finished after 1 round voted in this run" in result.stdout.splitlines(), result.stdout


def test_a_stop_as_a_new_database_is_made_leaves_no_file(tmp_path):
    """Found by a trial: SIGTERM as `run --new --db z.db` started left a 0-byte z.db. The signal comes as SQLite's
    thread connects (and so makes the file)."""
    before = """
        import aiosqlite
        original = aiosqlite.connect
        def connect(*args, **kwargs):
            if args[0] == "z.db":
                os.kill(os.getpid(), signal.SIGTERM)  # heard at the next await: the connection's
            return original(*args, **kwargs)
        aiosqlite.connect = connect
        import storage.sqlite
        storage.sqlite.aiosqlite.connect = connect
    """
    result = crowdtune_with(tmp_path, before, ["run", "--new", "--db", "z.db", "--rounds", "1", "--no-audio", "--out", "r"], "7\n")
    assert (result.returncode, result.stderr) == (143, "terminated\n"), result
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["run", "--new", "--db", "z.db", "--rounds", "1", "--no-audio", "--out", "r"],
                                  ["simulate", "--db", "z.db", "--rounds", "1", "--out", "r"]], ids=["run", "simulate"])
def test_a_stop_before_a_new_databases_session_started_leaves_no_file(tmp_path, argv):
    """The same once the file holds crowdtune's tables: stopped as it claims the database, no session started (a
    simulation's too: it left its new database, found with the bot's start that did)."""
    before = """
        from storage.sqlite import SqliteStore
        original = SqliteStore.claim_instance
        async def claim_instance(self, holder):
            os.kill(os.getpid(), signal.SIGTERM)
            return await original(self, holder)
        SqliteStore.claim_instance = claim_instance
    """
    result = crowdtune_with(tmp_path, before, argv, "7\n")
    assert (result.returncode, result.stderr) == (143, "terminated\n"), result
    assert list(tmp_path.iterdir()) == []


# The store's session insert, held: a stop comes before it (nothing stored but the scope conductor.start ensured), or
# once it has committed, before the start returns. Found by a trial: `simulate` stopped in its start left its new
# database (1 scope, 0 sessions), kept before its session existed.
AT_INSERT = {
    "before": """
        import asyncio
        from storage.sqlite import SqliteStore
        original = SqliteStore.create_session
        async def create_session(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.Event().wait()  # ended only by the stop's cancellation
        SqliteStore.create_session = create_session
    """,
    "after": """
        import asyncio
        from storage.sqlite import SqliteStore
        original = SqliteStore.create_session
        async def create_session(self, *args, **kwargs):
            await original(self, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.Event().wait()  # ended only by the stop's cancellation
        SqliteStore.create_session = create_session
    """,
}
STARTS = {"run": ["run", "--new", "--db", "z.db", "--rounds", "1", "--no-audio", "--out", "r"],
          "simulate": ["simulate", "--db", "z.db", "--rounds", "1", "--out", "r"]}


@pytest.mark.parametrize("command", STARTS)
def test_a_stop_as_a_new_databases_session_is_stored_keeps_the_database_once_it_holds_the_session(tmp_path, command):
    (tmp_path / "before").mkdir()
    before = crowdtune_with(tmp_path / "before", AT_INSERT["before"], STARTS[command], "7\n")
    assert (before.returncode, before.stderr) == (143, "terminated\n"), before
    assert list((tmp_path / "before").iterdir()) == [], before.stdout  # no database, no folder: nothing started
    (tmp_path / "after").mkdir()
    after = crowdtune_with(tmp_path / "after", AT_INSERT["after"], STARTS[command], "7\n")
    assert (after.returncode, after.stderr) == (143, "terminated\n"), after
    with sqlite3.connect(tmp_path / "after" / "z.db") as db:  # the session it stored is kept
        statuses = [status for (status,) in db.execute("SELECT status FROM sessions")]
    # A simulation is never resumed: its session is stopped, its folder says so; a terminal session resumes.
    assert statuses == ["stopped" if command == "simulate" else "active"], after.stdout
    if command == "simulate":
        assert "stopped after 0 of 1 round: terminated" in after.stdout and (tmp_path / "after" / "r" / "results.json").is_file(), after.stdout
