"""A signal while a command claims its database (and stops what a killed run left active) ends it with its one line
and exit code (README "Exit codes"), no traceback. Found by a fresh-user trial: `kill -HUP` 1.5 s after `crowdtune
simulate` started, or SIGTERM 1.7 s after on PostgreSQL, printed an UnboundLocalError traceback, exit code 1: the
stop's handler said how many rounds were done before there was a count. Here the simulation is held in its start by a
lock on the scopes table, which this test takes before it starts: the signal lands there, every time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from test_cli import CROWDTUNE, crowdtune
from fakediscord import PROCESS_HANG_SECONDS

ENDINGS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated"), (signal.SIGQUIT, 131, "quit"),
           (signal.SIGHUP, 129, "hung up")]


@pytest.mark.parametrize(("number", "code", "line"), ENDINGS, ids=[number.name for number, _, _ in ENDINGS])
def test_a_signal_while_a_simulation_claims_its_database_is_its_one_line(tmp_path, postgres_server, number, code, line):
    url = postgres_server.new_database()
    crowdtune("simulate", "--rounds", "1", "--out", "first", "--db", url, cwd=tmp_path)  # the schema, and a session
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    with postgres_server.holding(url, "scopes"):
        process = subprocess.Popen([CROWDTUNE, "simulate", "--rounds", "200", "--out", "sg", "--db", url], cwd=tmp_path,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(PROCESS_HANG_SECONDS * 10):  # until it waits for the lock, choosing its scope (cli._fresh_scope)
                if postgres_server.lock_waits(url) or process.poll() is not None:
                    break
                time.sleep(0.1)
            assert postgres_server.lock_waits(url) == ["SELECT id, kind, name FROM scopes ORDER BY id"], process.poll()
            process.send_signal(number)
            out, err = process.communicate(timeout=PROCESS_HANG_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert (process.returncode, err, out) == (code, f"{line}\n", ""), (out, err)
    assert not (tmp_path / "sg").exists()  # nothing begun, nothing made
    listed = crowdtune("sessions", "--db", url, cwd=tmp_path).stdout
    assert re.findall(r"^ +\d+  (\w+) ", listed, re.M) == ["finished"], listed  # nothing left active
