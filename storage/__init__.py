"""Persistence: the only package that writes SQL.

Callers hold a `Store` (storage/protocol.py) made by `open_store`; `SqliteStore` (storage/sqlite.py) is
the backend today. Only `open_store` names it, so another backend is one more class and a setting.
"""

from __future__ import annotations

from pathlib import Path

from storage.protocol import Announcement, DatabaseGone, RoundRow, SessionRow, StorageError, Store, VoteOp, VoteResult

__all__ = ["Announcement", "DatabaseGone", "RoundRow", "SessionRow", "StorageError", "Store", "VoteOp", "VoteResult", "open_store"]


async def open_store(location: str | Path) -> Store:
    """Open (creating and migrating as needed) the database at `location`: a SQLite file path, or
    ":memory:". StorageError with one clear line when it cannot be used."""
    from storage.sqlite import SqliteStore

    return await SqliteStore.open(location)
