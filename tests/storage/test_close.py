"""A store closes whatever its connections are doing. asyncpg's pool close waits, for ever, until every connection in
use is given back (asyncpg 0.16's release notes advise a timeout), so a write waiting on a lock that another program
holds (PostgreSQL has no lock timeout by default) kept a stopping bot, or a command, from ending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse

import pytest

from storage import open_store
from fakediscord import HANG_SECONDS

pytestmark = pytest.mark.asyncio

# A bound against a hang, not a time assertion (the store's own bound is storage.postgres.CLOSE_SECONDS).


async def test_a_store_closes_while_a_write_waits_on_a_lock_another_program_holds(postgres_server, caplog):
    url = postgres_server.new_database()
    store = await open_store(url)
    with postgres_server.holding(url, "scopes"):
        write = asyncio.create_task(store.ensure_scope("guild:1", "guild", "a server"))
        while not postgres_server.lock_waits(url):  # the write waits on the lock: its connection is in use
            assert not write.done(), write
            await asyncio.sleep(0.05)
        with caplog.at_level(logging.WARNING):
            await asyncio.wait_for(store.close(), HANG_SECONDS)  # while the lock is still held
        await asyncio.wait([write], timeout=HANG_SECONDS)
    assert write.done()
    with contextlib.suppress(BaseException):
        write.result()  # cut short: its transaction rolled back
    assert postgres_server.psql(url, "SELECT COUNT(*) FROM scopes").strip() == "0"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "cut short" in r.getMessage()]
    password = urllib.parse.urlsplit(url).password
    assert "rolled back" in warning and password and password not in warning, warning
