"""Problems a user can fix, turned into one polite line and an exit code; anything else is a bug and
propagates (a traceback, exit code 1)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """`crowdtune`'s exit codes, one per kind of problem (README, "Exit codes")."""

    OK = 0
    BUG = 1  # an unexpected error: a traceback, please report it
    USAGE = 2  # a bad command-line argument
    SETTING = 3  # a bad setting in the environment or .env
    NO_TOKEN = 4  # DISCORD_TOKEN empty or malformed, or missing with nothing on standard input to rate with
    TOKEN_REFUSED = 5  # Discord refused the token
    DISCORD_UNREACHABLE = 6  # Discord (or CROWDTUNE_API_BASE) could not be reached, after retries
    BAD_URL = 7  # CROWDTUNE_API_BASE or CROWDTUNE_GATEWAY_URL is not a usable URL
    DATABASE = 8  # the database cannot be opened, read or written
    NO_SYNTHESISER = 9  # FluidSynth (or the Opus encoder) is not installed
    NO_SOUNDFONT = 10  # the soundfont is missing or unreadable
    INTENTS_REFUSED = 11  # Discord refused the gateway intents
    FILE = 12  # a file or folder named on the command line cannot be read or written
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    BROKEN_PIPE = 141  # the program reading crowdtune's output stopped reading (128 + SIGPIPE)
    TERMINATED = 143  # SIGTERM ended a command, the running bot apart (128 + SIGTERM, as a shell reports it)


class StartupError(RuntimeError):
    """A problem the operator must fix before the bot can start; the message says what, `code` which
    kind it is (the process's exit code)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.SETTING) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    """SIGINT (Ctrl-C) ended a command after its cleanup (exit code INTERRUPTED); see bot.stopping."""


class Terminated(Exception):
    """SIGTERM ended a command after its cleanup (exit code TERMINATED); see bot.stopping."""


def user_facing(problem: BaseException) -> tuple[str, ExitCode] | None:
    """The one line and exit code for a problem the user can fix, or None for a bug."""
    from storage import StorageError

    if isinstance(problem, StartupError):
        return str(problem), problem.code
    if isinstance(problem, StorageError):
        return str(problem), ExitCode.DATABASE
    try:
        from bot.media.render import RenderSetupError, SoundfontError
    except ImportError:
        RenderSetupError = SoundfontError = ()  # noqa: N806 - rendering not importable: nothing of it to report
    if RenderSetupError and isinstance(problem, RenderSetupError):
        return str(problem), ExitCode.NO_SOUNDFONT if isinstance(problem, SoundfontError) else ExitCode.NO_SYNTHESISER
    if isinstance(problem, OSError) and problem.filename:
        return f"{problem.strerror or problem}: {problem.filename}", ExitCode.FILE
    return None
