"""A store closes whatever its connections are doing. asyncpg's pool close waits, for ever, until every connection in
use is given back (asyncpg 0.16's release notes advise a timeout), so a write waiting on a lock that another program
holds (PostgreSQL has no lock timeout by default) kept a stopping bot, or a command, from ending. A lock wait now ends by
storage.BUSY_SECONDS (DatabaseBusy, as SQLite's); the close's own bound, CLOSE_SECONDS, cuts what nothing else does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import urllib.parse

import pytest

from fakediscord import HANG_SECONDS  # a bound against a hang, not a time assertion (the store's: CLOSE_SECONDS, BUSY_SECONDS)

from storage import DatabaseBusy, open_store

pytestmark = pytest.mark.asyncio


async def _waiting_on_a_lock(postgres_server, url: str, write: asyncio.Task) -> None:
    """Until the write waits for a lock or has ended (its wait may end as busy before a poll sees it: the test holds either way)."""
    database = url.rsplit("/", 1)[1]
    while not write.done() and not postgres_server.psql(url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' AND wait_event_type = 'Lock'").split():
        await asyncio.sleep(0.05)


async def _ended(postgres_server, url: str, pid: int) -> None:
    while str(pid) in postgres_server.psql(url, "SELECT pid FROM pg_stat_activity").split():
        await asyncio.sleep(0.05)


async def test_a_write_waiting_on_a_lock_another_program_holds_is_busy_and_the_store_closes(postgres_server, caplog):
    url = postgres_server.new_database()
    store = await open_store(url)
    with postgres_server.holding(url, "scopes"):  # a psql's ACCESS EXCLUSIVE lock, held until the block ends
        write = asyncio.create_task(store.ensure_scope("guild:1", "guild", "a server"))
        await _waiting_on_a_lock(postgres_server, url, write)
        with caplog.at_level(logging.WARNING):
            await asyncio.wait_for(store.close(), HANG_SECONDS)  # while the lock is still held
        await asyncio.wait([write], timeout=HANG_SECONDS)
        assert write.done()
        with pytest.raises(DatabaseBusy, match="is busy: another connection holds its lock") as busy:
            write.result()
    assert postgres_server.psql(url, "SELECT COUNT(*) FROM scopes").strip() == "0"
    password = urllib.parse.urlsplit(url).password
    assert password and password not in str(busy.value), busy.value
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # it ended of itself, nothing cut


async def test_a_store_closes_while_a_write_waits_on_a_server_that_stopped_answering(postgres_server, caplog):
    url = postgres_server.new_database()
    store = await open_store(url)
    database = url.rsplit("/", 1)[1]
    # The store's connections' server processes answer no more (a frozen machine, a cut network) before the write is sent.
    frozen = [int(pid) for pid in postgres_server.psql(
        url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()").split()]
    assert frozen
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        write = asyncio.create_task(store.ensure_scope("guild:1", "guild", "a server"))
        with caplog.at_level(logging.WARNING):
            await asyncio.wait_for(store.close(), HANG_SECONDS)
        await asyncio.wait([write], timeout=HANG_SECONDS)
    finally:
        # Ended, their transactions rolled back, before they run again: nothing the write would still do can land.
        for pid in frozen:
            postgres_server.psql(url, f"SELECT pg_terminate_backend({pid})")
            os.kill(pid, signal.SIGCONT)
    for pid in frozen:
        await asyncio.wait_for(_ended(postgres_server, url, pid), HANG_SECONDS)
    assert write.done()
    with contextlib.suppress(BaseException):
        write.result()  # cut short: its transaction rolled back
    assert postgres_server.psql(url, "SELECT COUNT(*) FROM scopes").strip() == "0"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "cut short" in r.getMessage()]
    password = urllib.parse.urlsplit(url).password
    assert "rolled back" in warning and password and password not in warning, warning
