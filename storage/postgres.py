"""The PostgreSQL backend of the `Store` protocol (storage/protocol.py), through asyncpg: for a bot
that outgrows one process, several shard processes on one or many machines sharing one database.

Selected by a `postgresql://` location (`CROWDTUNE_DB` or `--db`). It keeps SQLite's promises with
row locks instead of one writer:
- `close_round` locks the round (`FOR UPDATE ... WHERE status = 'open'`) and its scope, so of two
  closes at the same moment, from one process or two, one settles and the other finds the round
  closed: rewarded exactly once; closes in one scope take turns, so no Q-update nor model update is
  lost (the first write of a scope's model too, which a lock on the `models` row could not cover).
- `apply_votes` runs one batch at a time per process, in the order given, and locks the batch's
  rounds, so a vote lands before a close (and counts) or after it ("closed").
- `forget_user` locks the open rounds first, so a batch of votes under way (from any process) lands wholly before the
  deletion (its votes deleted) or after it (a re-read's cast of the person refused, and a cast made before the bot knew
  of the deletion: withheld_reactions, VoteOp.forgets_seen).
- Every write commits before it returns (synchronous commit), so a SIGKILL of a bot process loses
  nothing it acknowledged; the server keeps what it committed.
A transaction that PostgreSQL aborts as a deadlock victim or serialization failure is run again.

The password in the URL never reaches a message: `public_url` shows it as `***`, and `public_text` masks a
driver's message without changing its own words.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import json
import logging
import os
import re
import time
import traceback
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus, urlsplit

import asyncpg

from core.agent import QEntry, QKey
from core.crowd import Ballot, ChoiceHistory, History
from core.learner import Evidence, apply_observations
from core.engine import Outcome, Reference
from core.music import track_to_dict
from storage import URL_EXAMPLE, check_location, naming_problems, naming_refusals
from storage.leases import Lease
from storage.postgres_migrations import MIGRATIONS, SCHEMA_VERSION
from storage.protocol import (
    Announce, Announcement, ClaimLost, ClosesOnExit, ConfirmedRequest, DatabaseUnreachable, EndedSession, NoDatabase, ResetDone, RoundRow, SessionRow, Settle, StandingVote, StorageError, VoteOp, VoteResult,
    MIGRATION_COMMITTING, closed_audit, other_schema, outcome_to_dict,
)
from storage.reader import RowReader
from storage.rows import (
    COPY_CHUNK_ROWS, NOTICE_CHANNEL, announced, finishes, HISTORY_COLUMNS, PREFERRING, Q_KEY_KINDS, Q_KINDS_COUNTED, ROUND_COLUMNS, SESSION_COLUMNS, TABLES, VOTING_STATUS, ab_points, copy_columns, learning_points,
    ENDED_POSTS, GIVE_UP_OLD_NOTES, STANDING_VOTES, STRUCK_VOTERS, confirmed_request, confirmed_row, ended_post_edits, plan_votes, recorded_by_voter, reset_done, round_row, session_row, standing_votes,
)

T = TypeVar("T")
log = logging.getLogger("crowdtune.storage")

POOL_SIZE = 10  # connections per process; PostgreSQL's default max_connections is 100
# How long (seconds) close() lets work on the pool's connections end before it cuts them: asyncpg's pool close waits for
# every connection in use for ever (its 0.16 release notes advise a timeout), and a write waiting on a lock another
# program holds (no lock_timeout by default) would keep a stopping bot or command from ending.
CLOSE_SECONDS = 10.0
_ATTEMPTS = 5  # a transaction chosen as a deadlock victim is run again up to this many times
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_UNUSABLE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
_MIGRATION_LOCK = 0x63726F77  # pg_advisory_xact_lock key: processes starting together migrate one at a time
_SHARD_LOCKS = 0x73686172  # advisory lock namespace: (namespace, shard id) is held by the process running it
_SHARD_COUNT_LOCKS = 0x636E74  # (namespace, shard count) is held shared by every shard process
_FORGOTTEN = "crowdtune_forgotten"  # NOTIFY channel: forget_user deleted a voter ("FORGET VOTER"): listen_forgotten
_SCOPE_LOCKS = 0x73636F70  # (namespace, hashtext(scope id)) is held by the terminal or simulation driving that scope

_ROUNDS = "FROM rounds r JOIN sessions s ON s.id = r.session_id"


_BAD_ESCAPE = "a % in it starts no percent-encoding of UTF-8 text (such as %40 for @): write a % itself as %25"
# A : ends the user name, but in the password it is the password's own (RFC 3986 userinfo; libpq and asyncpg alike).
_ENCODE = (
    "percent-encode / ? # @ % in its user name and password, and : in its user name (/ as %2F, @ as %40), or give "
    "the password in PGPASSWORD instead"
)


def url_problem(url: str) -> str | None:
    """Why the URL's parts cannot be told apart or read as libpq reads them, or asyncpg cannot connect where libpq
    would, or None when they can. A user name or password holding a character URLs reserve (/ ? # @), not
    percent-encoded, makes the rest of it read as a port, a path or a query; a [ or ] out of place, or a port that
    is no port, leaves the parts unread too. Where the password ends is then anyone's guess, so all from its first
    : to its last @ is hidden (`public_url`). A / too many after the scheme (postgresql:///user:pw@host/db) leaves
    the host out and makes the rest the database's name, password and all (libpq's and asyncpg's reading alike), so
    it is refused as that; without an @ (postgresql:///db, the local socket; postgresql://host//db, a database
    named /db) the URL is libpq's, kept. A port without a host (@:5433) is libpq's local socket on that port but
    asyncpg's host "", which no connection reaches. An empty port ("host:/db") and a % that starts no %XX of UTF-8
    text are refused, as libpq refuses the second: asyncpg would connect to the default port (PGPORT, else 5432)
    and keep the % as typed (or read %ff as U+FFFD), a password that is not the one meant."""
    try:
        parts = urlsplit(url)
    except ValueError:  # urlsplit: a [ without its ], or [ ] holding no IPv6 address
        return ("a [ or ] is out of place: an IPv6 host goes in [ ], such as postgresql://user@[::1]:5432/crowdtune, "
                "and a [ or ] in a user name or password is percent-encoded (%5B, %5D)")
    if not parts.netloc and "@" in parts.path:
        slashes = len(re.match(r"[^:]*:(/*)", url)[1])
        return (f"it has {slashes} slashes after {parts.scheme}: where 2 go, so its user, password and host would be read "
                f"as the database's name: write {parts.scheme}://, {URL_EXAMPLE}")
    if "#" in url and not any("@" in part for part in (parts.fragment, parts.path, parts.query)) and parts.netloc.count("@") < 2:
        return "it ends in a #fragment, which has no meaning in a database URL: leave it out"  # no # of a password's
    if parts.netloc.count("@") > 1 or "#" in url or any("@" in part for part in (parts.path, parts.query)):
        return _ENCODE
    return _host_problem(parts.netloc.rpartition("@")[2]) or _escape_problem(url)


def _host_problem(hosts: str) -> str | None:
    """Why a URL's host list ("host:port", "[::1]:5432", or several, comma-separated, as libpq and asyncpg take them)
    names no server asyncpg can reach, or None."""
    for host in hosts.split(","):
        name, colon, port = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(:?)(.*)", host).groups()
        if colon and not (re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535):
            return "its port is not a number from 1 to 65535 (leave out the : too for the default port, 5432)"
        if colon and not name:
            return (f"it names a port (:{port}) but no host: name the host, as in postgresql://user:password@localhost:{port}/"
                    f"database, or the folder of the server's socket, as in postgresql://user:password@/database?host="
                    f"/var/run/postgresql&port={port}")
        if name and not name.startswith("[") and not _host_name(unquote(name)):
            return (f"its host '{name}' cannot be a host's name (a part between dots is empty or longer than 63 characters, or holds "
                    f"a character no host name takes): name the server, as in postgresql://user:password@db.example.com:5432/database")
    return None


def _host_name(name: str) -> bool:
    """Whether `name` can be looked up as a host: it encodes as the resolver will encode it (IDNA 2003, Python's idna
    codec, which the event loop's getaddrinfo uses), which refuses an empty label ("...", "a..b") or one over 63
    characters; an IPv4 address passes as it is."""
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


def _escape_problem(url: str) -> str | None:
    """Why the %s of `url` are no percent-encoding of UTF-8 text, or None."""
    try:
        unquote(url, errors="strict")
    except UnicodeDecodeError:
        return _BAD_ESCAPE
    return _BAD_ESCAPE if re.search(r"%(?![0-9A-Fa-f]{2})", url) else None


# Where a URL's authority starts: past its scheme and the : and / that follow it, even mistyped (postgresql:/,
# postgresql//, postgresql:u:pw@h), so that a password is found there too.
_AUTHORITY = re.compile(r"\s*[^:/@]*(?::/*|/+)")
# A PostgreSQL scheme's name, mistyped without its // (postgresql:u:pw@h): the : after it starts no password.
_POSTGRES_NAME = re.compile(r"postgres(?:ql)?", re.IGNORECASE)
# A query parameter: its key as typed (with the ? or & before it and the = after it), and its value.
_PARAMETER = re.compile(r"([?&]([^=&]*)=)([^&]*)")


# A query parameter whose name holds one of these carries a secret: password and sslpassword (the client key's
# passphrase) are asyncpg's; token, secret and a bare key are an HTTP URL's (CROWDTUNE_API_BASE, a proxy's).
_SECRET_NAMES = re.compile(r"pass(?:word|wd)|token|secret|(?:^|api_?)key$")


def _is_password_key(key: str) -> bool:
    """Whether a query parameter's key, as typed, names a secret (_SECRET_NAMES: password, sslpassword, token...):
    asyncpg reads keys percent-decoded (parse_qs: pass%77ord is password); in any case, to be safe, though asyncpg
    reads only lower-case ones."""
    return _SECRET_NAMES.search(unquote_plus(key).lower()) is not None


def public_url(url: str) -> str:
    """`url` (of any scheme, even mistyped or unreadable: `url_problem`) as typed but for its password, shown as
    ***: the text from the first : in its authority (past "//") to the last @, where a password holding an unencoded
    @ / ? # [ ends as far as anyone can tell, so none of it shows however the URL is broken, while its user, host,
    port and database still do; the value of a parameter named for a secret (`_is_password_key`: password=,
    sslpassword=, token=..., its key read as asyncpg reads it, percent-decoded: pass%77ord=), and any other
    parameter's value that is the password (of _SECRET_CHARACTERS or more, percent-decoded alike: `public_text` then
    masks it where a message prints it too); and, with no @ at all, a "port" that is no number (the password of
    "postgresql://user:secret" with its host left out). Never raises."""
    secrets = {unquote(secret) for secret in _secrets(url) if len(unquote(secret)) >= _SECRET_CHARACTERS}
    authority = _AUTHORITY.match(url)
    start = authority.end() if authority else 0
    at = url.rfind("@")
    colon = url.find(":", start)
    if url[:start].endswith(":") and not (0 <= colon < at and _POSTGRES_NAME.fullmatch(url[:start - 1].strip())):
        colon = url.find(":")  # a user's name taken for a scheme (me:pw@host, no //): that : may start a password
    if 0 <= colon < at:
        url = f"{url[:colon]}:***{url[at:]}"
    elif at < 0:
        hostport = re.match(r"[^/?#]*", url[start:])[0]
        host, colon, port = hostport.rpartition(":")
        if colon and port and not port.isdigit() and "]" not in port:
            url = f"{url[:start]}{host}:***{url[start + len(hostport):]}"

    def masked(parameter: re.Match) -> str:  # a value read as asyncpg reads it (parse_qs: + is a space) or as typed
        secret = _is_password_key(parameter[2]) or {unquote(parameter[3]), unquote_plus(parameter[3])} & secrets
        return f"{parameter[1]}***" if secret else parameter[0]

    url = _PARAMETER.sub(masked, url)
    # A #fragment means nothing to a database or an API base (refused: url_problem), so it may be anything: a secret.
    fragment = url.find("#", url.rfind("***") + 1 if "***" in url else start)
    return url if fragment < 0 or fragment == len(url) - 1 else f"{url[:fragment]}#***"


def _secrets(url: str) -> list[str]:
    """The URL's password and any password= parameter's value, each as typed and percent-decoded, longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unreadable (url_problem): nothing of it reached a driver
        return []
    found = [parts.password] if parts.password else []
    found += [value for key, _, value in (pair.partition("=") for pair in parts.query.split("&")) if _is_password_key(key)]
    return sorted({form for s in found if s for form in (s, unquote(s))}, key=len, reverse=True)


# A secret is masked where a message prints it as a value (Python's repr and libpq's key=value alike): the whole of a
# quoted text, or what follows an = up to where a value ends. Only that: a password's text elsewhere is a word or a
# number of the message itself ("password authentication failed", "[Errno 111]", "127.0.0.1", port 1), and masking
# those would spell the password out ("Conn***ct call fail***d" says it is "e") while hiding nothing.
_VALUE = r"(?:(?<=')%s(?=')|(?<=\")%s(?=\")|(?<==)%s(?=[\s&;,)'\"]|$))"
# Nor is a secret shorter than this masked even as a value: "'1'", "'db'", "'require'" are as likely the message's
# own; 8 characters is NIST SP 800-63B's (section 5.1.1.2) least length for a password a person chooses.
_SECRET_CHARACTERS = 8


def public_text(text: str, url: str) -> str:
    """`text`, a driver's or a server's message about the database at `url`, as it is, but that: `url` in it, as
    typed or percent-decoded, reads as `public_url(url)`; and a secret of it (the password, a password= parameter's
    value, as typed or percent-decoded) of _SECRET_CHARACTERS or more, where the message prints it as a value
    (_VALUE), reads as ***, unless the line shows that text anyway as the URL's user, host, port, database or a
    parameter (masking it there would tell which it is). Never a replacement inside a word or a number: the
    message's own text stays exact. The one masking of every line and log that may hold a driver's words."""
    shown = public_url(url)
    for form in sorted({url, unquote(url)}, key=len, reverse=True):
        text = text.replace(form, shown)
    public = set(re.split(r"[/:@?&=,\[\]]+", shown))
    for secret in _secrets(url):
        if len(secret) >= _SECRET_CHARACTERS and secret not in public:
            text = re.sub(_VALUE % ((re.escape(secret),) * 3), "***", text)
    return text


def _reason(exc: BaseException, url: str) -> str:
    """One line about a driver error (its first), masked by `public_text`."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return public_text(text, url)


def _lost(problem: BaseException) -> bool:
    """Whether a driver's error means that the server cannot be reached or went away: no connection could be made
    (refused, timed out, no such host: OSError), the server is shutting down, starting or has crashed (SQLSTATE class
    57, but for 57014, a query cancelled by a timeout), or the connection ended under the work (class 08, or asyncpg's
    "connection is closed")."""
    if isinstance(problem, asyncpg.exceptions.QueryCanceledError):
        return False
    if isinstance(problem, (OSError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)):
        return True
    return isinstance(problem, asyncpg.InterfaceError) and "connection is closed" in str(problem)


def _reaching(location: object, url: str) -> contextlib.AbstractContextManager[None]:
    """A lost connection (`_lost`) met in the block becomes DatabaseUnreachable, "the database {location} cannot be
    reached: {reason}" (storage.naming_problems)."""
    return naming_problems(location, _lost, DatabaseUnreachable, "cannot be reached", lambda problem: _reason(problem, url))


@contextlib.asynccontextmanager
async def _reaching_server(location: object, url: str) -> AsyncIterator[None]:
    """`_reaching`, and an error of the driver's own that gives no reason (InterfaceError, InternalClientError) is
    DatabaseUnreachable too when a connection tried then is refused: a server that went away can leave a pooled
    connection half-way through its error, and asyncpg's pool then fails to reset it ("cannot switch to state 15;
    another operation (2) is in progress"), the server's error itself lost in the pool's task."""
    try:
        with _reaching(location, url):
            yield
    except (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError):
        with _reaching(location, url):
            await _try_connecting(url)
        raise


async def _try_connecting(url: str) -> None:
    """Connect to the server once and close: raises only a lost connection's error (`_lost`)."""
    try:
        conn = await asyncpg.connect(url, timeout=30)
    except Exception as problem:
        if _lost(problem):
            raise
        return
    await conn.close()


def _naming_lost_connections(cls: type) -> type:
    """Every public coroutine and async generator of the store `cls` runs in `_reaching_server`: the server may go
    away at any call (a bot idle for hours, a person at the prompt), and no caller should know the driver's errors."""

    def guarded(method: Callable) -> Callable:
        if inspect.isasyncgenfunction(method):
            @functools.wraps(method)
            async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator:
                async with _reaching_server(self.path, self._url):
                    async for item in method(self, *args, **kwargs):
                        yield item

            return stream

        @functools.wraps(method)
        async def call(self, *args: Any, **kwargs: Any) -> Any:
            async with _reaching_server(self.path, self._url):
                return await method(self, *args, **kwargs)

        return call

    for name, method in list(vars(cls).items()):
        if not name.startswith("_") and (inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)):
            setattr(cls, name, guarded(method))
    return cls


def _fold(record: logging.LogRecord) -> None:
    """A log record's exception as one line at the end of its message, in place of its traceback."""
    if record.exc_info and record.exc_info[1] is not None:
        problem = record.exc_info[1]
        record.msg, record.args = f"{record.getMessage()} (%s)", (f"{type(problem).__name__}: {problem}".rstrip(": "),)
        record.exc_info, record.exc_text = None, None


class _OneLineRetries(logging.Filter):
    """asyncpg's pool logs each try to reconnect while its server is away ("Failed to restore the pool connection
    floor; retrying") with the whole traceback: one warning line with its reason is enough for the bot's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        _fold(record)
        return True


class _AsyncpgLeftovers(logging.Filter):
    """A connection that a stopping server cuts while asyncpg opens it can leave a future of asyncpg's with its
    error never read, which asyncio logs as an error with a traceback ("Future exception was never retrieved"): the
    store says that loss itself (DatabaseUnreachable), so it is kept at debug level, one line, below every terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        problem = record.exc_info[1] if record.exc_info else None
        if problem is not None and _lost(problem) and _asyncpgs(problem):
            _fold(record)
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


_ASYNCPG_FOLDER = os.path.dirname(asyncpg.__file__)
# What asyncpg's connect sets when the server closes the connection before its first answer (connect_utils.py).
_ASYNCPG_CUT = "unexpected connection_lost() call"


def _asyncpgs(problem: BaseException) -> bool:
    """Whether `problem` was raised in asyncpg, or made by it for a future without being raised."""
    frames = traceback.extract_tb(problem.__traceback__)
    return str(problem) == _ASYNCPG_CUT or any(frame.filename.startswith(_ASYNCPG_FOLDER) for frame in frames)


# asyncpg's log goes where the program's log goes (the bot's), never to a terminal session that has none, where
# Python's last-resort handler would print its retries and their tracebacks between the prompts.
logging.getLogger("asyncpg").addHandler(logging.NullHandler())
logging.getLogger("asyncpg.pool").addFilter(_OneLineRetries())
logging.getLogger("asyncio").addFilter(_AsyncpgLeftovers())


def _count(status: str) -> int:
    """Rows touched, from a command status such as 'UPDATE 3'."""
    return int(status.rsplit(" ", 1)[-1])


class _NotHeld(Exception):
    """(args[0]) The leases a write found not held just before its commit (Lease.not_held): it rolls back."""


@_naming_lost_connections
class PostgresStore(ClosesOnExit):
    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._votes = asyncio.Lock()  # one vote batch at a time: batches apply in the order they arrive
        self._lease: Lease | None = None  # the shards' locks (claim_shards)
        self._scope_leases: list[Lease] = []
        self._listening: Lease | None = None  # NOTIFYs heard without a claim (listen_forgotten); holds no lock
        self._holder = "crowdtune"
        self.path = Location(url)

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, pool_size: int = POOL_SIZE, read_only: bool = False) -> PostgresStore:
        """The store of the database at `url` (storage.open_store: what `read_only` means; here its every
        transaction is READ ONLY, default_transaction_read_only, so it works with a read-only role or a standby)."""
        check_location(url)
        shown = public_url(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=pool_size, timeout=30,
                server_settings={"default_transaction_read_only": "on"} if read_only else None,
            )
        except Exception as exc:  # any driver or network error; the message is redacted
            raise StorageError(f"cannot connect to the database {shown}: {_reason(exc, url)}") from None
        store = cls(pool, url)
        try:
            await store._prepare(read_only)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _UNUSABLE):
                raise StorageError(f"the database {shown} cannot be used: {_reason(exc, url)}") from None
            raise
        return store

    async def _prepare(self, read_only: bool) -> None:
        async with self._pool.acquire() as conn, conn.transaction(readonly=read_only):
            if not read_only:  # one migration at a time; a reader reads what is committed
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if await conn.fetchval("SELECT to_regclass('crowdtune_schema') IS NOT NULL"):
                version = await conn.fetchval("SELECT version FROM crowdtune_schema")
            elif await conn.fetchval("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"):
                raise StorageError(
                    f"{self.path} is another program's database, not crowdtune's; left as it is: choose another database"
                )
            elif read_only:
                raise NoDatabase(f"the database {self.path} holds no crowdtune data yet")
            else:
                await conn.execute("CREATE TABLE crowdtune_schema (version INTEGER NOT NULL); INSERT INTO crowdtune_schema VALUES (0)")
                version = 0
            if version > SCHEMA_VERSION or (read_only and version < SCHEMA_VERSION):
                raise other_schema(self.path, version, SCHEMA_VERSION)
            if read_only:
                return
            for number in range(version + 1, SCHEMA_VERSION + 1):
                await conn.execute(MIGRATIONS[number])
            await conn.execute("UPDATE crowdtune_schema SET version = $1", SCHEMA_VERSION)
            MIGRATION_COMMITTING.get()()

    async def close(self) -> None:
        for lease in [*self._leases(), *filter(None, [self._listening])]:
            await lease.close()
        self._lease = None
        self._scope_leases.clear()
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_SECONDS)
        except TimeoutError:
            self._pool.terminate()
            log.warning("closed the database %s after %.0f s: work still waiting on it was cut short (its "
                        "transactions rolled back)", self.path, CLOSE_SECONDS)

    def _leases(self) -> list[Lease]:
        return ([self._lease] if self._lease is not None else []) + self._scope_leases

    async def _hold_claims(self) -> None:
        """Before every write: this process's claims are held (taken again first if their connection ended), or
        ClaimLost; nothing to wait for while they are (storage.leases)."""
        for lease in self._leases():
            await lease.hold()

    async def listen_forgotten(self, callback: Callable[[str, int], None]) -> None:
        """(storage.protocol.Store) Heard on the shards' lock connection, or on one of its own that holds no lock; the
        payload is "FORGET VOTER" (a voter may hold spaces, the number none)."""
        if self._lease is None:
            self._listening = Lease(self._lease_connection, None, "the connection listening for deletions")
            await self._listening.start()

        newest = 0  # the newest deletion told to `callback`

        def tell(voter: str, forget: int) -> None:
            nonlocal newest
            newest = max(newest, forget)
            callback(voter, forget)

        def heard(payload: str) -> None:
            forget, _, voter = payload.partition(" ")
            tell(voter, int(forget))

        async def missed(conn: asyncpg.Connection) -> None:
            # Sent while the connection was cut, so not heard: each deletion newer than those told that still withholds
            # an open round (one that withholds none leaves nothing a vote could be refused for).
            for forget, voter in await conn.fetch(
                "SELECT DISTINCT forget_id, voter FROM withheld_reactions WHERE forget_id > $1 ORDER BY forget_id", newest
            ):
                tell(voter, forget)

        await (self._lease or self._listening).listen(_FORGOTTEN, heard, missed)
        # What the caller reads once listening (bot.discord.app.setup_hook): none newer was missed yet.
        newest = max(newest, await self.last_forget())

    async def still_there(self) -> None:
        """(storage.protocol.Store) Nothing to look at: a server's database is no file under this process."""

    async def claim_lost(self) -> ClaimLost:
        waits = [asyncio.ensure_future(lease.lost_for_good()) for lease in self._leases()]
        if not waits:  # nothing claimed: nothing to lose
            await asyncio.Event().wait()
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return next(iter(done)).result()

    async def claim_instance(self, holder: str) -> None:
        """Several bot processes share a PostgreSQL database, one per shard: exclusivity is per shard
        (claim_shards, which an unsharded bot calls for the one shard there is, so two unsharded bots
        still refuse to run together). The holder's description names this process's shard connection
        (`application_name`, seen in pg_stat_activity)."""
        self._holder = holder[:60]

    async def _tx(self, body: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `body(connection)` in one transaction; again if PostgreSQL aborted it as a deadlock
        victim or a serialization failure (the body must be safe to repeat: it only reads and
        writes the database, and `settle` is a pure function). A process holding claims checks them just
        before the commit (storage.leases): a write never lands after another process took one."""
        with self._refusals():  # around the retries: a deadlock or serialization failure is DatabaseBusy only once they are spent
            for attempt in range(_ATTEMPTS):
                await self._hold_claims()
                try:
                    async with self._pool.acquire() as conn, conn.transaction():
                        result = await body(conn)
                        if leases := self._leases():  # claims that ended unnoticed: rolled back, taken again, run again
                            if dropped := await Lease.not_held(conn, leases):
                                raise _NotHeld(dropped)
                        return result
                except _NotHeld as problem:
                    for lease in problem.args[0]:
                        lease.dropped()
                    if attempt + 1 == _ATTEMPTS:
                        await self._hold_claims()  # ClaimLost if another process took them; else the write fails
                        raise DatabaseUnreachable(f"the database {self.path} cannot be reached: the connection holding this process's locks keeps ending") from None
                except _RETRYABLE:
                    if attempt + 1 == _ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    def _refusals(self):
        """Around every write: the server's lack of room or resources (SQLSTATE class 53: its disk full, ...) is
        DatabaseUnwritable naming the database, as a SQLite file's full disk is, and a lock timeout DatabaseBusy, as a
        SQLite file locked by another process is (storage.naming_refusals)."""
        return naming_refusals(self.path, lambda problem: _reason(problem, self._url))

    async def _write(self, sql: str, *args: object) -> str:
        """One statement that writes, outside a transaction of its own making (it commits alone); its status."""
        if self._leases():  # checked in a transaction, as every write of a process holding claims (_tx)
            return await self._tx(lambda conn: conn.execute(sql, *args))
        with self._refusals():
            return await self._pool.execute(sql, *args)

    async def _all(self, sql: str, *args: object) -> list[tuple]:
        return [tuple(r) for r in await self._pool.fetch(sql, *args)]

    async def schema_version(self) -> int:
        return await self._pool.fetchval("SELECT version FROM crowdtune_schema")

    # -- scopes and audit ---------------------------------------------------------------------

    async def ensure_scope(self, scope_id: str, kind: str, name: str = "") -> None:
        await self._write(
            "INSERT INTO scopes (id, kind, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            scope_id, kind, name, time.time(),
        )

    async def scope_settings(self, scope_id: str) -> dict:
        settings = await self._pool.fetchval("SELECT settings FROM scopes WHERE id = $1", scope_id)
        return json.loads(settings) if settings is not None else {}

    async def update_scope_settings(self, scope_id: str, changes: dict, actor: str) -> dict:
        async def body(conn: asyncpg.Connection) -> dict:
            current = await conn.fetchval("SELECT settings FROM scopes WHERE id = $1 FOR UPDATE", scope_id)
            if current is None:
                raise KeyError(scope_id)
            settings = {**json.loads(current), **changes}
            await conn.execute("UPDATE scopes SET settings = $1 WHERE id = $2", json.dumps(settings), scope_id)
            await _audit(conn, scope_id, actor, "config", changes)
            return settings

        return await self._tx(body)

    async def scopes(self) -> list[tuple[str, str, str]]:
        return await self._all("SELECT id, kind, name FROM scopes ORDER BY id")

    async def has_scope(self, scope_id: str) -> bool:
        return await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM scopes WHERE id = $1)", scope_id)

    async def audit(self, scope_id: str | None, actor: str, action: str, detail: dict | None = None) -> None:
        await _audit(self._pool, scope_id, actor, action, detail or {})

    async def reset_scope(self, scope_id: str, actor: str, request: str | None = None) -> ResetDone | None:
        async def body(conn: asyncpg.Connection) -> ResetDone | None:
            await _lock_scope(conn, scope_id)
            if not await _take_request(conn, request):
                return None
            kinds = tuple(await conn.fetchrow(Q_KINDS_COUNTED.format("$1"), scope_id))
            deleted = _count(await conn.execute("DELETE FROM qvalues WHERE scope_id = $1", scope_id))
            models = [tuple(row) for row in await conn.fetch("DELETE FROM models WHERE scope_id = $1 RETURNING name, data", scope_id)]
            await _audit(conn, scope_id, actor, "reset", {"q_entries_deleted": deleted, "models_deleted": len(models)})
            return reset_done(kinds, models)

        return await self._tx(body)

    # -- sessions -----------------------------------------------------------------------------

    async def create_session(
        self, scope_id: str, channel_id: str | None, spec: dict, track: dict, actor: str, options: dict | None = None
    ) -> SessionRow:
        """Start a session; a channel runs one active session at a time (ValueError otherwise, also
        when another process starts one there at the same moment: the unique index decides). What an ended
        session left unposted there is given up (`GIVE_UP_OLD_NOTES`)."""

        async def body(conn: asyncpg.Connection) -> SessionRow:
            if channel_id is not None and await conn.fetchval(
                "SELECT 1 FROM sessions WHERE channel_id = $1 AND status = 'active'", channel_id
            ):
                raise ValueError
            if channel_id is not None:
                await conn.execute(GIVE_UP_OLD_NOTES.format("$1", "$2"), time.time(), channel_id)
            row = await conn.fetchrow(
                "INSERT INTO sessions (scope_id, channel_id, spec, options, owner, status, track, created_at) "
                f"VALUES ($1, $2, $3, $4, $5, 'active', $6, $7) RETURNING {SESSION_COLUMNS}",
                scope_id, channel_id, json.dumps(spec), json.dumps(options or {}), actor, json.dumps(track), time.time(),
            )
            await _audit(conn, scope_id, actor, "session_start", {"session": row[0], "channel": channel_id, "spec": spec})
            return session_row(tuple(row))

        try:
            return await self._tx(body)
        except (ValueError, asyncpg.UniqueViolationError):
            raise ValueError("a session is already running here: stop it first") from None

    async def session(self, session_id: int) -> SessionRow | None:
        rows = await self._all(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1", session_id)
        return session_row(rows[0]) if rows else None

    async def set_session_options(self, session_id: int, options: dict) -> bool:
        """Replace the `options` of session `session_id` (what create_session stored: a terminal session's folder,
        kept again when it moved). False (nothing changed) when there is no such session."""

        async def body(conn: asyncpg.Connection) -> bool:
            return await conn.execute("UPDATE sessions SET options = $1 WHERE id = $2", json.dumps(options), session_id) != "UPDATE 0"

        return await self._tx(body)

    async def active_session_in(self, channel_id: str) -> SessionRow | None:
        rows = await self._all(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE channel_id = $1 AND status = 'active'", channel_id)
        return session_row(rows[0]) if rows else None

    async def latest_session(self, scope_id: str, channel_id: str | None) -> SessionRow | None:
        rows = await self._all(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE scope_id = $1 AND channel_id IS NOT DISTINCT FROM $2 "
            "ORDER BY id DESC LIMIT 1",
            scope_id, channel_id,
        )
        return session_row(rows[0]) if rows else None

    async def all_sessions(self) -> list[SessionRow]:
        """Every session, oldest first (`crowdtune sessions`)."""
        return [session_row(r) for r in await self._all(f"SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id")]

    async def rate_starting_track(self, session_id: int, score: float, actor: str) -> bool:
        """Set the score of a session's starting track (a rating 1-10), the bar its first edit must pass.
        False (nothing changed) once the session has a score or a closed round."""

        async def body(conn: asyncpg.Connection) -> bool:
            scope_id = await conn.fetchval(
                "UPDATE sessions SET incumbent_score = $1 WHERE id = $2 AND status = 'active' AND rounds_done = 0 "
                "AND incumbent_score IS NULL RETURNING scope_id",
                score, session_id,
            )
            if scope_id is None:
                return False
            await _audit(conn, scope_id, actor, "starting_track_rated", {"session": session_id, "rating": score})
            return True

        return await self._tx(body)

    async def active_sessions(self, scope_id: str | None = None) -> list[SessionRow]:
        rows = await self._all(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE status = 'active' AND ($1::text IS NULL OR scope_id = $1) ORDER BY id",
            scope_id,
        )
        return [session_row(r) for r in rows]

    async def end_session(self, session_id: int, status: str, actor: str) -> EndedSession | None:
        """Stop or finish a session; open rounds in it are cancelled (EndedSession). None if it had already ended."""

        async def body(conn: asyncpg.Connection) -> EndedSession | None:
            scope_id = await conn.fetchval(
                "UPDATE sessions SET status = $1 WHERE id = $2 AND status = 'active' RETURNING scope_id", status, session_id
            )
            if scope_id is None:
                return None
            # The open rounds locked first, as a batch of votes locks them (apply_votes): one under way lands before
            # their votes are read, and one after finds them cancelled, so what is read is what is cancelled.
            open_rounds = await conn.fetch("SELECT id FROM rounds WHERE session_id = $1 AND status = 'open' ORDER BY id FOR UPDATE", session_id)
            cancelled = {
                row[0]: standing_votes([tuple(v) for v in await conn.fetch(STANDING_VOTES.format("$1"), row[0])]) for row in open_rounds
            }
            await _edit_ended_posts(conn, "r.session_id = $1 AND r.status = 'open'", session_id, "cancelled")
            await conn.execute(
                "DELETE FROM withheld_reactions WHERE round_id IN (SELECT id FROM rounds WHERE session_id = $1 AND status = 'open')",
                session_id,
            )
            await conn.execute(
                "UPDATE rounds SET status = 'cancelled', closed_at = $1 WHERE session_id = $2 AND status = 'open'",
                time.time(), session_id,
            )
            await _audit(conn, scope_id, actor, f"session_{status}", {"session": session_id})
            return EndedSession(cancelled)

        return await self._tx(body)

    # -- rounds ---------------------------------------------------------------------------------

    async def next_round_index(self, session_id: int) -> int:
        return await self._pool.fetchval("SELECT COALESCE(MAX(idx) + 1, 0) FROM rounds WHERE session_id = $1", session_id)

    async def open_round(self, session_id: int, index: int, mode: str, plan: dict, closes_at: float | None) -> RoundRow | None:
        """Record a planned round; opening the same index twice returns the round already there. None once the
        session has ended (a /stop while the round was being planned): an ended session gets no new round."""

        async def body(conn: asyncpg.Connection) -> RoundRow | None:
            # The session's row is locked first, so a concurrent end_session either comes before (no round) or
            # after (it cancels this one).
            if await conn.fetchval("SELECT status FROM sessions WHERE id = $1 FOR UPDATE", session_id) != "active":
                return None
            await conn.execute(
                "INSERT INTO rounds (session_id, idx, mode, plan, opened_at, closes_at, status) "
                "VALUES ($1, $2, $3, $4, $5, $6, 'open') ON CONFLICT (session_id, idx) DO NOTHING",
                session_id, index, mode, json.dumps(plan), time.time(), closes_at,
            )
            row = await conn.fetchrow(f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE r.session_id = $1 AND r.idx = $2", session_id, index)
            return round_row(tuple(row))

        return await self._tx(body)

    async def set_round_messages(
        self, round_id: int, message_ids: list[str], closes_at: float | None = None, ended_posts: dict[str, str] | None = None,
    ) -> None:
        async def body(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE rounds SET message_ids = $1, closes_at = COALESCE(closes_at, $2), ended_posts = COALESCE($3, ended_posts) WHERE id = $4",
                json.dumps(message_ids), closes_at, json.dumps(ended_posts) if ended_posts else None, round_id,
            )
            await conn.execute(
                "INSERT INTO round_messages (message_id, round_id) SELECT m, $2 FROM unnest($1::text[]) AS m "
                "ON CONFLICT DO NOTHING",
                list(message_ids), round_id,
            )
            await _edit_ended_posts(conn, "r.id = $1 AND r.status <> 'open'", round_id)  # a /stop came while it was posted

        await self._tx(body)

    async def set_closes_at(self, round_id: int, closes_at: float) -> bool:
        """Bring an open round's close forward (someone closed it by hand); stored, so a restart honours it."""
        status = await self._write(
            "UPDATE rounds SET closes_at = $1 WHERE id = $2 AND status = 'open' AND (closes_at IS NULL OR closes_at > $1)",
            closes_at, round_id,
        )
        return _count(status) > 0

    async def tell_reactions_are_no_votes(self, round_id: int, notice: str | None = None) -> bool:
        async def body(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "UPDATE rounds SET reactions_notice_at = $1 WHERE id = $2 AND status = 'open' AND reactions_notice_at IS NULL", time.time(), round_id,
            )
            told = _count(status) > 0
            channel = await conn.fetchval(NOTICE_CHANNEL.format("$1"), round_id) if told and notice is not None else None
            if channel is not None:
                await _announce(conn, channel, notice, round_id=round_id)
            return told

        return await self._tx(body)

    async def take_votes(self, round_id: int) -> bool:
        # Locks the round's row, so a batch of votes (which locks it first: apply_votes) lands wholly before it or is
        # refused wholly after it.
        status = await self._write(
            "UPDATE rounds SET votes_taken_at = $1 WHERE id = $2 AND status = 'open' AND votes_taken_at IS NULL", time.time(), round_id,
        )
        return _count(status) > 0

    async def round(self, round_id: int) -> RoundRow | None:
        rows = await self._all(f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE r.id = $1", round_id)
        return round_row(rows[0]) if rows else None

    async def round_for_message(self, message_id: str) -> RoundRow | None:
        rows = await self._all(
            f"SELECT {ROUND_COLUMNS} FROM round_messages m JOIN rounds r ON r.id = m.round_id "
            "JOIN sessions s ON s.id = r.session_id WHERE m.message_id = $1",
            message_id,
        )
        return round_row(rows[0]) if rows else None

    async def open_rounds(self) -> list[RoundRow]:
        return [round_row(r) for r in await self._all(f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE r.status = 'open' ORDER BY r.id")]

    async def open_round_of(self, session_id: int) -> RoundRow | None:
        rows = await self._all(
            f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE r.session_id = $1 AND r.status = 'open' ORDER BY r.idx DESC LIMIT 1",
            session_id,
        )
        return round_row(rows[0]) if rows else None

    async def rounds_of(self, session_id: int) -> list[RoundRow]:
        return [round_row(r) for r in await self._all(f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE r.session_id = $1 ORDER BY r.idx", session_id)]

    async def last_closed_round_before(self, session_id: int, index: int) -> RoundRow | None:
        rows = await self._all(
            f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE r.session_id = $1 AND r.idx < $2 AND r.status = 'closed' ORDER BY r.idx DESC LIMIT 1",
            session_id, index,
        )
        return round_row(rows[0]) if rows else None

    async def last_message_before(self, session_id: int, index: int) -> str | None:
        """The last message id of the latest posted round of the session before round `index`."""
        rows = await self._all(
            "SELECT message_ids FROM rounds WHERE session_id = $1 AND idx < $2 AND message_ids != '[]' ORDER BY idx DESC LIMIT 1",
            session_id, index,
        )
        return json.loads(rows[0][0])[-1] if rows else None

    async def top_rounds(self, scope_id: str, limit: int = 5, mode: str = "rating") -> list[RoundRow]:
        return [
            round_row(r)
            for r in await self._all(
                f"SELECT {ROUND_COLUMNS} {_ROUNDS} WHERE s.scope_id = $1 AND r.mode = $2 AND r.status = 'closed' AND r.reward IS NOT NULL "
                "AND (r.mode = 'rating' OR (r.outcome::jsonb -> 'kept_edit') IN ('1'::jsonb, 'true'::jsonb)) ORDER BY r.reward DESC, r.id LIMIT $3",
                scope_id, mode, limit,
            )
        ]

    async def learning_history(self, scope_id: str) -> list[tuple[float, float | None, float | None]]:
        """Per closed rated round of the scope, oldest first: (the crowd's verdict, the kept track's score
        after it (None before this was recorded), the standard deviation of its ratings (None in A/B))."""
        rows = await self._all(
            "SELECT r.reward, (r.outcome::jsonb ->> 'incumbent_score')::float8, AVG(v.rating), AVG(v.rating * v.rating), "
            f"COUNT(v.rating) {_ROUNDS} LEFT JOIN votes v ON v.round_id = r.id AND v.retracted = 0 AND v.voided = 0 "
            "WHERE s.scope_id = $1 AND r.mode = 'rating' AND r.status = 'closed' AND r.reward IS NOT NULL GROUP BY r.id "
            "ORDER BY r.closed_at, r.id",
            scope_id,
        )
        return await asyncio.to_thread(learning_points, rows)  # grows with the history: off the loop

    async def ab_history(self, scope_id: str) -> list[tuple[float, bool, int, int]]:
        """Per closed A/B round of the scope with votes, oldest first: (the chosen edit's reward, whether an
        edit was kept, the standing votes, those that preferred an edit to the track before)."""
        rows = await self._all(
            f"SELECT r.reward, (r.outcome::jsonb ->> 'kept_edit')::boolean, COUNT(v.choice), {PREFERRING} "
            f"{_ROUNDS} LEFT JOIN votes v ON v.round_id = r.id AND v.retracted = 0 AND v.voided = 0 "
            "WHERE s.scope_id = $1 AND r.mode = 'ab' AND r.status = 'closed' AND r.reward IS NOT NULL GROUP BY r.id "
            "ORDER BY r.closed_at, r.id",
            scope_id,
        )
        return await asyncio.to_thread(ab_points, rows)  # grows with the history: off the loop

    async def cancel_round(self, round_id: int, actor: str, reason: str, announce: str | None = None) -> bool:
        async def body(conn: asyncpg.Connection) -> bool:
            row = await conn.fetchrow(
                "UPDATE rounds r SET status = 'cancelled', closed_at = $1 FROM sessions s "
                "WHERE s.id = r.session_id AND r.id = $2 AND r.status = 'open' RETURNING s.scope_id, s.channel_id",
                time.time(), round_id,
            )
            if row is None:
                return False
            scope_id, channel_id = row
            if announce is not None and channel_id is not None:
                await _announce(conn, channel_id, announce)
            await conn.execute("DELETE FROM withheld_reactions WHERE round_id = $1", round_id)
            await _audit(conn, scope_id, actor, "round_cancelled", {"round": round_id, "reason": reason})
            return True

        return await self._tx(body)

    async def close_round(
        self, round_id: int, keys: list[QKey], settle: Settle, actor: str = "engine", announce: Announce | None = None,
        set_aside: Collection[str] = (),
    ) -> Outcome | None:
        """Close a round and apply its Q-updates and model observations in one transaction. None if it
        was not open: the round's row lock makes a second close, from this process or another, wait and
        then find it closed, so no round is rewarded twice. `settle(ballots, table, incumbent_score,
        history, reference)` decides; `reference` is the ballots and verdict of the rating round whose
        edit the session kept last."""

        async def body(conn: asyncpg.Connection) -> Outcome | None:
            row = await conn.fetchrow(
                f"SELECT r.session_id, s.scope_id, s.incumbent_score, s.rounds_done, s.spec, s.channel_id, r.mode {_ROUNDS} "
                "WHERE r.id = $1 AND r.status = 'open' FOR UPDATE OF r, s",
                round_id,
            )
            if row is None:
                return None
            session_id, scope_id, incumbent_score, rounds_done, spec, channel_id, mode = row
            await _lock_scope(conn, scope_id)  # closes in one scope take turns: no Q-update is lost
            ballots = [
                Ballot(*r)
                for r in await conn.fetch(
                    "SELECT voter, rating, choice FROM votes WHERE round_id = $1 AND retracted = 0 AND voided = 0 "
                    "ORDER BY cast_at, voter",
                    round_id,
                )
            ]
            aside = sorted({b.voter for b in ballots} & set(set_aside))
            ballots = [b for b in ballots if b.voter not in set_aside]
            struck = await conn.fetchval(STRUCK_VOTERS.format("$1"), round_id)  # after the scope's lock, which a strike takes
            if aside:
                await conn.execute("UPDATE votes SET voided = 1 WHERE round_id = $1 AND voter = ANY($2::text[])", round_id, aside)
            table = await _q_entries(conn, scope_id, keys)
            reference = await _incumbent_reference(conn, session_id)
            voters = [b.voter for b in ballots] + [b.voter for b in (reference[0] if reference else ())]
            history = await _voter_history(conn, scope_id, list(dict.fromkeys(voters)), mode)
            outcome = await asyncio.to_thread(settle, ballots, table, incumbent_score, history, reference)
            await _put_q(conn, scope_id, outcome.updates)
            if outcome.observations or outcome.comparisons:
                await _add_observations(conn, scope_id, outcome.model, outcome.observations, outcome.comparisons)
            await conn.execute(
                "UPDATE rounds SET status = 'closed', reward = $1, closed_at = $2, outcome = $3 WHERE id = $4",
                outcome.reward, time.time(), json.dumps(outcome_to_dict(outcome)), round_id,
            )
            finished = finishes(json.loads(spec), rounds_done)
            await conn.execute(
                "UPDATE sessions SET track = $1, incumbent_score = $2, rounds_done = rounds_done + 1, status = $3 WHERE id = $4",
                json.dumps(track_to_dict(outcome.next_track)), outcome.incumbent_score,
                "finished" if finished else "active", session_id,
            )
            await conn.execute("DELETE FROM withheld_reactions WHERE round_id = $1", round_id)
            await _edit_ended_posts(conn, "r.id = $1", round_id)
            if announce is not None and channel_id is not None:
                for text in announced(announce(outcome, ballots, len(aside), struck)):
                    await _announce(conn, channel_id, text)
            await _audit(conn, scope_id, actor, "round_closed", closed_audit(round_id, outcome, aside))
            return outcome

        return await self._tx(body)

    # -- learned models (fixed size per scope) -------------------------------------------------------

    async def model_evidence(self, scope_id: str, name: str) -> Evidence | None:
        """The scope's evidence for the model `name`, or None before its first rated round."""
        rows = await self._all("SELECT data FROM models WHERE scope_id = $1 AND name = $2", scope_id, name)
        return Evidence.from_dict(json.loads(rows[0][0])) if rows else None

    async def shared_evidence(self, name: str, exclude_scope: str) -> list[Evidence]:
        """The evidence for `name` of every other scope whose settings opt in to sharing (share_learning)."""
        rows = await self._all(
            "SELECT m.data FROM models m JOIN scopes s ON s.id = m.scope_id WHERE m.name = $1 AND m.scope_id != $2 "
            "AND (s.settings::jsonb -> 'share_learning') IN ('1'::jsonb, 'true'::jsonb) ORDER BY m.scope_id",
            name, exclude_scope,
        )
        return [Evidence.from_dict(json.loads(data)) for (data,) in rows]

    # -- the outbox -------------------------------------------------------------------------------

    async def pending_announcements(self, channel_id: str | None = None) -> list[Announcement]:
        if channel_id is None:
            rows = await self._all("SELECT id, channel_id, content, created_at, message_id, round_id FROM announcements WHERE sent_at IS NULL ORDER BY id")
        else:
            rows = await self._all(
                "SELECT id, channel_id, content, created_at, message_id, round_id FROM announcements WHERE sent_at IS NULL AND channel_id = $1 ORDER BY id", channel_id
            )
        return [Announcement(*row) for row in rows]

    async def mark_announced(self, announcement_id: int) -> None:
        await self._write("UPDATE announcements SET sent_at = $1 WHERE id = $2", time.time(), announcement_id)

    async def queue_announcement(self, channel_id: str, content: str) -> None:
        await self._tx(lambda conn: _announce(conn, channel_id, content))

    # -- votes ----------------------------------------------------------------------------------

    async def apply_votes(self, ops: list[VoteOp]) -> list[VoteResult]:
        """Apply casts and retractions in the order given, in one transaction; durable on return."""
        if not ops:
            return []

        async def body(conn: asyncpg.Connection) -> list[VoteResult]:
            # Lock the rounds (in id order, so two batches never deadlock): a close waits for this
            # batch or this batch for the close, never both at once.
            rounds = {
                r[0]: (r[1], r[2])
                for r in await conn.fetch(
                    f"SELECT r.id, {VOTING_STATUS}, s.scope_id {_ROUNDS} WHERE r.id = ANY($1::bigint[]) ORDER BY r.id FOR UPDATE OF r",
                    sorted({op.round_id for op in ops}),
                )
            }
            counted = [
                op for op in ops
                if rounds.get(op.round_id, (None, None))[0] == "open" and op.scope_id in (None, rounds[op.round_id][1])
            ]
            scopes = sorted({rounds[op.round_id][1] for op in counted})
            # A strike (which locks its scope) is either seen here or sees these votes.
            await conn.execute("SELECT 1 FROM scopes WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE", scopes)
            pairs = sorted({(op.round_id, op.voter) for op in counted})
            rows = {
                (r[0], r[1]): (r[2], r[3], r[4], json.loads(r[5]) if r[5] else None, r[6])
                for r in await conn.fetch(
                    # A void row (struck) stands for no vote, as a withdrawn one: see plan_votes.
                    "SELECT v.round_id, v.voter, v.rating, v.choice, GREATEST(v.retracted, v.voided), v.aspects, v.joined_at FROM votes v "
                    "JOIN unnest($1::bigint[], $2::text[]) AS k(round_id, voter) ON v.round_id = k.round_id AND v.voter = k.voter",
                    [p[0] for p in pairs], [p[1] for p in pairs],
                )
            }
            struck = {
                (r[0], r[1])
                for r in await conn.fetch(
                    "SELECT scope_id, voter FROM strikes WHERE scope_id = ANY($1::text[]) AND voter = ANY($2::text[])",
                    scopes, sorted({op.voter for op in counted if op.casts}),
                )
            }
            # Read after the rounds' locks, which a /forget-me takes first: its deletion is either seen here or sees these votes.
            casts = sorted({(op.round_id, op.voter) for op in counted if op.casts})
            withheld = {
                (r[0], r[1]): r[2]
                for r in await conn.fetch(
                    "SELECT w.round_id, w.voter, w.forget_id FROM withheld_reactions w "
                    "JOIN unnest($1::bigint[], $2::text[]) AS k(round_id, voter) ON w.round_id = k.round_id AND w.voter = k.voter",
                    [p[0] for p in casts], [p[1] for p in casts],
                )
            } if casts else {}
            results, written, events = plan_votes(ops, rounds, rows, struck, withheld)
            # One statement each for the votes and the events, however many the batch holds (arrays
            # unnested server-side): a round trip per row would cost more than the writes. A row written is void only
            # by a struck voter's cast (plan_votes).
            if written:
                columns = list(zip(*[(*key, *row) for key, row in written.items()]))
                await conn.execute(
                    "INSERT INTO votes (round_id, voter, rating, choice, cast_at, retracted, aspects, joined_at, voided) "
                    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[], $5::float8[], $6::int[], $7::text[], "
                    "$8::float8[], $9::int[]) ON CONFLICT (round_id, voter) DO UPDATE SET rating = excluded.rating, choice = excluded.choice, "
                    "cast_at = excluded.cast_at, retracted = excluded.retracted, aspects = excluded.aspects, joined_at = excluded.joined_at, "
                    "voided = excluded.voided",
                    *map(list, columns),
                )
            if events:
                await conn.execute(
                    "INSERT INTO vote_events (round_id, voter, kind, rating, choice, at, aspects) "
                    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::float8[], $7::text[])",
                    *map(list, zip(*events)),
                )
            return results

        async with self._votes:
            return await self._tx(body)

    async def ballots(self, round_id: int) -> list[Ballot]:
        rows = await self._all(
            "SELECT voter, rating, choice FROM votes WHERE round_id = $1 AND retracted = 0 AND voided = 0 ORDER BY cast_at, voter",
            round_id,
        )
        return [Ballot(*r) for r in rows]

    async def standing_votes(self, round_id: int) -> list[StandingVote]:
        return standing_votes(await self._all(STANDING_VOTES.format("$1"), round_id))

    async def voided_ballots(self, round_id: int) -> list[Ballot]:
        rows = await self._all(
            "SELECT voter, rating, choice FROM votes WHERE round_id = $1 AND retracted = 0 AND voided = 1 ORDER BY cast_at, voter",
            round_id,
        )
        return [Ballot(*r) for r in rows]


    async def aspect_ratings_of_scope(self, scope_id: str) -> list[dict[str, float]]:
        rows = await self._all(
            "SELECT v.aspects FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id "
            "WHERE s.scope_id = $1 AND r.status = 'closed' AND v.retracted = 0 AND v.voided = 0 AND v.aspects IS NOT NULL",
            scope_id,
        )
        return [json.loads(aspects) for (aspects,) in rows]

    async def ballot_count(self, round_id: int) -> int:
        return await self._pool.fetchval("SELECT COUNT(*) FROM votes WHERE round_id = $1 AND retracted = 0 AND voided = 0", round_id)

    async def strike(self, scope_id: str, voter: str, actor: str) -> dict[str, int] | None:
        """As SQLite's: {"open": voided in open rounds, "over": in rounds already over}, or None if already struck."""

        async def body(conn: asyncpg.Connection) -> dict[str, int] | None:
            await _lock_scope(conn, scope_id)
            if await conn.fetchval("SELECT 1 FROM strikes WHERE scope_id = $1 AND voter = $2", scope_id, voter):
                return None
            voided = {}
            for kind, status in (("open", "= 'open'"), ("over", "<> 'open'")):
                voided[kind] = _count(
                    await conn.execute(
                        "UPDATE votes SET voided = 1 WHERE voter = $1 AND voided = 0 AND retracted = 0 AND round_id IN "
                        f"(SELECT r.id {_ROUNDS} WHERE s.scope_id = $2 AND r.status {status})",
                        voter, scope_id,
                    )
                )
            await conn.execute("INSERT INTO strikes (scope_id, voter, at) VALUES ($1, $2, $3)", scope_id, voter, time.time())
            await _audit(conn, scope_id, actor, "strike", {"voter": voter, "voided": sum(voided.values()), "open_rounds": voided["open"]})
            return voided

        return await self._tx(body)

    async def unstrike(self, scope_id: str, voter: str, actor: str) -> bool:
        """Lift a strike: the user's new votes in the scope count again (the voided ones stay void)."""

        async def body(conn: asyncpg.Connection) -> bool:
            await _lock_scope(conn, scope_id)
            lifted = _count(await conn.execute("DELETE FROM strikes WHERE scope_id = $1 AND voter = $2", scope_id, voter))
            if lifted:
                await _audit(conn, scope_id, actor, "unstrike", {"voter": voter})
            return lifted > 0

        return await self._tx(body)

    async def recorded_votes(self, round_id: int) -> dict[str, dict[float | str, float]]:
        rows = await self._all(
            "SELECT voter, rating, choice, MAX(at) FROM vote_events WHERE round_id = $1 AND kind <> 'retract' GROUP BY voter, rating, choice",
            round_id,
        )
        return recorded_by_voter(rows)

    async def last_forget(self) -> int:
        return (await self._all("SELECT COALESCE(MAX(forget_id), 0) FROM withheld_reactions"))[0][0]

    async def withheld_voters(self, round_id: int) -> set[str]:
        """Voters whose reactions on this round are not read back (they used /forget-me while it was open)."""
        return {voter for (voter,) in await self._all("SELECT voter FROM withheld_reactions WHERE round_id = $1", round_id)}

    # -- Q-values -------------------------------------------------------------------------------

    async def q_entries(self, scope_id: str, keys: Iterable[QKey]) -> dict[QKey, QEntry]:
        async with self._pool.acquire() as conn:
            return await _q_entries(conn, scope_id, list(keys))

    async def q_table(self, scope_id: str) -> dict[QKey, QEntry]:
        rows = await self._all("SELECT state, action, value, visits FROM qvalues WHERE scope_id = $1 ORDER BY state, action", scope_id)
        return {(s, a): QEntry(v, n) for s, a, v, n in rows}

    async def q_size(self, scope_id: str, encoding: str | None = None) -> int:
        kind = "" if encoding is None else f" AND {Q_KEY_KINDS[encoding]}"
        return await self._pool.fetchval(f"SELECT COUNT(*) FROM qvalues WHERE scope_id = $1{kind}", scope_id)

    async def put_q_entries(self, scope_id: str, entries: Iterable[tuple[QKey, QEntry]]) -> None:
        async def body(conn: asyncpg.Connection) -> None:
            await _lock_scope(conn, scope_id)
            await _put_q(conn, scope_id, entries)

        await self._tx(body)

    # -- personal data, export and health --------------------------------------------------------

    async def user_data(self, voter: str) -> dict:
        def collect() -> dict:
            with PostgresReader(self.path) as reader:
                return {"voter": voter, "votes": list(reader.votes_of(voter))}

        return await asyncio.to_thread(collect)

    async def forget_user(self, voter: str, personal_scope: str, actor: str = "user", request: str | None = None) -> dict | None:
        """Delete a user's votes everywhere and their personal agent; returns what was deleted. Moderation
        records (strikes and the audit log) are kept; reactions the user leaves on rounds open now are not
        read back into votes."""

        async def body(conn: asyncpg.Connection) -> dict | None:
            # The open rounds locked first (in id order, as a batch of votes and a close lock theirs): a batch or a close
            # under way ends before the deletion (which then deletes its votes) or waits for it (and sees the withheld
            # reactions, the votes gone), so no vote of the person is stored or counted after this commits.
            await conn.execute("SELECT 1 FROM rounds WHERE status = 'open' ORDER BY id FOR UPDATE")
            if not await _take_request(conn, request):
                return None
            events = _count(await conn.execute("DELETE FROM vote_events WHERE voter = $1", voter))
            votes = _count(await conn.execute("DELETE FROM votes WHERE voter = $1", voter))
            # The personal agent's open round ends with it: its post says so (queued before its rows go).
            await _edit_ended_posts(conn, "s.scope_id = $1 AND r.status = 'open'", personal_scope, "cancelled")
            sessions = await conn.fetchval("SELECT COUNT(*) FROM sessions WHERE scope_id = $1", personal_scope)
            scope = _count(await conn.execute("DELETE FROM scopes WHERE id = $1", personal_scope))
            # Its number is drawn under the open rounds' locks, which every deletion takes: a later deletion's is larger.
            forget = await _audit(conn, None, actor, "forget_me", {"votes": votes, "personal_agent": scope > 0})
            await conn.execute(
                "INSERT INTO withheld_reactions (round_id, voter, forget_id) SELECT id, $1, $2 FROM rounds WHERE status = 'open' "
                "ON CONFLICT (round_id, voter) DO UPDATE SET forget_id = excluded.forget_id",
                voter, forget,
            )
            await conn.execute("SELECT pg_notify($1, $2)", _FORGOTTEN, f"{forget} {voter}")  # sent as this commits, not before
            return {"votes": votes, "vote_events": events, "personal_agent": scope > 0, "sessions": sessions, "forget": forget}

        return await self._tx(body)

    async def export_rows(self, scope_id: str | None) -> dict[str, list[dict]]:
        """Everything an export holds, for one scope or all, as plain rows (the same as SQLite's: one
        `Reader`, storage/reader.py)."""

        def collect() -> dict[str, list[dict]]:
            with PostgresReader(self.path) as reader:
                return reader.export_rows(scope_id)

        return await asyncio.to_thread(collect)

    # -- confirmed requests (bot/discord/confirmed.py) -------------------------------------------------

    async def record_confirmed(self, request: ConfirmedRequest) -> None:
        await self._write(
            "INSERT INTO confirmed_requests (key, command, guild_id, data, confirmed_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            *confirmed_row(request),
        )

    async def confirmed_requests(self) -> list[ConfirmedRequest]:
        rows = await self._all("SELECT key, command, guild_id, data, confirmed_at FROM confirmed_requests ORDER BY confirmed_at, key")
        return [confirmed_request(*row) for row in rows]

    async def drop_confirmed(self, key: str) -> None:
        await self._write("DELETE FROM confirmed_requests WHERE key = $1", key)

    # -- the deployment (bot/discord/app.py) ------------------------------------------------------

    async def deployment_value(self, key: str) -> str | None:
        return await self._pool.fetchval("SELECT value FROM deployment WHERE key = $1", key)

    async def forget_deployment_value(self, key: str) -> None:
        await self._write("DELETE FROM deployment WHERE key = $1", key)

    async def set_deployment_value(self, key: str, value: str, replace: bool = True) -> str:
        """Store `value` under `key` (with replace=False only if there is none yet); returns the value
        stored, so two processes racing to set a first value agree on one."""
        conflict = "DO UPDATE SET value = excluded.value" if replace else "DO NOTHING"

        async def body(conn: asyncpg.Connection) -> str:
            await conn.execute(f"INSERT INTO deployment (key, value) VALUES ($1, $2) ON CONFLICT (key) {conflict}", key, value)
            return await conn.fetchval("SELECT value FROM deployment WHERE key = $1", key)

        return await self._tx(body)

    async def check_writable(self) -> None:
        """StorageError now if nothing can be written (a read-only server or user), rather than at the
        first vote. Writes and removes one audit row in a committed transaction."""

        async def body(conn: asyncpg.Connection) -> None:
            row_id = await conn.fetchval("INSERT INTO audit (at, actor, action) VALUES ($1, 'crowdtune', 'write_check') RETURNING id", time.time())
            await conn.execute("DELETE FROM audit WHERE id = $1", row_id)

        try:
            await self._tx(body)
        except _UNUSABLE as exc:
            raise StorageError(f"the database {self.path} cannot be written: {_reason(exc, self._url)}") from None

    # -- copying a whole database (storage/copy.py) ------------------------------------------------

    async def read_table(self, table: str) -> AsyncIterator[tuple[list[str], list[tuple]]]:
        copy_columns(table, ["id"])
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            statement = await conn.prepare(f"SELECT * FROM {table}")
            columns = [a.name for a in statement.get_attributes()]
            rows: list[tuple] = []
            async for record in statement.cursor(prefetch=COPY_CHUNK_ROWS):
                rows.append(tuple(record))
                if len(rows) == COPY_CHUNK_ROWS:
                    yield columns, rows
                    rows = []
            if rows:
                yield columns, rows

    async def write_tables(self, chunks: AsyncIterable[tuple[str, list[str], list[tuple]]]) -> dict[str, int]:
        """Copied rows go in with COPY, ids included; then each identity counter moves past the copied
        ids, so the next session, round, vote event or audit entry gets a new one."""
        counts: dict[str, int] = {}
        with self._refusals():
            async with self._pool.acquire() as conn, conn.transaction():
                # Held to the commit, before anything is looked at: a second copy racing this one waits, then finds
                # the data (one polite line), rather than finding the tables empty too and failing on a duplicate id.
                await conn.execute(f"LOCK TABLE {', '.join(table for table, _ in TABLES)} IN EXCLUSIVE MODE")
                for table, _ in TABLES:
                    if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                        raise ValueError(f"{self.path} already holds data ({table}); copy into a new, empty database")
                async for table, columns, rows in chunks:
                    copy_columns(table, columns)
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
                    counts[table] = counts.get(table, 0) + len(rows)
                for table, identity in TABLES:
                    if identity:
                        await conn.execute(
                            f"SELECT setval(pg_get_serial_sequence('{table}', '{identity}'), "
                            f"COALESCE((SELECT MAX({identity}) FROM {table}), 0) + 1, false)"
                        )
        return counts

    # -- shards ---------------------------------------------------------------------------------------

    async def claim_shards(self, shard_count: int, shard_ids: Iterable[int]) -> None:
        """Hold these shards for this process until `close` (or until the process dies: the locks are
        PostgreSQL advisory locks on a connection of their own, released by the server when that
        connection ends, so a SIGKILLed process frees its shards at once; one that ends while the process
        runs is taken again before anything more is written: storage.leases). StorageError if another
        process holds one of them, or runs with another shard count."""
        shard_ids = sorted(set(shard_ids))

        async def take(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT pg_advisory_lock_shared($1, $2)", _SHARD_COUNT_LOCKS, shard_count)
            others = await conn.fetch(
                "SELECT DISTINCT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND objid <> $2",
                _SHARD_COUNT_LOCKS, shard_count,
            )
            if others:
                counts = ", ".join(str(r[0]) for r in others)
                raise StorageError(
                    f"another bot process runs with a different shard count ({counts}, this one {shard_count}) on this database; "
                    "every process must be given the same --shard-count"
                )
            for shard_id in shard_ids:
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _SHARD_LOCKS, shard_id):
                    raise StorageError(
                        f"shard {shard_id} of {shard_count} is already run by another bot process on this database; "
                        "give each process its own --shard-ids"
                    )

        lease = Lease(self._lease_connection, take, f"shard{'s' * (len(shard_ids) > 1)} {','.join(map(str, shard_ids))} of {shard_count}")
        await lease.start()
        if self._lease is not None:
            await self._lease.close()
        self._lease = lease

    async def _lease_connection(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool, for advisory locks held until `close` (the server
        releases them when it ends, so a process that dies frees them at once); named by this process's
        holder text (`application_name`, seen in pg_stat_activity)."""
        try:
            return await asyncpg.connect(self._url, server_settings={"application_name": self._holder})
        except Exception as exc:
            if _lost(exc):  # the server is away: the public method that called names it (_naming_lost_connections)
                raise
            raise StorageError(f"cannot connect to the database {self.path}: {_reason(exc, self._url)}") from None

    async def refuse_if_held(self, remedy: str) -> None:
        """StorageError naming a process that runs on this database (a bot's shard, a terminal's or a simulation's
        scope: claim_shards, claim_scope), `remedy` ending its line; reads pg_locks only, so a read-only role serves."""
        running = await self._pool.fetchval(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = ANY($1::oid[]) AND l.objsubid = 2 AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1",
            [_SHARD_LOCKS, _SCOPE_LOCKS],
        )
        if running is not None:
            raise StorageError(f"another crowdtune is already running on {self.path} ({running or 'another process'}); {remedy}")

    async def claim_scope(self, scope_id: str) -> None:
        """Hold `scope_id` for this process until `close` or its death (an advisory lock on a connection of its
        own, kept as the shards' is): bots share a PostgreSQL database, but a terminal session or a simulation drives
        its scope alone. StorageError naming the process that holds it."""

        async def take(conn: asyncpg.Connection) -> None:
            key = await conn.fetchval("SELECT hashtext($1)", scope_id)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _SCOPE_LOCKS, key):
                # pg_locks shows the second key as an unsigned oid.
                running = await conn.fetchval(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2 AND l.granted",
                    _SCOPE_LOCKS, key & 0xFFFFFFFF,
                )
                raise StorageError(
                    f"another crowdtune is already running the sessions of {scope_id} on {self.path} ({running or 'another process'}); "
                    "stop it first"
                )

        lease = Lease(self._lease_connection, take, f"the sessions of {scope_id}")
        await lease.start()
        self._scope_leases.append(lease)


# -- statements shared by several transactions -----------------------------------------------------


async def _take_request(conn: asyncpg.Connection, key: str | None) -> bool:
    """Delete the confirmed request `key` in this transaction; whether it was there (no `key`: True). A second
    transaction deleting it waits for the first and finds it gone."""
    return key is None or _count(await conn.execute("DELETE FROM confirmed_requests WHERE key = $1", key)) > 0


async def _audit(conn: asyncpg.Connection | asyncpg.Pool, scope_id: str | None, actor: str, action: str, detail: dict) -> int:
    """Append an audit entry; its id."""
    return await conn.fetchval(
        "INSERT INTO audit (at, scope_id, actor, action, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        time.time(), scope_id, actor, action, json.dumps(detail),
    )


async def _announce(conn: asyncpg.Connection, channel_id: str, content: str, message_id: str | None = None, round_id: int | None = None) -> None:
    await conn.execute(
        "INSERT INTO announcements (channel_id, content, created_at, message_id, round_id) VALUES ($1, $2, $3, $4, $5)",
        channel_id, content, time.time(), message_id, round_id,
    )


async def _edit_ended_posts(conn: asyncpg.Connection, where: str, param: int, status: str | None = None) -> None:
    """Queue the edits of the ended rounds' messages, as the SQLite store's `edit_ended_posts` does."""
    rows = await conn.fetch(ENDED_POSTS.format(where=where) + " FOR UPDATE OF r", param)
    for channel_id, current, message_ids, ended_posts in rows:
        for message_id, content in ended_post_edits(channel_id, status or current, message_ids, ended_posts):
            await _announce(conn, channel_id, content, message_id)


async def _lock_scope(conn: asyncpg.Connection, scope_id: str) -> None:
    await conn.execute("SELECT 1 FROM scopes WHERE id = $1 FOR UPDATE", scope_id)


async def _q_entries(conn: asyncpg.Connection, scope_id: str, keys: list[QKey]) -> dict[QKey, QEntry]:
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT q.state, q.action, q.value, q.visits FROM qvalues q "
        "JOIN unnest($2::text[], $3::text[]) AS k(state, action) ON q.state = k.state AND q.action = k.action "
        "WHERE q.scope_id = $1",
        scope_id, [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r[0], r[1]): QEntry(r[2], r[3]) for r in rows}


async def _voter_history(
    conn: asyncpg.Connection, scope_id: str, voters: list[str], mode: str = "rating", limit: int = 50
) -> History | ChoiceHistory:
    """Each voter's latest votes in this scope, in closed rounds of `mode`, newest first: their rating or
    A/B choice, the round's id and the reward it got."""
    value = HISTORY_COLUMNS[mode]
    found: dict[str, list] = {}
    rows = await conn.fetch(
        "SELECT voter, value, round_id, reward FROM ("
        f"SELECT v.voter, v.{value} AS value, r.id AS round_id, r.reward, "
        "ROW_NUMBER() OVER (PARTITION BY v.voter ORDER BY r.closed_at DESC, r.id DESC) AS newest "
        "FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id "
        "WHERE v.voter = ANY($1::text[]) AND s.scope_id = $2 AND r.status = 'closed' AND r.mode = $3 "
        f"AND r.reward IS NOT NULL AND v.retracted = 0 AND v.voided = 0 AND v.{value} IS NOT NULL"
        ") AS ranked WHERE newest <= $4 ORDER BY voter, newest",
        list(dict.fromkeys(voters)), scope_id, mode, limit,
    )
    for voter, vote, round_id, reward in rows:
        found.setdefault(voter, []).append((vote, round_id, reward))
    return {voter: found[voter] for voter in voters if voter in found}


async def _put_q(conn: asyncpg.Connection, scope_id: str, entries: Iterable[tuple[QKey, QEntry]]) -> None:
    rows = [(scope_id, s, a, float(e.value), int(e.visits)) for (s, a), e in entries]
    if rows:
        await conn.executemany(
            "INSERT INTO qvalues (scope_id, state, action, value, visits) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (scope_id, state, action) DO UPDATE SET value = excluded.value, visits = excluded.visits",
            rows,
        )


async def _incumbent_reference(conn: asyncpg.Connection, session_id: int) -> Reference | None:
    """The ballots and verdict of the session's last rating round whose edit was kept (it set the bar), and how many of the
    ballots it closed with were removed since (/strike, /forget-me)."""
    row = await conn.fetchrow(
        "SELECT id, reward, (outcome::jsonb ->> 'voters')::int FROM rounds WHERE session_id = $1 AND status = 'closed' AND mode = 'rating' AND reward IS NOT NULL "
        "AND (outcome::jsonb -> 'kept_edit') IN ('1'::jsonb, 'true'::jsonb) ORDER BY idx DESC LIMIT 1",
        session_id,
    )
    if row is None:
        return None
    ballots = [
        Ballot(*r)
        for r in await conn.fetch(
            "SELECT voter, rating, choice FROM votes WHERE round_id = $1 AND retracted = 0 AND voided = 0 ORDER BY cast_at, voter",
            row[0],
        )
    ]
    removed = max(0, (row[2] or 0) - len(ballots))
    # With every vote removed the bar falls back to what they were blended with (core.engine.scale_drift).
    return Reference(ballots, row[1], removed) if ballots or removed else None


async def _add_observations(conn: asyncpg.Connection, scope_id: str, name: str, observations, comparisons=()) -> None:
    """Add a closed round's observations to the scope's model, inside the close's transaction. Safe only
    under the close's scope lock: before a scope's first observation there is no row to lock, and two
    inserts would each start from an empty model."""
    data = await conn.fetchval("SELECT data FROM models WHERE scope_id = $1 AND name = $2 FOR UPDATE", scope_id, name)
    updated = apply_observations(json.loads(data) if data else None, observations, comparisons)
    await conn.execute(
        "INSERT INTO models (scope_id, name, data, updated_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (scope_id, name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        scope_id, name, json.dumps(updated), time.time(),
    )


class Location(str):
    """A PostgreSQL store's `path`: reads (and prints) as the URL without its password (`public_url`),
    and carries the full URL in `url` for `PostgresReader`, which may run in a spawned worker process
    (a str subclass pickles with its attributes)."""

    url: str

    def __new__(cls, url: str) -> Location:
        shown = super().__new__(cls, public_url(url))
        shown.url = url
        return shown


class PostgresReader(RowReader):
    """Read-only, synchronous, streaming access to a crowdtune PostgreSQL database (storage/reader.py's
    queries), for a worker thread or process: its own connection and event loop (asyncpg is the
    driver the project already has), one read-only REPEATABLE READ transaction (one snapshot while the
    bots keep writing), and server-side cursors fetched BATCH rows at a time. Not for a thread that
    runs an event loop. StorageError (the password shown as ***) when the database cannot be opened.
    """

    ROUND_IN_DETAIL = (
        "(CASE WHEN jsonb_typeof(a.detail::jsonb -> 'round') = 'number' THEN (a.detail::jsonb ->> 'round')::numeric END)"
    )
    _PLACEHOLDER = re.compile(r"\?")

    def __init__(self, location: str) -> None:
        url = self._url = getattr(location, "url", location)
        self._loop = asyncio.new_event_loop()
        try:
            self._conn = self._loop.run_until_complete(asyncpg.connect(url, timeout=30))
            self._tx = self._conn.transaction(isolation="repeatable_read", readonly=True)
            self._loop.run_until_complete(self._tx.start())
        except _UNUSABLE as exc:
            self._loop.close()
            raise StorageError(f"cannot read the database {public_url(url)}: {_reason(exc, url)}") from None

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._conn.close())
        finally:
            self._loop.close()

    def _rows(self, sql: str, params: Iterable = ()) -> Iterator[tuple]:
        numbers = iter(range(1, 1_000))
        sql = self._PLACEHOLDER.sub(lambda _: f"${next(numbers)}", sql)
        with _reaching(public_url(self._url), self._url):
            cursor = self._loop.run_until_complete(self._conn.cursor(sql, *params))
            while batch := self._loop.run_until_complete(cursor.fetch(self.BATCH)):
                yield from (tuple(r) for r in batch)


def clone_rounds(url: str, round_id: int, copies: int, voters: int = 3) -> int:
    """Benchmarks and tests: storage/sqlite.py's `clone_rounds` on PostgreSQL (the same rows, made
    server-side by generate_series in one transaction). Synchronous: runs its own event loop on a
    thread of its own, so a caller on an event loop may call it too. Returns the last new round's id."""

    async def clone(conn: asyncpg.Connection) -> int:
        async with conn.transaction():
            last = await conn.fetchval(
                "WITH src AS (SELECT session_id, mode, plan, reward, outcome, opened_at FROM rounds WHERE id = $1), "
                "first AS (SELECT COALESCE(MAX(idx), -1) + 1 AS idx FROM rounds WHERE session_id = (SELECT session_id FROM src)), "
                "added AS (INSERT INTO rounds (session_id, idx, mode, plan, opened_at, closes_at, status, reward, outcome, closed_at) "
                "SELECT src.session_id, first.idx + g, src.mode, src.plan, src.opened_at + first.idx + g, "
                "src.opened_at + first.idx + g + 1, 'closed', src.reward, src.outcome, src.opened_at + first.idx + g + 1 "
                "FROM src, first, generate_series(0, $2 - 1) AS g RETURNING id, idx, opened_at), "
                "rated AS (INSERT INTO votes (round_id, voter, rating, cast_at) "
                "SELECT added.id, 'user:' || v, 1 + (added.idx + v) % 10, added.opened_at + 0.5 "
                "FROM added, generate_series(0, $3 - 1) AS v) "
                "SELECT MAX(id) FROM added",
                round_id, copies, voters,
            )
            await conn.execute(
                "UPDATE sessions SET rounds_done = rounds_done + $1 WHERE id = (SELECT session_id FROM rounds WHERE id = $2)",
                copies, round_id,
            )
        return last if last is not None else round_id

    return _on_a_connection_of_its_own(url, clone)


def relation_bytes(url: str, table: str) -> int:
    """Benchmarks: bytes a table takes on disk, its indexes and TOAST included (pg_total_relation_size).
    Synchronous, like `clone_rounds`. ValueError for a table crowdtune does not have."""
    from storage.rows import TABLES

    if table not in dict(TABLES):
        raise ValueError(f"no table {table!r}")

    async def size(conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table))

    return _on_a_connection_of_its_own(url, size)


def _on_a_connection_of_its_own(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """`work` on a connection of its own, on an event loop of its own in a thread of its own, so a caller
    that is itself on an event loop may call it synchronously."""

    async def run() -> T:
        conn = await asyncpg.connect(getattr(url, "url", url), timeout=30)
        try:
            return await work(conn)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()
