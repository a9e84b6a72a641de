"""Advisory locks a process holds on PostgreSQL (a bot's shards, a terminal's scope: PostgresStore.claim_shards,
claim_scope), kept held for as long as the process runs.

Such a lock lives as long as the connection that took it: when the server restarts, the lock's backend is
terminated or the network cuts its connection, the server releases it without a word, and a second process
could take the shard and run the same sessions (votes counted twice, rewards applied twice). So a `Lease` watches
its connection (asyncpg's termination listener, and a query every PING_SECONDS that catches a connection cut
silently) and takes its locks again on a new connection as soon as the server answers; every write of the
store waits for that first (`hold`), and asks the server, in its transaction just before it commits, whether
they are still held (`not_held`; if not, it is rolled back, the locks taken again, and it runs again). If
another process took one meanwhile, the lease is lost for good: `ClaimLost` from then on, for every write, and
`lost_for_good` returns it, so the process stops running what it no longer holds (the bot ends:
bot.discord.app.run_bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from storage.protocol import ClaimLost, StorageError

log = logging.getLogger("crowdtune.storage")

PING_SECONDS = 5.0  # how often an idle lease asks its connection whether it is still there
PING_TIMEOUT = 15.0  # an answer slower than this is a connection cut silently: dropped and taken again
RETRY_SECONDS = 1.0  # while the server cannot be reached, how often the lease tries to take its locks again


class _Refused(Exception):
    """`take` refused (its StorageError, args[0]): another process holds a lock."""


class Lease:
    """The locks `take(connection)` takes (StorageError if another process holds one), on a connection of their
    own from `connect()`, held until `close`; `what` names them in lines ('shard 0 of 2'). Without `take`, only a
    connection kept open to `listen` on."""

    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], take: Callable[[asyncpg.Connection], Awaitable[None]] | None, what: str,
    ) -> None:
        self._connect, self._take, self.what = connect, take, what
        self._conn: asyncpg.Connection | None = None
        self._ended = asyncio.Event()  # the connection holding the locks ended: they are not held
        self._turn = asyncio.Lock()  # one use of the connection at a time: a ping, a taking again
        self._lost: ClaimLost | None = None
        self._lost_event = asyncio.Event()
        self._watch: asyncio.Task | None = None
        self._listeners: dict[str, Callable] = {}  # NOTIFY channel -> asyncpg listener, added again to each new connection
        # Each run on a new connection once its listeners are on: reads what was sent while none listened (`listen`).
        self._catch_ups: list[Callable[[asyncpg.Connection], Awaitable[None]]] = []
        self.pid = 0  # the server process holding the locks (its backend's pid): what a write checks (`not_held`)

    async def start(self) -> None:
        """Take the locks; StorageError (the connection closed) if another process holds one."""
        try:
            self._conn = await self._taken()
        except _Refused as refused:
            raise refused.args[0] from None
        self._watch = asyncio.create_task(self._watching(), name=f"lease of {self.what}")

    async def hold(self) -> None:
        """Before a write: return at once while the locks are held; if their connection ended, take them
        again first (the server's errors while it cannot be reached go on, failing the write as they would);
        ClaimLost if another process took one meanwhile."""
        if self._lost is None and not self._ended.is_set() and self._conn is not None and not self._conn.is_closed():
            return
        async with self._turn:
            await self._take_again()

    @staticmethod
    async def not_held(conn: asyncpg.Connection, leases: list[Lease]) -> list[Lease]:
        """Which of `leases` the server says are not held now (their backend holds no advisory lock: it ended, or
        the server restarted), asked on `conn` inside a write's transaction just before it commits: a connection's
        end may not have reached this process yet (its event loop busy, the network cut silently), and the
        server may have given the locks to another process meanwhile."""
        held = await conn.fetchval(
            "SELECT array_agg(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = ANY($1::int[])",
            [lease.pid for lease in leases],
        )
        return [lease for lease in leases if lease.pid not in (held or [])]

    async def lost_for_good(self) -> ClaimLost:
        """Wait until another process took these locks while they were not held; that loss."""
        await self._lost_event.wait()
        return self._lost

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=5)

    async def _taken(self) -> asyncpg.Connection:
        """A new connection holding the locks; _Refused if `take` says another process holds one (a connection
        that fails has its own errors, StorageError too: they say nothing of who holds the locks)."""
        conn = await self._connect()
        try:
            if self._take is not None:
                await self._take(conn)
        except BaseException as problem:
            conn.terminate()  # at once, whatever state it is in: the server frees what it took
            if isinstance(problem, StorageError):
                raise _Refused(problem) from None
            raise
        try:
            for channel, listener in self._listeners.items():
                await conn.add_listener(channel, listener)
            for catch_up in self._catch_ups:
                await catch_up(conn)
        except BaseException:
            conn.terminate()
            raise
        # Only the connection in use: one this lease ended itself (taking its locks again) may say so later.
        conn.add_termination_listener(lambda ended: self._ended.set() if ended is self._conn else None)
        self.pid = conn.get_server_pid()
        return conn

    async def listen(self, channel: str, callback: Callable[[str], None], catch_up: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """Call `callback(payload)` for each NOTIFY on `channel`, on this connection and each that replaces it. What is
        sent while none is there is not heard: `catch_up(connection)` reads it, on each new connection once it listens."""
        self._listeners[channel] = lambda _conn, _pid, _channel, payload: callback(payload)
        self._catch_ups.append(catch_up)
        async with self._turn:
            if self._conn is not None and not self._conn.is_closed():
                await self._conn.add_listener(channel, self._listeners[channel])

    def dropped(self) -> None:
        """The server says the locks are not held (a write's check, `not_held`): the next `hold` takes them again."""
        self._ended.set()

    async def _take_again(self) -> None:
        """(Under `_turn`.) Take the locks on a new connection unless they are held; ClaimLost if refused."""
        if self._lost is not None:
            raise self._lost
        if not self._ended.is_set() and self._conn is not None and not self._conn.is_closed():
            return
        if self._conn is not None:
            self._conn.terminate()  # gone already, or cut silently: what the server holds for it ends too
        self._ended.clear()
        self._conn = None
        try:
            self._conn = await self._taken()
        except _Refused as refused:  # another process holds a lock now (or runs another shard count)
            self._lost = ClaimLost(
                f"the database connection holding {self.what} was lost (the server restarted, or the connection was cut), "
                f"and another process took it meanwhile ({refused.args[0]}); this process stops, so that one process only runs it"
            )
            self._lost_event.set()
            raise self._lost from None
        finally:
            if self._conn is None:
                self._ended.set()  # still not held: the next write or the watch tries again
        if self._take is not None:
            log.warning("the database connection holding %s was lost; taken again, nobody had taken it meanwhile", self.what)

    async def _watching(self) -> None:
        """Notice a lost connection (ended, or not answering within PING_TIMEOUT) and take the locks again at once,
        trying every RETRY_SECONDS while the server cannot be reached; ends when they are lost for good."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), PING_SECONDS)
            async with self._turn:
                if not self._ended.is_set() and self._conn is not None:
                    try:
                        await asyncio.wait_for(self._conn.fetchval("SELECT 1"), PING_TIMEOUT)
                    except Exception:  # cut, or too slow to trust: its locks may be the server's to give away
                        self._ended.set()
                if not self._ended.is_set():
                    continue
                try:
                    await self._take_again()
                except ClaimLost:
                    return
                except Exception:  # the server cannot be reached yet (or refuses connections): try again
                    pass
            if self._ended.is_set():
                await asyncio.sleep(RETRY_SECONDS)
