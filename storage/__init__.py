"""Persistence: the only package that writes SQL.

Callers hold a `Store` (storage/protocol.py) made by `open_store`: `SqliteStore` (storage/sqlite.py),
the embedded default, or `PostgresStore` (storage/postgres.py) for a `postgresql://` URL. Only
`open_store` names them.
"""

from __future__ import annotations

from pathlib import Path

from storage.protocol import Announcement, DatabaseGone, RoundRow, SessionRow, StorageError, Store, VoteOp, VoteResult

__all__ = [
    "Announcement", "DatabaseGone", "RoundRow", "SessionRow", "StorageError", "Store", "VoteOp", "VoteResult", "database_errors",
    "is_postgres_url", "open_store",
]


def database_errors() -> tuple[type[BaseException], ...]:
    """What a backend raises when its database fails mid-operation (a disk error, a lost server
    connection), for front ends that turn it into one polite line; transactions roll back first."""
    import sqlite3

    import asyncpg

    return (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)


def is_postgres_url(location: str | Path) -> bool:
    """True for a `postgresql://` (or `postgres://`) URL, which selects the PostgreSQL backend."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


async def open_store(location: str | Path) -> Store:
    """Open (creating and migrating as needed) the database at `location`: a SQLite file path,
    ":memory:", or a `postgresql://user:password@host:port/database` URL. StorageError with one clear
    line (never the password) when it cannot be used."""
    if is_postgres_url(location):
        from storage.postgres import PostgresStore

        return await PostgresStore.open(str(location))
    from storage.sqlite import SqliteStore

    return await SqliteStore.open(location)
