"""Persistence: the only package that writes SQL.

Callers hold a `Store` (storage/protocol.py) made by `open_store`; `SqliteStore` (storage/sqlite.py) is
the backend today. Only `open_store` names it, so another backend is one more class and a setting.
"""

from __future__ import annotations

from pathlib import Path

from storage.protocol import Announcement, DatabaseGone, Reader, RoundRow, SessionRow, StorageError, Store, VoteOp, VoteResult

__all__ = [
    "Announcement", "DatabaseGone", "Reader", "RoundRow", "SessionRow", "StorageError", "Store", "VoteOp", "VoteResult",
    "clone_rounds", "open_reader", "open_store",
]


async def open_store(location: str | Path) -> Store:
    """Open (creating and migrating as needed) the database at `location`: a SQLite file path, or
    ":memory:". StorageError with one clear line when it cannot be used."""
    from storage.sqlite import SqliteStore

    return await SqliteStore.open(location)


def open_reader(location: str | Path) -> Reader:
    """A read-only, streaming `Reader` of the database at `location` (a store's `path`), for a worker
    thread or process. StorageError when it cannot be opened."""
    from storage.sqlite import SqliteReader

    return SqliteReader(location)


def clone_rounds(location: str | Path, round_id: int, copies: int, voters: int = 3) -> int:
    """Benchmarks and tests: `copies` closed copies of a round, each with `voters` ratings, added to its
    session by direct inserts (a long history in seconds). Returns the last new round's id."""
    from storage.sqlite import clone_rounds as clone

    return clone(location, round_id, copies, voters)
