"""`crowdtune bench scaling` ended by a signal ends as every command does: its cleanup run (its private
PostgreSQL server stopped and its folder removed, its worker processes ended), one line, exit code 130 or 143.

Found by a fresh-user trial: SIGTERM (`timeout 40 crowdtune bench scaling`) left the private server running,
re-parented to PID 1, with ~75 MB under /tmp, at every kill; Ctrl-C printed a worker's traceback and a
resource_tracker warning about leaked semaphores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import ExitCode
from fakediscord import PROCESS_HANG_SECONDS
from pgserver import find_bin

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
HEADLINE = "4 sessions a process, "  # printed once the private server runs, before the first measurement


def _processes_naming(text: str) -> list[str]:
    """The command lines of the running processes that hold `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and text.encode() in (command := (entry / "cmdline").read_bytes()):
                found.append(command.replace(b"\0", b" ").decode(errors="replace"))
    return found


def _stop_leaked_servers(folder: Path) -> None:
    """Stop any PostgreSQL server left running with its data under `folder` (what the old code leaked)."""
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    for data in folder.glob("crowdtune-pg-*/data"):
        subprocess.run([*as_user, find_bin("pg_ctl"), "stop", "-m", "immediate", "-D", str(data)], capture_output=True)


SIGNALS = pytest.mark.parametrize("how, to", [
    (signal.SIGTERM, "process"),  # kill PID, docker stop: crowdtune alone gets it
    (signal.SIGTERM, "group"),  # timeout(1): every process of the command gets it
    (signal.SIGINT, "group"),  # Ctrl-C on a terminal: the whole foreground group gets it
], ids=["SIGTERM-to-crowdtune", "SIGTERM-to-the-group", "SIGINT-to-the-group"])


@contextlib.contextmanager
def _bench_scaling(rounds: int, **variables: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`crowdtune bench scaling --rounds N` running (its process, its TMPDIR), up to its headline; killed with its
    group, and whatever private server it leaked stopped, however the block ends."""
    if find_bin("pg_ctl") is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql package)")
    # TMPDIR: the private server's folder lands in here, so this test finds its own server (other benchmarks
    # may run on the machine). Short, for the server's socket path; open to `nobody`, who runs it as root.
    temp = Path(tempfile.mkdtemp(prefix="ct-sig-", dir="/tmp"))
    temp.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CROWDTUNE_BENCH_DB", "CROWDTUNE_DB", "DISCORD_TOKEN")}
    env.update(variables, TMPDIR=str(temp))
    process = subprocess.Popen([CROWDTUNE, "bench", "scaling", "--rounds", str(rounds)], cwd=temp, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    watchdog = threading.Timer(PROCESS_HANG_SECONDS, os.killpg, (process.pid, signal.SIGKILL))
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith(HEADLINE):
                break
        assert lines and lines[-1].startswith(HEADLINE), (lines, process.stderr.read() if process.poll() is not None else "")
        yield process, temp
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _stop_leaked_servers(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _left_in(temp: Path) -> list[Path]:
    """What the benchmark left in its TMPDIR `temp`; not PulseAudio's folder, which `fluidsynth --version` (the
    machine's description) makes there when XDG_RUNTIME_DIR is unset."""
    return [path for path in temp.iterdir() if not path.name.startswith("pulse-")]


def _ends_as_told(process: subprocess.Popen, how: signal.Signals, to: str) -> None:
    """Send `how` to crowdtune alone or to its group; it ends with the signal's exit code and its one line."""
    code, word = (ExitCode.TERMINATED, "terminated") if how == signal.SIGTERM else (ExitCode.INTERRUPTED, "interrupted")
    if to == "group":
        os.killpg(process.pid, how)
    else:
        process.send_signal(how)
    # communicate ends once every process holding the output ended: crowdtune, the benchmark, its workers.
    out, err = process.communicate(timeout=PROCESS_HANG_SECONDS)
    assert process.returncode == code and err == f"{word}\n", (process.returncode, err)


@SIGNALS
def test_a_signal_stops_bench_scaling_and_its_private_server(how, to):
    # 10,000 rounds a session: the first measurement alone runs for hours, so the signal comes mid-run.
    with _bench_scaling(10_000) as (process, temp):
        [folder] = temp.glob("crowdtune-pg-*")  # the private server it started
        assert _processes_naming(str(folder))
        for _ in range(PROCESS_HANG_SECONDS * 10):  # until its workers run (their SQLite file): they get the group's signal
            if list(temp.glob("*/bench-1.db")) or process.poll() is not None:
                break
            time.sleep(0.1)
        assert list(temp.glob("*/bench-1.db")), process.poll()
        _ends_as_told(process, how, to)
        assert _processes_naming(str(folder)) == [] and not folder.exists()
        assert _left_in(temp) == []  # its scratch SQLite files too


@SIGNALS
def test_a_signal_while_bench_scaling_waits_for_its_workers_to_start(how, to, postgres_server):
    """The signal comes while the benchmark waits for its workers to be ready (it starts them together): a CI run's
    Ctrl-C there printed a traceback from multiprocessing's Barrier (its lock left inconsistent by the interrupt)
    beside "interrupted". Here the first PostgreSQL measurement's worker is held by a lock on the schema table, which
    this test takes once the benchmark's own check of the database is done (its headline), so the signal lands
    while the benchmark waits for it, every time."""
    url = postgres_server.new_database()
    # 1 round a session: the SQLite measurement before it ends soon.
    with _bench_scaling(1, CROWDTUNE_BENCH_DB=url) as (process, temp), postgres_server.holding(url, "crowdtune_schema"):
        for _ in range(PROCESS_HANG_SECONDS * 10):  # until the worker waits for the lock (the benchmark waits for it)
            if postgres_server.lock_waits(url) or process.poll() is not None:
                break
            time.sleep(0.1)
        assert len(postgres_server.lock_waits(url)) == 1, process.poll()
        _ends_as_told(process, how, to)
        assert _left_in(temp) == []  # its scratch SQLite files removed


@pytest.mark.skipif(find_bin("initdb") is None, reason="needs Debian's postgresql")
@pytest.mark.parametrize("fails", ["initdb", "pg_ctl"])
def test_a_private_server_whose_start_fails_leaves_no_folder(fails):
    """A signal to the process group (as `timeout` and systemd send it) can kill initdb or pg_ctl while the
    benchmark's server starts; the start then fails, and its folder (a half-made database, the password
    file) must go with it. A trial left /tmp/crowdtune-pg-* folders of up to 39 MB this way. Here the
    program that is cut short is replaced by one that fails."""
    from pgserver import PostgresServer

    server = PostgresServer()
    setattr(server, fails, shutil.which("false"))
    with pytest.raises(RuntimeError, match="failed"):
        server.start()
    assert not server.folder.exists()
    assert _processes_naming(str(server.folder)) == []
