"""What the terminal session does with what is typed at its prompts, and how its lines name things: found by a
fresh-user trial of `crowdtune run` (votes by aspects stored as Discord's are, keys spelled as the key does,
no replay offered without a player, a decimal comma)."""

import io
import json
import os
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pexpect
import pytest

from test_cli import crowdtune
from test_terminal import spawn


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


@pytest.mark.parametrize("mode, first_prompt", [("rating", "your rating, 1-10? "), ("ab", "press Enter for round 1 (q stops) ")])
def test_without_an_audio_player_no_line_offers_a_replay(tmp_path, mode, first_prompt):
    """Found by a fresh-user trial: with audio but no player program (paplay, aplay, afplay, ffplay) the first line said
    "r replays, q stops" and help "r replays", and `r` then said there is no player. Nothing plays, so nothing offers r;
    an `r` typed anyway still says why nothing plays and which file to open."""
    bin_dir = tmp_path / "bin"  # PATH without any player (the synthesiser's program kept, if there is one)
    bin_dir.mkdir()
    if synth := shutil.which("fluidsynth"):
        (bin_dir / "fluidsynth").symlink_to(synth)
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")} | {"PATH": str(bin_dir)}
    child = spawn(["--mode", mode, "--rounds", "1"], tmp_path, env)
    child.logfile_read = transcript = io.StringIO()
    child.expect_exact(first_prompt)
    child.sendline("help")
    child.expect_exact(first_prompt)
    if mode == "ab":
        child.sendline("")
        child.expect_exact("a, b, both or neither? ")
        child.sendline("help")
        child.expect_exact("a, b, both or neither? ")
    child.sendline("r")
    child.expect_exact("  no audio player to replay with: open ")
    child.expect_exact("? ")
    child.sendline("rb")  # one clip asked for: that clip named (the starting track, rated in rating mode: said so)
    child.expect(r"  (no audio player to replay with: open \S+round-0001-b\.wav yourself|this is the starting track alone, no A or B)\r?\n")
    child.expect_exact("? ")
    child.sendline("q")
    child.expect(pexpect.EOF)
    shown = transcript.getvalue()
    assert " replays" not in shown and "rp " not in shown and "sorry" not in shown, shown
    assert "listen: " in shown and shown.count("no audio player found (") == 1, shown


def test_a_rating_typed_with_a_decimal_comma_is_told_to_take_a_point(tmp_path):
    """Found by a fresh-user trial: `7,5` in a session without --aspects was told the session takes one rating, as
    if it were aspects; it is 7.5 written with a decimal comma (README: "7.5; not 7,5"). Three numbers keep the
    aspects hint; with --aspects, `7,5,6` is three numbers and `7,5` is told both ways of writing it."""
    plain = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "p.db", stdin="7,5\n7,5,6\n12,5\n7.5\n", cwd=tmp_path)
    sorry = [line for line in plain.stdout.splitlines() if line.startswith("  sorry: ")]
    assert sorry == [
        "  sorry: a rating is a number from 1 to 10 written with a decimal point, such as 7.5, not '7,5'",
        "  sorry: a rating is a number from 1 to 10, not '7,5,6': this session takes one rating (it was started without --aspects)",
        "  sorry: a rating is a number from 1 to 10, not '12,5': this session takes one rating (it was started without --aspects)",
    ], plain.stdout
    assert "  rated 7.5/10: " in plain.stdout, plain.stdout
    aspects = crowdtune("run", "--aspects", "--rounds", "1", "--no-audio", "--db", "a.db", stdin="7,5\n7,5,6\n", cwd=tmp_path)
    sorry = [line for line in aspects.stdout.splitlines() if line.startswith("  sorry: ")]
    assert sorry == [
        "  sorry: rate musicality, novelty, coherence from 1 to 10, such as '7 5 6' (or one number for all three), not '7,5'"
        "; a decimal is written with a point, such as 7.5"
    ], aspects.stdout
    assert "  your rating: 6.25 (musicality 7, novelty 5, coherence 6: " in aspects.stdout, aspects.stdout


def test_a_replay_where_nothing_plays_says_why_and_names_the_files_and_one_of_a_clip_not_there_says_so(tmp_path):
    """Found by a fresh-user trial: where nothing plays, `r` said "no audio to play (--no-audio): open the MIDI file"
    or "clips play only on a terminal", naming no file, and `ra` in rating mode replayed as `r` did. One rule (README:
    "typed anyway, it says why, naming the file to open"): each replay names the files it would have played, and a
    clip the round does not have (A or B of one version, the track before outside A/B rounds) is said to be missing."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    child = spawn(["--mode", "ab", "--rounds", "1", "--no-audio"], tmp_path, env)
    child.logfile_read = transcript = io.StringIO()
    start, vote = "press Enter for round 1 (q stops) ", "neither? "
    for prompt, typed in [(start, "r"), (start, "rb"), (start, "rp"), (start, ""), (vote, "r"), (vote, "rb"), (vote, "rp"), (vote, "q")]:
        child.expect_exact(prompt)
        child.sendline(typed)
    child.expect(pexpect.EOF)
    folder = str(next((tmp_path / "rounds").iterdir()))  # --out rounds, said absolute as the default folder is
    # The starting track's picture is named as every round's is.
    assert f"MIDI file: {folder}/start.mid (piano roll: {folder}/start.png)" in transcript.getvalue(), transcript.getvalue()
    assert (Path(folder) / "start.png").read_bytes().startswith(b"\x89PNG")
    said = [line.strip() for line in transcript.getvalue().splitlines() if "yourself" in line or "no A or B" in line or "rp replays" in line]
    assert said == [
        f"no audio to play (--no-audio): open {folder}/start.mid yourself",
        "this is the starting track alone, no A or B",
        "rp replays the track before, in A/B rounds",
        f"no audio to play (--no-audio): open {folder}/round-0001-a.mid, {folder}/round-0001-b.mid yourself",
        f"no audio to play (--no-audio): open {folder}/round-0001-b.mid yourself",
        f"no audio to play (--no-audio): open {folder}/round-0001-before.mid yourself",
    ], transcript.getvalue()
    rating = spawn(["--rounds", "1", "--no-audio", "--db", "s.db"], tmp_path, env)  # the starting track, in rating mode
    rating.expect_exact("your rating, 1-10? ")
    rating.sendline("rb")
    rating.expect_exact("  this is the starting track alone, no A or B\r\n")
    rating.sendline("q")
    rating.expect(pexpect.EOF)
    piped = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "p.db", stdin="r\nra\nrb\nrp\n5\n", cwd=tmp_path).stdout
    folder = str(next(p for p in (tmp_path / "rounds").iterdir() if p.name.startswith("p-")))
    lines = piped.splitlines()
    said = [answer.strip() for asked, answer in zip(lines, lines[1:]) if asked.endswith(("? r", "? ra", "? rb", "? rp"))]
    assert said == [
        f"clips play only on a terminal: open {folder}/round-0001.mid yourself",
        "this round has one version, no A or B",
        "this round has one version, no A or B",
        "rp replays the track before, in A/B rounds",
    ], piped


@pytest.mark.parametrize("word", ["q", "quit", "stop", "exit", "EXIT"])
def test_every_word_that_ends_a_session_ends_it_and_help_names_them_all(tmp_path, word):
    """Found by a fresh-user trial: `quit` and `stop` ended the session, but `exit`, what most programs take, was "not
    a rating", and the help line named only q. Each ends it, in any case, and help lists every one."""
    result = crowdtune("run", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin=f"help\n5\n{word}\n6\n", cwd=tmp_path)
    assert "sorry" not in result.stdout and "  rated 6/10" not in result.stdout, result.stdout
    assert "stopped; this round stays open" in result.stdout, result.stdout
    helped = next(line for line in result.stdout.splitlines() if "type a rating from 1" in line)
    assert helped.endswith("; quit, stop, exit or q stops (the round stays open)"), helped


def test_control_characters_typed_are_echoed_visibly_and_other_text_as_typed(tmp_path):
    """Found by a fresh-user trial: Up-arrow then Enter at the prompt printed "sorry: ... not '<ESC>[A'" with a real ESC,
    which the terminal acts on (moving the cursor) instead of showing it. Every echo of what was typed shows C0 and C1
    controls as Python's escapes (core.words.visible); other text, accents and scripts, is shown as typed. The command
    line's refusals do too (bot.cli.one_line)."""
    typed = ["\x1b[A", "\x9b2J\x07", "sept\u00e9\u4e03"]
    rated = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "c.db", stdin="\n".join([*typed, "5"]) + "\n", cwd=tmp_path)
    refusals = [line for line in rated.stdout.splitlines() if line.startswith("  sorry: ")]
    assert refusals == [f"  sorry: a rating is a number from 1 to 10, not '{text}'"
                        for text in ("\\x1b[A", "\\x9b2J\\x07", "sept\u00e9\u4e03")], rated.stdout
    assert not any(c in rated.stdout for c in "\x1b\x9b\x07"), rated.stdout
    refused = crowdtune("run", "--mode", "\x1b[31m\u00e9", "--no-audio", "--db", "c.db", cwd=tmp_path, check=False)
    assert refused.stderr == ("crowdtune run: error: --mode must be one of: rating, ab, not '\\x1b[31m\u00e9' "
                              "(see crowdtune run --help)\n"), refused.stderr


@pytest.mark.parametrize("mode, says", [
    ("rating", "  type a rating from 1 (worst) to 10 (best), such as 7; quit, stop, exit or q stops (the round stays open)"),
    ("ab", "  type a or b (that version is your favourite), both (A and B tie, above the track before) or neither, or n "
           "(the track before is best); quit, stop, exit or q stops (the round stays open)"),
])
def test_enter_alone_at_a_prompt_is_told_what_to_type_not_refused_as_a_quoted_nothing(tmp_path, mode, says):
    """Found by a fresh-user trial: Enter alone at the rating prompt answered "sorry: a rating is a number from 1 to
    10, not ''". An empty answer is told what the prompt takes, as help says it, with the keys it takes, and asked again.
    A later trial: Enter alone said "q stops" where help said "quit, stop, exit or q stops": the same line now."""
    answer = "5" if mode == "rating" else "a"
    result = crowdtune("run", "--rounds", "1", "--mode", mode, "--no-audio", "--db", "ct.db", stdin=f"\n  \nhelp\n{answer}\n", cwd=tmp_path)
    assert "sorry" not in result.stdout and "''" not in result.stdout, result.stdout
    assert result.stdout.splitlines().count(says) == 3 and "finished after 1 round" in result.stdout, result.stdout
