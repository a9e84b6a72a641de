"""A PostgreSQL server that goes away under an open store (`pg_ctl stop -m fast`, as an operator stops it): every
call is the storage layer's DatabaseUnreachable naming the database, never asyncpg's errors or an OSError, and the
same store works again once the server is back. asyncpg's log of its retries never reaches a terminal."""

import subprocess
import sys

import pytest
from pgserver import PASSWORD

from storage import DatabaseUnreachable, database_errors, open_store
from storage.postgres import public_url


async def test_every_call_to_a_store_whose_server_went_away_is_database_unreachable_and_it_works_again_after(own_postgres_server):
    server = own_postgres_server
    url = server.new_database()
    store = await open_store(url)
    try:
        await store.ensure_scope("local:a", "local")
        server.halt()
        calls = [  # the first finds its connection cut by the server, the later ones the server refusing new ones
            lambda: store.has_scope("local:a"), lambda: store.ensure_scope("local:b", "local"), store.active_sessions,
            lambda: store.scope_settings("local:a"), lambda: store.claim_scope("local:a"),
        ]
        for call in calls:
            with pytest.raises(DatabaseUnreachable) as gone:
                await call()
            line = str(gone.value)
            assert line.startswith(f"the database {public_url(url)} cannot be reached: "), line
            assert PASSWORD not in line and "\n" not in line, line
        with pytest.raises(DatabaseUnreachable):
            [chunk async for chunk in store.read_table("scopes")]
        assert isinstance(gone.value, database_errors())  # front ends that catch a failing database catch it too
        server.resume()
        assert await store.has_scope("local:a") and not await store.has_scope("local:b")
    finally:
        await store.close()


LOGGED = """
import asyncio, logging, sys
import storage.postgres
if sys.argv[1] == "log":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
try:
    raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
except OSError as problem:
    logging.getLogger("asyncpg.pool").warning("Failed to restore the pool connection floor; retrying", exc_info=True)
loop = asyncio.new_event_loop()
loop.call_exception_handler({"message": "Future exception was never retrieved",
                             "exception": ConnectionError("unexpected connection_lost() call")})
"""


def test_asyncpgs_retries_are_one_line_each_in_a_log_and_nothing_on_a_terminal_without_one():
    """A terminal session has no log: asyncpg's retries while its server was away printed with their tracebacks
    between the prompts (Python's last-resort handler), and asyncio's note of a future asyncpg left unread."""
    bare = subprocess.run([sys.executable, "-c", LOGGED, "terminal"], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0 and bare.stderr == "", bare.stderr
    logged = subprocess.run([sys.executable, "-c", LOGGED, "log"], capture_output=True, text=True, timeout=60)
    assert logged.stderr.splitlines() == [
        "WARNING asyncpg.pool: Failed to restore the pool connection floor; retrying "
        "(ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 5432))",
        "DEBUG asyncio: Future exception was never retrieved (ConnectionError: unexpected connection_lost() call)",
    ], logged.stderr
