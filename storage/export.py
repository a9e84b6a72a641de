"""A moderator's export: one zip with every composition as MIDI and the logs as JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import re
import shutil
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from core.midi import midi_bytes, track_to_midi
from core.music import track_from_dict
from storage import open_reader
from storage.files import FINAL_TRACK, replacing
from storage.protocol import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+|\.{2,}")


def safe_name(text: str) -> str:
    """A file-name part that cannot leave its folder ('..', slashes, drive letters, control characters)."""
    cleaned = _UNSAFE.sub("_", str(text)).strip("._")
    return cleaned[:80] or "unnamed"


def scope_folders(scopes: list[str]) -> dict[str, str]:
    """A folder name per scope. Scopes whose safe names clash ('local:a/b' and 'local:a?b') get a
    digest of their id too, so two scopes never share a folder."""
    names = {scope: safe_name(scope) for scope in set(scopes)}
    clashes = Counter(names.values())
    return {
        scope: name if clashes[name] == 1 else f"{name}-{hashlib.sha256(scope.encode()).hexdigest()[:12]}"
        for scope, name in names.items()
    }


class ExportStopped(Exception):
    """An export told to stop (write_export's `stop`) before its zip was whole: no zip is left."""


def _until(stop: threading.Event | None, rows: Iterable[dict]) -> Iterator[dict]:
    """`rows`, ended by ExportStopped at the first one read after `stop` is set: a stopped export reads (and writes)
    at most one row more, not the whole database."""
    for row in rows:
        if stop is not None and stop.is_set():
            raise ExportStopped("the export was stopped")
        yield row


def _write_jsonl(stream, rows: Iterable[dict]) -> int:
    """Write rows as JSON lines to a binary stream; returns how many."""
    count = 0
    for row in rows:
        stream.write((json.dumps(row, sort_keys=True) + "\n").encode())
        count += 1
    return count


def _write_qtables(stream, entries: Iterable[dict]) -> int:
    """qtable.json: {scope: [{state, action, value, visits}, ...]}, written entry by entry (the
    entries come ordered by scope)."""
    count, scope = 0, None
    stream.write(b"{")
    for entry in entries:
        if entry["scope"] != scope:
            opening = "\n], " if scope is not None else "\n"
            scope = entry["scope"]
            stream.write(f"{opening}{json.dumps(scope)}: [\n ".encode())
        else:
            stream.write(b",\n ")
        stream.write(json.dumps({k: entry[k] for k in ("action", "state", "value", "visits")}, sort_keys=True).encode())
        count += 1
    stream.write(b"\n]}\n" if scope is not None else b"}\n")
    return count


# What an export counts, each with its word (one, many; None: one + "s") for the line that reports it
# (bot.progress.counted): the README's terms.
COUNTED = {
    "compositions": ("composition", None), "rounds": ("round", None), "votes": ("vote", None),
    "audit": ("audit entry", "audit entries"), "q_values": ("Q-value", None), "models": ("learned model", None),
}  # fmt: skip


# Every entry dated alike, the zip format's first date, and given the same permissions: the same data exports to the
# same bytes (zipfile dates a name given as text "now" in writestr but 1980 in open).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _entry(name: str) -> zipfile.ZipInfo:
    """The zip entry `name`: dated ZIP_DATE, deflated, unpacked readable by its owner alone, as the zip is (people's votes)."""
    entry = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    entry.external_attr, entry.compress_type = 0o600 << 16, zipfile.ZIP_DEFLATED
    return entry


def write_export(
    location: str, out: Path, scope_id: str | None = None, progress: Callable[[], None] | None = None,
    committing: Callable[[], None] = lambda: None, stop: threading.Event | None = None,
) -> dict[str, int]:
    """Write the export of one scope (or every scope) of the database at `location` to the zip `out`,
    whole (storage.files.replacing: a temporary file renamed into place); returns counts, keyed as COUNTED.

    Synchronous and streaming, for a worker thread or process: rows are read one at a time from a
    read-only snapshot (storage.open_reader) and written straight into the zip, so memory does not
    grow with the history except for the zip's directory (about 0.5 KiB an entry). `out`'s missing folders
    are made (why: storage.open_store). Errors:
    StorageError when the database cannot be read, storage.files.CannotWrite when `out` cannot be written. `progress` is
    called after each file is written into the zip (a progress bar: its count ends at the zip's number of files);
    `committing` once the zip is whole, just before it is renamed into place (what it raises leaves no zip). `stop`,
    once set (from another thread), ends it at the next row read with ExportStopped, leaving no zip.
    """
    out = Path(out)
    rows = functools.partial(_until, stop)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(COUNTED, 0)
    wrote = progress or (lambda: None)
    with replacing(out, private=True) as temp_name:  # people's votes: readable by its owner alone, as before
        with open_reader(location) as reader, tempfile.TemporaryFile() as rounds_lines:
            folders = scope_folders(reader.scopes(scope_id))
            with zipfile.ZipFile(temp_name, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                # One pass over the rounds: their MIDI files go into the zip, their lines to a temporary
                # file (a zip takes one entry at a time), copied in after.
                for round_row in rows(reader.rounds(scope_id)):
                    folder = f"compositions/{folders[round_row['scope']]}/session-{round_row['session']}"
                    proposals = round_row.pop("plan")["proposals"]
                    for variant, proposal in enumerate(proposals):
                        suffix = f"-{'ab'[variant]}" if len(proposals) > 1 else ""
                        midi = track_to_midi(track_from_dict(proposal["track"]))
                        archive.writestr(_entry(f"{folder}/round-{round_row['round']:04d}{suffix}.mid"), midi_bytes(midi))
                        counts["compositions"] += 1
                        wrote()
                    counts["rounds"] += _write_jsonl(rounds_lines, [round_row])
                for session in rows(reader.sessions(scope_id)):
                    folder = f"compositions/{folders[session['scope']]}/session-{session['session']}"
                    archive.writestr(_entry(f"{folder}/{FINAL_TRACK}.mid"), midi_bytes(track_to_midi(track_from_dict(session["track"]))))
                    counts["compositions"] += 1
                    wrote()
                with archive.open(_entry("rounds.jsonl"), "w", force_zip64=True) as entry:
                    rounds_lines.seek(0)
                    shutil.copyfileobj(rounds_lines, entry)
                wrote()
                with archive.open(_entry("votes.jsonl"), "w", force_zip64=True) as entry:
                    counts["votes"] = _write_jsonl(entry, rows(reader.votes(scope_id)))
                wrote()
                with archive.open(_entry("audit.jsonl"), "w", force_zip64=True) as entry:
                    counts["audit"] = _write_jsonl(entry, rows(reader.audit(scope_id)))
                wrote()
                with archive.open(_entry("sessions.jsonl"), "w", force_zip64=True) as entry:
                    _write_jsonl(entry, rows(reader.sessions(scope_id)))
                wrote()
                with archive.open(_entry("qtable.json"), "w", force_zip64=True) as entry:
                    counts["q_values"] = _write_qtables(entry, rows(reader.qvalues(scope_id)))
                models: dict[str, dict[str, dict]] = {}  # one fixed-size model per scope and learner: small
                for row in rows(reader.models(scope_id)):
                    models.setdefault(row["scope"], {})[row["name"]] = row["data"]
                    counts["models"] += 1
                wrote()
                archive.writestr(_entry("models.json"), json.dumps(models, sort_keys=True))
                wrote()
        committing()
    return counts


async def export_zip(
    store: Store, out: Path, scope_id: str | None = None, progress: Callable[[], None] | None = None,
    committing: Callable[[], None] = lambda: None,
) -> dict[str, int]:
    """`write_export` of the store's database, in a worker thread (the bot runs it in a worker
    process: bot.worker); returns counts. Cancelled, it tells the thread to stop at its next row (a thread cannot
    be cancelled; its `committing` may also stop it short of the zip) and waits for it, leaving no zip: the
    database's last reader closes before the store does, which otherwise left its -wal and -shm beside it."""
    stop = threading.Event()
    work = asyncio.ensure_future(asyncio.to_thread(write_export, store.path, out, scope_id, progress, committing, stop))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(Exception):  # its own failure (ExportStopped among them) is not this end's
            await work
        raise


def write_person_copy(location: str, voter: str, out: Path, personal_agent: dict | None) -> int:
    """A person's copy of their data (/forget-me, `crowdtune forget-user`): `{"voter", "personal_agent", "votes":
    [...]}` as JSON, `personal_agent` as given (bot.personal_copy: what their agent has learned; null when they
    have none), streamed vote by vote from a read-only snapshot into `out`. Synchronous, for a worker; returns the
    number of votes."""
    count = 0
    with open_reader(location) as reader, open(out, "w", encoding="utf-8") as stream:
        stream.write(f'{{"voter": {json.dumps(voter)},\n "personal_agent": {json.dumps(personal_agent, sort_keys=True)},\n "votes": [')
        for vote in reader.votes_of(voter):
            stream.write(("\n  " if count == 0 else ",\n  ") + json.dumps(vote, sort_keys=True))
            count += 1
        stream.write("\n ]}\n")
    return count
