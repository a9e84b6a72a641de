"""Suite-wide settings and fixtures: no Hypothesis deadline; a real PostgreSQL server for the session
and a database location per backend, so storage and bot tests run against SQLite files and PostgreSQL alike."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import settings

from pgserver import PostgresServer

# No Hypothesis deadline anywhere: a test asserts behaviour, never what fits in a time window (the suite
# runs on loaded 2-core machines, where one example can take seconds).
settings.register_profile("crowdtune", deadline=None)
settings.load_profile("crowdtune")

BACKENDS = ("sqlite", "postgresql")


def _started_server():
    """A PostgreSQL server, started, stopped at the end. Without PostgreSQL installed the tests that need it are
    skipped, except in CI (CI=true), where that fails."""
    try:
        server = PostgresServer()
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """The test session's PostgreSQL server, started on first use and stopped at the end."""
    yield from _started_server()


@pytest.fixture
def own_postgres_server():
    """A PostgreSQL server of the test's own, which it may stop and start again (PostgresServer.halt, resume)
    without touching the other tests' databases."""
    yield from _started_server()


@pytest.fixture(params=BACKENDS)
def db_location(request, tmp_path):
    """Where a fresh database lives: a SQLite file path, or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "t.db")
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture(params=BACKENDS)
def small_disk_location(request, tmp_path):
    """Where a fresh database lives on a disk of 1 MiB that fills up as a real one does: a SQLite file on a tmpfs,
    or a PostgreSQL database whose tables are on one (PostgresServer.database_on_a_small_disk). Skipped unless
    this process may mount a tmpfs (root)."""
    kib = 1024
    if request.param == "postgresql":
        try:
            with request.getfixturevalue("postgres_server").database_on_a_small_disk(kib) as url:
                yield url
        except PermissionError as exc:
            pytest.skip(str(exc))
        return
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(disk)]).returncode:
        pytest.skip("a small disk needs root (mount -t tmpfs)")
    try:
        yield str(disk / "t.db")
    finally:
        subprocess.run(["umount", "-l", str(disk)])
