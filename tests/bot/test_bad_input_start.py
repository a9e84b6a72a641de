"""Start-up problems, for the terminal session and the Discord bot alike: a corrupt database, a
read-only database, a missing soundfont, a full disk. Each is one clear line and its exit code at
start, and the data already in the database is all still there."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_bad_input import in_empty_folder, run_cli

from bot.errors import ExitCode

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
MODES = {"terminal": {}, "bot": {"DISCORD_TOKEN": "well.formed.token", "CROWDTUNE_API_BASE": "http://127.0.0.1:9/api/v10"}}
# A terminal session's options (the bot refuses them: its sessions take theirs from /compose).
TERMINAL_OPTIONS = {"terminal": ["--rounds", "3"], "bot": []}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """A database with a session, rounds and votes in it (two rounds rated in the terminal)."""
    folder = tmp_path_factory.mktemp("template")
    subprocess.run([CROWDTUNE, "run", "--rounds", "3", "--db", "ct.db", "--no-audio"], input="7\n4\n", cwd=folder,
                   env=_env({}), capture_output=True, text=True, check=True, timeout=120)
    return folder / "ct.db"


@pytest.fixture
def db(tmp_path, template_db) -> Path:
    return Path(shutil.copy(template_db, tmp_path / "ct.db"))


def contents(db: Path) -> tuple:
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return tuple(raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in ("sessions", "rounds", "votes", "qvalues"))


def _env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
    return {**env, **extra}


def start(folder: Path, mode: str, db: Path, extra_env: dict | None = None) -> tuple[int, str]:
    """`crowdtune run` started in-process, as in `mode`, with a rating on standard input (a terminal session
    with nothing to read stops before the database: tests/bot/test_cli.py)."""
    with in_empty_folder():
        sys.stdin = io.StringIO("7\n")
        os.environ.update({**MODES[mode], **(extra_env or {})})
        return run_cli(["run", "--db", str(db), *TERMINAL_OPTIONS[mode]])


def assert_one_clear_line(code: int, stderr: str, *words: str, expected: ExitCode = ExitCode.DATABASE) -> None:
    lines = stderr.strip().splitlines()
    assert code == expected and len(lines) == 1 and "Traceback" not in stderr, (code, stderr)
    assert all(word in lines[0] for word in words), stderr
    assert "well.formed.token" not in stderr


@pytest.mark.parametrize("mode", MODES)
def test_a_corrupt_database_is_one_clear_line_and_left_as_it_was(tmp_path, mode):
    db = tmp_path / "ct.db"
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    before = digest(db)
    assert_one_clear_line(*start(tmp_path, mode, db), "cannot be used")
    assert digest(db) == before


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_soundfont_is_one_clear_line_and_the_database_is_untouched(tmp_path, mode, db):
    before = digest(db)
    code, stderr = start(tmp_path, mode, db, {"CROWDTUNE_SOUNDFONT": str(tmp_path / "missing.sf2")})
    assert_one_clear_line(code, stderr, expected=ExitCode.SETTING)  # a path typed wrong: a bad setting
    assert "soundfont" in stderr.lower() or "CROWDTUNE_SOUNDFONT" in stderr
    assert digest(db) == before


@pytest.fixture
def read_only(tmp_path):
    """Makes a file read-only even for root (chattr +i), or by its mode for anyone else."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
        elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root where chattr +i is not possible: no way to make a file read-only")
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.mark.parametrize("mode", MODES)
def test_a_read_only_database_is_one_clear_line_at_start_and_nothing_is_lost(tmp_path, mode, read_only, db):
    before, rows = digest(db), contents(db)
    read_only(db)
    assert_one_clear_line(*start(tmp_path, mode, db), "cannot be written", "readonly")
    assert digest(db) == before and contents(db) == rows


def run_on_a_full_disk(folder: Path, db: Path, mode: str) -> tuple[int, str, Path]:
    """Start crowdtune with `db` on a disk with no room left: a tmpfs just big enough for the
    database (in a mount namespace, as root), or else with a file size limit (RLIMIT_FSIZE) that
    fails writes the same way. Returns the exit code, stderr and the database afterwards."""
    args = [CROWDTUNE, "run", *TERMINAL_OPTIONS[mode], *(["--no-audio"] if TERMINAL_OPTIONS[mode] else [])]
    env = _env(MODES[mode])
    after = folder / "after"
    after.mkdir()
    if os.geteuid() == 0 and shutil.which("unshare") and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0:
        disk = folder / "disk"
        disk.mkdir()
        pages = -(-db.stat().st_size // 4096)
        script = (
            f'mount -t tmpfs -o size={pages * 4 + 32}k tmpfs "{disk}" && cp "{db}" "{disk}/" && '
            f'"$@" --db "{disk}/{db.name}"; code=$?; cp "{disk}/{db.name}"* "{after}/"; exit $code'
        )
        result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *args], cwd=folder, env=env, input="7\n",
                                capture_output=True, text=True, timeout=120)
    else:
        shutil.copy(db, after / db.name)

        def limit_file_size() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

        result = subprocess.run([*args, "--db", str(after / db.name)], cwd=folder, env=env, input="7\n", capture_output=True,
                                text=True, timeout=120, preexec_fn=limit_file_size)
    return result.returncode, result.stderr, after / db.name


@pytest.mark.parametrize("mode", MODES)
def test_a_full_disk_is_one_clear_line_at_start_and_nothing_is_lost(tmp_path, mode, db):
    rows = contents(db)
    code, stderr, after = run_on_a_full_disk(tmp_path, db, mode)
    assert_one_clear_line(code, stderr, str(after.name))
    assert "disk is full" in stderr or "disk I/O error" in stderr, stderr
    assert contents(after) == rows


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", [1, "latest", "newer"])
def test_another_programs_database_with_a_user_version_is_left_as_it_was(tmp_path, mode, version):
    from storage.migrations import SCHEMA_VERSION

    db = tmp_path / "theirs.db"
    number = {"latest": SCHEMA_VERSION, "newer": SCHEMA_VERSION + 3}.get(version, version)
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, note TEXT)")
        raw.execute(f"PRAGMA user_version = {number}")
    before = digest(db)
    assert_one_clear_line(*start(tmp_path, mode, db), "another program's database")
    assert digest(db) == before and not Path(f"{db}-wal").exists()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)


@pytest.mark.parametrize("mode", MODES)
def test_a_damaged_data_page_is_found_before_anything_is_written(tmp_path, mode, db):
    with sqlite3.connect(db) as raw:
        (page_size,) = raw.execute("PRAGMA page_size").fetchone()
        (root,) = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'votes'").fetchone()
    data = bytearray(db.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\x0d" + b"\xff" * (page_size - 1)  # a leaf page of garbage
    db.write_bytes(bytes(data))
    before = digest(db)
    assert_one_clear_line(*start(tmp_path, mode, db), "damaged")
    assert digest(db) == before


@pytest.mark.parametrize("mode", MODES)
def test_a_folder_as_the_database_is_one_clear_line(tmp_path, mode):
    (tmp_path / "folder").mkdir()
    assert_one_clear_line(*start(tmp_path, mode, tmp_path / "folder"), "a folder, not a file", expected=ExitCode.FILE)
    assert list((tmp_path / "folder").iterdir()) == []
