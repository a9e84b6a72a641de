"""The `crowdtune` command's entry point (pyproject.toml's [project.scripts]). SIGINT, SIGTERM and SIGHUP are heard
from its first line, before the modules that take a second or more to import (numpy, discord.py): one that comes
meanwhile ends the command as it would later, with its one line (`interrupted`, `terminated`, `hung up`) and exit
code 130, 143 or 129, never a traceback or a silent end, also when crowdtune was started with SIGINT ignored (`crowdtune ... &`
in a script). Only the interpreter's own start-up, before it runs this module, is out of reach (README "Exit
codes"). The standard library only, so that this module itself imports at once."""

import os
import signal

# bot.errors' ExitCode and bot.stopping's lines, which cannot be imported yet (they import numpy): a test keeps them equal.
ENDINGS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143), signal.SIGHUP: ("hung up", 129),
           signal.SIGQUIT: ("quit", 131)}


def _end_now(number: int, frame) -> None:
    """Nothing has been written yet, nor started: nothing to clean up. The line (on a line of its own on a
    terminal, after the ^C), then the exit code, at once."""
    words, code = ENDINGS[signal.Signals(number)]
    lead = "\n" if os.isatty(2) else ""
    try:
        os.write(2, f"{lead}{words}\n".encode())
    except OSError:  # stderr closed (`2>&-`): the exit code still says it
        pass
    os._exit(code)


def main() -> int:
    """Run the command in sys.argv and return its exit code (bot.cli.main, which hears signals in its own way)."""
    for number in ENDINGS:
        signal.signal(number, _end_now)
    from bot.cli import main as command  # the slow imports: a signal now ends the command at once

    return command()
