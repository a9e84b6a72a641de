"""The tests' own database helpers behave as the tests that use them assume."""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
import asyncpg

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


async def test_holding_the_write_lock_on_postgresql_is_no_deadlock_with_a_transaction_writing_two_tables(postgres_server):
    """A bot transaction holds the last table the helper locks and then writes the first: had the helper waited
    table by table, holding the first while it waits for the last, each would wait for the other and PostgreSQL
    would abort one (a CI run's "deadlock detected"). The helper takes all or none, so both go through."""
    url = postgres_server.new_database()
    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE t1 (x INTEGER); CREATE TABLE t2 (x INTEGER)")
    # In the order the helper names them to LOCK TABLE.
    first, *_, last = [r[0] for r in await setup.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    await setup.close()
    bot = await asyncpg.connect(url)
    try:
        transaction = bot.transaction()
        await transaction.start()
        await bot.execute(f"INSERT INTO {last} VALUES (1)")

        async def then_the_first():
            await asyncio.sleep(0.3)  # the helper is at its LOCK by then
            await bot.execute(f"INSERT INTO {first} VALUES (2)")
            await transaction.commit()

        writing = asyncio.create_task(then_the_first())
        async with writes_held(url):
            assert writing.done(), "the lock was taken before the other transaction ended"
        await writing
    finally:
        await bot.close()
    assert sorted(query(url, f"SELECT x FROM {first} UNION ALL SELECT x FROM {last}")) == [(1,), (2,)]
