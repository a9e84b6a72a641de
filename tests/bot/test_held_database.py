"""A database a running crowdtune holds (README "Exit codes", 8): a copy of it would miss what is written after it."""

import pytest

from bot.errors import ExitCode
from test_cli import crowdtune, terminal_at_its_prompt


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_copy_db_from_a_database_a_running_crowdtune_holds_is_refused_and_writes_nothing(tmp_path, request, backend):
    """Found by a fresh-user trial: `copy-db --from` copied a database a terminal session held, exit 0 "copied into
    ...", while --help says "Stop the bot first": every vote after the copy was lost to an operator moving mid-run.
    It is refused as the writing commands refuse it, naming the holder, and makes nothing (no copy, nothing beside
    the source, which it opens to read only); once the holder has stopped, the copy runs."""
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    source = server.new_database() if server else "ct.db"
    with terminal_at_its_prompt(source, tmp_path) as holder:
        before = sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir())
        copy = crowdtune("copy-db", "--from", source, "--to", "copy.db", cwd=tmp_path, check=False)
        assert copy.returncode == ExitCode.DATABASE and copy.stdout == "" and copy.stderr.count("\n") == 1, copy
        line = copy.stderr
        assert line.startswith("crowdtune copy-db: another crowdtune is already running on "), line
        assert f"process {holder.pid}" in line and "stop it first" in line, line
        assert sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir()) == before
        holder.communicate(b"6\n", timeout=120)
    assert holder.returncode == 0
    copied = crowdtune("copy-db", "--from", source, "--to", "copy.db", cwd=tmp_path)
    assert copied.stdout.startswith("copied into "), copied.stdout
