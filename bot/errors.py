"""Problems a user can fix, turned into one polite line and an exit code; anything else is a bug and
propagates (a traceback, exit code 1)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path

from core.words import visible


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
    NO_SOUNDFONT = 10  # the soundfont cannot be loaded, or none is named or installed (a setting naming no file: SETTING)
    INTENTS_REFUSED = 11  # Discord refused the gateway intents
    FILE = 12  # a file or folder named on the command line cannot be read or written
    HUNG_UP = 129  # the terminal closed (its window, a lost ssh connection): SIGHUP ended a command (128 + SIGHUP)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    QUIT = 131  # Ctrl-\ (128 + SIGQUIT), the terminal's other key to quit: an end as Ctrl-C's
    BROKEN_PIPE = 141  # the program reading crowdtune's output stopped reading (128 + SIGPIPE)
    TERMINATED = 143  # SIGTERM ended a command, the running bot apart (128 + SIGTERM, as a shell reports it)


class StartupError(RuntimeError):
    """A problem the operator must fix before the bot can start; the message says what, `code` which
    kind it is (the process's exit code)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.SETTING) -> None:
        super().__init__(message)
        self.code = code


class UnreadableFile(StartupError):
    """A file or folder the user named (a MIDI file, a database, a rater module, an output folder) cannot be
    read or written: exit code FILE."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.FILE)


FOLDER_NOT_FILE = "a folder, not a file"


def user_path(text: str) -> str:
    """A path as a user means it: a leading ~ or ~NAME is that home folder, as a shell would expand it
    (a quoted '~/x.db' on a command line, or any path in .env, reaches crowdtune unexpanded). Anything
    else, a postgresql:// URL included, is returned as it is. Every path the command line or a setting
    names goes through here; the library (storage, bot.media) takes paths as given, as open() does."""
    return os.path.expanduser(text)


def why_unreadable(path: str | os.PathLike) -> str | None:
    """Why the file at `path` cannot be read, in a few words ('no such file', 'a folder, not a file',
    'permission denied', ...), or None when it can: it is opened for reading to be sure (file modes, ACLs,
    root's privileges all count as the read itself will)."""
    if (why := folder_name(path)) is not None:
        return why
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as problem:  # a folder on the way that is a file, or that may not be entered
        return _reason(problem)
    if stat.S_ISDIR(mode):
        return FOLDER_NOT_FILE
    if not stat.S_ISREG(mode):  # a device or a pipe: opening it might wait for ever
        return "not a regular file"
    try:
        with open(path, "rb"):
            return None
    except OSError as problem:
        return _reason(problem)


def why_unwritable(path: str | os.PathLike, folder: bool = False, make_parents: bool = False) -> str | None:
    """Why `path` cannot be written as a file (with `folder`: made or filled as a folder), in a few words
    ('a file, not a folder', 'the folder typo/dir does not exist', 'read-only file system', ...), or None
    when it can. The folder it goes in must exist, as for cp or a shell's `>`: a mistyped path is a mistake,
    not a tree of new folders; with `make_parents` (a path the program itself names) only a file on the way
    is one. Whether the place takes it (permissions, a read-only file system, /proc) is tried, as the write
    itself will try it: what is not there is made and removed at once (see _try_making), and a file or folder
    that is there must have a folder that takes new files (a replaced file, a database's journal, a round's
    files are new files there). A symbolic link counts as what it leads to, as it does to the write."""
    if not folder and (why := folder_name(path)) is not None:
        return why
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # not there, or a file on the way: found below
        mode = None
    except OSError as problem:  # a folder that may not be entered, a name too long
        return _reason(problem)
    if mode is not None:
        if folder != stat.S_ISDIR(mode):
            return "a file, not a folder" if folder else FOLDER_NOT_FILE
        if not folder and not stat.S_ISREG(mode):  # a device, a FIFO, a socket: never replaced (storage.files)
            from storage.files import file_kind  # here: importing storage (numpy, via core.agent) would slow `--help` fourfold

            return f"{file_kind(mode)}, not a regular file: only a regular file is replaced"
        return _try_making(Path(path if folder else path.parent) / ".crowdtune-write-check", folder=False)
    place = next((p for p in path.parents if p.exists()), None)  # the nearest that exists (exists() is False past a file)
    if place is not None and not place.is_dir():
        return f"{place} is a file, not a folder"
    if place != path.parent and not make_parents:
        return f"the folder {path.parent} does not exist"
    first_missing = next((p for p in (path, *path.parents) if p.parent == place), path)
    return _try_making(first_missing, folder=folder or first_missing != path)


def folder_name(path: str | os.PathLike) -> str | None:
    """Why `path` as typed can only name a folder, such as "it ends in /, so it names a folder, not a file"
    (`--db data/`, or a last part '.' or '..'), else None: pathlib would drop a final separator, and a file
    would be made where the user meant a folder."""
    text = os.fspath(path)
    end = os.path.basename(text)
    if end not in ("", ".", "..") or not text:
        return None
    return f"it ends in {end or os.sep}, so it names a folder, not a file"


def _try_making(path: Path, folder: bool) -> str | None:
    """Make `path` (a file or a folder that is not there) and remove it at once: None when that worked, else
    the reason the system gave. Someone else making it meanwhile is no reason (nothing of theirs is removed)."""
    try:
        if folder:
            os.mkdir(path)
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return None
    except FileNotFoundError:  # its folder is there (the caller found it), but makes no new entry: /proc, /sys
        return f"the folder {path.parent} takes no new file"
    except OSError as problem:
        return _reason(problem)
    (os.rmdir if folder else os.unlink)(path)
    return None


def _reason(problem: OSError) -> str:
    """An OSError's reason in a few lower-case words ('permission denied', 'read-only file system')."""
    return (problem.strerror or str(problem)).lower()


def _refuse(verb: str, problems: list[tuple[str | os.PathLike, str]], what: str, example: str | None) -> None:
    """UnreadableFile naming each (path, why) of `problems`; a folder where a file is wanted gets `example`,
    a file's name to suggest in it."""
    def said(path, why):
        named_a_folder = why == FOLDER_NOT_FILE or why == folder_name(path)
        hint = f": name a file in it, such as {Path(path) / example}" if example and named_a_folder else ""
        return f"{path} ({why}{hint})"

    if problems:
        raise UnreadableFile(f"cannot {verb} {what}{', '.join(said(path, why) for path, why in problems)}")


def check_readable(paths: Iterable[str | os.PathLike], what: str = "", example: str | None = None) -> None:
    """UnreadableFile naming every one of `paths` that cannot be read and why, such as "cannot read
    the database none.db (no such file)"; `what` ("the database ") comes before the names; `example`
    (crowdtune.db) is suggested in a folder named instead of a file."""
    _refuse("read", [(path, why) for path in paths if (why := why_unreadable(path)) is not None], what, example)


def check_writable(path: str | os.PathLike, what: str, folder: bool = False, make_parents: bool = False,
                   example: str | None = None) -> None:
    """UnreadableFile when `path` cannot be written (why_unwritable), such as "cannot write the folder
    typo/sim (the folder typo does not exist)"; `what` ("the folder ") comes before the name, `example`
    as for check_readable."""
    _refuse("write", [(path, why)] if (why := why_unwritable(path, folder, make_parents)) else [], what, example)


class OutputFailed(Exception):
    """Standard output cannot be written (a full disk, `> /dev/full`, an I/O error): exit code FILE. The message
    says why ("cannot write to standard output: no space left on device")."""


class _ClosedOutput(io.TextIOBase):
    """Standard output that was closed when the program started (`>&-`, for which Python sets sys.stdout to None):
    every write fails as a write to a closed descriptor does (EBADF), as a full disk's fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


class GuardedOutput:
    """A text stream (standard output) whose failed writes and flushes raise OutputFailed, so a command can tell
    them from any other OSError (a file of its own) and end with one line. Everything else is the stream's own.
    A reader that went away (BrokenPipeError) is left as it is: that is its own end (exit code BROKEN_PIPE).

    A closed standard output (`stream` None) fails at the first write (_ClosedOutput), and its descriptor, 1, is
    held on /dev/null, so that no file opened later becomes descriptor 1 and takes a child process's output."""

    def __init__(self, stream) -> None:
        if stream is None:
            _hold_descriptor(1)
            stream = _ClosedOutput()
        self.stream = stream

    def write(self, text: str) -> int:
        """Write `text` with what a terminal would act on (an escape sequence, a carriage return) written visibly, a
        line break apart: a path or name typed by someone, wherever a message echoes it, cannot rewrite the screen.
        Nothing crowdtune itself writes to standard output is such a character. The count is of `text`'s characters."""
        with self._guarded():
            self.stream.write(visible(text, lines=True))
            return len(text)

    def flush(self) -> None:
        with self._guarded():
            self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)

    @staticmethod
    @contextlib.contextmanager
    def _guarded():
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as problem:
            raise OutputFailed(f"cannot write to standard output: {_reason(problem)}") from None


def _hold_descriptor(fd: int) -> None:
    """Open /dev/null as descriptor `fd` if it is closed (an open file takes the lowest free descriptor)."""
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)


class Stopped(Exception):
    """A signal ended a command after its cleanup (see bot.stopping): said in one line, `words`, exit code `code`."""

    words: str
    code: ExitCode


class Interrupted(Stopped):
    """SIGINT (Ctrl-C) ended a command after its cleanup."""

    words, code = "interrupted", ExitCode.INTERRUPTED


class Terminated(Stopped):
    """SIGTERM ended a command after its cleanup."""

    words, code = "terminated", ExitCode.TERMINATED


class Quit(Stopped):
    """SIGQUIT (Ctrl-\\) ended a command after its cleanup, as SIGINT would have."""

    words, code = "quit", ExitCode.QUIT


class HungUp(Stopped):
    """SIGHUP (its terminal closed) ended a command after its cleanup, as SIGTERM would have."""

    words, code = "hung up", ExitCode.HUNG_UP


def user_facing(problem: BaseException) -> tuple[str, ExitCode] | None:
    """The one line and exit code for a problem the user can fix, or None for a bug."""
    from storage import StorageError, database_errors
    from storage.files import DISK_FULL, CannotWrite, write_failure

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
    if isinstance(problem, CannotWrite):  # an output file (storage.files): nothing half-written is left
        return f"cannot write {problem.filename}: {problem.strerror}", ExitCode.FILE
    if isinstance(problem, OSError) and problem.filename:
        return f"{problem.strerror or problem}: {problem.filename}", ExitCode.FILE
    if isinstance(problem, OSError) and problem.errno in DISK_FULL:  # a write that named no file, wherever it was
        return f"cannot write a file: {write_failure(problem)}", ExitCode.FILE
    if isinstance(problem, database_errors()):  # a database failing mid-run that its store did not name
        return f"the database stopped working: {problem}", ExitCode.DATABASE
    return None
