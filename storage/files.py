"""Output files written whole: every file crowdtune writes where a user named it (an export's zip, a simulation's
and a terminal session's round files, rendered audio, a benchmark's report) goes through `replacing` or
`write_whole`, so that a failed write leaves no half file, an existing output is replaced only when it is a regular
file, and the failure names the file and says why (CannotWrite)."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

# The name (without its suffix) of the file of a session's track as it stands, in every front end's folder and an
# export's: final.mid (bot.final_track).
FINAL_TRACK = "final"
# What a full disk (or a used-up quota) raises on a write.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class CannotWrite(OSError):
    """An output file cannot be written: `filename` names it as it was named, `strerror` says why in a few lower-case
    words ("no space left on device (the disk is full)", "a FIFO, not a regular file: only a regular file is
    replaced"). Nothing half-written is left behind."""


def write_failure(problem: OSError) -> str:
    """Why a write failed, in a few lower-case words; a full disk says so ("no space left on device (the disk is full)")."""
    reason = (problem.strerror or str(problem)).lower()
    return f"{reason} (the disk is full)" if problem.errno in DISK_FULL else reason


def file_kind(mode: int) -> str:
    """What a file of this st_mode is, in words: "a folder", "a device", "a FIFO", "a socket", "a regular file"."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def output_target(path: str | os.PathLike) -> Path:
    """The file a write to `path` makes or replaces: `path`, or for a symbolic link the file it leads to (followed
    as `cp` and a shell's `>` follow it: the link stays). CannotWrite naming `path` when what is there is not a
    regular file (a folder, a device such as /dev/full, a FIFO, a socket): a device node renamed over is gone."""
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as problem:
        raise CannotWrite(problem.errno, write_failure(problem), os.fspath(path)) from None
    if not stat.S_ISREG(mode):
        raise CannotWrite(errno.EEXIST, f"{file_kind(mode)}, not a regular file: only a regular file is replaced", os.fspath(path))
    return target


@contextlib.contextmanager
def replacing(path: str | os.PathLike, private: bool = False) -> Iterator[Path]:
    """A new temporary file beside `path`'s target (output_target) for the block to write; renamed over the target
    when the block ends without error, so nobody sees half a file. On any failure the temporary file is removed
    and the old file (or none) stays; an OSError of the block's becomes CannotWrite naming `path` (a full disk:
    "no space left on device (the disk is full)"). A replaced file keeps its permissions; a new one gets the
    umask's, as a shell's `>` gives it, or, `private`, its owner's alone (0600: a file of people's votes)."""
    target = output_target(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    made = False
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666))
        made = True
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        yield temporary
        os.replace(temporary, target)
    except BaseException as problem:
        if made:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if isinstance(problem, OSError) and not isinstance(problem, CannotWrite):
            raise CannotWrite(problem.errno, write_failure(problem), os.fspath(path)) from None
        raise


def write_whole(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) as the whole file `path`, through `replacing` (its errors: CannotWrite)."""
    with replacing(path) as temporary:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)


def write_each(files: Mapping[Path, bytes | str]) -> None:
    """Write every one of `files` (its path: its data) whole, in order, going on past one that cannot be written: a
    disk that refused a big file may still take a small one, and what it refuses is all said at once. CannotWrite
    when any failed, its `filename` naming every one that did (named_files), its `strerror` the first one's reason,
    its `written` the paths that were written (a line may name them: they are there)."""
    failed: list[CannotWrite] = []
    written: list[Path] = []
    for path, data in files.items():
        try:
            write_whole(path, data)
        except CannotWrite as problem:
            failed.append(problem)
        else:
            written.append(path)
    if failed:
        problem = CannotWrite(failed[0].errno, failed[0].strerror, named_files([problem.filename for problem in failed]))
        problem.written = written
        raise problem


def named_files(paths: list[str | os.PathLike]) -> str:
    """Files in words, the first by its path and those after it in the same folder by name alone: "sim/results.json,
    start.mid and final.mid"."""
    first = Path(paths[0])
    names = [os.fspath(paths[0]), *(Path(p).name if Path(p).parent == first.parent else os.fspath(p) for p in paths[1:])]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
