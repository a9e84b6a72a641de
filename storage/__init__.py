"""Persistence. `SqliteStore` is the one backend today; callers use only its methods, so another
backend (PostgreSQL for a sharded bot) can stand in its place."""

from storage.sqlite import RoundRow, SessionRow, SqliteStore, StorageError, VoteOp, VoteResult

__all__ = ["RoundRow", "SessionRow", "SqliteStore", "StorageError", "VoteOp", "VoteResult"]
