"""`make run`, the README's first command, on a terminal: found by a fresh-user trial, Ctrl-C ended with crowdtune's
clean lines and then make's "make: *** [Makefile:44: run] Error 130", which a newcomer reads as a failure. An interrupt
is crowdtune's clean end (exit code 130); any other exit code is still make's error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from test_terminal import WAIT

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def _make_run(tmp_path: Path, args: str) -> pexpect.spawn:
    """`make run` in this repository with the tests' virtual environment as its VENV, under a pseudo-terminal."""
    stamp = subprocess.run("cat pyproject.toml | cksum | cut -d' ' -f1", shell=True, cwd=REPO, capture_output=True, text=True).stdout.strip()
    # Installed, and up to date for make: a checkout whose pyproject.toml is newer than the environment's stamp (a second
    # working tree sharing it) would have make run reinstall the package from this checkout into that environment.
    if shutil.which("make") is None or not (VENV / f".installed-{stamp}").exists() or subprocess.run(
        ["make", "-q", "-C", str(REPO), f"VENV={VENV}", str(VENV / f".installed-{stamp}")], capture_output=True
    ).returncode != 0:
        pytest.skip("no make, or the tests' environment is not the one make run would use (it would install one)")
    # As a newcomer types it: not under the `make test` that runs these tests (CI's), whose MAKELEVEL would make this
    # make's lines read "make[1]: ...".
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB", "MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return pexpect.spawn("make", ["-C", str(REPO), "run", f"VENV={VENV}", f"ARGS={args} --db {tmp_path}/ct.db --out {tmp_path}/rounds"],
                         env=env, encoding="utf-8", timeout=WAIT)


def test_ctrl_c_under_make_run_ends_without_makes_error_line(tmp_path):
    child = _make_run(tmp_path, "--no-audio")
    index = child.expect_exact(["your rating, 1-10? ", "missing system packages"])
    if index == 1:
        pytest.skip("make run would install system packages first")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert "interrupted" in child.before and "make: ***" not in child.before, child.before
    # Nothing after crowdtune's last line. Make heard the Ctrl-C too (the terminal sends it to the whole foreground job)
    # and ends by it once crowdtune has ended, as an interrupted program does (130 in the shell, so a script running
    # it stops too): no exit code of its own, such as its 2 for an error.
    assert child.before.rstrip().endswith("interrupted"), child.before
    assert (child.exitstatus, child.signalstatus) == (None, signal.SIGINT), (child.exitstatus, child.signalstatus)


def test_a_real_failure_under_make_run_is_still_makes_error(tmp_path):
    child = _make_run(tmp_path, "--rounds x")
    child.expect(pexpect.EOF)
    child.close()
    if "missing system packages" in child.before:
        pytest.skip("make run would install system packages first")
    assert "crowdtune run: error: --rounds" in child.before and "make: *** [Makefile:" in child.before, child.before
    assert child.exitstatus != 0
