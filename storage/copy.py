"""Copy a whole crowdtune database into an empty one, across backends (`crowdtune copy-db`): how a
community moves from its SQLite file to PostgreSQL (or back) without losing a vote.

Every table is copied row for row with its ids, in chunks, so the copy's export is identical to the
source's; the target is written in one transaction, so a failed copy leaves it empty. The interaction tokens the
database keeps while their work is under way are left out (storage.rows.without_secrets): a copy is handed on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Callable

from storage.protocol import Store
from storage.rows import TABLES, without_secrets


async def copy_database(source: Store, target: Store, committing: Callable[[], None] = lambda: None) -> dict[str, int]:
    """Copy every table of `source` into `target`, which must hold no data (ValueError otherwise).
    Both are of this crowdtune's schema (the target migrated as it was opened; the source, opened to read only by
    `crowdtune copy-db`, refused otherwise). `committing` is called once every row is read, as the target's
    transaction goes to its commit. Returns rows copied per table."""

    async def chunks() -> AsyncIterator[tuple[str, list[str], list[tuple]]]:
        for table, _ in TABLES:
            async with contextlib.aclosing(source.read_table(table)) as read:
                async for columns, rows in read:
                    yield table, columns, without_secrets(table, columns, rows)
        committing()

    # Each reader is closed as the copy ends, stopped midway too (Ctrl-C, SIGTERM, a failure): left to the event
    # loop's end, it was closed after the source's connection, each failing ("Connection closed") in lines of its own.
    async with contextlib.aclosing(chunks()) as chunked:
        return await target.write_tables(chunked)


MADE_MEANWHILE = "{} was made meanwhile; copy into a new, empty database"


async def copy_into(source: Store, location: str, committing: Callable[[], None] = lambda: None) -> tuple[str, dict[str, int]]:
    """Copy `source` into the database at `location` (a path, not yet checked, or a URL) and return its name as
    printed (a URL without its password) and the rows copied per table; `committing` as copy_database's. The target is claimed atomically, never looked
    at and then written: a database there (a URL, a SQLite file) is checked empty and filled in one transaction that
    holds it (SQLite's write lock; PostgreSQL: copy_database's locks); a SQLite file not there is made whole under a
    temporary name beside it, then linked to its name, which fails rather than replaces if a file took that name
    meanwhile (another copy racing this one, another program). ValueError, said as one line, when the target holds
    data or was made meanwhile (it is left as it is, and nothing of this copy is left behind)."""
    import storage  # its open_to_write looked up when called, so a test can make the target in between

    a_file = not (storage.is_postgres_url(location) or location == storage.IN_MEMORY)
    folder, prefix = os.path.dirname(os.path.abspath(location)), f".{os.path.basename(location)}."
    if a_file:
        from storage.sqlite import name_too_long

        # Made under a temporary name first (`_held_temporary`): its files beside it need room for that name's
        # additions (`.`, mkstemp's 8 random characters, `.copying`) too.
        if not os.path.lexists(location) and (why := name_too_long(location, len(prefix) - len(os.path.basename(location)) + 8 + len(COPYING))):
            raise storage.StorageError(f"the database {location} cannot be used: {why}")
        _remove_dead_copies(folder, prefix)
    if not a_file or os.path.lexists(location):
        if (holds := await _holding(location)) is not None:  # refused before opening it to write, which would upgrade it
            raise ValueError(f"{holds}; copy into a new, empty database")
        target = await storage.open_to_write(location)
        try:
            return target.path, await copy_database(source, target, committing)
        finally:
            await target.close()
    handle, temporary = _held_temporary(folder, prefix)
    try:
        mask = os.umask(0)  # read back at once: the file gets the mode a new database would (mkstemp's is 0600)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        try:
            target = await storage.open_to_write(temporary)
            try:
                counts = await copy_database(source, target, committing)
            finally:
                await target.close()  # its journal checkpointed into it and removed
        except storage.StorageError as problem:  # said of the target named, never of its temporary name
            problem.args = tuple(a.replace(temporary, location) if isinstance(a, str) else a for a in problem.args)
            raise
        try:
            os.link(temporary, location)  # never replaces, unlike a rename
        except FileExistsError:
            raise ValueError(MADE_MEANWHILE.format(location)) from None
        return location, counts
    finally:
        _remove(temporary)
        os.close(handle)  # its lock last: the file is gone before another copy could take it for a dead one's


async def _holding(location: str) -> str | None:
    """"NAME already holds data (TABLE)" when the database at `location` holds data, read without changing it (storage.viewing: an older
    one is not upgraded by a copy it refuses; the copy's own check, in its transaction, stays the one that counts); None
    when it holds none. An older PostgreSQL database, which is not copied to be read, is refused as one (its crowdtune
    data may be told only by upgrading it), naming its schema."""
    import storage
    from storage.protocol import OlderSchema

    try:
        async with storage.viewing(location, refuse_older=True) as view:
            for table, _ in TABLES:
                async with contextlib.aclosing(view.store.read_table(table)) as read:
                    async for _, rows in read:
                        if rows:
                            return f"{view.name} already holds data ({table})"
    except OlderSchema as older:
        return older.older
    except storage.NoDatabase:  # an empty file, or a database with no tables: a copy makes them
        pass
    return None


COPYING = ".copying"  # a new SQLite target's temporary name: .NAME.<random>.copying, beside it


def _remove(temporary: str) -> None:
    """Remove a temporary copy and SQLite's files beside it."""
    for leftover in (temporary, temporary + "-wal", temporary + "-shm", temporary + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leftover)


def _held_temporary(folder: str, prefix: str) -> tuple[int, str]:
    """A new temporary file for a copy, in `folder`, and its descriptor, which holds an exclusive flock on it while the
    copy runs (SQLite's own locks are fcntl's, apart from it): a file no process holds so is a dead copy's
    (`_remove_dead_copies`). Made again if a dead copy's cleaning removed it between its making and its lock."""
    while True:
        handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=COPYING, dir=folder)
        fcntl.flock(handle, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(temporary).st_ino == os.fstat(handle).st_ino:
                return handle, temporary
        os.close(handle)


def _remove_dead_copies(folder: str, prefix: str) -> None:
    """Remove what copies into the same target left when killed (SIGKILL, a power cut: no cleanup ran): each
    temporary file whose lock (`_held_temporary`) no process holds, with SQLite's files beside it; a running copy's
    is left alone."""
    for name in os.listdir(folder):
        if not (name.startswith(prefix) and name.endswith(COPYING)):
            continue
        try:
            handle = os.open(os.path.join(folder, name), os.O_RDONLY)
        except OSError:  # gone meanwhile, or not ours to read: left as it is
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a copy running now
            continue
        else:
            _remove(os.path.join(folder, name))  # the lock held, so no copy takes the name meanwhile
        finally:
            os.close(handle)
