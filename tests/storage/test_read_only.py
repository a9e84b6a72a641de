"""A database opened to read only (`open_store(location, read_only=True)`: `crowdtune sessions`, `export`,
`copy-db`'s source), on real SQLite files and a real PostgreSQL server: it reads what a writer stored, writes
nothing (not even beside a SQLite file: no -wal, no -shm), migrates nothing, and says in one line what is
missing or which crowdtune a database needs."""

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bot.conductor import Conductor
from core.engine import SessionSpec
from pgserver import PASSWORD, USER
from storage import NoDatabase, StorageError, open_store
from storage.migrations import MIGRATIONS, SCHEMA_VERSION


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` with its bytes: what a reader must leave as it was."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


async def a_session(location, scope: str = "guild:1", channel: str = "c1") -> None:
    store = await open_store(location)
    try:
        await Conductor(store).start(scope, "guild", channel, SessionSpec(rounds=3), actor="mod")
    finally:
        await store.close()


async def test_a_sqlite_database_opened_to_read_is_read_and_nothing_is_written_in_or_beside_it(tmp_path):
    """Commands that only read opened the database as a writer does (WAL set up, migrations run): beside a file
    they could not write they were refused, and beside one they could they made a -wal and a -shm."""
    db = tmp_path / "ct.db"
    await a_session(db)
    before = snapshot(tmp_path)
    assert sorted(before) == ["ct.db"]
    store = await open_store(db, read_only=True)
    try:
        assert [s.scope_id for s in await store.all_sessions()] == ["guild:1"]
        assert await store.schema_version() == SCHEMA_VERSION
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # SQLite itself refuses
            await store.ensure_scope("guild:2", "guild")
    finally:
        await store.close()
    assert snapshot(tmp_path) == before


async def test_a_reader_beside_a_running_writer_sees_what_it_committed_and_leaves_its_files_to_it(tmp_path):
    """With a writer open, its last commits may be only in the -wal: the reader shares the writer's index and
    sees them; it removes nothing of the writer's, and the writer goes on and cleans up as it closes."""
    db = tmp_path / "ct.db"
    writer = await open_store(db)
    try:
        await Conductor(writer).start("guild:1", "guild", "c1", SessionSpec(rounds=3), actor="mod")
        assert (tmp_path / "ct.db-wal").exists()
        reader = await open_store(db, read_only=True)
        try:
            assert [s.scope_id for s in await reader.all_sessions()] == ["guild:1"]
        finally:
            await reader.close()
        await Conductor(writer).start("guild:2", "guild", "c2", SessionSpec(rounds=3), actor="mod")
    finally:
        await writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.db"]
    reader = await open_store(db, read_only=True)
    try:
        assert [s.scope_id for s in await reader.all_sessions()] == ["guild:1", "guild:2"]
    finally:
        await reader.close()


def _older(path: Path) -> None:
    """A crowdtune database of the schema before this one's (migrations 1..SCHEMA_VERSION-1)."""
    raw = sqlite3.connect(path)
    for number in range(1, SCHEMA_VERSION):
        raw.executescript(MIGRATIONS[number])
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    raw.close()


async def test_a_sqlite_database_of_another_schema_is_refused_to_read_with_what_to_do_and_left_as_it_was(tmp_path):
    older, newer = tmp_path / "older.db", tmp_path / "newer.db"
    _older(older)
    await a_session(newer)
    raw = sqlite3.connect(newer)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    before = snapshot(tmp_path)
    with pytest.raises(StorageError) as refused:
        await open_store(older, read_only=True)
    message = str(refused.value)
    assert f"older crowdtune (schema {SCHEMA_VERSION - 1}" in message and "upgrade" in message, message
    with pytest.raises(StorageError, match="newer crowdtune"):
        await open_store(newer, read_only=True)
    assert snapshot(tmp_path) == before


async def test_nothing_there_to_read_is_no_database_and_nothing_is_made(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    for name in ("missing.db", "no/folder/x.db", "empty.db"):
        with pytest.raises(NoDatabase) as absent:
            await open_store(tmp_path / name, read_only=True)
        assert str(tmp_path / name) in str(absent.value)
    assert snapshot(tmp_path) == {"empty.db": b""}


async def test_another_programs_database_is_refused_to_read_too(tmp_path):
    theirs = tmp_path / "theirs.db"
    with sqlite3.connect(theirs) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    before = snapshot(tmp_path)
    with pytest.raises(StorageError, match="another program's database"):
        await open_store(theirs, read_only=True)
    assert snapshot(tmp_path) == before


# -- PostgreSQL: read-only transactions, nothing created in an empty database, no migration --------------


def _tables(server, url: str) -> str:
    return server.psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = current_schema()").strip()


async def test_a_postgresql_database_opened_to_read_is_read_and_never_written(postgres_server):
    """Opening a PostgreSQL store wrote even to read: an empty database got crowdtune's schema table, and every
    open updated the schema's version (refused by a read-only role or a standby)."""
    empty = postgres_server.new_database()
    with pytest.raises(NoDatabase):
        await open_store(empty, read_only=True)
    assert _tables(postgres_server, empty) == ""
    url = postgres_server.new_database()
    await a_session(url)
    # A role that may only read (as a reporting account or a standby would be): the writer's open was refused.
    reader = f"reader_{url.rsplit('/', 1)[1]}"
    postgres_server.psql(url, f"CREATE ROLE {reader} LOGIN PASSWORD 'read-only-pw'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
    reader_url = url.replace(f"{USER}:{PASSWORD}@", f"{reader}:read-only-pw@")
    with pytest.raises(StorageError, match="permission denied"):
        await open_store(reader_url)
    for location in (url, reader_url):
        store = await open_store(location, read_only=True)
        try:
            assert [s.scope_id for s in await store.all_sessions()] == ["guild:1"]
            with pytest.raises((asyncpg.ReadOnlySQLTransactionError, asyncpg.InsufficientPrivilegeError)):  # PostgreSQL refuses
                await store.ensure_scope("guild:2", "guild")
        finally:
            await store.close()
    postgres_server.psql(url, f"UPDATE crowdtune_schema SET version = {SCHEMA_VERSION - 1}")
    with pytest.raises(StorageError, match="older crowdtune"):
        await open_store(url, read_only=True)
    postgres_server.psql(url, "UPDATE crowdtune_schema SET version = 99")
    with pytest.raises(StorageError, match="newer crowdtune"):
        await open_store(url, read_only=True)
    assert postgres_server.psql(url, "SELECT version FROM crowdtune_schema").strip() == "99"
