"""A moderator's export: one zip with every composition as MIDI and the logs as JSON lines."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from core.midi import midi_bytes, track_to_midi
from core.music import track_from_dict
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


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


async def export_zip(
    store: Store, out: Path, scope_id: str | None = None, progress: Callable[[], None] | None = None
) -> dict[str, int]:
    """Write the export atomically (a temporary file renamed into place); returns counts. `progress`
    is called after each composition is written (a progress bar)."""
    data = await store.export_rows(scope_id)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=out.parent)
    os.close(fd)
    compositions = 0
    folders = scope_folders([row["scope"] for row in data["rounds"] + data["sessions"]])
    try:
        with zipfile.ZipFile(temp_name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for round_row in data["rounds"]:
                folder = f"compositions/{folders[round_row['scope']]}/session-{round_row['session']}"
                proposals = round_row["plan"]["proposals"]
                for variant, proposal in enumerate(proposals):
                    suffix = f"-{'ab'[variant]}" if len(proposals) > 1 else ""
                    midi = track_to_midi(track_from_dict(proposal["track"]))
                    archive.writestr(f"{folder}/round-{round_row['round']:04d}{suffix}.mid", midi_bytes(midi))
                    compositions += 1
                    if progress is not None:
                        progress()
            for session in data["sessions"]:
                folder = f"compositions/{folders[session['scope']]}/session-{session['session']}"
                archive.writestr(f"{folder}/current.mid", midi_bytes(track_to_midi(track_from_dict(session["track"]))))
                compositions += 1
            rounds = [{k: v for k, v in r.items() if k != "plan"} for r in data["rounds"]]
            archive.writestr("rounds.jsonl", _jsonl(rounds))
            archive.writestr("votes.jsonl", _jsonl(data["votes"]))
            archive.writestr("audit.jsonl", _jsonl(data["audit"]))
            archive.writestr("sessions.jsonl", _jsonl(data["sessions"]))
            qtables: dict[str, list[dict]] = {}
            for row in data["qvalues"]:
                qtables.setdefault(row["scope"], []).append({k: row[k] for k in ("state", "action", "value", "visits")})
            archive.writestr("qtable.json", json.dumps(qtables, indent=1, sort_keys=True))
            models: dict[str, dict[str, dict]] = {}
            for row in data["models"]:
                models.setdefault(row["scope"], {})[row["name"]] = row["data"]
            archive.writestr("models.json", json.dumps(models, sort_keys=True))
        os.replace(temp_name, out)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return {
        "compositions": compositions,
        "rounds": len(data["rounds"]),
        "votes": len(data["votes"]),
        "audit": len(data["audit"]),
        "q_entries": len(data["qvalues"]),
        "models": len(data["models"]),
    }
