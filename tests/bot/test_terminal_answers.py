"""What the terminal session does with what is typed at its prompts, and how its lines name things: found by a
fresh-user trial of `crowdtune run` (votes by aspects stored as Discord's are, keys spelled as the key does,
no replay offered without a player, a decimal comma)."""

import json
import re
import sqlite3
import zipfile

from test_cli import crowdtune


def test_aspect_votes_typed_at_the_terminal_are_stored_with_their_aspects_as_discord_s_are(tmp_path):
    """Found by a fresh-user trial: `run --aspects` stored only the compound (6.25), so the export's votes.jsonl
    had no `aspects` on any vote. Each vote keeps the aspects typed, one number standing for all three."""
    typed = "7 5 6\n8\n7,5,6\n"
    crowdtune("run", "--aspects", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin=typed, cwd=tmp_path)
    crowdtune("export", "--db", "ct.db", "--out", "export.zip", cwd=tmp_path)
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        votes = [json.loads(line) for line in archive.read("votes.jsonl").splitlines()]
    assert [(v["rating"], v.get("aspects")) for v in votes] == [
        (6.25, {"coherence": 6.0, "musicality": 7.0, "novelty": 5.0}),
        (8.0, {"coherence": 8.0, "musicality": 8.0, "novelty": 8.0}),
        (6.25, {"coherence": 6.0, "musicality": 7.0, "novelty": 5.0}),
    ], votes
    with sqlite3.connect(tmp_path / "ct.db") as raw:  # the vote's history too, as a Discord aspects cast writes it
        events = raw.execute("SELECT kind, aspects IS NOT NULL FROM vote_events ORDER BY id").fetchall()
    assert events == [("cast", 1)] * 3, events


def test_a_session_names_its_key_as_the_key_spells_it(tmp_path):
    """Found by a fresh-user trial: `run --base Bb2 --scale dorian` said "rating mode, A#2 dorian" (so did `sessions`,
    and a resumed session's "not applied"), while the piano roll spelled Bb3 and Eb3: one spelling, the key's."""
    first = crowdtune("run", "--base", "Bb2", "--scale", "dorian", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="5\nq\n",
                      cwd=tmp_path)
    assert "rating mode, Bb2 dorian, 8 notes" in first.stdout, first.stdout
    resumed = crowdtune("run", "--base", "Eb3", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path)
    assert "resuming session 1: rating mode, Bb2 dorian, " in resumed.stdout, resumed.stdout
    assert "  not applied: --base Eb3 (" in resumed.stdout, resumed.stdout  # Eb3 major: flats
    crowdtune("run", "--new", "--base", "Db4", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="5\n", cwd=tmp_path)
    listed = crowdtune("sessions", "--db", "ct.db", cwd=tmp_path).stdout
    assert "rating mode, Bb2 dorian, " in listed and "rating mode, Db4 major, " in listed and not re.search("[A-G]#", listed), listed
