"""The core is pure: it imports no Discord, database driver, synthesiser or plotting library,
and it draws randomness only from generators passed in."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("discord", "aiosqlite", "sqlite3", "fluidsynth", "midi2audio", "matplotlib", "aiohttp", "bot", "storage")


def test_importing_core_pulls_in_no_io_library():
    modules = sorted(p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module('core.' + name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert "core.engine" in loaded  # the import really happened
    offenders = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_core_never_uses_the_global_random_generator():
    for path in (ROOT / "core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                module, attribute = node.value.id, node.attr
                global_random = (module == "random" and attribute != "Random") or (module in ("np", "numpy") and attribute == "random")
                assert not global_random, f"{path.name}:{node.lineno} uses {module}.{attribute}: pass a generator in"
