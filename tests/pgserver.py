"""A real PostgreSQL server for the test session: Debian's `postgresql` package, `initdb` into a
temporary folder, `pg_ctl` on a private port and socket folder, stopped at the end.

PostgreSQL refuses to run as root, so as root (CI) the server runs as `nobody` through `runuser`.
Host connections need a password (scram-sha-256), so the tests exercise what an operator's URL
carries; each test gets a fresh database from `new_database()`.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "crowdtune"
PASSWORD = "pg-test-secret-7f3a"  # tests check that it never appears in a message


def find_bin(name: str) -> str | None:
    """The newest installed PostgreSQL's `name` (Debian keeps them off PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, durable: bool = False) -> None:
        self.durable = durable  # fsync on, as a production server runs (benchmarks); off for tests
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise FileNotFoundError("PostgreSQL is not installed (make test installs Debian's postgresql package)")
        self.folder = Path(tempfile.mkdtemp(prefix="crowdtune-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "nobody", "--"]
            shutil.chown(self.folder, "nobody")

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as_user, *command], capture_output=True, text=True, cwd=self.folder)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> PostgresServer:
        """Make and start the server; if that fails or is cut short (a signal to the process group kills
        initdb or pg_ctl), whatever was made is stopped and its folder removed before the error goes on."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PostgresServer:
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_user:
            shutil.chown(pwfile, "nobody")
        self._run(
            self.initdb, "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )
        pwfile.unlink()
        # fsync off for tests: they kill bot processes, never the server; durability against a power cut
        # is PostgreSQL's own business and costs seconds on a loaded machine.
        self.resume()
        return self

    def halt(self) -> None:
        """Stop the server as an operator does (`pg_ctl stop -m fast`: sessions are ended, what was committed
        stays), keeping its data for `resume`."""
        self._run(self.pg_ctl, "stop", "-w", "-m", "fast", "-D", str(self.data))

    def resume(self) -> None:
        """Start the server on its data: at first, or again after `halt`, on the same port."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync={'on' if self.durable else 'off'} "
            "-c max_connections=300 -c shared_buffers=32MB"
        )
        self._run(self.pg_ctl, "start", "-w", "-t", "120", "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([*self._as_user, self.pg_ctl, "stop", "-m", "immediate", "-D", str(self.data)], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"t{next(self._names)}"
        createdb = find_bin("createdb")
        result = subprocess.run(
            [createdb, "-h", str(self.folder), "-p", str(self.port), "-U", USER, name], capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"createdb failed: {result.stderr}")
        return self.url(name)

    def psql(self, url: str, sql: str) -> str:
        """Run SQL as the superuser over the socket (for tests that set up or inspect a database)."""
        database = url.rsplit("/", 1)[1]
        result = subprocess.run(
            [find_bin("psql"), "-h", str(self.folder), "-p", str(self.port), "-U", USER, "-d", database, "-At", "-v",
             "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True,
        )
        if result.returncode:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout

    @contextlib.contextmanager
    def holding(self, url: str, table: str) -> Iterator[None]:
        """`table` of the database `url` locked (ACCESS EXCLUSIVE: a read of it waits too) from the block's start to its
        end, by a transaction of a psql of its own (the lock goes with its connection)."""
        holder = subprocess.Popen(
            [find_bin("psql"), "-h", str(self.folder), "-p", str(self.port), "-U", USER, "-d", url.rsplit("/", 1)[1],
             "-q", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            holder.stdin.write(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n\\echo held\n")
            holder.stdin.flush()
            if holder.stdout.readline() != "held\n":  # said once the lock is taken
                raise RuntimeError(f"psql could not lock {table}")
            yield
        finally:
            holder.stdin.close()
            holder.wait()

    def lock_waits(self, url: str) -> list[str]:
        """The statements that wait for a lock in the database `url` now, one per connection (pg_stat_activity)."""
        database = url.rsplit("/", 1)[1]
        return self.psql(url, f"SELECT query FROM pg_stat_activity WHERE datname = '{database}' AND wait_event_type = 'Lock'").splitlines()

    @contextlib.contextmanager
    def database_on_a_small_disk(self, kib: int) -> Iterator[str]:
        """A new database (its URL) whose tables and indexes go on a tmpfs of `kib` KiB (a tablespace there, its
        default_tablespace), which fills up as a server's disk does: the server then refuses writes with SQLSTATE
        53100, disk_full. Mounting needs root (PermissionError otherwise). Dropped and unmounted at the end."""
        if os.geteuid() != 0:
            raise PermissionError("a small disk for the server needs root (mount -t tmpfs)")
        number = next(self._names)
        disk = self.folder / f"disk{number}"  # inside the server's folder: the server's user reaches it
        disk.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(disk)], capture_output=True, text=True)
        if mounted.returncode:
            raise PermissionError(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        try:
            if self._as_user:
                shutil.chown(disk, "nobody")
            url = self.new_database()
            self.psql(url, f"CREATE TABLESPACE small{number} LOCATION '{disk}'")
            try:
                self.psql(url, f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET default_tablespace = small{number}")
                yield url
            finally:
                self.psql(self.url("postgres"), f"DROP DATABASE {url.rsplit('/', 1)[1]} WITH (FORCE)")
                self.psql(self.url("postgres"), f"DROP TABLESPACE small{number}")
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
