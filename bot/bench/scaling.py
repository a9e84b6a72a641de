"""Past one process: votes per second for SQLite in one process against PostgreSQL with 1, 2 and 4
processes on this machine, in one run, as ratios to SQLite's figure.

    crowdtune bench scaling [--rounds N]   (PostgreSQL: $CROWDTUNE_BENCH_DB, else a private server as the tests start)

Each process does what a bot process does below the ballot box, through the same Conductor and Store:
SESSIONS sessions of its own servers run at once (as a shard's servers do), ROUNDS rounds each unless
--rounds says how many, each round takes VOTERS
votes written BATCH at a time (the ballot box commits what has queued in one transaction: 1 when votes
trickle in, more in a burst), then closes (settle and Q-updates in one transaction). Votes per second
count every acknowledged vote from the moment all processes start to the last one's end. No Discord,
no rendering: this measures what the database and the storage code carry, the part that changes
between backends and grows with processes. The machine is shared (see its description), so ratios in
the same run are the figures to compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

from bot.bench.common import machine_description
from bot.progress import plural
from bot.stopping import signals_held, unheard_by_children

SESSIONS = 4  # sessions each process runs at once
ROUNDS = 4  # rounds per session (--rounds)
VOTERS = 100  # votes per round
BATCHES = (1, 25)  # votes per transaction: a quiet bot, a burst
PROCESSES = (1, 2, 4)  # PostgreSQL processes sharing one database
START_SECONDS = 300.0  # a process not told to start by then gives up (the benchmark that started it is gone)
POLL_SECONDS = 5.0  # how often a wait for the processes checks that none has died


async def _work(location: str, worker: int, batch: int, rounds: int, start, results) -> None:
    from bot.conductor import Conductor
    from core.engine import SessionSpec
    from storage import open_store

    store = await open_store(location)
    try:
        conductor = Conductor(store)
        sessions = [
            await conductor.start(f"guild:{worker}{n:03d}{batch:03d}", "guild", f"c{worker}-{n}-{batch}", SessionSpec(rounds=rounds), actor="bench")
            for n in range(SESSIONS)
        ]
        results.put(None)  # ready: its store and sessions are open
        if not await asyncio.to_thread(start.acquire, True, START_SECONDS):
            raise RuntimeError("the benchmark never said start")
        began = time.perf_counter()

        async def run(session) -> tuple[int, int]:
            votes = closes = 0
            for _ in range(rounds):
                opened = await conductor.open_round(session.id)
                voters = [f"user:{worker}-{v}" for v in range(VOTERS)]
                for first in range(0, VOTERS, batch):
                    ops = [conductor.vote_op(opened.id, "rating", voter, 1 + (v % 10)) for v, voter in enumerate(voters[first : first + batch])]
                    votes += sum(r.counted for r in await conductor.apply_votes(ops))
                closes += (await conductor.close(opened.id)) is not None
            return votes, closes

        counts = await asyncio.gather(*(run(s) for s in sessions))
        results.put((sum(c[0] for c in counts), sum(c[1] for c in counts), began, time.perf_counter()))
    finally:
        await store.close()


def _worker(location: str, worker: int, batch: int, rounds: int, start, results) -> None:
    asyncio.run(_work(location, worker, batch, rounds, start, results))


def _measure(location: str, processes: int, batch: int, rounds: int) -> tuple[float, int, int]:
    """(votes per second, votes, closes) of `processes` processes on one database. The processes never get
    SIGINT or SIGTERM (no traceback of theirs on Ctrl-C): this one ends them when it ends early. It waits for them on
    the queue alone, never in a multiprocessing Barrier or Condition: a signal landing as one of those woke left its
    lock half-taken, and a traceback beside "interrupted". A semaphore's releases, which never wait, start them together."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Semaphore(0), context.Queue()
    workers = [context.Process(target=_worker, args=(location, w, batch, rounds, start, results)) for w in range(processes)]
    try:
        for process in workers:
            with unheard_by_children():
                process.start()
        _gathered(workers, results)  # every process is ready (RuntimeError if one died)
        for _ in workers:
            start.release()
        figures = _gathered(workers, results)
    finally:
        for process in workers:
            if process.pid is not None:  # started
                if process.is_alive():  # ended early (a signal, a failure): their figures are not wanted
                    process.kill()
                process.join()
    votes, closes = sum(f[0] for f in figures), sum(f[1] for f in figures)
    seconds = max(f[3] for f in figures) - min(f[2] for f in figures)
    return votes / seconds, votes, closes


def _gathered(workers: list, results) -> list:
    """One message of each process from `results` (its being ready, then its figures), however long it takes
    (--rounds); RuntimeError once one has died without it (its traceback is on stderr) rather than waiting for ever."""
    messages: list = []
    while len(messages) < len(workers):
        try:
            messages.append(results.get(timeout=POLL_SECONDS))
        except queue.Empty:
            if failed := [p.exitcode for p in workers if p.exitcode not in (None, 0)]:
                raise RuntimeError(f"a benchmark process failed (exit code {failed[0]})") from None
    return messages


Q_ROWS = 50_000  # Q-table entries written to measure what one costs on disk


async def _fill_q(location: str, keys: list) -> None:
    from core.agent import QEntry
    from storage import open_store

    store = await open_store(location)
    try:
        await store.ensure_scope("sim:q", "sim", "q")
        await store.put_q_entries("sim:q", ((key, QEntry(0.5, 3)) for key in keys))
    finally:
        await store.close()


def q_entry_bytes(scratch: Path, server, url: str) -> tuple[float, float | None]:
    """Bytes on disk per Q-table entry, indexes included: (SQLite, PostgreSQL or None without a private
    server to ask), for Q_ROWS realistic keys (bot/bench/qtable.py's: the presets' own keys)."""
    from bot.bench.qtable import _realistic_q_keys

    keys = _realistic_q_keys(Q_ROWS)
    lite = scratch / "q.db"
    asyncio.run(_fill_q(str(lite), []))
    empty = lite.stat().st_size
    asyncio.run(_fill_q(str(lite), keys))
    lite_bytes = (lite.stat().st_size - empty) / len(keys)
    if server is None:
        return lite_bytes, None
    from storage.postgres import relation_bytes

    asyncio.run(_fill_q(url, []))
    before = relation_bytes(url, "qvalues")
    asyncio.run(_fill_q(url, keys))
    return lite_bytes, (relation_bytes(url, "qvalues") - before) / len(keys)


@contextlib.contextmanager
def _postgres():
    """(a database URL maker, the private server or None): $CROWDTUNE_BENCH_DB (the same database each time;
    checked, and taken from .env too, by `crowdtune bench`: bot.settings), or a private server's fresh databases
    (tests/pgserver.py, in a source checkout), stopped and its folder removed however the block ends. A signal
    waits while it starts or stops (seconds; cut short, pg_ctl could leave a server no one stops) and comes after."""
    given = os.environ.get("CROWDTUNE_BENCH_DB")
    if given:
        yield (lambda: given), None
        return
    checkout = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(checkout / "tests"))
    from pgserver import PostgresServer  # the tests' own; needs a source checkout and Debian's postgresql

    server = None
    try:
        with signals_held():
            server = PostgresServer(durable=True).start()
        yield server.new_database, server
    finally:
        if server is not None:
            with signals_held():
                server.stop()


def main(rounds: int = ROUNDS) -> None:
    from storage.postgres import public_url

    with _postgres() as (new_database, server):
        if server is None:  # a given database that cannot be used: said before any figure, not as workers' tracebacks
            asyncio.run(_fill_q(new_database(), []))
        print(f"{SESSIONS} sessions a process, {plural(rounds, 'round')} each, {VOTERS} votes a round; votes per second, all processes together")
        with tempfile.TemporaryDirectory() as scratch:
            for batch in BATCHES:
                lite, votes, closes = _measure(str(Path(scratch) / f"bench-{batch}.db"), 1, batch, rounds)
                print(f"\n{plural(batch, 'vote')} a transaction:")
                print(f"  SQLite, 1 process:        {lite:8.0f} votes/s  (1.00x)  {votes} votes, {closes} closes")
                for processes in PROCESSES:
                    url = new_database()
                    rate, votes, closes = _measure(url, processes, batch, rounds)
                    print(
                        f"  PostgreSQL, {processes} process{'es' if processes > 1 else '  '}: {rate:8.0f} votes/s  "
                        f"({rate / lite:.2f}x)  {votes} votes, {closes} closes"
                    )
                # What waiting for the disk at each commit costs: SQLite's synchronous NORMAL does not wait
                # either (a commit survives the bot's crash, not the machine's power cut).
                url = new_database()
                rate, votes, closes = _measure(url + ("&" if "?" in url else "?") + "synchronous_commit=off", 1, batch, rounds)
                print(f"  PostgreSQL, 1 process, synchronous_commit off: {rate:8.0f} votes/s  ({rate / lite:.2f}x)")
            lite_bytes, pg_bytes = q_entry_bytes(Path(scratch), server, new_database())
            pg_text = f"{pg_bytes:.0f} bytes" if pg_bytes is not None else "not measured (a given database)"
            print(f"\nA Q-table entry on disk, indexes included ({Q_ROWS:,} realistic keys): SQLite {lite_bytes:.0f} bytes, PostgreSQL {pg_text}")
        print(f"\nPostgreSQL: {public_url(new_database()) if server is None else 'a private server (tests/pgserver.py), fsync and synchronous commit on as by default; SQLite: WAL, synchronous NORMAL'}")


if __name__ == "__main__":
    import argparse

    from bot.bench.common import quiet_signal_exit
    from bot.errors import ExitCode
    from bot.stopping import signals_raise
    from storage import StorageError

    parser = argparse.ArgumentParser(prog="python -m bot.bench.scaling", description="(`crowdtune bench scaling` checks --rounds)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    # SIGINT and SIGTERM end it cleanly (its workers and private server stopped) with their exit codes.
    with quiet_signal_exit(), signals_raise():
        print(machine_description())
        try:
            main(parser.parse_args().rounds)
        except StorageError as problem:
            print(f"crowdtune bench: {problem}", file=sys.stderr)
            sys.exit(ExitCode.DATABASE)
