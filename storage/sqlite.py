"""The SQLite backend of the `Store` protocol (storage/protocol.py), through aiosqlite: the embedded
default, one file and nothing to install.

Every write runs in one `BEGIN IMMEDIATE` transaction under an asyncio lock, because all
coroutines share one connection and SQLite transactions belong to connections, not tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from core.agent import QEntry, QKey
from core.crowd import Ballot, ChoiceHistory, History
from core.engine import Outcome, Reference
from core.learner import Evidence, apply_observations
from core.music import track_to_dict
from storage import naming_refusals, out_of_room
from storage.migrations import MIGRATIONS, SCHEMA_VERSION
from storage.protocol import (
    Announce, Announcement, ClaimLost, ClosesOnExit, ConfirmedRequest, DatabaseBusy, DatabaseGone, DatabaseUnwritable, EndedSession, NoDatabase, ResetDone, RoundRow, SessionRow, Settle, StandingVote, StorageError, VoteOp,
    VoteResult,
    LOCK_WAITING, MIGRATION_COMMITTING, closed_audit, other_schema, outcome_to_dict,
)
from storage.reader import RowReader
from storage.rows import (
    COPY_CHUNK_ROWS, NOTICE_CHANNEL, announced, finishes, HISTORY_COLUMNS, Q_KEY_KINDS, Q_KINDS_COUNTED, TABLES, ab_points, copy_columns, learning_points, plan_votes, recorded_by_voter,
    ENDED_POSTS, GIVE_UP_OLD_NOTES, STANDING_VOTES, STRUCK_VOTERS, confirmed_request, confirmed_row, ended_post_edits, reset_done, standing_votes,
    PREFERRING as _PREFERRING, ROUND_COLUMNS as _ROUND_COLUMNS, SESSION_COLUMNS as _SESSION_COLUMNS, VOTING_STATUS as _VOTING_STATUS, round_row as _round, session_row as _session,
)


_IN_CHUNK = 500  # values bound in one `IN (...)`, well under SQLite's limit on parameters


def _in_chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _voters_by_round(ops: list[VoteOp]) -> dict[int, set[str]]:
    voters_by_round: dict[int, set[str]] = {}
    for op in ops:
        voters_by_round.setdefault(op.round_id, set()).add(op.voter)
    return voters_by_round


def _placeholders(values: list) -> str:
    return ",".join("?" * len(values))


@functools.cache
def expected_schema(version: int) -> dict[str, list[str]]:
    """{table: its column names} after migrations 1..version, from an empty in-memory database."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        for number in range(1, version + 1):
            db.executescript(MIGRATIONS[number])
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [c[1] for c in db.execute(f"PRAGMA table_info({json.dumps(t)})")] for t in tables}


# What is kept beside a database file while it is written: SQLite's journals and index, crowdtune's lock (leases).
BESIDE = (".lock", "-wal", "-shm", "-journal")
SIDE_FILES = BESIDE[1:]  # SQLite's own of them


def name_too_long(path: str | Path, added: int = 0) -> str | None:
    """Why the database file `path` cannot be written because a file kept beside it (its name and one of BESIDE, after
    `added` characters more: a temporary name's) would have a name longer than its folder's file system takes
    (NAME_MAX, in bytes): SQLite then fails with "unable to open database file", leaving an empty file. None when
    every one fits."""
    name = os.path.basename(os.fspath(path))
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists() and folder != folder.parent:  # its folders may be made yet: the file system above them
        folder = folder.parent
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = max(map(len, BESIDE)) + added
    size = len(os.fsencode(name))
    if size + longest <= limit:
        return None
    unit = "characters" if name.isascii() else "bytes"
    beside = f"{', '.join(BESIDE[:-1])} and {BESIDE[-1]} added to it{', and to a temporary name made first' if added else ''}"
    return (f"its name is too long for the files kept beside it ({beside}): "
            f"this file system takes names of at most {limit} bytes, so a database's of at most {limit - longest} {unit}, not {size}")


def _why_unwritable(place: Path) -> str | None:
    """Why the file or folder `place` cannot be written ("is on a read-only file system", "cannot be
    written"), or None when it can (or cannot be looked at: opening it will say)."""
    try:
        read_only = bool(os.statvfs(place).f_flag & os.ST_RDONLY)
    except OSError:
        return None
    if read_only:
        return "is on a read-only file system"
    return None if os.access(place, os.W_OK) else "cannot be written"


def _unwritable_place(path: str | Path) -> str:
    """Why SQLite may fail to open a database it can read, to write to it, as the end of a message: its folder
    takes no new file (a read-only file system, no permission), and a store that writes writes beside its
    database too (WAL's -wal and -shm, the lock). "" when the folder can be written."""
    folder = Path(path).resolve().parent
    if (why := _why_unwritable(folder)) is None:
        return ""
    return (f" (its folder {folder} {why}, and writing to a database writes beside it too: "
            "move the file to a folder you can write; commands that only read, such as sessions and export, can read it there)")


def reading_uri(path: str | Path) -> str:
    """The URI that opens the SQLite file `path` to read, writing nothing in it or beside it, with WAL's
    snapshots kept (the connection also sets PRAGMA query_only):
    - a -wal beside it (a writer has it open, or stopped without closing it): mode=ro, sharing the writer's
      index (its -shm), so the reader sees its latest commits and makes or removes nothing;
    - else, where the file and its folder can be written: mode=rw under query_only. It takes part in WAL's
      locking as any reader, so a writer that starts meanwhile cannot change what it reads, and as the last
      connection it removes the -wal and -shm it needed (mode=ro makes them too and, not allowed to remove
      them, leaves them behind: measured with SQLite 3.40);
    - else (a read-only mount, a backup copy without write permission): immutable=1, the file read as it is,
      without locks or the -shm SQLite cannot make there (SQLITE_READONLY_CANTINIT). A writer needs a -wal
      beside it, which whoever reads here could not make; one with more rights that starts during the read
      would not be noticed (https://www.sqlite.org/uri.html#uriimmutable).
    A full disk (`disk_full`) takes no -shm either (SQLite fails, SQLITE_IOERR_SHMSIZE, leaving it and a -wal behind):
    immutable=1 too, unless a -wal with commits in it is there to be read.
    """
    file = Path(path).resolve()
    uri = file.as_uri()
    wal = f"{file}-wal"
    full = disk_full(file)
    if os.path.lexists(wal) and not (full and _empty(wal)):
        return f"{uri}?mode=ro"
    if not full and _why_unwritable(file) is None and _why_unwritable(file.parent) is None:
        return f"{uri}?mode=rw"
    return f"{uri}?mode=ro&immutable=1"


def _empty(path: str) -> bool:
    """Whether the file `path` holds nothing (a -wal with no commits in it), or is not there."""
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return True


# The room SQLite needs beside a WAL database to open it at all: its index (-shm, 32 KiB) and the -wal's first
# pages; a writer needs RESERVE more (claim_instance). With less free, opening fails (SQLITE_IOERR_SHMSIZE, or
# SQLITE_FULL) after making the -shm and -wal, which it leaves.
OPEN_ROOM = 64 * 1024
# What SQLite says of a full disk (SQLITE_FULL), said of every refusal a full disk causes, however SQLite words it.
DISK_FULL = "database or disk is full"


def disk_full(path: str | Path) -> bool:
    """Whether the file system holding `path` (or its nearest existing folder) has less than OPEN_ROOM free for this
    process (root may use the blocks kept for it). False when it cannot be told."""
    place = Path(os.path.abspath(path))
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        disk = os.statvfs(place)
    except OSError:
        return False
    if disk.f_blocks == 0:  # a file system that gives no sizes (some FUSE ones): not known to be full
        return False
    free = disk.f_bfree if os.geteuid() == 0 else disk.f_bavail
    return free * disk.f_frsize < OPEN_ROOM


def refusal_reason(path: str | Path) -> Callable[[BaseException], str]:
    """Why SQLite refused the database `path`, for a line: DISK_FULL for a full disk, whether SQLite said
    SQLITE_FULL or an I/O error on a disk with no room left (the -shm or -wal could not grow); else SQLite's words."""

    def reason(problem: BaseException) -> str:
        code = getattr(problem, "sqlite_errorcode", 0) & 0xFF
        if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and disk_full(path)):
            return DISK_FULL
        return str(problem)

    return reason


def remove_new(path: str | Path) -> None:
    """Remove the database file `path`, made by an open that was refused, and SQLite's files beside it."""
    for made in (os.fspath(path), *(f"{os.fspath(path)}{end}" for end in BESIDE if end != ".lock")):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(made)


def copy_file(path: str | Path, to: str | Path) -> None:
    """Copy the SQLite database `path` whole into the new file `to` (SQLite's backup: one consistent snapshot, a
    writer's latest commits in its -wal too), reading `path` as a store opened to read only does (reading_uri)."""
    source = sqlite3.connect(reading_uri(path), uri=True)
    try:
        target = sqlite3.connect(to)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


# The banner SQLite puts before a database's first problem ("*** in database main ***", then a line break): its stars
# read as a hidden password, and it names no problem.
_CHECK_BANNER = re.compile(r"\*\*\* in database \S+ \*\*\*")


def integrity_problems(rows: Iterable[str]) -> list[str]:
    """The problems `PRAGMA quick_check` (or integrity_check) reports in `rows`, one line each, as SQLite words them
    ("Page 4: btreeInitPage() returns error code 11"), without its banner: none for a sound database ("ok")."""
    lines = (line.strip() for row in rows if row != "ok" for line in str(row).splitlines())
    return [line for line in lines if line and not _CHECK_BANNER.fullmatch(line)]


def damaged(path: str | Path, problem: str) -> StorageError:
    """The error for the damaged database `path`, with SQLite's `problem` and what to do; a copy made by copy-db
    would fail on the same pages, so a backup is the way back."""
    return StorageError(
        f"the database {path} is damaged (SQLite says: {problem}); left as it is: restore a backup (a copy of the file "
        "made while no crowdtune ran), or name another database with --db or CROWDTUNE_DB (a new file starts empty)"
    )


def _refused(path: str, problem: BaseException, read_only: bool) -> StorageError | None:
    """The error naming a full disk that refused opening the database `path` (refusal_reason), to read or to write;
    None for any other problem."""
    if not isinstance(problem, sqlite3.Error) or (reason := refusal_reason(path)(problem)) != DISK_FULL:
        return None
    if read_only:
        return StorageError(f"the database {path} cannot be read: {reason}")
    return DatabaseUnwritable(f"the database {path} cannot be written: {reason}")


async def _thread_ended(connection: aiosqlite.Connection) -> None:
    """Wait for the worker thread of a connection that failed to open: aiosqlite stops it, and it then reports
    to the event loop; a caller that closes the loop at once would get "Event loop is closed" from it."""
    worker = getattr(connection, "_thread", None)
    if worker is not None:
        await asyncio.to_thread(worker.join, 10)


# How long a write waits for another connection's lock before it is DatabaseBusy (as SQLite's busy timeout was), and
# one try's wait (the connection's busy timeout once open): between tries the store's reads go on.
BUSY_SECONDS = 5.0
BUSY_TRY_MS = 100


class SqliteStore(ClosesOnExit):
    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path
        self._file: tuple[int, int] | None = None  # which file was opened (set once prepared): checked before every write
        self._instance_lock: int | None = None  # the descriptor holding the one-bot lock (claim_instance)
        self._reserve_out = False  # its RESERVE given back by a refused write: a write takes it again first
        self._ending = False  # the run ends (spend_reserve): its writes may use the reserve
        self._gone: DatabaseGone | None = None
        self._beside: dict[str, tuple[int, int]] = {}  # SQLite's own -wal and -shm, by which file each is (set once prepared)

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, read_only: bool = False) -> SqliteStore:
        """The store of the database file `path` (storage.open_store: what `read_only` means)."""
        path = str(path)
        if path != ":memory:" and Path(path).is_dir():
            raise StorageError(f"{path} is a folder; name a database file in it, such as {Path(path) / 'crowdtune.db'}")
        if read_only:
            if path == ":memory:":
                raise StorageError("an in-memory database holds nothing to read: use a database file")
            if not os.path.lexists(path):
                raise NoDatabase(f"there is no database at {path}")
        elif path != ":memory:":
            if (why := name_too_long(path)) is not None:  # before anything is made
                raise StorageError(f"the database {path} cannot be used: {why}")
            if disk_full(path):  # SQLite would fail after making a -shm and a -wal (or the file), and leave them
                raise DatabaseUnwritable(f"the database {path} cannot be written: {DISK_FULL}")
            parent = Path(path).resolve().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the database folder {parent}: {exc.strerror}") from None
        made = not read_only and path != ":memory:" and not os.path.lexists(path)  # removed again if refused
        connection = aiosqlite.connect(reading_uri(path) if read_only else path, uri=read_only, isolation_level=None)
        connecting = asyncio.ensure_future(connection)
        try:
            db = await asyncio.shield(connecting)
        except asyncio.CancelledError:
            # A stop (Ctrl-C, SIGTERM) while the worker thread connects: it connects all the same and then
            # reports to the event loop, which by then may be closed ("Event loop is closed" printed from the
            # thread). Let it finish and close what it made, which ends the thread; then stop.
            try:
                await (await connecting).close()
            except sqlite3.Error:
                await _thread_ended(connection)
            if made:  # an interrupted start leaves no new file (SQLite made it, empty, as it connected)
                remove_new(path)
            raise
        except sqlite3.Error as exc:
            await _thread_ended(connection)
            if made:
                remove_new(path)
            raise _refused(path, exc, read_only) or StorageError(f"cannot open the database {path}: {exc}{_unwritable_place(path)}") from None
        store = cls(db, path)
        try:
            await store._prepare(read_only)
            store._file = _identity(path)
            store._beside = {s: i for s in SIDE_FILES if (i := _identity(path + s)) is not None}
        except BaseException as exc:
            await db.close()  # a connection left open keeps a thread alive
            if made:
                remove_new(path)
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_CORRUPT:  # the check itself could not read a page
                raise damaged(path, str(exc)) from None
            if (refusal := _refused(path, exc, read_only)) is not None:
                raise refusal from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise StorageError(f"the database {path} cannot be used: {exc}{_unwritable_place(path)}") from None
            raise
        return store

    async def _prepare(self, read_only: bool) -> None:
        await self._db.execute("PRAGMA busy_timeout = 5000")
        if read_only:
            await self._db.execute("PRAGMA query_only = ON")  # the connection refuses every write
        # Checked before anything is changed (even the journal mode, which is stored in the file).
        (version,) = await self._one("PRAGMA user_version")
        not_ours = StorageError(
            f"{self.path} is another program's database, not crowdtune's; left as it is: choose another file"
        )
        if version > SCHEMA_VERSION:
            # A newer crowdtune still has this one's tables (their columns may have changed); a file
            # without them that merely has a high user_version is another program's.
            if not set(expected_schema(SCHEMA_VERSION)) <= set(await self._tables()):
                raise not_ours
            raise other_schema(self.path, version, SCHEMA_VERSION)
        if version == 0 and (await self._one("SELECT COUNT(*) FROM sqlite_master"))[0]:
            raise not_ours
        if version == 0 and read_only:  # an empty file: a writer would make crowdtune's tables in it
            raise NoDatabase(f"the database {self.path} holds no crowdtune data yet")
        # Integrity before anything is written: a damaged page would otherwise surface mid-session, after
        # rounds were promised to resume. quick_check reads every page once (O(database size), at start only).
        problems = integrity_problems(row[0] for row in await self._db.execute_fetchall("PRAGMA quick_check"))
        if problems:
            raise damaged(self.path, problems[0] + (f", and {len(problems) - 1} more problems" if len(problems) > 1 else ""))
        if version and not await self._schema_is(version):
            raise not_ours
        if read_only:
            if version < SCHEMA_VERSION:
                raise other_schema(self.path, version, SCHEMA_VERSION)
            return
        await self._db.execute("PRAGMA journal_mode = WAL")
        await self._db.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            # Foreign keys stay off while tables are rebuilt (a DROP would cascade), and are checked before
            # the commit; the pragma cannot change inside a transaction.
            await self._db.execute("PRAGMA foreign_keys = OFF")
            async with self._tx() as db:
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    await db.executescript_in_tx(MIGRATIONS[number])
                if await db.all("PRAGMA foreign_key_check"):
                    raise StorageError(f"the database {self.path} has rows pointing at missing ones; it was not upgraded")
                await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                MIGRATION_COMMITTING.get()()
        await self._db.execute("PRAGMA foreign_keys = ON")
        await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TRY_MS}")  # from here on a write waits in _begin's tries

    async def _schema_is(self, version: int) -> bool:
        """Whether the file holds the tables, with their columns, that crowdtune's migrations 1..version make
        (a user_version alone does not say whose file it is)."""
        found = await self._tables()
        return all(found.get(table) == columns for table, columns in expected_schema(version).items())

    async def _tables(self) -> dict[str, list[str]]:
        """{table: its column names} in the open file."""
        tables = [r[0] for r in await self._db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [c[1] for c in await self._db.execute_fetchall(f"PRAGMA table_info({json.dumps(t)})")] for t in tables}

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            if self._file is not None and _identity(self.path) != self._file:
                self._remove_beside()  # SQLite leaves them beside a file that moved: it neither checkpoints nor removes
            self._release_instance()

    def _remove_beside(self) -> None:
        """Remove this store's -wal and -shm from beside a database file that is gone: the -wal holds what was written
        last (a /compose's followup token among it), and SQLite opening a file put at the path later (a backup
        restored) would replay it into that file. Those found to be other files (made for the new one) stay. The open
        connection keeps using its own through the descriptors it holds."""
        for suffix, identity in self._beside.items():
            with contextlib.suppress(OSError):
                if _identity(self.path + suffix) == identity:
                    os.unlink(self.path + suffix)
        self._beside = {}

    def _release_instance(self) -> None:
        """Remove `<database>.lock` and release the claim (claim_instance), in that order: removed while still held,
        the file is never taken by another process and then removed under it; one that opened it before and locks it
        after finds it gone from its path and takes the file there now. A file at the path that is not the one held
        (removed by hand and made again by another process) is left alone."""
        if self._instance_lock is None:
            return
        with contextlib.suppress(OSError):
            if _holds(self._instance_lock, f"{self.path}.lock"):
                os.unlink(f"{self.path}.lock")
        os.close(self._instance_lock)  # releases the lock
        self._instance_lock = None

    async def claim_instance(self, holder: str) -> None:
        """An exclusive lock (flock) on `<database>.lock`, which holds the holder's description while it runs and is
        removed when the store closes (_release_instance). The kernel releases the lock when the process ends, however
        it ends, so a crash leaves the file but never a claim: the next process takes it."""
        if self.path == ":memory:" or self._instance_lock is not None:
            return
        lock_path = f"{self.path}.lock"
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot create the lock file {lock_path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                refusal = _running(self.path, fd, "stop it first, or use another database (--db or CROWDTUNE_DB)")
                os.close(fd)
                raise refusal from None
            if _holds(fd, lock_path):
                break
            os.close(fd)  # its holder removed it as it ended, after this opened it: a lock on it would claim nothing
        self._instance_lock = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
            _reserve(fd, len(holder.encode()))
        except OSError as exc:  # a full disk: the lock is held, but who holds it cannot be written down
            self._release_instance()  # nor is it left behind, empty, for someone to wonder at
            reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
            raise StorageError(f"cannot write the lock file {lock_path}: {reason}") from None

    def _give_back_reserve(self) -> None:
        """Give the disk back the lock file's RESERVE (once: a file already short is left as it is)."""
        if self._instance_lock is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._instance_lock, len(os.pread(self._instance_lock, 500, 0).split(b"\0")[0]))
                self._reserve_out = True

    def spend_reserve(self) -> None:
        """(storage.protocol.Store) The lock file's RESERVE given to the writes that end the run, for good."""
        self._ending = True
        self._give_back_reserve()

    def _take_back_reserve(self) -> None:
        """Before a write, the RESERVE a refused write gave back taken again: until the disk has room for it, the disk
        is full (DatabaseUnwritable), and a write that used it would only seem to work, leaving the run's end no room.
        Not once the run ends (spend_reserve)."""
        if not self._reserve_out or self._ending or self._instance_lock is None:
            return
        held = len(os.pread(self._instance_lock, 500, 0).split(b"\0")[0])
        try:
            _reserve(self._instance_lock, held)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._instance_lock, held)  # what a partial allocation took
            raise DatabaseUnwritable(
                f"the database {self.path} cannot be written: {DISK_FULL if exc.errno == errno.ENOSPC else exc.strerror}"
            ) from None
        self._reserve_out = False

    async def refuse_if_held(self, remedy: str) -> None:
        """StorageError naming the process that holds this database (claim_instance), `remedy` ending its line, for a
        command that only reads but whose result a writer would make stale (copy-db). Read-only as the store is: the
        lock file is opened to read, never made, and a shared lock is taken on it and let go at once."""
        if self.path == ":memory:":
            return
        try:
            fd = os.open(f"{self.path}.lock", os.O_RDONLY)
        except OSError:  # none: no process holds the database (one that ends removes it); unreadable: cannot be known
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _running(self.path, fd, remedy) from None
        finally:
            os.close(fd)  # and with it the shared lock

    def _check_same_file(self, identity: tuple[int, int] | None) -> None:
        """DatabaseGone if the file at the path, whose `identity` (_identity) was just read, is not the one opened:
        writes would go to a file nobody will ever open again (a removed file lives on while it is open), so nothing is
        written; and its -wal and -shm are removed at once (_remove_beside)."""
        if self._gone is None and self._file is not None and identity != self._file:
            self._gone = DatabaseGone(
                f"the database {self.path} was removed or replaced while crowdtune ran, so nothing more is saved; put the "
                f"database file (or a backup) back at {self.path} before restarting: a restart opens what is there, and "
                "makes a new, empty database if nothing is (its learning and open rounds lost)"
            )  # raised, not logged too: each front end says it once (the bot's runner logs it)
            self._remove_beside()
        if self._gone is not None:
            raise self._gone

    async def still_there(self) -> None:
        """(storage.protocol.Store) A stat of the file, and of its -wal and -shm once it is gone, in a thread."""
        if self._gone is None and self._file is not None:
            identity = await asyncio.to_thread(_identity, self.path)
            if identity != self._file:
                await asyncio.to_thread(self._check_same_file, identity)
        if self._gone is not None:
            raise self._gone

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[_Tx]:
        """A write transaction (begun by `_begin`). A write the disk refuses (full, an I/O error) is DatabaseUnwritable
        naming the database, wherever in the transaction it comes (the COMMIT too): rolled back, nothing lost."""
        await self._begin()
        try:
            with naming_refusals(self.path, refusal_reason(self.path)):
                try:
                    yield _Tx(self._db)
                    await self._db.execute("COMMIT")
                except BaseException as problem:
                    # A COMMIT the disk refused leaves the transaction open: end it. (Nothing open: nothing to end.)
                    with contextlib.suppress(sqlite3.OperationalError):
                        await self._db.execute("ROLLBACK")
                    if out_of_room(problem):
                        self._give_back_reserve()  # the writes that end the run (a stop, a cancelled round) find room
                    raise
        finally:
            self._lock.release()

    async def _begin(self) -> None:
        """Take the store's lock with a write transaction begun. Another connection holding the database's lock (an
        operator's sqlite3 shell, a backup tool) is waited for up to BUSY_SECONDS in tries of BUSY_TRY_MS, the store's
        lock let go between them: its reads (a /status, a vote's round looked up) do not wait behind the write. Then
        DatabaseBusy, the store unchanged; LOCK_WAITING's hook is awaited as the wait begins (a command is acknowledged)."""
        loop = asyncio.get_running_loop()
        began, told = loop.time(), False
        while True:
            await self._lock.acquire()
            try:
                self._check_same_file(_identity(self.path))
                self._take_back_reserve()
                with naming_refusals(self.path, refusal_reason(self.path)):
                    try:
                        await self._db.execute("BEGIN IMMEDIATE")
                    except asyncio.CancelledError:
                        # aiosqlite runs the BEGIN in its thread even when its awaiter is cancelled (Ctrl-C); this
                        # ROLLBACK is queued after it, so the connection is not left inside a transaction nobody ends.
                        with contextlib.suppress(sqlite3.OperationalError):
                            await self._db.execute("ROLLBACK")
                        raise
                return
            except DatabaseBusy:
                self._lock.release()
                if loop.time() - began >= BUSY_SECONDS:
                    raise
            except BaseException:
                self._lock.release()
                raise
            if not told and (hook := LOCK_WAITING.get()) is not None:
                told = True
                await hook()
            await asyncio.sleep(BUSY_TRY_MS / 1000)

    async def _one(self, sql: str, params: Iterable = ()) -> tuple | None:
        async with self._db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Iterable = ()) -> list[tuple]:
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def schema_version(self) -> int:
        return (await self._all("PRAGMA user_version"))[0][0]

    # -- scopes and audit ---------------------------------------------------------------------

    async def ensure_scope(self, scope_id: str, kind: str, name: str = "") -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO scopes (id, kind, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (scope_id, kind, name, time.time()),
            )

    async def scope_settings(self, scope_id: str) -> dict:
        rows = await self._all("SELECT settings FROM scopes WHERE id = ?", (scope_id,))
        return json.loads(rows[0][0]) if rows else {}

    async def update_scope_settings(self, scope_id: str, changes: dict, actor: str) -> dict:
        async with self._tx() as db:
            row = await db.one("SELECT settings FROM scopes WHERE id = ?", (scope_id,))
            if row is None:
                raise KeyError(scope_id)
            settings = {**json.loads(row[0]), **changes}
            await db.execute("UPDATE scopes SET settings = ? WHERE id = ?", (json.dumps(settings), scope_id))
            await db.audit(scope_id, actor, "config", changes)
        return settings

    async def scopes(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in await self._all("SELECT id, kind, name FROM scopes ORDER BY id")]

    async def has_scope(self, scope_id: str) -> bool:
        return bool(await self._all("SELECT 1 FROM scopes WHERE id = ?", (scope_id,)))

    async def audit(self, scope_id: str | None, actor: str, action: str, detail: dict | None = None) -> None:
        async with self._tx() as db:
            await db.audit(scope_id, actor, action, detail or {})

    # -- sessions -----------------------------------------------------------------------------

    async def next_round_index(self, session_id: int) -> int:
        return (await self._all("SELECT COALESCE(MAX(idx) + 1, 0) FROM rounds WHERE session_id = ?", (session_id,)))[0][0]

    async def create_session(
        self, scope_id: str, channel_id: str | None, spec: dict, track: dict, actor: str, options: dict | None = None
    ) -> SessionRow:
        """Start a session; a channel runs one active session at a time (ValueError otherwise). What an ended
        session left unposted there is given up (`GIVE_UP_OLD_NOTES`)."""
        async with self._tx() as db:
            if channel_id is not None and await db.one(
                "SELECT 1 FROM sessions WHERE channel_id = ? AND status = 'active'", (channel_id,)
            ):
                raise ValueError("a session is already running here: stop it first")
            now = time.time()
            if channel_id is not None:
                await db.execute(GIVE_UP_OLD_NOTES.format("?", "?"), (now, channel_id))
            cursor = await db.execute(
                "INSERT INTO sessions (scope_id, channel_id, spec, options, owner, status, track, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
                (scope_id, channel_id, json.dumps(spec), json.dumps(options or {}), actor, json.dumps(track), now),
            )
            session_id = cursor.lastrowid
            await db.audit(scope_id, actor, "session_start", {"session": session_id, "channel": channel_id, "spec": spec})
            row = await db.one(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        return _session(row)

    async def session(self, session_id: int) -> SessionRow | None:
        rows = await self._all(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        return _session(rows[0]) if rows else None

    async def set_session_options(self, session_id: int, options: dict) -> bool:
        """Replace the `options` of session `session_id` (what create_session stored: a terminal session's folder,
        kept again when it moved). False (nothing changed) when there is no such session."""
        async with self._tx() as db:
            cursor = await db.execute("UPDATE sessions SET options = ? WHERE id = ?", (json.dumps(options), session_id))
            return cursor.rowcount > 0

    async def active_session_in(self, channel_id: str) -> SessionRow | None:
        rows = await self._all(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE channel_id = ? AND status = 'active'", (channel_id,)
        )
        return _session(rows[0]) if rows else None

    async def latest_session(self, scope_id: str, channel_id: str | None) -> SessionRow | None:
        rows = await self._all(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE scope_id = ? AND channel_id IS ? ORDER BY id DESC LIMIT 1",
            (scope_id, channel_id),
        )
        return _session(rows[0]) if rows else None

    async def all_sessions(self) -> list[SessionRow]:
        """Every session, oldest first (`crowdtune sessions`)."""
        return [_session(r) for r in await self._all(f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY id")]

    async def rate_starting_track(self, session_id: int, score: float, actor: str) -> bool:
        """Set the score of a session's starting track (a rating 1-10), the bar its first edit must pass.
        False (nothing changed) once the session has a score or a closed round."""
        async with self._tx() as db:
            row = await db.one(
                "SELECT scope_id FROM sessions WHERE id = ? AND status = 'active' AND rounds_done = 0 AND incumbent_score IS NULL",
                (session_id,),
            )
            if row is None:
                return False
            await db.execute("UPDATE sessions SET incumbent_score = ? WHERE id = ?", (score, session_id))
            await db.audit(row[0], actor, "starting_track_rated", {"session": session_id, "rating": score})
        return True

    async def active_sessions(self, scope_id: str | None = None) -> list[SessionRow]:
        rows = await self._all(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE status = 'active' AND (? IS NULL OR scope_id = ?) ORDER BY id",
            (scope_id, scope_id),
        )
        return [_session(r) for r in rows]

    async def end_session(self, session_id: int, status: str, actor: str) -> EndedSession | None:
        """Stop or finish a session; open rounds in it are cancelled (EndedSession). None if it had already ended."""
        async with self._tx() as db:
            row = await db.one("SELECT scope_id FROM sessions WHERE id = ? AND status = 'active'", (session_id,))
            if row is None:
                return None
            cancelled = {
                round_id: standing_votes(await db.all(STANDING_VOTES.format("?"), (round_id,)))
                for (round_id,) in await db.all("SELECT id FROM rounds WHERE session_id = ? AND status = 'open' ORDER BY id", (session_id,))
            }
            await db.execute("UPDATE sessions SET status = ? WHERE id = ?", (status, session_id))
            await db.edit_ended_posts("r.session_id = ? AND r.status = 'open'", session_id, "cancelled")
            await db.execute(
                "DELETE FROM withheld_reactions WHERE round_id IN (SELECT id FROM rounds WHERE session_id = ? AND status = 'open')",
                (session_id,),
            )
            await db.execute(
                "UPDATE rounds SET status = 'cancelled', closed_at = ? WHERE session_id = ? AND status = 'open'",
                (time.time(), session_id),
            )
            await db.audit(row[0], actor, f"session_{status}", {"session": session_id})
        return EndedSession(cancelled)

    # -- rounds ---------------------------------------------------------------------------------

    async def open_round(self, session_id: int, index: int, mode: str, plan: dict, closes_at: float | None) -> RoundRow | None:
        """Record a planned round; opening the same index twice returns the round already there. None once the
        session has ended (a /stop while the round was being planned): an ended session gets no new round."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO rounds (session_id, idx, mode, plan, opened_at, closes_at, status) "
                "SELECT ?, ?, ?, ?, ?, ?, 'open' WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ? AND status = 'active') "
                "ON CONFLICT(session_id, idx) DO NOTHING",
                (session_id, index, mode, json.dumps(plan), time.time(), closes_at, session_id),
            )
            row = await db.one(
                f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id "
                "WHERE r.session_id = ? AND r.idx = ? AND s.status = 'active'",
                (session_id, index),
            )
        return None if row is None else _round(row)

    async def set_round_messages(
        self, round_id: int, message_ids: list[str], closes_at: float | None = None, ended_posts: dict[str, str] | None = None,
    ) -> None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE rounds SET message_ids = ?, closes_at = COALESCE(closes_at, ?), ended_posts = COALESCE(?, ended_posts) WHERE id = ?",
                (json.dumps(message_ids), closes_at, json.dumps(ended_posts) if ended_posts else None, round_id),
            )
            await db.executemany(
                "INSERT INTO round_messages (message_id, round_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(m, round_id) for m in message_ids],
            )
            await db.edit_ended_posts("r.id = ? AND r.status <> 'open'", round_id)  # a /stop came while it was posted

    async def round(self, round_id: int) -> RoundRow | None:
        rows = await self._all(f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE r.id = ?", (round_id,))
        return _round(rows[0]) if rows else None

    async def round_for_message(self, message_id: str) -> RoundRow | None:
        rows = await self._all(
            f"SELECT {_ROUND_COLUMNS} FROM round_messages m JOIN rounds r ON r.id = m.round_id "
            "JOIN sessions s ON s.id = r.session_id WHERE m.message_id = ?",
            (message_id,),
        )
        return _round(rows[0]) if rows else None

    async def open_rounds(self) -> list[RoundRow]:
        return [
            _round(r)
            for r in await self._all(
                f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE r.status = 'open' ORDER BY r.id"
            )
        ]

    async def open_round_of(self, session_id: int) -> RoundRow | None:
        rows = await self._all(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id "
            "WHERE r.session_id = ? AND r.status = 'open' ORDER BY r.idx DESC LIMIT 1",
            (session_id,),
        )
        return _round(rows[0]) if rows else None

    async def rounds_of(self, session_id: int) -> list[RoundRow]:
        return [
            _round(r)
            for r in await self._all(
                f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE r.session_id = ? ORDER BY r.idx",
                (session_id,),
            )
        ]

    async def last_message_before(self, session_id: int, index: int) -> str | None:
        """The last message id of the latest posted round of the session before round `index` (one
        indexed row, however long the session)."""
        rows = await self._all(
            "SELECT message_ids FROM rounds WHERE session_id = ? AND idx < ? AND message_ids != '[]' ORDER BY idx DESC LIMIT 1",
            (session_id, index),
        )
        return json.loads(rows[0][0])[-1] if rows else None

    async def last_closed_round_before(self, session_id: int, index: int) -> RoundRow | None:
        rows = await self._all(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id "
            "WHERE r.session_id = ? AND r.idx < ? AND r.status = 'closed' ORDER BY r.idx DESC LIMIT 1",
            (session_id, index),
        )
        return _round(rows[0]) if rows else None

    async def top_rounds(self, scope_id: str, limit: int = 5, mode: str = "rating") -> list[RoundRow]:
        return [
            _round(r)
            for r in await self._all(
                f"SELECT {_ROUND_COLUMNS} FROM rounds r JOIN sessions s ON s.id = r.session_id "
                "WHERE s.scope_id = ? AND r.mode = ? AND r.status = 'closed' AND r.reward IS NOT NULL "
                "AND (r.mode = 'rating' OR json_extract(r.outcome, '$.kept_edit') = 1) ORDER BY r.reward DESC, r.id LIMIT ?",
                (scope_id, mode, limit),
            )
        ]

    async def learning_history(self, scope_id: str) -> list[tuple[float, float | None, float | None]]:
        """Per closed rated round of the scope, oldest first: (the crowd's verdict, the kept track's score
        after it (None before this was recorded), the standard deviation of its ratings (None in A/B))."""
        rows = await self._all(
            "SELECT r.reward, json_extract(r.outcome, '$.incumbent_score'), AVG(v.rating), AVG(v.rating * v.rating), COUNT(v.rating) "
            "FROM rounds r JOIN sessions s ON s.id = r.session_id "
            "LEFT JOIN votes v ON v.round_id = r.id AND v.retracted = 0 AND v.voided = 0 "
            "WHERE s.scope_id = ? AND r.mode = 'rating' AND r.status = 'closed' AND r.reward IS NOT NULL GROUP BY r.id "
            "ORDER BY r.closed_at, r.id",
            (scope_id,),
        )
        return await asyncio.to_thread(learning_points, rows)  # grows with the history: off the loop

    async def ab_history(self, scope_id: str) -> list[tuple[float, bool, int, int]]:
        """Per closed A/B round of the scope with votes, oldest first: (the chosen edit's reward, whether an
        edit was kept, the standing votes, those that preferred an edit to the track before)."""
        rows = await self._all(
            f"SELECT r.reward, json_extract(r.outcome, '$.kept_edit'), COUNT(v.choice), {_PREFERRING} "
            "FROM rounds r JOIN sessions s ON s.id = r.session_id "
            "LEFT JOIN votes v ON v.round_id = r.id AND v.retracted = 0 AND v.voided = 0 "
            "WHERE s.scope_id = ? AND r.mode = 'ab' AND r.status = 'closed' AND r.reward IS NOT NULL GROUP BY r.id "
            "ORDER BY r.closed_at, r.id",
            (scope_id,),
        )
        return await asyncio.to_thread(ab_points, rows)  # grows with the history: off the loop

    async def cancel_round(self, round_id: int, actor: str, reason: str, announce: str | None = None) -> bool:
        async with self._tx() as db:
            row = await db.one(
                "SELECT s.scope_id, s.channel_id FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE r.id = ? AND r.status = 'open'",
                (round_id,),
            )
            if row is None:
                return False
            if announce is not None and row[1] is not None:
                await db.announce(row[1], announce)
            await db.execute("UPDATE rounds SET status = 'cancelled', closed_at = ? WHERE id = ?", (time.time(), round_id))
            await db.execute("DELETE FROM withheld_reactions WHERE round_id = ?", (round_id,))
            await db.audit(row[0], actor, "round_cancelled", {"round": round_id, "reason": reason})
        return True

    # -- votes ----------------------------------------------------------------------------------

    async def cast_vote(
        self, round_id: int, voter: str, rating: float | None = None, choice: str | None = None, at: float | None = None
    ) -> VoteResult:
        """One vote per voter per round; the latest wins. Repeating the standing vote changes nothing."""
        return (await self.apply_votes([VoteOp(round_id, voter, "cast", rating, choice, at=at)]))[0]

    async def retract_vote(
        self, round_id: int, voter: str, at: float | None = None, only: tuple[float | None, str | None] | None = None
    ) -> VoteResult:
        """Withdraw a standing vote; with `only` (rating, choice), only if that is the standing vote,
        so removing an older reaction does not withdraw the newer vote that replaced it."""
        rating, choice = only if only is not None else (None, None)
        op = VoteOp(round_id, voter, "retract", rating, choice, only_if_standing=only is not None, at=at)
        return (await self.apply_votes([op]))[0]

    async def apply_votes(self, ops: list[VoteOp]) -> list[VoteResult]:
        """Apply casts and retractions in the order given, in one transaction: a burst of
        reactions costs one commit, and a vote is acknowledged only once it is durable."""
        async with self._tx() as db:
            return await db.apply_votes(ops)

    async def ballots(self, round_id: int) -> list[Ballot]:
        rows = await self._all(
            "SELECT voter, rating, choice FROM votes WHERE round_id = ? AND retracted = 0 AND voided = 0 ORDER BY cast_at, voter",
            (round_id,),
        )
        return [Ballot(*r) for r in rows]

    async def standing_votes(self, round_id: int) -> list[StandingVote]:
        return standing_votes(await self._all(STANDING_VOTES.format("?"), (round_id,)))

    async def voided_ballots(self, round_id: int) -> list[Ballot]:
        rows = await self._all(
            "SELECT voter, rating, choice FROM votes WHERE round_id = ? AND retracted = 0 AND voided = 1 ORDER BY cast_at, voter",
            (round_id,),
        )
        return [Ballot(*r) for r in rows]


    async def aspect_ratings_of_scope(self, scope_id: str) -> list[dict[str, float]]:
        rows = await self._all(
            "SELECT v.aspects FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id "
            "WHERE s.scope_id = ? AND r.status = 'closed' AND v.retracted = 0 AND v.voided = 0 AND v.aspects IS NOT NULL",
            (scope_id,),
        )
        return [json.loads(aspects) for (aspects,) in rows]

    async def ballot_count(self, round_id: int) -> int:
        """len(ballots(round_id)) without reading them: what a quorum check needs after every batch of votes."""
        return (await self._all("SELECT COUNT(*) FROM votes WHERE round_id = ? AND retracted = 0 AND voided = 0", (round_id,)))[0][0]

    async def strike(self, scope_id: str, voter: str, actor: str) -> dict[str, int] | None:
        """Void every standing vote a user cast in a scope (moderation) and refuse their new ones; returns how many were
        voided, {"open": in open rounds, "over": in rounds already over}, or None if the user was already struck (then
        nothing changes). A vote the user withdrew is left as it is: it counted for nothing already."""
        async with self._tx() as db:
            if await db.one("SELECT 1 FROM strikes WHERE scope_id = ? AND voter = ?", (scope_id, voter)):
                return None
            voided = {"open": 0, "over": 0}
            for kind, status in (("open", "= 'open'"), ("over", "<> 'open'")):
                cursor = await db.execute(
                    "UPDATE votes SET voided = 1 WHERE voter = ? AND voided = 0 AND retracted = 0 AND round_id IN "
                    f"(SELECT r.id FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE s.scope_id = ? AND r.status {status})",
                    (voter, scope_id),
                )
                voided[kind] = cursor.rowcount
            await db.execute("INSERT INTO strikes (scope_id, voter, at) VALUES (?, ?, ?)", (scope_id, voter, time.time()))
            await db.audit(scope_id, actor, "strike", {"voter": voter, "voided": sum(voided.values()), "open_rounds": voided["open"]})
        return voided

    async def unstrike(self, scope_id: str, voter: str, actor: str) -> bool:
        """Lift a strike: the user's new votes in the scope count again (the voided ones stay void).
        False if there was no strike. Audited."""
        async with self._tx() as db:
            cursor = await db.execute("DELETE FROM strikes WHERE scope_id = ? AND voter = ?", (scope_id, voter))
            if cursor.rowcount:
                await db.audit(scope_id, actor, "unstrike", {"voter": voter})
        return cursor.rowcount > 0

    async def recorded_votes(self, round_id: int) -> dict[str, dict[float | str, float]]:
        rows = await self._all(
            "SELECT voter, rating, choice, MAX(at) FROM vote_events WHERE round_id = ? AND kind <> 'retract' GROUP BY voter, rating, choice",
            (round_id,),
        )
        return recorded_by_voter(rows)

    async def last_forget(self) -> int:
        return (await self._all("SELECT COALESCE(MAX(forget_id), 0) FROM withheld_reactions"))[0][0]

    async def withheld_voters(self, round_id: int) -> set[str]:
        """Voters whose reactions on this round are not read back (they used /forget-me while it was open)."""
        return {voter for (voter,) in await self._all("SELECT voter FROM withheld_reactions WHERE round_id = ?", (round_id,))}

    # -- Q-values and the close ----------------------------------------------------------------

    async def q_entries(self, scope_id: str, keys: Iterable[QKey]) -> dict[QKey, QEntry]:
        async with self._lock:
            return await _Tx(self._db).q_entries(scope_id, list(keys))

    async def q_table(self, scope_id: str) -> dict[QKey, QEntry]:
        rows = await self._all("SELECT state, action, value, visits FROM qvalues WHERE scope_id = ? ORDER BY state, action", (scope_id,))
        return {(s, a): QEntry(v, n) for s, a, v, n in rows}

    async def q_size(self, scope_id: str, encoding: str | None = None) -> int:
        kind = "" if encoding is None else f" AND {Q_KEY_KINDS[encoding]}"
        (count,) = (await self._all(f"SELECT COUNT(*) FROM qvalues WHERE scope_id = ?{kind}", (scope_id,)))[0]
        return count

    async def put_q_entries(self, scope_id: str, entries: Iterable[tuple[QKey, QEntry]]) -> None:
        async with self._tx() as db:
            await db.put_q(scope_id, entries)

    async def reset_scope(self, scope_id: str, actor: str, request: str | None = None) -> ResetDone | None:
        async with self._tx() as db:
            if not await db.take_request(request):
                return None
            kinds = await db.one(Q_KINDS_COUNTED.format("?"), (scope_id,))
            cursor = await db.execute("DELETE FROM qvalues WHERE scope_id = ?", (scope_id,))
            models = await db.all("DELETE FROM models WHERE scope_id = ? RETURNING name, data", (scope_id,))
            await db.audit(scope_id, actor, "reset", {"q_entries_deleted": cursor.rowcount, "models_deleted": len(models)})
        return reset_done(kinds, models)

    # -- learned models (fixed size per scope: reading one costs the same whatever the history) ---------

    async def model_evidence(self, scope_id: str, name: str) -> Evidence | None:
        """The scope's evidence for the model `name`, or None before its first rated round."""
        rows = await self._all("SELECT data FROM models WHERE scope_id = ? AND name = ?", (scope_id, name))
        return Evidence.from_dict(json.loads(rows[0][0])) if rows else None

    async def shared_evidence(self, name: str, exclude_scope: str) -> list[Evidence]:
        """The evidence for `name` of every other scope whose settings opt in to sharing (share_learning)."""
        rows = await self._all(
            "SELECT m.data FROM models m JOIN scopes s ON s.id = m.scope_id "
            "WHERE m.name = ? AND m.scope_id != ? AND json_extract(s.settings, '$.share_learning') = 1 ORDER BY m.scope_id",
            (name, exclude_scope),
        )
        return [Evidence.from_dict(json.loads(data)) for (data,) in rows]

    async def close_round(
        self, round_id: int, keys: list[QKey], settle: Settle, actor: str = "engine", announce: Announce | None = None,
        set_aside: Collection[str] = (),
    ) -> Outcome | None:
        """Close a round and apply its Q-updates and model observations in one transaction, with its
        announcement queued in the outbox. None if it was not open, so a second close (a timer and a quorum
        racing, a restart) never rewards twice. `settle(ballots, table, incumbent_score, history, reference)`
        decides; `reference` is the ballots and verdict of the rating round whose edit the session kept last."""
        async with self._tx() as db:
            row = await db.one(
                "SELECT r.session_id, s.scope_id, s.incumbent_score, s.rounds_done, s.spec, s.channel_id, r.mode FROM rounds r "
                "JOIN sessions s ON s.id = r.session_id WHERE r.id = ? AND r.status = 'open'",
                (round_id,),
            )
            if row is None:
                return None
            session_id, scope_id, incumbent_score, rounds_done, spec, channel_id, mode = row
            ballots = [
                Ballot(*r)
                for r in await db.all(
                    "SELECT voter, rating, choice FROM votes WHERE round_id = ? AND retracted = 0 AND voided = 0 ORDER BY cast_at, voter",
                    (round_id,),
                )
            ]
            aside = sorted({b.voter for b in ballots} & set(set_aside))
            ballots = [b for b in ballots if b.voter not in set_aside]
            struck = (await db.one(STRUCK_VOTERS.format("?"), (round_id,)))[0]
            if aside:
                await db.execute(f"UPDATE votes SET voided = 1 WHERE round_id = ? AND voter IN ({_placeholders(aside)})", (round_id, *aside))
            table = await db.q_entries(scope_id, keys)
            reference = await db.incumbent_reference(session_id)
            voters = [b.voter for b in ballots] + [b.voter for b in (reference[0] if reference else ())]
            history = await db.voter_history(scope_id, list(dict.fromkeys(voters)), mode)
            # Weighing a big crowd's history takes tens of milliseconds of Python: on a thread the event
            # loop still gets the GIL every few milliseconds instead of waiting for all of it.
            outcome = await asyncio.to_thread(settle, ballots, table, incumbent_score, history, reference)
            await db.put_q(scope_id, outcome.updates)
            if outcome.observations or outcome.comparisons:
                await db.add_observations(scope_id, outcome.model, outcome.observations, outcome.comparisons)
            await db.execute(
                "UPDATE rounds SET status = 'closed', reward = ?, closed_at = ?, outcome = ? WHERE id = ?",
                (outcome.reward, time.time(), json.dumps(outcome_to_dict(outcome)), round_id),
            )
            finished = finishes(json.loads(spec), rounds_done)
            await db.execute(
                "UPDATE sessions SET track = ?, incumbent_score = ?, rounds_done = rounds_done + 1, status = ? WHERE id = ?",
                (json.dumps(track_to_dict(outcome.next_track)), outcome.incumbent_score, "finished" if finished else "active", session_id),
            )
            await db.execute("DELETE FROM withheld_reactions WHERE round_id = ?", (round_id,))
            await db.edit_ended_posts("r.id = ?", round_id)
            if announce is not None and channel_id is not None:
                for text in announced(announce(outcome, ballots, len(aside), struck)):
                    await db.announce(channel_id, text)
            await db.audit(scope_id, actor, "round_closed", closed_audit(round_id, outcome, aside))
        return outcome

    # -- the outbox ---------------------------------------------------------------------------------

    async def pending_announcements(self, channel_id: str | None = None) -> list[Announcement]:
        where, params = ("AND channel_id = ?", (channel_id,)) if channel_id is not None else ("", ())
        rows = await self._all(f"SELECT id, channel_id, content, created_at, message_id, round_id FROM announcements WHERE sent_at IS NULL {where} ORDER BY id", params)
        return [Announcement(*row) for row in rows]

    async def mark_announced(self, announcement_id: int) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE announcements SET sent_at = ? WHERE id = ?", (time.time(), announcement_id))

    async def queue_announcement(self, channel_id: str, content: str) -> None:
        async with self._tx() as db:
            await db.announce(channel_id, content)

    # -- personal data ----------------------------------------------------------------------------

    async def user_data(self, voter: str) -> dict:
        def collect() -> dict:
            with SqliteReader(self.path) as reader:
                return {"voter": voter, "votes": list(reader.votes_of(voter))}

        return await asyncio.to_thread(collect)

    async def forget_user(self, voter: str, personal_scope: str, actor: str = "user", request: str | None = None) -> dict | None:
        """Delete a user's votes everywhere and their personal agent; returns what was deleted. Moderation
        records (strikes and the audit log) are kept: forgetting oneself must not lift a strike. Reactions
        the user leaves on rounds open now are not read back into votes."""
        async with self._tx() as db:
            if not await db.take_request(request):
                return None
            events = await db.execute("DELETE FROM vote_events WHERE voter = ?", (voter,))
            votes = await db.execute("DELETE FROM votes WHERE voter = ?", (voter,))
            # The personal agent's open round ends with it: its post says so (queued before its rows go).
            await db.edit_ended_posts("s.scope_id = ? AND r.status = 'open'", personal_scope, "cancelled")
            sessions = (await db.one("SELECT COUNT(*) FROM sessions WHERE scope_id = ?", (personal_scope,)))[0]
            scope = await db.execute("DELETE FROM scopes WHERE id = ?", (personal_scope,))
            forget = await db.audit(None, actor, "forget_me", {"votes": votes.rowcount, "personal_agent": scope.rowcount > 0})
            await db.execute(
                "INSERT INTO withheld_reactions (round_id, voter, forget_id) SELECT id, ?, ? FROM rounds WHERE status = 'open' "
                "ON CONFLICT DO UPDATE SET forget_id = excluded.forget_id",
                (voter, forget),
            )
        return {"votes": votes.rowcount, "vote_events": events.rowcount, "personal_agent": scope.rowcount > 0, "sessions": sessions, "forget": forget}

    # -- export -------------------------------------------------------------------------------------

    async def export_rows(self, scope_id: str | None) -> dict[str, list[dict]]:
        """Everything an export holds, for one scope or all, as plain rows (small scopes and tests;
        an export streams them from a `SqliteReader` instead)."""

        def collect() -> dict[str, list[dict]]:
            with SqliteReader(self.path) as reader:
                return reader.export_rows(scope_id)

        return await asyncio.to_thread(collect)

    # -- confirmed requests (bot/discord/confirmed.py) -------------------------------------------------

    async def record_confirmed(self, request: ConfirmedRequest) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO confirmed_requests (key, command, guild_id, data, confirmed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                confirmed_row(request),
            )

    async def confirmed_requests(self) -> list[ConfirmedRequest]:
        rows = await self._all("SELECT key, command, guild_id, data, confirmed_at FROM confirmed_requests ORDER BY confirmed_at, key")
        return [confirmed_request(*row) for row in rows]

    async def drop_confirmed(self, key: str) -> None:
        async with self._tx() as db:
            await db.take_request(key)

    # -- the deployment (bot/discord/app.py) ------------------------------------------------------

    async def deployment_value(self, key: str) -> str | None:
        rows = await self._all("SELECT value FROM deployment WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def forget_deployment_value(self, key: str) -> None:
        async with self._tx() as db:
            await db.execute("DELETE FROM deployment WHERE key = ?", (key,))

    async def set_deployment_value(self, key: str, value: str, replace: bool = True) -> str:
        """Store `value` under `key` (with replace=False only if there is none yet); returns the value
        stored, so two processes racing to set a first value agree on one."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        async with self._tx() as db:
            await db.execute(f"{verb} INTO deployment (key, value) VALUES (?, ?)", (key, value))
            (stored,) = await db.one("SELECT value FROM deployment WHERE key = ?", (key,))
        return stored

    # -- copying a whole database (storage/copy.py) ------------------------------------------------

    async def read_table(self, table: str) -> AsyncIterator[tuple[list[str], list[tuple]]]:
        copy_columns(table, ["id"])
        async with self._lock, self._db.execute(f"SELECT * FROM {table}") as cursor:
            columns = [d[0] for d in cursor.description]
            while rows := await cursor.fetchmany(COPY_CHUNK_ROWS):
                yield columns, [tuple(r) for r in rows]

    async def write_tables(self, chunks: AsyncIterable[tuple[str, list[str], list[tuple]]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self._tx() as db:
            for table, _ in TABLES:
                if await db.one(f"SELECT 1 FROM {table} LIMIT 1"):
                    raise ValueError(f"{self.path} already holds data ({table}); copy into a new, empty database")
            async for table, columns, rows in chunks:
                names = copy_columns(table, columns)
                await db.executemany(f"INSERT INTO {table} ({names}) VALUES ({_placeholders(columns)})", rows)
                counts[table] = counts.get(table, 0) + len(rows)
        return counts

    # -- shards -------------------------------------------------------------------------------------

    async def claim_shards(self, shard_count: int, shard_ids: Iterable[int]) -> None:
        """A SQLite file serves one process, whatever its shards: the one-bot claim (claim_instance)."""
        await self.claim_instance(f"process {os.getpid()}, shards {','.join(map(str, shard_ids))} of {shard_count}")

    async def claim_scope(self, scope_id: str) -> None:
        """A SQLite file serves one process, whatever it drives: the one-process claim (claim_instance)."""
        await self.claim_instance(f"process {os.getpid()}, {scope_id}")

    async def listen_forgotten(self, callback: Callable[[str, int], None]) -> None:
        """Nothing to hear: only the process holding the file writes to it (forget-user refuses a file a bot holds)."""

    async def claim_lost(self) -> ClaimLost:
        """Never returns: the claim is a lock on a file (claim_instance), held by this process until it ends."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    # -- start-up check and early close (bot/discord/runner.py) ------------------------------------------

    async def check_writable(self) -> None:
        """StorageError now if nothing can be written (a read-only file, a full disk), rather than
        at the first vote. Writes and removes one audit row: the commit must reach the disk."""
        try:
            async with self._tx() as db:
                cursor = await db.execute("INSERT INTO audit (at, actor, action) VALUES (?, 'crowdtune', 'write_check')", (time.time(),))
                await db.execute("DELETE FROM audit WHERE id = ?", (cursor.lastrowid,))
        except sqlite3.Error as exc:  # one the disk did not refuse (_tx names those)
            raise StorageError(f"the database {self.path} cannot be written: {exc}") from None

    async def set_closes_at(self, round_id: int, closes_at: float) -> bool:
        """Bring an open round's close forward (someone closed it by hand); stored, so a restart honours it."""
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE rounds SET closes_at = ? WHERE id = ? AND status = 'open' AND (closes_at IS NULL OR closes_at > ?)",
                (closes_at, round_id, closes_at),
            )
        return cursor.rowcount > 0

    async def tell_reactions_are_no_votes(self, round_id: int, notice: str | None = None) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE rounds SET reactions_notice_at = ? WHERE id = ? AND status = 'open' AND reactions_notice_at IS NULL", (time.time(), round_id)
            )
            told = cursor.rowcount > 0
            channel = await db.one(NOTICE_CHANNEL.format("?"), (round_id,)) if told and notice is not None else None
            if channel is not None and channel[0] is not None:
                await db.announce(channel[0], notice, round_id=round_id)
        return told

    async def take_votes(self, round_id: int) -> bool:
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE rounds SET votes_taken_at = ? WHERE id = ? AND status = 'open' AND votes_taken_at IS NULL", (time.time(), round_id)
            )
        return cursor.rowcount > 0


# Room kept on the database's disk while a store holds it, in its lock file after the holder's text (claim_instance):
# the first write the disk refuses gives it back (_give_back_reserve), so that what ends the run, a stop that cancels the
# open round and writes its audit entry (a few pages in the WAL), has room whatever the refused write left free
# (spend_reserve). Any other write first takes it back (_take_back_reserve): the disk is full till it has room for it.
RESERVE = 64 * 1024


def _reserve(fd: int, start: int) -> None:
    """RESERVE bytes taken on the disk in the open lock file `fd` from `start`, as zeros; OSError (ENOSPC) if the
    disk has not that much free. A file system that cannot allocate ahead (EOPNOTSUPP, EINVAL) keeps no reserve."""
    try:
        os.posix_fallocate(fd, start, RESERVE)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise


def _running(path: str, fd: int, remedy: str) -> StorageError:
    """The refusal for the database `path` another process holds, named by what it wrote in its lock file `fd`
    (before the zeros of its RESERVE)."""
    running = os.pread(fd, 500, 0).split(b"\0")[0].decode("utf-8", "replace").strip() or "another process"
    return StorageError(f"another crowdtune is already running on {path} ({running}); {remedy}")


def _holds(fd: int, path: str) -> bool:
    """Whether the open file `fd` is the file at `path` now (not one removed from there since it was opened)."""
    held = os.fstat(fd)
    return _identity(path) == (held.st_dev, held.st_ino)


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None for an in-memory database or a missing file."""
    if path == ":memory:":
        return None
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # its folder gone too, or made a file
        return None
    return stat.st_dev, stat.st_ino


class _Tx:
    """Statements inside a transaction that `SqliteStore._tx` holds."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Iterable = ()) -> aiosqlite.Cursor:
        return await self._db.execute(sql, tuple(params))

    async def executescript_in_tx(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one inside our transaction.
        for statement in (s.strip() for s in script.split(";")):
            if statement:
                await self._db.execute(statement)

    async def executemany(self, sql: str, rows: list[tuple]) -> None:
        await self._db.executemany(sql, rows)

    async def take_request(self, key: str | None) -> bool:
        """Delete the confirmed request `key` in this transaction; whether it was there (no `key`: True)."""
        return key is None or (await self._db.execute("DELETE FROM confirmed_requests WHERE key = ?", (key,))).rowcount > 0

    async def one(self, sql: str, params: Iterable = ()) -> tuple | None:
        async with self._db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def all(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def announce(self, channel_id: str, content: str, message_id: str | None = None, round_id: int | None = None) -> None:
        await self._db.execute(
            "INSERT INTO announcements (channel_id, content, created_at, message_id, round_id) VALUES (?, ?, ?, ?, ?)",
            (channel_id, content, time.time(), message_id, round_id),
        )

    async def edit_ended_posts(self, where: str, param: int, status: str | None = None) -> None:
        """Queue, for the rounds `where` selects (a condition on rounds `r`), the edit of each of their messages
        into what it becomes as the round ends with `status` (None: the status it has), from `rounds.ended_posts`."""
        rows = await self.all(ENDED_POSTS.format(where=where), (param,))
        for channel_id, current, message_ids, ended_posts in rows:
            for message_id, content in ended_post_edits(channel_id, status or current, message_ids, ended_posts):
                await self.announce(channel_id, content, message_id)

    async def audit(self, scope_id: str | None, actor: str, action: str, detail: dict) -> int:
        """Append an audit entry; its id (ids grow: entries are never deleted but check_writable's own, the newest)."""
        cursor = await self._db.execute(
            "INSERT INTO audit (at, scope_id, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time(), scope_id, actor, action, json.dumps(detail)),
        )
        return cursor.lastrowid

    async def apply_votes(self, ops: list[VoteOp]) -> list[VoteResult]:
        """Apply casts and retractions in order. What they depend on (each round's status and scope, the
        voters' current rows, strikes) is read first and the writes go out in two executemany calls, so a
        batch costs a handful of statements (each a hop to aiosqlite's thread) however many votes it holds."""
        rounds = await self._rounds_with_scope({op.round_id for op in ops})
        counted = [
            op for op in ops
            if rounds.get(op.round_id, (None, None))[0] == "open" and op.scope_id in (None, rounds[op.round_id][1])
        ]
        rows = await self._vote_rows(counted)
        struck = await self._struck({rounds[op.round_id][1] for op in counted}, {op.voter for op in counted if op.casts})
        results, written, events = plan_votes(ops, rounds, rows, struck, await self._withheld([op for op in counted if op.casts]))
        # A voter's last write in the batch is their row's final state: void only by a struck voter's cast (plan_votes).
        await self._db.executemany(
            "INSERT INTO votes (round_id, voter, rating, choice, cast_at, retracted, aspects, joined_at, voided) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(round_id, voter) DO UPDATE SET rating = excluded.rating, choice = excluded.choice, "
            "cast_at = excluded.cast_at, retracted = excluded.retracted, aspects = excluded.aspects, joined_at = excluded.joined_at, "
            "voided = excluded.voided",
            [(*key, *row) for key, row in written.items()],
        )
        await self._db.executemany(
            "INSERT INTO vote_events (round_id, voter, kind, rating, choice, at, aspects) VALUES (?, ?, ?, ?, ?, ?, ?)", events
        )
        return results

    async def _rounds_with_scope(self, round_ids: set[int]) -> dict[int, tuple[str, str]]:
        found = {}
        for chunk in _in_chunks(sorted(round_ids)):
            for round_id, status, scope_id in await self.all(
                f"SELECT r.id, {_VOTING_STATUS}, s.scope_id FROM rounds r JOIN sessions s ON s.id = r.session_id "
                f"WHERE r.id IN ({_placeholders(chunk)})",
                chunk,
            ):
                found[round_id] = (status, scope_id)
        return found

    async def _vote_rows(self, ops: list[VoteOp]) -> dict[tuple[int, str], tuple]:
        rows = {}
        for round_id, voters in _voters_by_round(ops).items():
            for chunk in _in_chunks(sorted(voters)):
                for voter, rating, choice, retracted, aspects, joined_at in await self.all(
                    # A void row (struck) stands for no vote, as a withdrawn one: see plan_votes.
                    "SELECT voter, rating, choice, MAX(retracted, voided), aspects, joined_at FROM votes "
                    f"WHERE round_id = ? AND voter IN ({_placeholders(chunk)})",
                    (round_id, *chunk),
                ):
                    rows[(round_id, voter)] = (rating, choice, retracted, json.loads(aspects) if aspects else None, joined_at)
        return rows

    async def _withheld(self, ops: list[VoteOp]) -> dict[tuple[int, str], int]:
        """(round, voter) -> the deletion that withheld them, for these ops whose voter used /forget-me while the round was open."""
        withheld = {}
        for round_id, voters in _voters_by_round(ops).items():
            for chunk in _in_chunks(sorted(voters)):
                for withheld_round, voter, forget_id in await self.all(
                    f"SELECT round_id, voter, forget_id FROM withheld_reactions WHERE round_id = ? AND voter IN ({_placeholders(chunk)})",
                    (round_id, *chunk),
                ):
                    withheld[(withheld_round, voter)] = forget_id
        return withheld

    async def _struck(self, scope_ids: set[str], voters: set[str]) -> set[tuple[str, str]]:
        if not scope_ids or not voters:
            return set()
        scopes = sorted(scope_ids)
        struck = set()
        for chunk in _in_chunks(sorted(voters)):
            struck.update(
                await self.all(
                    f"SELECT scope_id, voter FROM strikes WHERE scope_id IN ({_placeholders(scopes)}) AND voter IN ({_placeholders(chunk)})",
                    (*scopes, *chunk),
                )
            )
        return struck

    async def q_entries(self, scope_id: str, keys: list[QKey]) -> dict[QKey, QEntry]:
        wanted = set(keys)
        states = list(dict.fromkeys(state for state, _ in keys))
        found: dict[QKey, QEntry] = {}
        # Fetch whole states through the primary key (scope, state, action), then keep the actions asked for.
        for chunk in _in_chunks(states):
            rows = await self._db.execute_fetchall(
                f"SELECT state, action, value, visits FROM qvalues WHERE scope_id = ? AND state IN ({_placeholders(chunk)})",
                (scope_id, *chunk),
            )
            for state, action, value, visits in rows:
                if (state, action) in wanted:
                    found[(state, action)] = QEntry(value, visits)
        return found

    async def voter_history(
        self, scope_id: str, voters: list[str], mode: str = "rating", limit: int = 50
    ) -> History | ChoiceHistory:
        """Each voter's latest votes in this scope, in closed rounds of `mode`, newest first: their rating
        or A/B choice, the round's id and the reward it got. One query per 500 voters rather
        than one per voter: a round with a thousand voters closes in a few statements while votes wait
        behind its transaction."""
        value = HISTORY_COLUMNS[mode]
        found: dict[str, list] = {}
        for chunk in _in_chunks(list(dict.fromkeys(voters))):
            rows = await self.all(
                "SELECT voter, value, round_id, reward FROM ("
                f"SELECT v.voter, v.{value} AS value, r.id AS round_id, r.reward, "
                "ROW_NUMBER() OVER (PARTITION BY v.voter ORDER BY r.closed_at DESC, r.id DESC) AS newest "
                "FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id "
                f"WHERE v.voter IN ({_placeholders(chunk)}) AND s.scope_id = ? AND r.status = 'closed' AND r.mode = ? "
                f"AND r.reward IS NOT NULL AND v.retracted = 0 AND v.voided = 0 AND v.{value} IS NOT NULL"
                ") WHERE newest <= ? ORDER BY voter, newest",
                (*chunk, scope_id, mode, limit),
            )
            for voter, vote, round_id, reward in rows:
                found.setdefault(voter, []).append((vote, round_id, reward))
        return {voter: found[voter] for voter in voters if voter in found}

    async def incumbent_reference(self, session_id: int) -> Reference | None:
        """The ballots and verdict of the session's last rating round whose edit was kept (it set the bar), and how many of
        the ballots it closed with were removed since (/strike, /forget-me)."""
        row = await self.one(
            "SELECT id, reward, json_extract(outcome, '$.voters') FROM rounds WHERE session_id = ? AND status = 'closed' AND mode = 'rating' AND reward IS NOT NULL "
            "AND json_extract(outcome, '$.kept_edit') = 1 ORDER BY idx DESC LIMIT 1",
            (session_id,),
        )
        if row is None:
            return None
        ballots = [
            Ballot(*r)
            for r in await self.all(
                "SELECT voter, rating, choice FROM votes WHERE round_id = ? AND retracted = 0 AND voided = 0 ORDER BY cast_at, voter",
                (row[0],),
            )
        ]
        removed = max(0, (row[2] or 0) - len(ballots))
        # With every vote removed the bar falls back to what they were blended with (core.engine.scale_drift).
        return Reference(ballots, row[1], removed) if ballots or removed else None

    async def add_observations(self, scope_id: str, name: str, observations, comparisons=()) -> None:
        """Add a closed round's observations to the scope's model, inside the close's transaction."""
        row = await self.one("SELECT data FROM models WHERE scope_id = ? AND name = ?", (scope_id, name))
        data = apply_observations(json.loads(row[0]) if row else None, observations, comparisons)
        await self.execute(
            "INSERT INTO models (scope_id, name, data, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(scope_id, name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            (scope_id, name, json.dumps(data), time.time()),
        )

    async def put_q(self, scope_id: str, entries: Iterable[tuple[QKey, QEntry]]) -> None:
        await self._db.executemany(
            "INSERT INTO qvalues (scope_id, state, action, value, visits) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(scope_id, state, action) DO UPDATE SET value = excluded.value, visits = excluded.visits",
            [(scope_id, s, a, e.value, e.visits) for (s, a), e in entries],
        )


class SqliteReader(RowReader):
    """Read-only, synchronous, streaming access to a crowdtune database, for a worker thread or process:
    exports, a person's copy of their data, history scans. Whatever their size, they never run on the
    bot's event loop nor wait on its connection.

    Its own read-only connection; everything read through one reader comes from one snapshot (one read
    transaction: in WAL mode the bot keeps writing meanwhile). Each method yields one plain dict (or
    value) a row, fetched in batches, so memory stays bounded however long the history.
    StorageError when the database cannot be opened ("":memory:" cannot be shared with a reader).
    """

    def __init__(self, path: str | Path) -> None:
        if str(path) == ":memory:":
            raise StorageError("an in-memory database cannot be read from a worker: use a database file")
        try:
            self._db = sqlite3.connect(reading_uri(path), uri=True, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA query_only = ON")
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("BEGIN")  # one snapshot for everything read (taken at the first SELECT)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the database {path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, params: Iterable = ()) -> Iterator[tuple]:
        cursor = self._db.execute(sql, tuple(params))
        while batch := cursor.fetchmany(self.BATCH):
            yield from batch


def clone_rounds(path: str | Path, round_id: int, copies: int, voters: int = 3, chunk: int = 10_000) -> int:
    """Benchmarks and tests: append `copies` closed copies of round `round_id` (its plan, reward and
    outcome) to its session, each with `voters` ratings, by direct inserts (about 100,000 rounds in
    seconds, where playing them would take hours). Returns the id of the last round added."""
    # (closing: sqlite3's own context manager commits but leaves the connection open)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=60)) as db:  # a running bot may be writing
        session_id, mode, plan, reward, outcome, opened_at = db.execute(
            "SELECT session_id, mode, plan, reward, outcome, opened_at FROM rounds WHERE id = ?", (round_id,)
        ).fetchone()
        (first,) = db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM rounds WHERE session_id = ?", (session_id,)).fetchone()
        last = round_id
        for start in range(0, copies, chunk):
            db.execute("BEGIN IMMEDIATE")
            for idx in range(first + start, first + min(start + chunk, copies)):
                at = opened_at + idx
                cursor = db.execute(
                    "INSERT INTO rounds (session_id, idx, mode, plan, opened_at, closes_at, status, reward, outcome, closed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'closed', ?, ?, ?)",
                    (session_id, idx, mode, plan, at, at + 1, reward, outcome, at + 1),
                )
                last = cursor.lastrowid
                db.executemany(
                    "INSERT INTO votes (round_id, voter, rating, cast_at) VALUES (?, ?, ?, ?)",
                    [(last, f"user:{v}", 1 + (idx + v) % 10, at + 0.5) for v in range(voters)],
                )
            db.execute("UPDATE sessions SET rounds_done = rounds_done + ? WHERE id = ?", (min(start + chunk, copies) - start, session_id))
            db.execute("COMMIT")
    return last
