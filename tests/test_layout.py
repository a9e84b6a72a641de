"""The layout stays readable (issue 10): no module in bot/ over about 400 lines and no class over about 250
unless its docstring says why; nothing outside storage/ names a storage backend or a database driver's
SQL; every Store method each backend (SQLite, PostgreSQL) offers is declared by the protocol, and the
other way round."""

import ast
import inspect
import re
from pathlib import Path

import pytest

from storage.postgres import PostgresStore
from storage.protocol import Store
from storage.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
MODULE_LINES, CLASS_LINES = 400, 250
REASON = "Why this module is long:"
CLASS_REASON = "Why this class is long:"


def _python_files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def test_bot_modules_and_classes_stay_small_or_say_why():
    too_long = []
    for path in _python_files("bot"):
        text = path.read_text()
        tree = ast.parse(text)
        if len(text.splitlines()) > MODULE_LINES and REASON not in (ast.get_docstring(tree) or ""):
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > CLASS_LINES:
                if CLASS_REASON not in (ast.get_docstring(node) or ""):
                    too_long.append(f"{path.relative_to(ROOT)}: class {node.name}")
    assert too_long == []


def test_only_storage_names_a_backend_or_runs_sql():
    writes_sql = re.compile(r"\b(INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE|SELECT [^\"']*( FROM |\())")
    offenders = []
    for folder in ("bot", "core"):
        for path in _python_files(folder):
            text = path.read_text()
            if (
                re.search(r"\b(SqliteStore|PostgresStore)\b", text)
                or writes_sql.search(text)
                or re.search(r"^\s*(import|from) (sqlite3|aiosqlite|asyncpg)\b", text, re.M)
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _public_methods(cls) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize("backend", [SqliteStore, PostgresStore])
def test_each_backend_implements_the_store_protocol_exactly(backend):
    declared, offered = _public_methods(Store), _public_methods(backend)
    missing = sorted(set(declared) - set(offered))
    assert missing == []
    differing = [name for name in declared if list(declared[name].parameters) != list(offered[name].parameters)]
    assert differing == []
    # A coroutine where the protocol declares one; an async generator where it declares an iterator.
    kinds = {
        name: (inspect.iscoroutinefunction(getattr(Store, name)), inspect.iscoroutinefunction(getattr(backend, name)))
        for name in declared
    }
    assert [name for name, (want, made) in kinds.items() if want != made] == []
    # What the backend offers beyond the protocol is used only inside storage/ (or nowhere).
    extra = sorted(set(offered) - set(declared))
    used_outside = [
        name for name in extra
        for folder in ("bot",)
        for path in _python_files(folder)
        if re.search(rf"\.{name}\(", path.read_text())
    ]
    assert used_outside == []


def test_a_non_editable_install_ships_every_package(tmp_path):
    # The Docker image installs with `pip install .`: a package missing from the wheel is an ImportError there.
    # Built from a copy, so no build/ folder left by an earlier build can fill the gaps.
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for top in ("bot", "core", "storage"):
        shutil.copytree(ROOT / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        str(init.relative_to(ROOT))
        for top in ("bot", "core", "storage")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert packages and packages <= shipped, sorted(packages - shipped)
