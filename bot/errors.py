"""Problems a user can fix, turned into one polite line; anything else is a bug and propagates."""

from __future__ import annotations


class StartupError(RuntimeError):
    """A problem the operator must fix before the bot can start; the message says what."""


class Terminated(Exception):
    """SIGTERM ended a terminal session; its open round stays open (exit code 143)."""


def user_facing(problem: BaseException) -> str | None:
    from storage import StorageError

    if isinstance(problem, StorageError):
        return str(problem)
    if isinstance(problem, StartupError):
        return str(problem)
    try:
        from bot.media.render import RenderSetupError
    except ImportError:
        RenderSetupError = ()  # noqa: N806 - rendering not importable: nothing of it to report
    if RenderSetupError and isinstance(problem, RenderSetupError):
        return str(problem)
    if isinstance(problem, OSError) and problem.filename:
        return f"{problem.strerror or problem}: {problem.filename}"
    return None
