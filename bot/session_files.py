"""Where a terminal session's files are (bot.terminal): the folder it was given when it started, kept with it in its
SessionRow.options relative to the database's folder, whatever the database is named or moved to since; found again
after the database moved with its folder, and named in one line when it is not found."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from storage import SessionRow
from storage.export import safe_name

OUT = "out"  # the SessionRow.options key of the folder a terminal session's folder is in (relative: `kept_options`)
NAMED = "named"  # the key of its folder's name's start: the database's name when the session started


def kept_options(out_dir: Path, data_folder: Path, db_path: str) -> dict[str, str]:
    """How a new session keeps its folder, in `out_dir` (absolute), in its SessionRow.options: relative to
    `data_folder` (the database's: bot.cli._beside_db), so the database, copied, exported or shared on a server,
    carries no trace of this host's file layout (a home folder's name); and its name's start, the database's name
    now (`db_path`), so a database renamed, copied into another name or reached by another URL keeps its folder."""
    return {OUT: os.path.relpath(out_dir, data_folder), NAMED: safe_name(Path(db_path).stem)}


def session_folder(named: str, session: SessionRow, utc: bool = True) -> str:
    """A folder name unique per database and session: `named` (the database's name when it started), the session's
    number and when it started (two databases in one folder, or one deleted and made again, never share files), in
    UTC, so that the name is the same in every time zone; `utc` False: in this run's local time, as sessions kept
    before their folder's name was (`NAMED`) were named."""
    return f"{named}-session-{session.id}-{_started(session, utc)}"


STARTED = "%Y%m%d-%H%M%S"


def _started(session: SessionRow, utc: bool = True) -> str:
    return datetime.fromtimestamp(session.created_at, timezone.utc if utc else None).strftime(STARTED)


def _started_in_some_zone(name: str, session: SessionRow) -> bool:
    """Whether folder `name` ends in when `session` started, in the local time of any time zone (a whole number of
    quarter hours from UTC, at most 14 hours): how a session kept before its folder's name was is found again on a
    machine in another zone."""
    try:
        shown = datetime.strptime(name.rsplit("-", 2)[-2] + "-" + name.rsplit("-", 1)[-1], STARTED)
    except ValueError:
        return False
    offset = shown.replace(tzinfo=timezone.utc).timestamp() - int(session.created_at)
    return offset % 900 == 0 and abs(offset) <= 14 * 3600


@dataclass(frozen=True)
class SessionFiles:
    folder: Path  # absolute: where the session's files go
    note: str | None = None  # one line when the folder it was given is not found (the files go to `folder` instead)
    # With `note`: the session's options to store, keeping `folder` as its folder from now on, so the line is said once.
    options: dict | None = None


def session_files(session: SessionRow, db_path: str, out_dir: Path, data_folder: Path) -> SessionFiles:
    """Where `session`'s files go: the folder it was given (`kept_options`), under `data_folder` (the database's,
    absolute). Sessions kept before `kept_options` are found too: one that kept no name by a folder ending in its
    number and start (the database's name then is not known); one that kept an absolute folder first in that folder's
    tail under `data_folder` (rounds/, as `cp -a` of the database's folder carries it), then where it was. A folder
    found nowhere is never made again where it was (a deleted folder's parents): the files go to `out_dir` (this
    run's --out or rounds/, absolute) instead, the note says so, and the options say how to keep that folder."""
    kept = session.options.get(OUT)
    named = session.options.get(NAMED)
    if kept is None:  # a session started before its folder was kept: this run's folder
        return SessionFiles(out_dir.resolve() / session_folder(named or _db_name(db_path), session, utc=named is not None))
    if os.path.isabs(kept):  # as sessions kept it before it was kept relative to the database's folder
        tail = Path(kept).parts[1:]
        roots = [data_folder.joinpath(*tail[start:]) for start in range(len(tail) - 1, -1, -1)] + [Path(kept)]
    else:
        roots = [data_folder / kept]
    for root in [*roots, out_dir]:
        for name in [session_folder(named, session)] if named else _named_any(root, db_path, session):
            if (root / name).is_dir():
                found = (root / name).resolve()
                return SessionFiles(found, None if root is not out_dir else _moved(session, roots[-1] / name, found))
    named = named or _db_name(db_path)
    gone = roots[-1] / session_folder(named, session, utc=session.options.get(NAMED) is not None)
    # Named as a session's folder is named now (in UTC), so that it is found by the options kept with it.
    instead = out_dir.resolve() / session_folder(named, session)
    kept_now = {**session.options, OUT: os.path.relpath(instead.parent, data_folder), NAMED: named}
    return SessionFiles(instead, _moved(session, gone, instead), kept_now)


async def resumed_files(store, session: SessionRow, out_dir: Path, data_folder: Path, out_refused: Exception | None) -> SessionFiles:
    """`session_files` of a session resumed on `store` (storage.Store); a folder not found is kept where its files go
    now, in its options, so the next run finds it and its note is said once. `out_refused` (why this run's --out,
    `out_dir`, cannot be written) is raised, before anything is stored, when the files would go there."""
    found = session_files(session, store.path, out_dir, data_folder)
    if found.note is not None:
        if out_refused is not None:
            raise out_refused
        await store.set_session_options(session.id, found.options)
    return found


def _db_name(db_path: str) -> str:
    return safe_name(Path(db_path).stem)


def _named_any(root: Path, db_path: str, session: SessionRow) -> list[str]:
    """The names `session`'s folder may have in `root` when the database's name then was not kept: its name now (in
    this run's local time, as it was made), then any folder ending in the session's number and its start in any time
    zone (the database renamed, or moved to a machine in another zone, since)."""
    others = sorted(p.name for p in root.glob(f"*-session-{session.id}-*") if _started_in_some_zone(p.name, session)) if root.is_dir() else []
    return [session_folder(_db_name(db_path), session, utc=False), *others]


def _moved(session: SessionRow, kept: Path, instead: Path) -> str | None:
    """The line that says `session`'s folder (`kept`, as it was given) is not found and where its files go now."""
    if Path(os.path.abspath(kept)) == instead:
        return f"session {session.id}'s folder {instead} is not there (moved or deleted?): it is made again for its files"
    return f"session {session.id}'s folder {os.path.abspath(kept)} is not there (moved or deleted?): its files go to {instead} instead"
