"""Every operator command on a database whose disk is full, for real: a tmpfs just big enough for a good database,
the rest filled with dd, as a fresh-user trial found it (each command said "cannot be used: disk I/O error", exit
code 8, even those that only read, and left a -shm and a -wal beside the database; `run --db new.db` left an
empty new.db). Commands that only read read it; those that write say the README's line and make nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_bad_input_start import CROWDTUNE, _env, contents, digest, template_db  # noqa: F401 (a fixture)

from bot.errors import ExitCode

FULL = "the database disk/ct.db cannot be written: database or disk is full"
# Each command, run in turn on the full disk from the test's folder: (its arguments, its exit code, its one line on
# stderr or None for a command that reads and succeeds).
COMMANDS = {
    "sessions": (["sessions", "--db", "disk/ct.db"], ExitCode.OK, None),
    "export": (["export", "--db", "disk/ct.db", "--out", "out/ct.zip"], ExitCode.OK, None),
    "copy-db": (["copy-db", "--from", "disk/ct.db", "--to", "out/copy.db"], ExitCode.OK, None),
    "run": (["run", "--db", "disk/ct.db", "--rounds", "3", "--no-audio"], ExitCode.DATABASE, f"crowdtune run: {FULL}"),
    "simulate": (["simulate", "--db", "disk/ct.db", "--rounds", "3", "--out", "out/sim"], ExitCode.DATABASE, f"crowdtune simulate: {FULL}"),
    "reset": (["reset", "--db", "disk/ct.db", "--scope", "local:root", "--yes"], ExitCode.DATABASE, f"crowdtune reset: {FULL}"),
    "forget-user": (["forget-user", "--db", "disk/ct.db", "--yes", "--out", "out/root.json", "local:root"], ExitCode.DATABASE,
                    f"crowdtune forget-user: {FULL}"),
    "run-new": (["run", "--db", "disk/new.db", "--rounds", "3", "--no-audio"], ExitCode.DATABASE,
                "crowdtune run: the database disk/new.db cannot be written: database or disk is full"),
    # Found by a trial: the line named the copy's temporary file (.c2.db.r6nhywyc.copying), and simulate left an
    # empty disk/simout/ (the database elsewhere, only --out on the full disk).
    "copy-db-to": (["copy-db", "--from", "disk/ct.db", "--to", "disk/c2.db"], ExitCode.DATABASE,
                   "crowdtune copy-db: the database disk/c2.db cannot be written: database or disk is full"),
    "simulate-out": (["simulate", "--db", "out/sim.db", "--rounds", "3", "--out", "disk/simout"], None, None),
}


def on_a_full_disk(folder: Path, db: Path) -> dict[str, tuple[int, str, list[str]]]:
    """Run every one of COMMANDS in `folder`, where `disk` is a tmpfs holding a copy of `db` as ct.db and a file
    filling the rest; returns each one's exit code, stderr and the files on the disk after it (the filler apart).
    Skipped unless root may mount a tmpfs in a mount namespace of its own."""
    if os.geteuid() != 0 or not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("a full disk needs root and unshare -m (a tmpfs in a mount namespace of its own)")
    (folder / "disk").mkdir()
    (folder / "out").mkdir()
    (folder / "after").mkdir()
    pages = -(-db.stat().st_size // 4096)
    steps = "".join(
        f'echo 7 | "$crowdtune" {" ".join(argv)} >/dev/null 2>"{name}.err"; echo $? >"{name}.code"; ls disk >"{name}.files"\n'
        for name, (argv, _, _) in COMMANDS.items()
    )
    script = (f'mount -t tmpfs -o size={pages * 4 + 64}k tmpfs disk || exit 99\ncp "{db}" disk/ct.db\n'
              "dd if=/dev/zero of=disk/fill bs=4k 2>/dev/null\n"  # until the disk is full
              f"{steps}cp disk/ct.db after/\n"
              # What an older crowdtune's failed reads left beside it (an empty -wal, a -shm): no commits to miss.
              ": >disk/ct.db-wal; : >disk/ct.db-shm\n"
              '"$crowdtune" sessions --db disk/ct.db >leftovers.out 2>&1; echo $? >leftovers.code\n')
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=folder, env={**_env({}), "crowdtune": CROWDTUNE},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (folder / "leftovers.code").read_text().strip() == "0", (folder / "leftovers.out").read_text()
    assert "1 session in disk/ct.db" in (folder / "leftovers.out").read_text()
    return {name: (int((folder / f"{name}.code").read_text()), (folder / f"{name}.err").read_text(),
                   sorted(set((folder / f"{name}.files").read_text().split()) - {"fill"})) for name in COMMANDS}


def test_on_a_full_disk_reading_commands_read_and_writing_ones_say_it_and_make_nothing(tmp_path, template_db):  # noqa: F811
    db = Path(shutil.copy(template_db, tmp_path / "good.db"))
    rows, before = contents(db), digest(db)
    results = on_a_full_disk(tmp_path, db)
    for name, (_, code, line) in COMMANDS.items():
        got_code, stderr, files = results[name]
        if code is None:  # said as its own test says it: here, only what it leaves matters
            assert got_code != 0, (name, stderr)
        else:
            assert got_code == code, (name, got_code, stderr)
            assert stderr.strip() == (line or ""), (name, stderr)
        assert files == ["ct.db"], (name, files)  # no -wal, -shm, .lock nor new.db left
    assert (tmp_path / "out" / "ct.zip").stat().st_size > 0
    assert contents(tmp_path / "out" / "copy.db") == rows
    assert digest(tmp_path / "after" / "ct.db") == before
