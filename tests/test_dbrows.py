"""The tests' own database helpers behave as the tests that use them assume."""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite

from dbrows import query, writes_held


async def test_holding_the_write_lock_waits_for_a_transaction_that_needs_the_event_loop(tmp_path):
    """The bot runs on the test's event loop. A write transaction it has open finishes only when the loop
    runs again (its COMMIT is another await), so taking the write lock must not block the loop: if it
    does, each waits for the other until SQLite's timeout ("database is locked"), as a CI run did."""
    location = tmp_path / "t.db"
    with sqlite3.connect(location) as raw:
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("CREATE TABLE t (x INTEGER)")
    async with aiosqlite.connect(location, isolation_level=None) as bot:
        await bot.execute("BEGIN IMMEDIATE")
        await bot.execute("INSERT INTO t VALUES (1)")

        async def commit_soon():
            await asyncio.sleep(0.2)
            await bot.execute("COMMIT")

        committing = asyncio.create_task(commit_soon())
        async with writes_held(location):
            assert committing.done(), "the lock was taken before the other transaction ended"
        await committing
    assert query(location, "SELECT x FROM t") == [(1,)]
