"""Read a bot's database from a test, whichever backend it is on: a SQLite file or a PostgreSQL URL.

Tests poll the database while the bot runs on the test's event loop, so PostgreSQL is read from a
thread of its own (one loop, one connection per database), and `query` stays a plain function.
Statements are written once with SQLite's `?` placeholders and work on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import AsyncIterator

import asyncpg

from storage import is_postgres_url

_KEEP = 4  # open connections at most; a test's database is dropped with the test's fixtures
_loop: asyncio.AbstractEventLoop | None = None
_connections: OrderedDict[str, asyncpg.Connection] = OrderedDict()
_guard = threading.Lock()


def _background() -> asyncio.AbstractEventLoop:
    global _loop
    with _guard:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="dbrows", daemon=True).start()
        return _loop


async def _fetch(url: str, sql: str, params: tuple) -> list[tuple]:
    connection = _connections.get(url)
    if connection is None or connection.is_closed():
        connection = _connections[url] = await asyncpg.connect(url)
        while len(_connections) > _KEEP:
            await _connections.popitem(last=False)[1].close()
    _connections.move_to_end(url)
    return [tuple(r) for r in await connection.fetch(sql, *params)]


def _numbered(sql: str) -> str:
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def query(location: str | Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` (with `?` placeholders) in the database at `location`."""
    if is_postgres_url(location):
        future = asyncio.run_coroutine_threadsafe(_fetch(str(location), _numbered(sql), tuple(params)), _background())
        return future.result(timeout=60)
    with sqlite3.connect(location, timeout=10) as raw:
        return raw.execute(sql, params).fetchall()


def tables(location: str | Path) -> list[str]:
    """Every table of the database (PostgreSQL: of its current schema)."""
    if is_postgres_url(location):
        return [t for (t,) in query(location, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]
    return [t for (t,) in query(location, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


@contextlib.asynccontextmanager
async def writes_held(location: str | Path) -> AsyncIterator[None]:
    """Another connection holds the database's write lock for the block, as a long transaction elsewhere
    would: the bot's writes wait until the block ends (SQLite: for its busy_timeout, 5 s), its reads do
    not. Nothing is changed."""
    if is_postgres_url(location):
        connection = await asyncpg.connect(str(location))
        try:
            names = [r[0] for r in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
            transaction = connection.transaction()
            while True:
                await transaction.start()
                try:
                    # EXCLUSIVE blocks every write and SELECT ... FOR UPDATE, not plain reads. NOWAIT, tried again
                    # until every table is free: waiting table by table behind a bot transaction that holds one
                    # table and then writes another already locked here is a deadlock (PostgreSQL aborts one).
                    await connection.execute(f"LOCK TABLE {', '.join(names)} IN EXCLUSIVE MODE NOWAIT")
                    break
                except asyncpg.LockNotAvailableError:
                    await transaction.rollback()
                    transaction = connection.transaction()
                    await asyncio.sleep(0.01)
            try:
                yield
            finally:
                await transaction.rollback()
        finally:
            await connection.close()
        return
    raw = sqlite3.connect(location, isolation_level=None, timeout=30, check_same_thread=False)
    try:
        # The write lock (WAL readers go on), waited for off the loop: a transaction the bot has open on
        # this loop can only end while the loop runs.
        await asyncio.to_thread(raw.execute, "BEGIN IMMEDIATE")
        yield
        raw.execute("ROLLBACK")
    finally:
        raw.close()


async def observe(store, scope_id: str, name: str, observations) -> None:
    """Add model observations to a scope through an open store, as a close does (inside a transaction), on either
    backend: what a scope that has been rated holds."""
    if hasattr(store, "_pool"):  # PostgreSQL
        from storage.postgres import _add_observations

        await store._tx(lambda conn: _add_observations(conn, scope_id, name, observations))
    else:
        async with store._tx() as db:
            await db.add_observations(scope_id, name, observations)


# Columns later migrations add, by migration: a database taken back to an older schema (`as_of_schema`) drops them,
# or the migration would fail on it. Extend it with each migration that adds a column.
ADDED_COLUMNS: dict[int, tuple[tuple[str, str], ...]] = {15: (("rounds", "reactions_notice_at"),), 17: (("withheld_reactions", "forget_id"),), 18: (("announcements", "round_id"),)}
# Tables later migrations create, by migration: dropped the same way. Extend it with each migration that creates one.
ADDED_TABLES: dict[int, tuple[str, ...]] = {16: ("confirmed_requests",)}


def as_of_schema(db: str, version: int) -> None:
    """Take a database of today's schema back to schema `version` (its version, and the columns and tables added since), so its
    migrations after `version` run again as it is opened to write: an older crowdtune's database, for a test."""
    later = [column for number, columns in ADDED_COLUMNS.items() if number > version for column in columns]
    tables = [table for number, names in ADDED_TABLES.items() if number > version for table in names]
    if is_postgres_url(db):
        for table, column in later:
            query(db, f"ALTER TABLE {table} DROP COLUMN {column}")
        for table in tables:
            query(db, f"DROP TABLE {table}")
        query(db, "UPDATE crowdtune_schema SET version = ? RETURNING version", (version,))
    else:
        with sqlite3.connect(db) as raw:
            for table, column in later:
                raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            for table in tables:
                raw.execute(f"DROP TABLE {table}")
            raw.execute(f"PRAGMA user_version = {version}")
