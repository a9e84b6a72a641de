"""Lines that said more than was so, found by a fresh-user trial: each now says only what is."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from test_cli import CROWDTUNE, crowdtune


def test_a_simulation_stopped_before_any_round_names_only_the_files_it_wrote(tmp_path):
    """`simulate` stopped by Ctrl-C before its first round closed said "wrote rs/results.json, ..., final.mid and round
    MIDI files" with no round file there. The line names what is in --out (a new or empty folder at the start)."""
    (tmp_path / "slow.py").write_text(
        "import pathlib, time\n"
        "def rate(midi):\n"
        "    pathlib.Path('rating').touch()\n"
        "    time.sleep(5)  # Ctrl-C comes meanwhile: no round closes\n"
        "    return 5\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    process = subprocess.Popen([CROWDTUNE, "simulate", "--rounds", "3", "--rater", "slow.py:rate", "--out", "rs", "--db", "ct.db"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the first rating has begun (a bound against a hang, not a time assertion)
            if (tmp_path / "rating").exists():
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and err == "interrupted\n", err
    written = sorted(path.name for path in (tmp_path / "rs").iterdir())
    assert not any(name.startswith("round-") for name in written), written
    said = re.search(r"^stopped after 0 of 3 rounds: interrupted \(.*\); wrote (.*)$", out, re.M)
    assert said and said.group(1) == "rs/results.json, learning-curve.png, start.mid and final.mid", out


def test_sessions_shows_its_times_in_utc_as_the_session_folders_name_them(tmp_path):
    """`sessions` showed local time with no zone while the sessions' folders are named in UTC: away from UTC the two
    disagreed with nothing to say why. It says UTC, the folder's time to the minute."""
    zone = {"TZ": "Asia/Tokyo"}  # UTC+9 all year
    crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path, env_extra=zone)
    [folder] = (tmp_path / "rounds").iterdir()
    stamp = re.fullmatch(r"ct-session-1-(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)\d\d", folder.name).groups()
    listed = crowdtune("sessions", "--db", "ct.db", cwd=tmp_path, env_extra=zone).stdout
    assert "   1  active    {}-{}-{} {}:{} UTC  local:".format(*stamp) in listed, (folder.name, listed)


def test_forget_user_names_the_personal_agents_sessions_before_it_asks_and_copies_them(tmp_path):
    """`forget-user local:LOGIN` asked "Delete it all?" after naming the votes and the personal agent, and only after
    the yes said its sessions and compositions went too; the copy had none of them. Both say how many, before the
    question, and the copy lists the sessions with their tracks."""
    env = {"LOGNAME": "ann", "USER": "ann"}  # who getpass says runs crowdtune
    crowdtune("run", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="5\n6\n", cwd=tmp_path, env_extra=env)
    crowdtune("run", "--new", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="7\nq\n", cwd=tmp_path, env_extra=env)
    forgot = crowdtune("forget-user", "local:ann", "--db", "ct.db", "--out", "copy.json", "--yes", cwd=tmp_path).stdout
    wrote, deleted = forgot.splitlines()[0], forgot.splitlines()[-1]
    assert re.fullmatch(r"wrote copy\.json: a copy of local:ann's data, 3 votes and their personal agent, which has learned "
                        r"from \d+ judged edits?, with its 2 sessions and their compositions", wrote), forgot
    assert deleted.startswith("deleted 3 votes and their personal agent with its 2 sessions and their compositions of local:ann"), forgot
    sessions = json.loads((tmp_path / "copy.json").read_text())["personal_agent"]["sessions"]
    assert [(s["session"], s["status"], s["rounds_done"]) for s in sessions] == [(1, "finished", 2), (2, "active", 1)], sessions
    assert all(s["track"]["notes"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["started"]) for s in sessions), sessions


@pytest.mark.parametrize("length", [251, 253])
@pytest.mark.parametrize("argv", [["run", "--no-audio"], ["simulate", "--rounds", "1", "--out", "sim"], ["copy-db", "--from", "src.db", "--to"]],
                         ids=["run", "simulate", "copy-db"])
def test_a_database_name_too_long_for_the_files_beside_it_is_one_line_and_makes_nothing(tmp_path, argv, length):
    """A --db name of 251-253 characters (the file system takes up to 255) failed with "unable to open database file"
    and left a 0-byte file, which `sessions` then called a database holding no crowdtune data yet: its .lock, -wal
    and -journal cannot be made. Nothing is made; the line says why. copy-db's temporary name beside it is longer yet."""
    crowdtune("run", "--no-audio", "--db", "src.db", stdin="q\n", cwd=tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    name = "a" * (length - 3) + ".db"
    result = crowdtune(*argv, *([] if argv[0] == "copy-db" else ["--db"]), name, stdin="5\n", cwd=tmp_path, check=False)
    assert result.returncode == 8 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"the database {name} cannot be used: its name is too long for the files kept beside it" in result.stderr, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_a_database_name_that_leaves_room_for_the_files_beside_it_is_used(tmp_path):
    name = "a" * (255 - len("-journal") - 3) + ".db"
    crowdtune("run", "--no-audio", "--db", name, stdin="q\n", cwd=tmp_path)
    assert (tmp_path / name).stat().st_size > 0


def test_a_piped_session_writes_its_starting_track_as_a_terminals_does(tmp_path):
    """A terminal session's folder had start.mid (the track its first edit starts from), a piped one's did not, though
    its rounds edit the same track: both write it (a piped session is asked no rating for it)."""
    crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="5\n", cwd=tmp_path)
    [folder] = (tmp_path / "rounds").iterdir()
    assert (folder / "start.mid").read_bytes().startswith(b"MThd") and (folder / "start.png").read_bytes().startswith(b"\x89PNG")
    resumed = crowdtune("run", "--new", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="5\nq\n", cwd=tmp_path)
    assert "starting track" not in resumed.stdout and "sorry" not in resumed.stdout, resumed.stdout


def test_forget_user_with_one_session_says_its_compositions(tmp_path):
    """Found by a newcomer's trial: "with its 1 session and their compositions" (a plural for one session)."""
    env = {"LOGNAME": "ann", "USER": "ann"}
    crowdtune("run", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="5\n6\n", cwd=tmp_path, env_extra=env)
    forgot = crowdtune("forget-user", "local:ann", "--db", "ct.db", "--yes", cwd=tmp_path).stdout
    assert "with its 1 session and its compositions" in forgot and "their compositions" not in forgot, forgot


def test_a_rater_given_twice_is_said_to_vote_twice_under_two_names(tmp_path):
    """Found by a newcomer's trial: `--rater troll --rater troll` said only "2 raters": two trolls, each voting apart
    (troll#1 and troll#2, as a troll added to the crowd, which has one), are said so."""
    twice = crowdtune("simulate", "--rater", "troll", "--rater", "troll", "--rounds", "1", "--out", "twice", "--db", "ct.db", cwd=tmp_path)
    assert twice.stdout.startswith("2 raters (troll given twice: they vote apart, as troll#1 and troll#2), rating mode"), twice.stdout
    added = crowdtune("simulate", "--rater", "crowd", "--rater", "troll", "--rounds", "1", "--out", "added", "--db", "ct.db", cwd=tmp_path)
    assert added.stdout.startswith("9 raters (troll given twice: they vote apart, as troll#1 and troll#2), rating mode"), added.stdout
    once = crowdtune("simulate", "--rater", "troll", "--rater", "calm", "--rounds", "1", "--out", "once", "--db", "ct.db", cwd=tmp_path)
    assert once.stdout.startswith("2 raters, rating mode"), once.stdout
