"""A database's disk that fills up mid-run, for real on both backends: a SQLite file on a small tmpfs, and a PostgreSQL
database whose tables are on one (the server refuses with SQLSTATE 53100, disk_full). Both raise the same
DatabaseUnwritable naming the database, so every front end says it in one line with exit code 8; what was stored
before stays, and the refused transaction leaves nothing of itself."""

import contextlib
import os

import asyncpg
import pytest
from fulldisk import fill_disk
from pgserver import PASSWORD

from core.agent import QEntry
from storage import DatabaseUnwritable, is_postgres_url, naming_refusals, open_store
from storage.postgres import public_url
from storage.sqlite import RESERVE

ENTRIES = 200  # Q-table rows written per transaction: the 1 MiB disk fills within some dozens


def entries(n: int) -> list:
    return [((f"state {n}-{i} " * 8, f"action {i}"), QEntry(0.5, 1)) for i in range(ENTRIES)]


async def test_a_full_disk_is_the_same_storage_error_on_both_backends_and_keeps_what_was_stored(small_disk_location):
    shown = public_url(small_disk_location) if is_postgres_url(small_disk_location) else small_disk_location
    store = await open_store(small_disk_location)
    try:
        stored, refused = [], None
        for n in range(1000):
            try:
                await store.ensure_scope(f"user:{n}", "user")
                await store.put_q_entries(f"user:{n}", entries(n))
            except DatabaseUnwritable as problem:
                refused = problem
                break
            stored.append(f"user:{n}")
        assert refused is not None and len(stored) >= 1, len(stored)
        assert str(refused).startswith(f"the database {shown} cannot be written: "), refused
        assert "disk is full" in str(refused) or "No space left on device" in str(refused), refused
        assert PASSWORD not in str(refused) and "\n" not in str(refused)
        assert [await store.q_size(scope) for scope in stored] == [ENTRIES] * len(stored)
        assert await store.q_size(f"user:{len(stored)}") == 0  # the refused transaction left nothing
        # Any write on the full disk, in a transaction of its own or not, is refused the same way or goes in whole.
        for n in range(10):
            try:
                await store.ensure_scope(f"late:{n}", "user", "a long name " * 100)
            except DatabaseUnwritable as problem:
                assert str(problem).startswith(f"the database {shown} cannot be written: "), problem
    finally:
        await store.close()


async def test_the_postgresql_servers_other_insufficient_resources_are_named_the_same_way(postgres_server):
    """SQLSTATE class 53 beyond a full disk, raised for real by the server: temp_file_limit exceeded (53400) becomes
    the same DatabaseUnwritable; an error of another class (a unique key violated) goes on as it is."""
    url = postgres_server.new_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET work_mem = '64kB'; SET temp_file_limit = '64kB'")
        with pytest.raises(DatabaseUnwritable) as refused, naming_refusals("the-db"):
            await conn.execute("SELECT g FROM generate_series(1, 100000) AS g ORDER BY g DESC")
        assert str(refused.value) == "the database the-db cannot be written: temporary file size exceeds temp_file_limit (64kB)"
        await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)")
        with pytest.raises(asyncpg.UniqueViolationError), naming_refusals("the-db"):
            await conn.execute("INSERT INTO t VALUES (1)")
    finally:
        await conn.close()


@pytest.mark.parametrize("small_disk_location", ["sqlite"], indirect=True)
async def test_a_lock_file_the_full_disk_will_not_take_is_not_left_behind(small_disk_location):
    """Found by a fresh-user trial: a claim whose lock file could not be written (the disk full) was refused, as it
    should be, but left an empty `<database>.lock` behind for someone to wonder at. Nothing is left; the claim is free."""
    from pathlib import Path

    from storage import StorageError

    store = await open_store(small_disk_location)
    filler = Path(small_disk_location).with_name("filler")
    try:
        fill_disk(filler)
        with pytest.raises(StorageError, match="cannot write the lock file .*: the disk is full"):
            await store.claim_instance("a holder whose name needs room")
        assert not Path(f"{small_disk_location}.lock").exists()
        filler.unlink()
        await store.claim_instance("the same, with room")  # nothing held it meanwhile
        held = Path(f"{small_disk_location}.lock").read_bytes()  # who holds it, then the room kept for the end of a run
        assert held == b"the same, with room" + b"\0" * RESERVE
    finally:
        await store.close()


@pytest.mark.parametrize("small_disk_location", ["sqlite"], indirect=True)
@pytest.mark.parametrize("left_kib", [0, 72])
async def test_a_new_database_the_full_disk_refuses_is_not_made(small_disk_location, left_kib):
    """Found by a fresh-user trial: `run --db new.db` on a full disk was refused but left an empty new.db (the README:
    nothing is made on a refusal). With no room to open it (left_kib 0) it is refused before it is made; with room to
    open it but not to make crowdtune's tables in it (72 KiB), SQLite's refusal mid-way is said the same way and
    what it made is removed. Either way the line is the README's."""
    from pathlib import Path

    from storage import open_to_write

    folder = Path(small_disk_location).parent
    with open(folder / "filler", "wb") as fill:  # the disk filled up to `left_kib` KiB
        fill.write(b"\0" * (os.statvfs(folder).f_bfree * os.statvfs(folder).f_frsize - left_kib * 1024))
    new = folder / "new.db"
    with pytest.raises(DatabaseUnwritable) as refused:
        await open_to_write(new)
    assert str(refused.value) == f"the database {new} cannot be written: database or disk is full"
    assert sorted(path.name for path in folder.iterdir()) == ["filler"]


@pytest.mark.parametrize("small_disk_location", ["sqlite"], indirect=True)
async def test_the_room_kept_for_the_end_of_a_run_is_not_taken_for_room_again(small_disk_location):
    """Found by a trial of the bot: one second after its first refused write, "storing votes works again" while the disk
    was still full, the retry written into the lock file's RESERVE that the refusal gave back. A write first takes the
    reserve again: refused while the disk has no room for it (however often it is tried), it works once room is freed,
    the reserve kept again; only the run's end (spend_reserve) writes into it."""
    from pathlib import Path

    store = await open_store(small_disk_location)
    lock, holder = Path(f"{small_disk_location}.lock"), b"the bot"
    try:
        await store.claim_instance(holder.decode())
        filler = fill_disk(Path(small_disk_location).with_name("filler"))
        refused = 0
        for n in range(10):  # the first refusal gives the reserve back; none after it may use that room
            with contextlib.suppress(DatabaseUnwritable):
                await store.ensure_scope(f"full:{n}", "user", "a long name " * 100)
                continue
            refused += 1
        assert refused == 10 and lock.read_bytes() == holder, refused
        assert not await store.has_scope("full:9")
        filler.unlink()  # room again
        await store.ensure_scope("room", "user")
        assert lock.read_bytes() == holder + b"\0" * RESERVE  # kept again for the end of the run
        fill_disk(Path(small_disk_location).with_name("filler2"))
        with pytest.raises(DatabaseUnwritable):
            await store.ensure_scope("full again", "user", "a long name " * 100)
        store.spend_reserve()  # the run ends: its stop writes into the room kept for it
        await store.ensure_scope("the stop", "user")
        assert await store.has_scope("the stop")
    finally:
        await store.close()
