"""A simulation killed outright (SIGKILL, a crash, the power cut) cannot stop its session as a signal's clean end
does, and a simulation is never resumed: found by a newcomer's trial, `crowdtune sessions` said it was active for
ever, after other simulations on the database had finished. The next simulation stops it, once no process holds
its scope (the database's one-run lock on SQLite; the scope's lock on PostgreSQL, where simulations run side by side)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from test_cli import CROWDTUNE, crowdtune


def _killed_simulation(cwd, db: str, out: str) -> subprocess.Popen:
    """A long simulation on `db`, running with two rounds done (its round files tell), to be killed by the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    process = subprocess.Popen([CROWDTUNE, "simulate", "--rounds", "3000", "--out", out, "--db", db], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):  # until two rounds have closed (a bound against a hang, not a time assertion)
        if (cwd / out / "round-0002.mid").exists():
            break
        time.sleep(0.1)
    return process


def _statuses(cwd, db: str) -> list[str]:
    listed = crowdtune("sessions", "--db", db, cwd=cwd).stdout
    return re.findall(r"^ +\d+  (\w+) ", listed, re.M)


def test_the_next_simulation_stops_one_that_was_killed(tmp_path):
    killed = _killed_simulation(tmp_path, "ct.db", "first")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert _statuses(tmp_path, "ct.db") == ["active"]
    second = crowdtune("simulate", "--rounds", "2", "--out", "second", "--db", "ct.db", cwd=tmp_path)
    assert re.search(r"^session 1, a simulation interrupted after \d+ of 3000 rounds \(its process ended without stopping it\), "
                     r"is stopped now$", second.stdout, re.M), second.stdout
    assert _statuses(tmp_path, "ct.db") == ["stopped", "finished"]
    third = crowdtune("simulate", "--rounds", "1", "--out", "third", "--db", "ct.db", cwd=tmp_path)
    assert "interrupted" not in third.stdout, third.stdout  # said once


def test_a_simulation_running_beside_on_postgresql_is_left_running(tmp_path, postgres_server):
    postgres_database = postgres_server.new_database()
    running = _killed_simulation(tmp_path, postgres_database, "first")
    try:
        beside = crowdtune("simulate", "--rounds", "1", "--out", "beside", "--db", postgres_database, cwd=tmp_path)
        assert "interrupted" not in beside.stdout, beside.stdout
        assert _statuses(tmp_path, postgres_database) == ["active", "finished"]
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    after = crowdtune("simulate", "--rounds", "1", "--out", "after", "--db", postgres_database, cwd=tmp_path)
    assert re.search(r"^session 1, a simulation interrupted after \d+ of 3000 rounds", after.stdout, re.M), after.stdout
    assert _statuses(tmp_path, postgres_database) == ["stopped", "finished", "finished"]
