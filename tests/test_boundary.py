"""The core is pure: it imports no Discord, database driver, synthesiser or plotting library,
and it draws randomness only from generators passed in."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("discord", "aiosqlite", "sqlite3", "fluidsynth", "midi2audio", "matplotlib", "aiohttp", "bot", "storage")


def _loaded(modules: list[str]) -> list[str]:
    """Every module a fresh interpreter holds after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    return json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)


def test_importing_core_pulls_in_no_io_library():
    loaded = _loaded(sorted("core." + p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__"))
    assert "core.engine" in loaded  # the import really happened
    offenders = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_the_command_line_loads_no_heavy_library_before_a_command_runs():
    """Found by bench22: `crowdtune --help` took 0.29 s against its 0.3 s target (0.08 s documented): bot.errors
    imported storage.files, whose package imports core.agent and so numpy. Each command imports its own work."""
    loaded = _loaded(["bot.entry", "bot.cli"])
    heavy = [m for m in loaded if m.split(".")[0] in ("numpy", "discord", "aiosqlite", "matplotlib", "storage", "fluidsynth")]
    assert "bot.cli" in loaded and heavy == []


def test_core_never_uses_the_global_random_generator():
    for path in (ROOT / "core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                module, attribute = node.value.id, node.attr
                global_random = (module == "random" and attribute != "Random") or (module in ("np", "numpy") and attribute == "random")
                assert not global_random, f"{path.name}:{node.lineno} uses {module}.{attribute}: pass a generator in"
