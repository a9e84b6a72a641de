"""What a terminal session says when the database stops taking writes (a full disk, a PostgreSQL server gone): only what
is true at that moment. Found by a fresh-user trial: a database holding only a finished simulation, on a full disk,
`crowdtune run --new` said "the open round stays open and the next crowdtune run resumes it" with no round open; and a
rating typed as the server went away was lost without a word (tests/bot/test_database_down.py)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from test_cli import crowdtune
from test_terminal import CROWDTUNE


def on_a_nearly_full_disk(folder: Path, db: Path, free_kib: int, stdin: str) -> tuple[str, Path]:
    """`crowdtune run --new` on a copy of `db` on a tmpfs (in a mount namespace of its own) with `free_kib` KiB left:
    its stderr and the copy afterwards."""
    disk, after = folder / f"disk{free_kib}", folder / f"after{free_kib}"
    disk.mkdir(), after.mkdir()
    script = (
        f'mount -t tmpfs -o size=2048k tmpfs "{disk}" && cp "{db}" "{disk}/" && '
        f'dd if=/dev/zero of="{disk}/filler" bs=1k count=$(( $(stat -f -c %a "{disk}") * 4 - {free_kib} )) 2>/dev/null; '
        f'"$@" --db "{disk}/{db.name}"; cp "{disk}/{db.name}"* "{after}/"'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", CROWDTUNE, "run", "--new", "--rounds", "30", "--no-audio"],
                            cwd=folder, env=env, input=stdin, capture_output=True, text=True, timeout=120)
    return result.stderr, after / db.name


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="a tmpfs of its own needs root and unshare")
def test_a_full_disk_promises_an_open_round_only_when_one_is_open(tmp_path):
    """The disk fills at the session's start or later, as the room left allows: the line says a round stays open only
    when the database holds one afterwards (and then always that it resumes), and at least one start fails with no round open (the trial's case)."""
    crowdtune("simulate", "--rounds", "1", "--out", "rs", "--db", "sim.db", cwd=tmp_path)
    cases = []
    for free_kib in (64, 128, 192, 256):
        stderr, after = on_a_nearly_full_disk(tmp_path, tmp_path / "sim.db", free_kib, "7\n" * 30)
        with sqlite3.connect(after) as raw:
            (open_rounds,) = raw.execute("SELECT count(*) FROM rounds WHERE status = 'open'").fetchone()
        if open_rounds:  # said to resume, or a rating typed to be asked for again
            assert "resumes" in stderr or "asks for it again" in stderr, (free_kib, stderr)
        else:
            assert "round stays open" not in stderr, (free_kib, stderr)
        cases.append(("cannot be written" in stderr, open_rounds))
    assert (True, 0) in cases, cases
