"""A signal at any moment once crowdtune's code runs ends the command with its one line and exit code (README "Exit
codes"). Found by a fresh-user trial: Ctrl-C in the first second of `crowdtune run` (its imports) printed a
KeyboardInterrupt traceback and died by the signal; `simulate ... &` (SIGINT ignored) ran all its rounds after a
`kill -INT`, and SIGTERM then ended it with 143 but no line. The command is started as the installed script starts
it, from pyproject.toml's entry point, so the test follows whatever that names."""

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from bot.entry import ENDINGS
from bot.errors import ExitCode
from bot.stopping import WORDS
from test_cli import IGNORING_SIGINT

ROOT = Path(__file__).resolve().parents[2]
MODULE, FUNCTION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["crowdtune"].split(":")
# What pip's console script does (the `crowdtune` it installs).
SCRIPT = f"import sys\nfrom {MODULE} import {FUNCTION}\nsys.exit({FUNCTION}())"


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}


def test_the_entry_point_hears_signals_before_anything_slow_is_imported(tmp_path):
    """The first module imported after the entry module itself (and its package, which the script must import
    to reach it) finds SIGINT and SIGTERM handled by crowdtune: not Python's KeyboardInterrupt, not the default
    end, not ignored. Said by the imports themselves (an audit hook), so no moment is guessed."""
    hook = (
        f"import signal, sys\nskip = ('bot', {MODULE!r})\n"
        "seen = []\n"
        "def hook(event, args):\n"
        "    if event != 'import' or seen: return\n"
        "    name = args[0]\n"
        "    if name.split('.')[0] in sys.stdlib_module_names or name in skip: return\n"
        "    seen.append(name)\n"
        "    shown = [getattr(signal.getsignal(n), '__module__', repr(signal.getsignal(n))) for n in (signal.SIGINT, signal.SIGTERM)]\n"
        "    print('first import', name, *shown, file=sys.stderr)\n"
        "sys.addaudithook(hook)\n"
    )
    result = subprocess.run([sys.executable, "-c", hook + SCRIPT, "--version"], cwd=tmp_path, env=_environment(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    first = re.search(r"^first import (\S+) (\S+) (\S+)$", result.stderr, re.M)
    assert first is not None and first[2].startswith("bot.") and first[3].startswith("bot."), result.stderr


def test_python_m_bot_cli_hears_signals_before_anything_slow_is_imported_too(tmp_path):
    """`python -m bot.cli` (a source checkout run without installing it) goes through the same entry:
    its first import past bot.entry finds SIGINT and SIGTERM handled by crowdtune, as the script's does."""
    hook = (
        "import runpy, signal, sys\nseen = []\n"
        "def hook(event, args):\n"
        "    if event != 'import' or seen: return\n"
        "    name = args[0]\n"
        "    if name.split('.')[0] in sys.stdlib_module_names or name in ('bot', 'bot.entry'): return\n"
        "    seen.append(name)\n"
        "    shown = [getattr(signal.getsignal(n), '__module__', repr(signal.getsignal(n))) for n in (signal.SIGINT, signal.SIGTERM)]\n"
        "    print('first import', name, *shown, file=sys.stderr)\n"
        "sys.addaudithook(hook)\n"
        "runpy.run_module('bot.cli', run_name='__main__', alter_sys=True)\n"  # what `python -m bot.cli` does
    )
    result = subprocess.run([sys.executable, "-c", hook, "--version"], cwd=tmp_path, env={**_environment(), "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("crowdtune "), result.stderr
    first = re.search(r"^first import (\S+) (\S+) (\S+)$", result.stderr, re.M)
    assert first is not None and first[2] == first[3] == "bot.entry", result.stderr


def test_the_lines_said_before_the_slow_imports_are_the_commands_own():
    assert ENDINGS == {signal.SIGINT: ("interrupted", ExitCode.INTERRUPTED), signal.SIGTERM: ("terminated", ExitCode.TERMINATED),
                       signal.SIGHUP: ("hung up", ExitCode.HUNG_UP), signal.SIGQUIT: ("quit", ExitCode.QUIT)}
    assert all(WORDS[number].startswith(words) for number, (words, _) in ENDINGS.items())


def _caught(pid: int) -> set[int]:
    """The signals process `pid` has handlers for (Linux's /proc/PID/status SigCgt)."""
    mask = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", Path(f"/proc/{pid}/status").read_text(), re.M)[1], 16)
    return {number for number in range(1, 64) if mask & (1 << (number - 1))}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
@pytest.mark.parametrize("command, how, prefix", [
    (["run", "--no-audio", "--db", "ct.db"], "SIGINT", ()),
    (["run", "--no-audio", "--db", "ct.db"], "SIGINT", IGNORING_SIGINT),
    (["run", "--no-audio", "--db", "ct.db"], "SIGHUP", ()),
    (["simulate", "--rounds", "10000", "--out", "sim", "--db", "ct.db"], "SIGTERM", ()),
    (["simulate", "--rounds", "10000", "--out", "sim", "--db", "ct.db"], "SIGINT", IGNORING_SIGINT),
], ids=["run-SIGINT", "run-SIGINT-started-ignoring-it", "run-SIGHUP", "simulate-SIGTERM", "simulate-SIGINT-started-ignoring-it"])
@pytest.mark.parametrize("after", [0, 0.05, 0.3], ids=["at-once", "soon", "later"])
def test_a_signal_at_any_moment_of_the_start_ends_with_its_line_and_code(tmp_path, command, how, prefix, after):
    """Sent once crowdtune's first line has run (it then catches SIGTERM: the test above says that is before the
    slow imports), and `after` seconds later: wherever that lands (the imports, the checks, the work), the outcome
    is the documented one, never a traceback. A terminal session's input stays open, so it waits to be stopped."""
    number = getattr(signal, how)
    words, code = ENDINGS[number]
    process = subprocess.Popen([*prefix, sys.executable, "-c", SCRIPT, *command], cwd=tmp_path, env=_environment(),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(12000):  # till its handlers are in (a bound against a hang, not a time assertion)
            if signal.SIGTERM in _caught(process.pid):
                break
            time.sleep(0.005)
        time.sleep(after)
        process.send_signal(number)
        # Its input stays open till it has ended: closing it too (communicate) would race the signal with the end of
        # input, which a terminal session reads as "standard input is empty" (exit 4) when it comes first.
        process.wait(timeout=120)
        err = process.stderr.read()
    finally:
        process.kill()
    assert "Traceback" not in err and process.returncode == code and err.splitlines()[-1:] == [words], err
