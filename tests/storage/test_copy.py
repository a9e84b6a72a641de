"""crowdtune copy-db: a community's SQLite database moved to PostgreSQL (and back) loses nothing."""

import asyncio
import zipfile

import pytest

from bot.cli import main
from bot.conductor import Conductor
from bot.errors import ExitCode
from core.agent import QEntry
from core.engine import SessionSpec
from pgserver import PASSWORD
from storage import ConfirmedRequest, open_store
from storage.copy import copy_database
from storage.export import export_zip
from storage.rows import TABLES


async def _community(store) -> None:
    """A database with every kind of row: closed, open and cancelled rounds, both modes, changed and
    retracted votes, aspect votes, learned models, a strike, a reset, a personal agent, settings, round
    messages, a deployment value and a confirmed request not carried out yet."""
    conductor = Conductor(store)
    server = await conductor.start("guild:1", "guild", "c1", SessionSpec(rounds=5), actor="mod")
    for index in range(3):
        r = await conductor.open_round(server.id)
        await store.set_round_messages(r.id, [f"m{index}"])
        for v in range(6):
            await conductor.vote(r.id, f"v{v}", 1 + (v * 3 + index) % 10)
        await conductor.vote(r.id, "v0", 10)
        await conductor.vote(r.id, "v4", {"musicality": 3 + index, "novelty": 8})  # aspects
        await conductor.retract(r.id, "v1")
        await conductor.close(r.id)
    await conductor.open_round(server.id)  # left open
    await store.forget_user("v5", "user:v5")  # their reactions on the open round are withheld
    ab = await conductor.start("guild:2", "guild", "c2", SessionSpec(mode="ab"), actor="mod")
    r = await conductor.open_round(ab.id)
    for v, choice in enumerate(["a", "b", "both", "neither"]):
        await conductor.vote(r.id, f"w{v}", choice)
    await conductor.close(r.id)
    r = await conductor.open_round(ab.id)
    await store.cancel_round(r.id, "mod", "message deleted", announce="Round 2 cancelled")  # the outbox
    await store.strike("guild:1", "v2", actor="mod")
    await store.update_scope_settings("guild:1", {"quorum": 3}, actor="mod")
    personal = await conductor.start("user:9", "user", "dm9", SessionSpec(), actor="user:9")
    r = await conductor.open_round(personal.id)
    await conductor.vote(r.id, "user:9", 4)
    await conductor.close(r.id)
    await store.end_session(personal.id, "stopped", "user:9")
    await store.set_deployment_value("post_nonce_salt", "deployment-1")
    await store.record_confirmed(ConfirmedRequest("77", "reset", "1", {"scope": "guild:1", "user": 3}, 1700000000.5))
    await store.put_q_entries("guild:2", [(("state-1", "action-1"), QEntry(0.25, 2))])  # the tabular learner's rows


def _unzipped(path, counts) -> tuple[dict, dict[str, bytes]]:
    """An export's counts and every file in it (the zip's own timestamps aside)."""
    with zipfile.ZipFile(path) as archive:
        return counts, {name: archive.read(name) for name in archive.namelist()}


async def _tables(store) -> dict[str, list[tuple]]:
    found = {}
    for table, _ in TABLES:
        rows = []
        async for columns, chunk in store.read_table(table):
            rows += [dict(zip(columns, row)) for row in chunk]
        found[table] = sorted(rows, key=repr)
    return found


async def test_copy_to_postgres_and_back_keeps_every_row_and_the_same_export(tmp_path, postgres_server, monkeypatch):
    monkeypatch.setattr("storage.rows.COPY_CHUNK_ROWS", 7)  # several chunks per table
    monkeypatch.setattr("storage.sqlite.COPY_CHUNK_ROWS", 7)
    monkeypatch.setattr("storage.postgres.COPY_CHUNK_ROWS", 7)
    lite = await open_store(tmp_path / "community.db")
    pg = back = None
    try:
        await _community(lite)
        url = postgres_server.new_database()
        pg = await open_store(url)
        counts = await copy_database(lite, pg)
        assert counts["votes"] > 7 and counts["vote_events"] > 7 and counts["audit"] > 7
        source = await _tables(lite)
        assert [t for t, _ in TABLES if not source[t]] == []  # every table holds rows
        assert await _tables(pg) == source
        assert await pg.export_rows(None) == await lite.export_rows(None)
        assert _unzipped(tmp_path / "lite.zip", await export_zip(lite, tmp_path / "lite.zip")) == _unzipped(
            tmp_path / "pg.zip", await export_zip(pg, tmp_path / "pg.zip")
        )
        assert await pg.export_rows("guild:2") == await lite.export_rows("guild:2")
        # The copy goes on where the original stopped: new rows get new ids.
        before = {s.id for s in await pg.active_sessions()}
        fresh = await Conductor(pg).start("guild:3", "guild", "c3", SessionSpec(), actor="mod")
        assert fresh.id > max(before)
        # A database that holds data is never a copy's target.
        with pytest.raises(ValueError, match="already holds data"):
            await copy_database(lite, pg)
        back = await open_store(tmp_path / "back.db")
        await copy_database(pg, back)
        assert await back.export_rows(None) == await pg.export_rows(None)
    finally:
        for store in (lite, pg, back):
            if store is not None:
                await store.close()


def test_copy_db_command(tmp_path, postgres_server, capsys):
    db = tmp_path / "crowdtune.db"

    async def fill():
        store = await open_store(db)
        await _community(store)
        await store.close()

    asyncio.run(fill())
    url = postgres_server.new_database()
    assert main(["copy-db", "--from", str(db), "--to", url]) == 0
    out = capsys.readouterr().out
    assert "copied into" in out and "votes " in out and PASSWORD not in out
    assert main(["copy-db", "--from", str(db), "--to", url]) == 2
    err = capsys.readouterr().err
    assert "already holds data" in err and PASSWORD not in err
    assert main(["copy-db", "--from", str(tmp_path / "none.db"), "--to", url]) == ExitCode.FILE
    assert "there is no database at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    # the export command reads the copy as it read the original
    assert main(["export", "--db", url, "--out", str(tmp_path / "pg.zip")]) == 0
    assert main(["export", "--db", str(db), "--out", str(tmp_path / "lite.zip")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]


def test_a_postgresql_export_runs_in_a_spawned_worker_process_and_never_shows_the_password(tmp_path, postgres_server):
    """The bot exports in a worker process (bot.worker, "spawn"): it gets only the store's `path`, which
    prints without the password yet lets the worker's reader connect."""
    from bot.worker import in_worker_process
    from storage import StorageError, open_reader
    from storage.export import write_export

    async def run():
        store = await open_store(postgres_server.new_database())
        try:
            await _community(store)
            assert PASSWORD not in f"{store.path} {store.path!r}"
            counts = await in_worker_process(write_export, store.path, tmp_path / "pg.zip", "guild:1")
            return counts, await store.export_rows("guild:1")
        finally:
            await store.close()

    counts, rows = asyncio.run(run())
    assert counts["votes"] == len(rows["votes"]) > 0 and counts["rounds"] == len(rows["rounds"]) > 0
    with zipfile.ZipFile(tmp_path / "pg.zip") as archive:
        assert archive.read("models.json") != b"{}"
    wrong = postgres_server.new_database().replace(PASSWORD, "not-the-password")
    with pytest.raises(StorageError) as refused:
        open_reader(wrong)
    assert "not-the-password" not in str(refused.value) and "***" in str(refused.value)


def _filled(db) -> None:
    async def fill():
        store = await open_store(db)
        await _community(store)
        await store.close()

    asyncio.run(fill())


def test_a_sqlite_target_made_meanwhile_is_never_written_into(tmp_path, monkeypatch, capsys):
    """Found by review: copy-db looked whether its new SQLite target was there, then opened it to write: a file made
    in between (another copy racing this one, another program's database) was filled or migrated. A new target is
    now made whole under a temporary name and put in place without replacing anything: one made meanwhile is refused
    with one polite line and left as it is, and nothing of the copy is left behind."""
    import sqlite3

    import storage

    source, target = tmp_path / "ct.db", tmp_path / "copy.db"
    _filled(source)
    opened = storage.open_to_write

    async def someone_makes_the_target_first(location):
        if not target.exists():  # between the look and the write: another program's database appears
            with sqlite3.connect(target) as raw:
                raw.execute("CREATE TABLE notes (text TEXT)")
                raw.execute("INSERT INTO notes VALUES ('mine')")
        return await opened(location)

    monkeypatch.setattr(storage, "open_to_write", someone_makes_the_target_first)
    assert main(["copy-db", "--from", str(source), "--to", str(target)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err == f"crowdtune copy-db: error: {target} was made meanwhile; copy into a new, empty database\n", err
    with sqlite3.connect(target) as raw:
        assert [name for (name,) in raw.execute("SELECT name FROM sqlite_master")] == ["notes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db", "ct.db"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_copies_racing_into_one_new_target_one_copies_the_other_is_refused_politely(tmp_path, request, backend):
    """Two copy-db at once into the same new database: each looked, found it empty, and wrote (SQLite: into one file
    from two connections; PostgreSQL: two COPYs, the second failing on a duplicate id, no polite line). The target
    is claimed at once (SQLite: made whole aside, then linked in without replacing; PostgreSQL: its tables locked
    before they are looked at): one copy fills it, the other is refused as a database that holds data is."""
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    source = tmp_path / "ct.db"
    _filled(source)
    target = server.new_database() if server else str(tmp_path / "copy.db")

    async def race():
        from storage.copy import copy_into

        readers = [await open_store(source, read_only=True) for _ in range(2)]
        try:
            return await asyncio.gather(*(copy_into(reader, target) for reader in readers), return_exceptions=True)
        finally:
            for reader in readers:
                await reader.close()

    results = asyncio.run(race())
    refused = [r for r in results if isinstance(r, ValueError)]
    assert len(refused) == 1 and len([r for r in results if isinstance(r, tuple)]) == 1, results
    assert "copy into a new, empty database" in str(refused[0])


def test_a_copy_stopped_midway_closes_its_reading_before_the_source_closes(tmp_path, monkeypatch):
    """Found by a trial: Ctrl-C or SIGTERM during a SQLite copy-db printed some 20 lines of "an error occurred during
    closing of asynchronous generator ... SqliteStore.read_table ... ValueError: Connection closed" before its one
    line: the tables' readers, left suspended by the cancellation, were closed by the event loop's end, after the
    source's connection. They are closed as the copy ends, so nothing is left for the loop to close."""
    import storage
    from storage.copy import copy_into

    source_path = tmp_path / "ct.db"
    _filled(source_path)
    opened = storage.open_to_write
    problems = []  # what the event loop reports (the closing of an asynchronous generator that failed)

    async def stopped_midway():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: problems.append(context))
        reading = asyncio.Event()

        async def target_that_stops_after_one_chunk(location):
            target = await opened(location)

            async def write_tables(chunks):  # a real chunk read from the real source, then the stop comes
                async for _ in chunks:
                    reading.set()
                    await asyncio.Event().wait()

            target.write_tables = write_tables
            return target

        monkeypatch.setattr(storage, "open_to_write", target_that_stops_after_one_chunk)
        source = await open_store(str(source_path), read_only=True)
        try:
            copying = asyncio.create_task(copy_into(source, str(tmp_path / "k.db")))
            await reading.wait()
            copying.cancel()  # as bot.stopping cancels the command on Ctrl-C or SIGTERM
            with pytest.raises(asyncio.CancelledError):
                await copying
        finally:
            await source.close()

    asyncio.run(stopped_midway())  # its end closes every asynchronous generator still open
    assert problems == [], [c.get("message") for c in problems]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("ct.db")) == []


def test_a_copy_removes_what_a_killed_copy_into_the_same_target_left_and_never_a_running_one_s(tmp_path):
    """Found by a trial: a copy-db killed (SIGKILL) left .k.db.<random>.copying with its -wal and -shm, which nothing
    removed. A copy into the same target removes those no process holds (each running copy holds its own, flock),
    and leaves a running copy's alone."""
    import subprocess
    import sys

    from test_cli import crowdtune

    source = tmp_path / "ct.db"
    _filled(source)
    dead = [tmp_path / f".k.db.deadbeef.copying{end}" for end in ("", "-wal", "-shm")]
    for leftover in dead:
        leftover.write_bytes(b"what a killed copy left")
    running = tmp_path / ".k.db.running1.copying"
    running.write_bytes(b"")
    holder = subprocess.Popen(  # a process holding its temporary file's lock, as a copy running now does
        [sys.executable, "-c", f"import fcntl, os, sys; h = os.open({str(running)!r}, os.O_RDONLY); "
         "fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        copied = crowdtune("copy-db", "--from", "ct.db", "--to", "k.db", cwd=tmp_path)
        assert copied.stdout.startswith("copied into k.db"), copied.stdout
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".k.db")) == [running.name]
    finally:
        holder.communicate("")
    # Its holder gone, the next copy into that target removes it too (that copy is refused: k.db holds data now).
    refused = crowdtune("copy-db", "--from", "ct.db", "--to", "k.db", cwd=tmp_path, check=False)
    assert refused.returncode == ExitCode.USAGE, refused
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".k.db")] == []


TOKEN = "aW50ZXJhY3Rpb246c2VjcmV0LXRva2Vu"  # an interaction token: whoever holds it answers as the bot for 15 minutes


def test_copy_db_carries_no_interaction_token(tmp_path, capsys):
    """Found by review: copy-db copied the interaction tokens the database holds while their work is under way (a
    confirmed request's, to edit its question; a session's /compose followup, to tell its starter why it stopped):
    a copy handed on (a backup, a move) handed on credentials to answer as the bot. The copy leaves them out and
    keeps the rest: the request is still carried out at the copy's start, without editing its question."""
    source, target = tmp_path / "ct.db", tmp_path / "copy.db"

    async def fill():
        store = await open_store(source)
        data = {"user": 3, "application_id": 1, "token": TOKEN, "scope": "guild:1"}
        await store.record_confirmed(ConfirmedRequest("77", "reset", "1", data, 1700000000.5))
        await store.set_deployment_value("followup:5", f'{{"token": "{TOKEN}", "until": 1700000900.0}}')
        await store.set_deployment_value("deployment_id", "abc123")
        await store.close()

    asyncio.run(fill())
    assert TOKEN.encode() in b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the source holds it
    assert main(["copy-db", "--from", str(source), "--to", str(target)]) == 0, capsys.readouterr()
    assert TOKEN.encode() not in target.read_bytes()

    async def read():
        store = await open_store(target)
        try:
            return await store.confirmed_requests(), await store.deployment_value("followup:5"), await store.deployment_value("deployment_id")
        finally:
            await store.close()

    requests, followup, deployment_id = asyncio.run(read())
    assert [(r.key, r.data) for r in requests] == [("77", {"user": 3, "application_id": 1, "scope": "guild:1"})]
    assert followup is None and deployment_id == "abc123"
