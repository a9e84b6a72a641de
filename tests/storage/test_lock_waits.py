"""How long a PostgreSQL store's start waits for locks. Processes starting together upgrade the database one at a time
(an advisory lock): a process waiting for another's upgrade waits as long as it takes, even past BUSY_SECONDS, the
bound on every other lock wait; an upgrade facing a table that another program keeps locked is DatabaseBusy and leaves
the database as it was, as a write is (PostgreSQL has no lock_timeout by default, so it waited for ever)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from dbrows import ADDED_COLUMNS, as_of_schema, query
from fakediscord import HANG_SECONDS  # a bound against a hang, not a time assertion

from storage import BUSY_SECONDS, LOCK_WAITING, DatabaseBusy, open_store
from storage.postgres import _MIGRATION_LOCK
from storage.postgres_migrations import SCHEMA_VERSION

pytestmark = pytest.mark.asyncio


async def test_a_start_waits_for_another_process_upgrading_for_longer_than_a_lock_wait_is_bounded(postgres_server):
    url = postgres_server.new_database()
    database = url.rsplit("/", 1)[1]
    other = await asyncpg.connect(url)  # another process, in the middle of its upgrade
    try:
        upgrading = other.transaction()
        await upgrading.start()
        await other.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        opening = asyncio.create_task(open_store(url))
        waited = f"""SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{database}' AND wait_event = 'advisory'
                     AND now() - state_change > interval '{BUSY_SECONDS * 1.5} seconds'"""
        while query(url, waited) != [(1,)]:  # the start has waited past the bound on other lock waits (the server's clock)
            assert not opening.done(), opening
            await asyncio.sleep(0.1)
        assert not opening.done(), opening  # still waiting: no DatabaseBusy
        await upgrading.rollback()
    finally:
        await other.close()
    store = await asyncio.wait_for(opening, HANG_SECONDS)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()


async def test_an_upgrade_facing_a_table_another_program_keeps_locked_is_busy_and_changes_nothing(postgres_server):
    url = postgres_server.new_database()
    await (await open_store(url)).close()
    version = max(ADDED_COLUMNS)  # the newest migration that alters a table, run again from the schema before it
    [(table, _), *_] = ADDED_COLUMNS[version]
    as_of_schema(url, version - 1)
    with postgres_server.holding(url, table):
        with pytest.raises(DatabaseBusy, match="is busy: another connection holds its lock"):
            await asyncio.wait_for(open_store(url), HANG_SECONDS)
    assert query(url, "SELECT version FROM crowdtune_schema") == [(version - 1,)]
    store = await asyncio.wait_for(open_store(url), HANG_SECONDS)  # once it is let go, the upgrade goes through
    try:
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()


async def test_a_command_waiting_on_a_lock_is_told_once_and_its_write_and_reads_are_busy(postgres_server):
    """A slash command's write waiting on another program's lock awaits LOCK_WAITING's hook once, in its own task (it
    acknowledges itself within Discord's 3 s, as on SQLite), and then is DatabaseBusy; a read of the locked table too."""
    url = postgres_server.new_database()
    store = await open_store(url)
    try:
        told = []

        async def hook() -> None:
            told.append(asyncio.current_task())

        async def command() -> None:
            LOCK_WAITING.set(hook)
            await store.ensure_scope("guild:1", "guild", "a server")

        with postgres_server.holding(url, "scopes"):  # ACCESS EXCLUSIVE: a read of it waits too
            task = asyncio.create_task(command())
            with pytest.raises(DatabaseBusy, match="is busy: another connection holds its lock"):
                await asyncio.wait_for(task, HANG_SECONDS)
            assert told == [task]
            with pytest.raises(DatabaseBusy, match="is busy: another connection holds its lock"):
                await asyncio.wait_for(store.scopes(), HANG_SECONDS)
        assert await store.scopes() == []
    finally:
        await store.close()
