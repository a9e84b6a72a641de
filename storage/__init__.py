"""Persistence: the only package that writes SQL.

Callers hold a `Store` (storage/protocol.py) made by `open_store`: `SqliteStore` (storage/sqlite.py),
the embedded default, or `PostgresStore` (storage/postgres.py) for a `postgresql://` URL. Only
`open_store` names them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from storage.protocol import (
    LOCK_WAITING, Announce, Announcement, ClaimLost, ConfirmedRequest, DatabaseBusy, DatabaseGone, DatabaseUnreachable, DatabaseUnwritable, EndedSession, NoDatabase, Reader, ResetDone, RoundRow, SessionRow, StandingVote, StorageError, Store, VoteOp, VoteResult,
)

__all__ = [
    "LOCK_WAITING", "Announce", "Announcement", "ClaimLost", "DatabaseBusy", "DatabaseGone", "DatabaseUnreachable", "DatabaseUnwritable", "EndedSession", "NoDatabase", "Reader", "ResetDone", "RoundRow", "SessionRow", "StandingVote", "StorageError", "Store", "VoteOp", "VoteResult",
    "check_location", "clone_rounds", "database_errors", "naming_problems", "naming_refusals", "out_of_room", "is_busy", "is_postgres_url", "location_problem", "looks_like_url", "open_reader", "open_store",
    "open_to_write", "is_new_file", "NewDatabase", "viewing", "View",
]


def database_errors() -> tuple[type[BaseException], ...]:
    """What a backend raises when its database fails mid-operation (a disk error; a server that cannot be reached,
    DatabaseUnreachable, the store's own naming of the driver's errors), for front ends that turn it into one
    polite line; transactions roll back first."""
    import sqlite3

    import asyncpg

    return (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, DatabaseUnreachable)


# SQLite's primary result codes for a write the disk refused: SQLITE_IOERR, SQLITE_FULL. (SQLITE_READONLY is not
# one: a read-only store's refusal is a bug's.)
_SQLITE_UNWRITABLE = frozenset({10, 13})


def out_of_room(problem: BaseException) -> bool:
    """Whether a backend's error is its database lacking the room or resources for the work, which may succeed once
    an operator makes room: SQLite's full disk or I/O error; PostgreSQL's SQLSTATE class 53, insufficient resources
    (53100 disk_full, 53200 out_of_memory, 53300 too_many_connections, 53400 configuration_limit_exceeded, such as
    temp_file_limit). The transaction it ends is rolled back, so what was stored before stays."""
    import sqlite3

    import asyncpg

    if isinstance(problem, sqlite3.Error):
        return (getattr(problem, "sqlite_errorcode", None) or 0) & 0xFF in _SQLITE_UNWRITABLE
    return isinstance(problem, asyncpg.exceptions.InsufficientResourcesError)


# SQLite's primary result codes for a lock another connection held past the busy timeout: SQLITE_BUSY, SQLITE_LOCKED.
_SQLITE_BUSY = frozenset({5, 6})


def is_busy(problem: BaseException) -> bool:
    """Whether a backend's error is another connection holding the database's lock past what the work waits for, which
    works once it lets go (DatabaseBusy): SQLite's "database is locked" (SQLITE_BUSY, SQLITE_LOCKED); PostgreSQL's
    lock_not_available (55P03: a lock_timeout the server or role sets) and the deadlock and serialization failures a
    transaction is retried for (storage.postgres), once the retries are spent."""
    import sqlite3

    import asyncpg

    if isinstance(problem, sqlite3.Error):
        return (getattr(problem, "sqlite_errorcode", None) or 0) & 0xFF in _SQLITE_BUSY
    return isinstance(problem, (
        asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError,
    ))


@contextlib.contextmanager
def naming_problems(
    location: object, which: Callable[[BaseException], bool], error: type[StorageError], what: str,
    reason: Callable[[BaseException], str] = str,
) -> Iterator[None]:
    """A driver's error that `which` picks, met in the block, becomes `error`, "the database {location} {what}:
    {reason(error)}" (`reason` masks a driver's text: PostgreSQL's first line, its password hidden), the one line
    that every front end says with exit code 8; other errors go on as they are."""
    try:
        yield
    except Exception as problem:
        if not which(problem):
            raise
        raise error(f"the database {location} {what}: {reason(problem)}") from None


@contextlib.contextmanager
def naming_refusals(location: object, reason: Callable[[BaseException], str] = str) -> Iterator[None]:
    """An `out_of_room` error of either backend met in the block becomes DatabaseUnwritable, "the database
    {location} cannot be written: {reason(error)}": the one line of a full disk, whichever backend; an `is_busy` one
    DatabaseBusy, "the database {location} is busy: another connection holds its lock ({reason(error)})"."""
    busy = lambda problem: f"another connection holds its lock ({reason(problem)})"  # noqa: E731
    with naming_problems(location, out_of_room, DatabaseUnwritable, "cannot be written", reason), \
            naming_problems(location, is_busy, DatabaseBusy, "is busy", busy):
        yield


def is_postgres_url(location: str | Path) -> bool:
    """True for a `postgresql://` (or `postgres://`) URL, which selects the PostgreSQL backend."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


# SQLite's name for a database that lives in memory, gone when it is closed (benchmarks and tests use it).
IN_MEMORY = ":memory:"
# Why a command that keeps what it writes (a terminal session, the bot, a copy) refuses it, and CROWDTUNE_DB too.
IN_MEMORY_GONE = ("an in-memory database (:memory:) is gone when the command ends, so nothing written to it could be "
                  "resumed or read: use a database file")


# A location that looks like a URL, even mistyped, is never a file's path: taken for one, it would be printed
# whole and made, password and all. So: "://" anywhere; a scheme (RFC 3986, section 3.1) of two characters or
# more and a colon at its start (one letter is a Windows drive, C:\\); a PostgreSQL scheme's name and a / or
# : ("postgresql//u:pw@host"); or a user and password (RFC 3986 userinfo, section 3.2.1: an @ after a :, both
# before any /) with the scheme left out ("u:pw@host/db"), while a file's path with an @ ("backups/db@2026.db",
# "./a@b.db") stays a path. Spaces before it count for nothing.
_USERINFO = r"[^/]*:[^/]*@"
_URL = re.compile(rf"\s*(?:[A-Za-z][A-Za-z0-9+.-]+:|postgres(?:ql)?[/:]|{_USERINFO})|.*://", re.IGNORECASE | re.DOTALL)
# A URL whose scheme is left out: it starts with its user and password.
_NO_SCHEME = re.compile(rf"\s*{_USERINFO}", re.DOTALL)


def looks_like_url(location: str | Path) -> bool:
    """True when `location` is meant as a URL, even a mistyped one (_URL): it is never a file's path, and no
    line shows it but through storage.postgres.public_url."""
    return isinstance(location, str) and _URL.match(location) is not None


# Why a location that looks like a URL names no database, besides storage.postgres.url_problem's reasons.
SPACES = "it has spaces around it: remove them"
URL_EXAMPLE = "as in postgresql://user:password@host:5432/database"
# A SQLAlchemy URL names its driver in the scheme (postgresql+asyncpg://, postgresql+psycopg://); asyncpg takes none.
_DRIVER = re.compile(r"\s*postgres(?:ql)?\+([A-Za-z0-9_.-]+):", re.IGNORECASE)
# A SQLAlchemy SQLite URL: sqlite:///relative.db, sqlite:////absolute.db; the path is what crowdtune takes.
_SQLITE = re.compile(r"\s*sqlite:(?:///?)?(.+)", re.IGNORECASE)
# PostgreSQL's scheme as mistyped: its name in any case, then what was written for "://".
_MISTYPED = re.compile(r"\s*(postgres(?:ql)?)(?![A-Za-z0-9+.-])(:?)(/*)", re.IGNORECASE)


def location_problem(location: str | Path) -> str | None:
    """Why `location` names no database crowdtune can use, as the reason part of a line ("it has spaces around
    it: remove them"), the one wording of both a --db's line (`check_location`) and a CROWDTUNE_DB's (bot.settings);
    None for a SQLite file's path or a usable `postgresql://` URL. Shows no part of `location` but a driver's name,
    a SQLite URL's path, or, for a URL without its scheme, the URL as `public_url` shows it (its password as ***)."""
    if not looks_like_url(location):
        return None
    if location != location.strip():
        return SPACES
    if not is_postgres_url(location):
        return _scheme_problem(location)
    from storage.postgres import url_problem

    return url_problem(location)


def _scheme_problem(location: str) -> str:
    """Why a URL's scheme is not postgresql:// nor postgres://, naming the mistake. An upper-case scheme is refused
    though asyncpg would take it (urllib lowercases schemes): the URL is libpq's, and libpq (psql, pg_dump) reads
    only postgresql:// and postgres://, so one URL serves crowdtune and PostgreSQL's own tools alike."""
    if (driver := _DRIVER.match(location)) is not None:
        return f"it names a driver (+{driver[1]}), as a SQLAlchemy URL does: leave out +{driver[1]}, {URL_EXAMPLE}"
    if (sqlite := _SQLITE.match(location)) is not None:
        return f"a SQLite database is given as its file's path alone (here {sqlite[1]}), a PostgreSQL one by a URL, {URL_EXAMPLE}"
    if (typed := _MISTYPED.match(location)) is None:
        if _NO_SCHEME.match(location) is not None and "://" not in location:
            from storage.postgres import public_url

            return f"it lacks postgresql:// before its user name: write postgresql://{public_url(location)}"
        return f"it does not start with postgresql:// or postgres://, {URL_EXAMPLE}"
    name, colon, slashes = typed[1].lower(), typed[2], typed[3]
    if colon + slashes == "://":
        return f"write the scheme in lower case: {name}://, {URL_EXAMPLE}"
    lower = "" if typed[1] == name else f" (and {name} written in lower case)"
    if colon:
        return f"{name}: must be followed by //{lower}, {URL_EXAMPLE}"
    return f"{name} must be followed by :// (the : is missing){lower}, {URL_EXAMPLE}"


def check_location(location: str | Path) -> None:
    """StorageError, "the database URL ... cannot be used: " and `location_problem`'s reason, any password shown as
    ***, when `location` names no database crowdtune can use: another URL (`postgresql+asyncpg://`, `mysql://`,
    `sqlite:///`) would otherwise be taken for a path, printed whole and made as folders; a PostgreSQL URL whose
    parts cannot be told apart (storage.postgres.url_problem) is refused before any connection is tried."""
    if (why := location_problem(location)) is not None:
        from storage.postgres import public_url

        raise StorageError(f"the database URL {public_url(str(location).strip())} cannot be used: {why}")


async def open_store(location: str | Path, read_only: bool = False) -> Store:
    """Open (creating and migrating as needed) the database at `location`: a SQLite file path, taken as
    given (no ~), ":memory:", or a `postgresql://user:password@host:port/database` URL. StorageError with one
    clear line (never the password) when it cannot be used.

    With `read_only`, for commands that only read (a listing, an export, a copy's source): nothing is created,
    migrated or written, in the database or beside a SQLite file (no -wal or -shm is left), so a file in a
    folder that cannot be written (a read-only mount, a backup) can be read too; the database refuses any
    write. NoDatabase when there is none there (or it holds no crowdtune data yet); StorageError, saying what to
    do, when its schema is another crowdtune's, older or newer.

    To write, a SQLite file's missing folders are made, as every library function here and in bot.media makes the
    folders of the paths it is handed: only a caller knows whether a path was typed by a user (a missing
    folder is then a typo, refused before this is called: bot.cli) or named by the program (crowdtune-data/,
    a session's folder, a worker's temporary one, which must be made). Any other URL is refused (check_location)."""
    check_location(location)
    if is_postgres_url(location):
        from storage.postgres import PostgresStore

        return await PostgresStore.open(str(location), read_only=read_only)
    from storage.sqlite import SqliteStore

    return await SqliteStore.open(location, read_only=read_only)


def is_new_file(location: str | Path) -> bool:
    """Whether `location` names a SQLite file not there yet: opening it to write makes it, a new, empty database."""
    return not is_postgres_url(location) and location != IN_MEMORY and not os.path.lexists(location)


class NewDatabase:
    """The database `location` as a command or the bot's start opens it to write: whether that makes it (`is_new_file`,
    asked before it is opened), and whether it is kept. One that fails or is stopped before it has done its job (no
    session started, the bot never connected) leaves no new file: `end`, once its store is closed, removes a new one
    not kept, and SQLite's files beside it (README: "no new database file from a `run` stopped before its session
    started"). A database that was there is never removed."""

    def __init__(self, location: str | Path) -> None:
        self.location, self.made, self.kept = location, is_new_file(location), False

    def keep(self) -> str | None:
        """The command's job is under way (its session started, the bot connected): the database stays. The first time,
        for one it made, the line saying so (for the bot's log: a restart after its file went missing must not pass for
        one that opened it, found by a trial: only "0 sessions running"); else None."""
        line = f"created a new, empty database at {self.location}: none was there" if self.made and not self.kept else None
        self.kept = True
        return line

    def end(self) -> None:
        """After its store closed: a database this made and did not keep is removed, with SQLite's files beside it (its
        `.lock` the store's close removed)."""
        if self.made and not self.kept:
            from storage.sqlite import remove_new

            remove_new(self.location)


async def open_to_write(location: str | Path) -> Store:
    """`open_store` for a command that writes (the bot, a terminal session, a simulation, a copy's target): a
    database that cannot be written (a read-only file or folder, a full disk) is a StorageError at once, naming
    it ("the database ct.db cannot be written: ..."), before the command makes anything, not at its first write: a
    SQLite file this made is removed again."""
    check_location(location)
    new = NewDatabase(location)
    store = await open_store(location)
    try:
        await store.check_writable()
    except BaseException:
        await store.close()
        new.end()
        raise
    return store


class View(NamedTuple):
    """A store that reads a database as this crowdtune reads it (`viewing`), the database's name to say, and whether
    it is of an older schema (`upgraded`: the store reads an upgraded private copy, and opened to write the database
    itself would be upgraded)."""

    store: Store
    name: str
    upgraded: bool = False


@contextlib.asynccontextmanager
async def viewing(location: str | Path, refuse_older: bool = False) -> AsyncIterator[View | None]:
    """A `View` of the database at `location` that changes nothing in it, for a command to tell whether it has
    anything to do before it opens the database to write, which upgrades one of an older schema: a command that
    ends up changing nothing (nothing stored for a person, a scope with nothing to reset) must not change its schema
    either. The store is opened to read only; a SQLite file of an older schema is copied (copy_file, into a
    temporary folder, removed after) and the copy upgraded. None for a PostgreSQL database of an older schema, which
    is not copied (the caller opens it to write), or with `refuse_older` its OlderSchema, for a caller that cannot tell
    what it would change otherwise. NoDatabase and StorageError as open_store's to read."""
    from storage.protocol import OlderSchema

    try:
        store = await open_store(location, read_only=True)
    except OlderSchema:
        if is_postgres_url(location):
            if refuse_older:
                raise
            yield None
            return
        import asyncio
        import tempfile

        from storage.sqlite import copy_file

        with tempfile.TemporaryDirectory(prefix="crowdtune-view-") as folder:
            copy = os.path.join(folder, "copy.db")
            await asyncio.to_thread(copy_file, location, copy)
            store = await open_store(copy)
            try:
                yield View(store, str(location), upgraded=True)
            finally:
                await store.close()
        return
    try:
        yield View(store, str(store.path))
    finally:
        await store.close()


def open_reader(location: str | Path) -> Reader:
    """A read-only, streaming `Reader` of the database at `location` (a store's `path`), for a worker
    thread or process: a SQLite file, or a PostgreSQL store's `path` (which carries its URL). StorageError
    when it cannot be opened (check_location)."""
    check_location(location)
    if is_postgres_url(location):
        from storage.postgres import PostgresReader

        return PostgresReader(location)
    from storage.sqlite import SqliteReader

    return SqliteReader(location)


def clone_rounds(location: str | Path, round_id: int, copies: int, voters: int = 3) -> int:
    """Benchmarks and tests: `copies` closed copies of a round, each with `voters` ratings, added to its
    session by direct inserts (a long history in seconds). Returns the last new round's id."""
    if is_postgres_url(location):
        from storage.postgres import clone_rounds as clone_on_postgres

        return clone_on_postgres(location, round_id, copies, voters)
    from storage.sqlite import clone_rounds as clone

    return clone(location, round_id, copies, voters)
