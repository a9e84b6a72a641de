"""The terminal session as a person uses it: under a pseudo-terminal (pexpect), with a fake audio
player on PATH (a real program that records when it starts and stops), and as a subprocess with
ratings piped in."""

import json
import os
import pty
import re
import signal
import sqlite3
import stat
import sys
import time
from pathlib import Path

import pexpect
import pytest

from test_cli import IGNORING_SIGINT, crowdtune, terminal_at_its_prompt

from bot.errors import ExitCode

from core.crowd import rating_text

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
SCORE = r"(\d+(?:\.\d+)?)"  # a score as a line shows it
WAIT = 60  # a limit on waiting for something to happen, never a measure of how fast it happened

FAKE_PLAYER = """#!/bin/sh
# Records its start and its end (played to the end, or stopped by SIGTERM) in $PLAYER_LOG.
# The trap comes first: a SIGTERM right after the start is logged too. Stopped while $PLAYER_LOG.hold
# exists, it ends only once that file is gone (a player slow to stop).
trap 'kill $child 2>/dev/null; echo "stop $$ $1" >> "$PLAYER_LOG"; while [ -e "$PLAYER_LOG.hold" ]; do sleep 0.05; done; exit 0' TERM
echo "start $$ $1" >> "$PLAYER_LOG"
sleep "${PLAYER_SECONDS:-600}" &
child=$!
wait $child
echo "end $$ $1" >> "$PLAYER_LOG"
exit "${PLAYER_EXIT:-0}"
"""


@pytest.fixture
def player(tmp_path):
    """A fake `paplay` first on PATH; returns (environment, the log's path)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "paplay"
    script.write_text(FAKE_PLAYER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "player.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", PLAYER_LOG=str(log))
    return env, log


def spawn(args, cwd, env, prefix=()):
    """`crowdtune run` under a pseudo-terminal; `prefix`: a command line that starts it (IGNORING_SIGINT)."""
    # Its defaults only where `args` do not name their own: an option given twice is refused.
    defaults = [word for pair in (("--db", "ct.db"), ("--out", "rounds")) if pair[0] not in args for word in pair]
    command = [*prefix, CROWDTUNE, "run", *defaults, *args]
    return pexpect.spawn(command[0], command[1:], cwd=str(cwd), env=env, encoding="utf-8", timeout=WAIT)


def events(log: Path) -> list[tuple[str, str, str]]:
    """(what, pid, clip name) per line of the player's log."""
    return [(what, pid, Path(clip).name) for what, pid, clip in (line.split(" ", 2) for line in log.read_text().splitlines())]


def wait_for(condition, what: str):
    limit = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < limit, f"gave up waiting for {what}"
        time.sleep(0.05)


def most_at_once(log: Path) -> int:
    playing, most = set(), 0
    for what, pid, _ in events(log):
        if what == "start":
            playing.add(pid)
        else:
            playing.discard(pid)
        most = max(most, len(playing))
    return most


def children_states(pid: int) -> list[str]:
    """The states (R, S, Z...) of a process's children, from /proc."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with open(f"/proc/{child}/stat") as stat_file:
                states.append(stat_file.read().rsplit(")", 1)[1].split()[0])
    return states


def running(pid: str) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def rounds(db):
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT idx, status FROM rounds ORDER BY id").fetchall()


def test_ab_clips_play_one_at_a_time_replay_on_request_and_stop_with_the_session(tmp_path, player):
    env, log = player
    child = spawn(["--mode", "ab", "--rounds", "3"], tmp_path, env)
    child.expect(r"press Enter for round 1")  # first the starting track, which both edits change
    wait_for(lambda: events(log), "the starting track to play")
    child.sendline("")
    child.expect(r"your favourite of the three: .*\? ")
    wait_for(lambda: len(events(log)) == 3, "clip A to start")
    # The starting track stops when round 1 starts; B waits for A to end.
    assert [(e[0], e[2]) for e in events(log)] == [("start", "start.wav"), ("stop", "start.wav"), ("start", "round-0001-a.wav")]
    child.sendline("rb")  # hear B now: A stops first
    wait_for(lambda: len(events(log)) == 5, "A to stop and B to start")
    assert [(e[0], e[2]) for e in events(log)[2:]] == [("start", "round-0001-a.wav"), ("stop", "round-0001-a.wav"), ("start", "round-0001-b.wav")]
    child.sendline("a")  # vote quickly: the next round's prompt stops B
    child.expect(r"round 2:")
    child.expect(r"your favourite of the three: .*\? ")
    wait_for(lambda: events(log)[-1][2] == "round-0002-a.wav", "round 2's A to start")
    assert "Z" not in children_states(child.pid)  # every player that ended was reaped
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert most_at_once(log) == 1
    started = [pid for what, pid, _ in events(log) if what == "start"]
    assert len(started) == 4 and not any(running(pid) for pid in started)  # none outlives the session
    assert rounds(tmp_path / "ct.db") == [(0, "closed"), (1, "open")]


def test_rp_replays_the_track_before_which_every_ab_vote_is_about(tmp_path, player):
    """An A/B vote is the favourite of three tracks, A, B and the track before: `rp` replays that one (its files
    are written beside A's and B's, as Discord attaches round-N-before.ogg), and the prompt's help names it."""
    env, log = player
    child = spawn(["--mode", "ab", "--rounds", "2"], tmp_path, env)
    child.expect(r"at the prompt: ra, rb or rp replays A, B or the track before, r replays, q stops")
    child.expect(r"press Enter for round 1")
    child.sendline("")
    child.expect(r"the track before: listen: \S*round-0001-before\.wav")
    child.expect(r"your favourite of the three: .*\? ")
    wait_for(lambda: len(events(log)) == 3, "clip A to start")
    child.sendline("rp")
    wait_for(lambda: len(events(log)) == 5, "A to stop and the track before to start")
    assert [(e[0], e[2]) for e in events(log)[2:]] == [("start", "round-0001-a.wav"), ("stop", "round-0001-a.wav"), ("start", "round-0001-before.wav")]
    child.sendline("a")
    child.expect(r"your favourite of the three: .*\? ")
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    folder = next((tmp_path / "rounds").iterdir())
    # Round 1's track before is the starting track; round 2's is what round 1 kept.
    assert (folder / "round-0001-before.mid").read_bytes() == (folder / "start.mid").read_bytes()
    assert {p.name for p in folder.glob("round-0002-before.*")} == {"round-0002-before.mid", "round-0002-before.png", "round-0002-before.wav"}


def test_a_then_b_in_order_when_clips_play_to_the_end(tmp_path, player):
    env, log = player
    env["PLAYER_SECONDS"] = "0.2"
    child = spawn(["--mode", "ab", "--rounds", "1"], tmp_path, env)
    child.expect(r"press Enter for round 1")
    child.sendline("")
    child.expect(r"your favourite of the three: .*\? ")
    wait_for(lambda: len(events(log)) == 6, "A and B to play")
    assert [(e[0], e[2]) for e in events(log)[2:]] == [
        ("start", "round-0001-a.wav"), ("end", "round-0001-a.wav"), ("start", "round-0001-b.wav"), ("end", "round-0001-b.wav")
    ]
    child.sendline("r")
    wait_for(lambda: len(events(log)) == 10, "the replay of A and B")
    child.sendline("both")
    child.expect("tie")
    child.expect(pexpect.EOF)


def test_the_prompt_that_waits_for_enter_refuses_anything_else_and_asks_again(tmp_path, player):
    """A/B mode, after the starting track: only Enter starts round 1 (r replays, q stops). Anything else (a
    rating typed out of habit, a letter) is one polite line saying what is expected, and the same prompt again."""
    env, log = player
    child = spawn(["--mode", "ab", "--rounds", "1"], tmp_path, env)
    child.expect(r"press Enter for round 1")
    for typed in ("7", "a", "yes please"):
        child.sendline(typed)
        assert child.expect([r"sorry[^\r\n]*Enter[^\r\n]*\r?\n[^\r\n]*press Enter for round 1", r"round 1:"]) == 0, typed
        assert f"'{typed}'" in child.after  # the line says what it refused
    assert rounds(tmp_path / "ct.db") == []  # nothing started
    child.sendline("")
    child.expect(r"round 1:")
    child.expect(r"your favourite of the three: .*\? ")
    assert rounds(tmp_path / "ct.db") == [(0, "open")]
    child.sendline("q")
    child.expect(pexpect.EOF)


def test_a_failing_or_missing_player_gets_one_clear_line(tmp_path, player):
    env, log = player
    env.update(PLAYER_SECONDS="0", PLAYER_EXIT="3")
    child = spawn(["--rounds", "1"], tmp_path, env)
    child.expect(r"could not play start\.wav \(exit 3\); open it yourself")
    child.sendline("q")
    child.expect(pexpect.EOF)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env["PATH"] = str(empty)  # no player at all (crowdtune itself is started by its full path)
    child = spawn(["--rounds", "1", "--db", "other.db"], tmp_path, env)
    child.expect(r"no audio player found")
    child.expect(r"your rating, 1-10\? ")
    child.sendline("r")  # a replay asked for is answered every time, with the file to open
    child.expect(r"no audio player to replay with: open \S*start\.wav yourself")
    child.sendline("r")
    child.expect(r"no audio player to replay with: open \S*start\.wav yourself")
    child.sendline("q")
    child.expect(pexpect.EOF)


def test_the_starting_track_is_played_and_rated_before_the_first_edit(tmp_path, player):
    env, log = player
    child = spawn(["--rounds", "2"], tmp_path, env)
    child.expect("the starting track")
    child.expect(r"your rating, 1-10\? ")
    wait_for(lambda: events(log), "the starting track to play")
    assert events(log)[0][2] == "start.wav"
    child.sendline("10")
    child.expect(r"round 1:")
    child.expect(r"your rating, 1-10\? ")
    child.sendline("10")
    child.expect(r"rated 10/10: the edit stays .*the track now scores 10, your rating blended with the 10 of the track before")
    child.sendline("q")
    child.expect(pexpect.EOF)
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM audit WHERE action = 'starting_track_rated'").fetchone() == (1,)


@pytest.mark.parametrize("how, code, prefix", [("ctrl-c", 130, ()), ("ctrl-c", 130, IGNORING_SIGINT), ("sigterm", 143, ()),
                                              ("sighup", 129, ()), ("ctrl-backslash", 131, ())],
                         ids=["ctrl-c-130", "ctrl-c-130-started-with-SIGINT-ignored", "sigterm-143", "sighup-129-terminal-still-open",
                              "ctrl-backslash-131"])
def test_ctrl_c_and_sigterm_at_the_prompt_end_at_once_stop_the_player_and_leave_the_round_to_resume(tmp_path, player, how, code, prefix):
    """Also when crowdtune was started with SIGINT ignored (as a shell starts a command in the background): Ctrl-C
    did nothing then. A SIGHUP sent while its terminal is still open (`kill -HUP`) writes there as SIGTERM does
    (a fresh-user trial: it pointed the output at /dev/null on every SIGHUP, so nothing was said). Ctrl-\\ (SIGQUIT,
    the terminal's other quit key) ended it with no closing lines (a newcomer's trial): it ends as Ctrl-C does."""
    env, log = player
    child = spawn(["--rounds", "3"], tmp_path, env, prefix)
    child.expect(r"your rating, 1-10\? ")
    child.sendline("6")  # the starting track
    child.expect(r"round 1:")
    child.expect(r"your rating, 1-10\? ")
    wait_for(lambda: events(log)[-1][2] == "round-0001.wav", "round 1's clip to play")
    if how == "ctrl-c":
        child.sendintr()  # the terminal's ^C: SIGINT to the foreground process group, no Enter
    elif how == "ctrl-backslash":
        child.sendcontrol("\\")  # the terminal's ^\: SIGQUIT to the foreground process group
    else:
        child.kill(signal.SIGTERM if how == "sigterm" else signal.SIGHUP)
    child.expect(pexpect.EOF)  # without Enter: the old session waited for a line here forever
    child.close()
    assert child.exitstatus == code
    # The closing lines q and Ctrl-D print (they were skipped), then the one line naming the signal.
    ending = [line for line in child.before.replace("\r", "").splitlines() if line.strip()]
    (folder,) = (tmp_path / "rounds").iterdir()  # the track as it stands, written as q writes it
    assert (folder / "final.mid").read_bytes() == session_track_midi(tmp_path / "ct.db", 1)
    assert ending[-4:] == [
        "stopped; this round stays open and the next `crowdtune run` resumes it",
        f"your track: {folder / 'final.mid'} and final.wav",
        "the agent is not yet sure of anything you like or dislike (0 judged edits so far)",
        {"ctrl-c": "interrupted", "sigterm": "terminated", "sighup": "hung up", "ctrl-backslash": "quit"}[how],
    ], child.before
    assert events(log)[-1][2] == "round-0001.wav" and most_at_once(log) == 1, log.read_text()
    assert not any(running(pid) for what, pid, _ in events(log) if what == "start")  # the player was stopped
    assert rounds(tmp_path / "ct.db") == [(0, "open")]
    resumed = crowdtune("run", "--db", "ct.db", "--out", "rounds", "--no-audio", stdin="7\n", cwd=tmp_path)
    assert "resuming session 1" in resumed.stdout
    assert rounds(tmp_path / "ct.db")[0] == (0, "closed")


def test_closing_the_terminal_window_ends_the_session_as_sigterm_does(tmp_path, player):
    """Found by a fresh-user trial: closing the terminal window (the kernel hangs up its session: SIGHUP) killed
    `crowdtune run` by the signal, its player left playing and `ct.db.lock` behind, with an exit status README did
    not list. It now ends as SIGTERM ends it: the round stays open to resume, the player is stopped, the lock is
    removed, exit code 129 (128 + SIGHUP). The window is a real pseudo-terminal whose other end closes."""
    env, log = player
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a session of its own, this pseudo-terminal its controlling terminal
        try:
            os.chdir(tmp_path)
            os.execve(CROWDTUNE, [CROWDTUNE, "run", "--db", "ct.db", "--out", "rounds", "--rounds", "3"], env)
        finally:
            os._exit(127)
    try:
        seen = b""
        for answer in (b"6\n", None):
            while b"your rating, 1-10? " not in seen:
                chunk = os.read(terminal, 4096)
                assert chunk, seen
                seen += chunk
            seen = b""
            if answer:
                os.write(terminal, answer)  # the starting track; then round 1 plays
        wait_for(lambda: events(log)[-1][2] == "round-0001.wav", "round 1's clip to play")
    finally:
        os.close(terminal)  # the window closes
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 129
    assert not (tmp_path / "ct.db.lock").exists()
    assert not any(running(p) for what, p, _ in events(log) if what == "start")  # the player was stopped
    assert rounds(tmp_path / "ct.db") == [(0, "open")]
    resumed = crowdtune("run", "--db", "ct.db", "--out", "rounds", "--no-audio", stdin="7\n", cwd=tmp_path)
    assert "resuming session 1" in resumed.stdout


@pytest.mark.parametrize("how, code", [("ctrl-c", 130), ("sigterm", 143)])
def test_ctrl_c_and_sigterm_while_a_replay_stops_the_clip_still_end_the_session(tmp_path, player, how, code):
    """A replay first stops the clip playing and waits for its player to end: Ctrl-C or SIGTERM meanwhile ends
    the session as at the prompt, and that player is still ended. (The stop swallowed the cancellation, and the
    session went on to replay and wait at the prompt.)"""
    env, log = player
    child = spawn(["--rounds", "3"], tmp_path, env)
    child.expect(r"your rating, 1-10\? ")
    child.sendline("6")  # the starting track
    child.expect(r"your rating, 1-10\? ")
    wait_for(lambda: events(log)[-1][2] == "round-0001.wav", "round 1's clip to play")
    hold = Path(f"{log}.hold")
    hold.touch()  # the player told to stop ends only once this is gone
    child.sendline("r")
    wait_for(lambda: events(log)[-1][0] == "stop", "the replay to stop round 1's clip")
    if how == "ctrl-c":
        child.sendintr()
    else:
        child.kill(signal.SIGTERM)
    child.expect(r"stopped; this round stays open")  # the signal was heard while the player was being stopped
    hold.unlink()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code
    assert [what for what, _, clip in events(log) if clip == "round-0001.wav"] == ["start", "stop"], log.read_text()
    assert not any(running(pid) for what, pid, _ in events(log) if what == "start")  # the player was ended
    assert rounds(tmp_path / "ct.db") == [(0, "open")]


# -- piped, as a subprocess ------------------------------------------------------------------------


def test_a_resumed_session_says_what_its_agent_has_learned_as_a_new_one_does(tmp_path):
    """Found by a fresh-user trial: the resume line left out what the agent had learned, which a new session's
    first line says (README: "The first line of a session counts them alike")."""
    crowdtune("run", "--rounds", "4", "--no-audio", "--db", "ct.db", stdin="6\n7\n5\n", cwd=tmp_path)
    resumed = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path)
    # Three piped ratings: the first only set the bar.
    assert re.search(r"^resuming session 1: .*; 3 done; the agent has learned from 2 judged edits$", resumed.stdout, re.M), resumed.stdout


def test_a_new_session_after_ratings_says_how_the_agent_opened_its_track(tmp_path):
    """A session of a scope that has been rated starts from its random track with the edits the model expects to improve it
    (core.agent.opening), and its first lines say which; the terminal's first session, rated by nobody, does not."""
    ratings = "".join(f"{rating}\n" for rating in [5, 9, 3, 9, 2, 9, 3, 9, 2, 9, 3, 9, 2, 9, 3, 9, 2, 9, 3, 9] * 2)
    first = crowdtune("run", "--rounds", "40", "--no-audio", "--db", "ct.db", "--seed", "5", stdin=ratings, cwd=tmp_path)
    assert "it starts from a random track" not in first.stdout
    second = crowdtune("run", "--new", "--rounds", "1", "--no-audio", "--db", "ct.db", "--base", "F3", "--scale", "minor", "--seed", "6", stdin="q\n", cwd=tmp_path)
    opened = re.search(
        r"^it starts from a random track with (\d+) edits? the agent expects to improve it, from what your ratings so far taught: (.+)$",
        second.stdout, re.M,
    )
    assert opened, second.stdout
    said = [re.fullmatch(r"(.+?)(?: \((\d+) times\))?", words).groups() for words in opened[2].split("; ")]
    assert sum(int(times or 1) for _, times in said) == int(opened[1]), opened[0]
    assert len({words for words, _ in said}) == len(said), opened[0]  # each edit said once, with its count
    assert re.search(r"^session 2: .* \(--seed 6 repeats it only with the agent's learning as it is now\)", second.stdout, re.M), second.stdout
    resumed = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path)  # said again, as it was
    assert f"\nit started from a random track with {opened[1]} edit" in resumed.stdout and opened[2] in resumed.stdout, resumed.stdout
    # The same key, scale and tempo again: the track session 2 ended on, said so, and no seed that would repeat it.
    third = crowdtune("run", "--new", "--rounds", "1", "--no-audio", "--db", "ct.db", "--base", "F3", "--scale", "minor", "--seed", "6", stdin="q\n", cwd=tmp_path)
    assert re.search(r"^session 3: .* \(--seed 6 picks no track: it continues session 2's\); the agent", third.stdout, re.M), third.stdout
    assert re.search(r"^it starts from the track session 2 ended on \(same key, scale and tempo\)$", third.stdout, re.M), third.stdout


def test_what_a_seed_repeats_is_said_as_it_is(tmp_path):
    """Found by a newcomer's trial: "(--seed 22 repeats it)" was said of a session whose opening depends on what the
    agent has learned, so the same command gave another opening once more was rated; and a session that continues
    the last track said "(--seed 5)" without saying the seed picked no track."""
    lydian = ("run", "--new", "--rounds", "1", "--no-audio", "--db", "ct.db", "--scale", "lydian", "--base", "E4")

    def opening(session_id: int) -> str:
        with sqlite3.connect(tmp_path / "ct.db") as db:
            return db.execute("SELECT track FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]

    first = crowdtune(*lydian, "--seed", "22", stdin="q\n", cwd=tmp_path)
    assert re.search(r"^session 1: .* \(--seed 22 repeats it only with the agent's learning as it is now\)", first.stdout, re.M), first.stdout
    ratings = "".join(f"{rating}\n" for rating in [5, 9, 3, 9, 2, 9, 3, 9, 2, 9] * 3)
    crowdtune("run", "--new", "--rounds", "30", "--no-audio", "--db", "ct.db", "--base", "F3", "--scale", "minor", stdin=ratings, cwd=tmp_path)
    again = crowdtune(*lydian, "--seed", "22", stdin="q\n", cwd=tmp_path)
    assert "it starts from a random track with" in again.stdout and opening(3) != opening(1)  # why the words are qualified
    assert re.search(r"^session 3: .* \(--seed 22 repeats it only with the agent's learning as it is now\)", again.stdout, re.M), again.stdout
    continued = crowdtune(*lydian, "--seed", "5", stdin="q\n", cwd=tmp_path)
    assert re.search(r"^session 4: .* \(--seed 5 picks no track: it continues session 3's\)", continued.stdout, re.M), continued.stdout
    assert opening(4) == opening(3)
    random_agent = crowdtune(*lydian[:-4], "--base", "D4", "--scale", "dorian", "--preset", "random", "--seed", "22", stdin="q\n", cwd=tmp_path)
    assert re.search(r"^session 5: .* \(--seed 22 repeats it\); the agent learns nothing", random_agent.stdout, re.M), random_agent.stdout


def test_an_unfinished_session_says_what_it_resumes_and_which_options_it_does_not_apply_and_new_ends_it(tmp_path):
    crowdtune("run", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="6\n", cwd=tmp_path)
    resumed = crowdtune("run", "--mode", "ab", "--scale", "blues", "--length", "8", "--no-audio", "--db", "ct.db",
                        stdin="a\n", cwd=tmp_path)
    assert "resuming session 1: rating mode, C4 major, 8 notes" in resumed.stdout
    assert re.search(r"not applied: --scale blues, --mode ab \(.*\); `crowdtune run --new`", resumed.stdout)  # --length 8 is the same
    fresh = crowdtune("run", "--new", "--mode", "ab", "--scale", "blues", "--rounds", "1", "--no-audio", "--db", "ct.db",
                      stdin="a\n", cwd=tmp_path)
    assert "session 1 ended" in fresh.stdout and "session 2: A/B mode, C4 blues" in fresh.stdout
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        assert raw.execute("SELECT id, status FROM sessions ORDER BY id").fetchall() == [(1, "stopped"), (2, "finished")]
        assert raw.execute("SELECT session_id, status FROM rounds ORDER BY id").fetchall() == [
            (1, "closed"), (1, "cancelled"), (2, "closed")
        ]
    listed = crowdtune("sessions", "--db", "ct.db", cwd=tmp_path)
    lines = listed.stdout.splitlines()
    assert re.match(r"\s+1  stopped .*rating mode, C4 major.* 1 done$", lines[0])
    assert re.match(r"\s+2  finished .*A/B mode, C4 blues.* 1 done$", lines[1])
    assert lines[2] == "2 sessions in ct.db"


@pytest.mark.parametrize("mode, first", [("rating", "6"), ("ab", "a")])
def test_a_piped_stop_is_shown_as_typed_and_what_follows_starts_its_own_line(tmp_path, mode, first):
    """Piped answers are echoed after their prompt; "q" was not, so "stopped; ..." ran on after the prompt."""
    result = crowdtune("run", "--mode", mode, "--rounds", "3", "--no-audio", "--db", "ct.db", stdin=f"{first}\nq\n", cwd=tmp_path)
    prompts = [line for line in result.stdout.splitlines() if line.rstrip().endswith("?") or "? " in line]
    assert [line.rsplit("? ", 1)[1] for line in prompts] == [first, "q"], result.stdout
    assert any(line.startswith("stopped; this round stays open") for line in result.stdout.splitlines()), result.stdout


def test_feedback_says_what_its_numbers_are(tmp_path):
    rated = crowdtune("run", "--rounds", "2", "--no-audio", "--db", "r.db", stdin="10\n2\n", cwd=tmp_path)
    summaries = [line for line in rated.stdout.splitlines() if line.startswith("  rated ")]
    assert len(summaries) == 2 and all("blended with" in line for line in summaries)
    both = crowdtune("run", "--mode", "ab", "--rounds", "1", "--no-audio", "--db", "ab.db", stdin="both\n", cwd=tmp_path)
    assert re.search(r"A and B tied \(each beat the track before with a chance of \d+%", both.stdout) and "/10" not in both.stdout
    assert " won " not in both.stdout


def test_a_terminal_round_s_summary_says_you_gave_not_the_crowd(tmp_path):
    """Before: a terminal round's summary (stored with its close, in every export) said "the crowd gave 10/10" of the
    one person at the keyboard, as a DM's did before it said "You gave" (core.engine.verdict_opening decides for both)."""
    crowdtune("run", "--rounds", "2", "--no-audio", "--db", "r.db", stdin="10\n2\n", cwd=tmp_path)
    with sqlite3.connect(tmp_path / "r.db") as db:
        summaries = [json.loads(outcome)["summary"] for (outcome,) in db.execute("SELECT outcome FROM rounds WHERE status = 'closed'")]
    assert len(summaries) == 2 and all(s.startswith(("you gave 10/10", "you gave 2/10")) for s in summaries), summaries


def test_round_files_are_unique_per_database_and_session(tmp_path):
    for db in ("one.db", "two.db"):
        crowdtune("run", "--rounds", "1", "--no-audio", "--db", db, stdin="5\n", cwd=tmp_path)
    folders = sorted(p.name for p in (tmp_path / "rounds").iterdir())
    assert len(folders) == 2 and folders[0].startswith("one-session-1-") and folders[1].startswith("two-session-1-")
    assert all(sorted(f.name for f in (tmp_path / "rounds" / name).iterdir()) == ["final.mid", "round-0001.mid", "round-0001.png", "start.mid", "start.png"] for name in folders)


# -- progress on a terminal, quiet otherwise -------------------------------------------------------


def on_a_terminal(args, cwd) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    child = pexpect.spawn(CROWDTUNE, args, cwd=str(cwd), env=env, encoding="utf-8", timeout=WAIT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before


def test_long_work_shows_progress_on_a_terminal_and_nothing_when_piped_and_counts_read_well(tmp_path):
    shown = on_a_terminal(["simulate", "--rounds", "3", "--rater", "theorist", "--out", "sim", "--db", "ct.db"], tmp_path)
    assert re.search(r"simulate: .*\d/3 \[.* round", shown) and "1 rater, rating mode, " in shown
    piped = crowdtune("simulate", "--rounds", "3", "--rater", "theorist", "--out", "sim2", "--db", "ct.db", cwd=tmp_path)
    assert piped.stderr == "" and piped.stdout.startswith("1 rater, rating mode, ")

    mids = sorted(str(p) for p in (tmp_path / "sim").glob("round-*.mid"))
    shown = on_a_terminal(["render", *mids, "--out-dir", "audio"], tmp_path)
    assert re.search(r"render: .*\d/3 \[.* file", shown) and "rendered 3 files to audio" in shown
    piped = crowdtune("render", mids[0], "--out-dir", "one", cwd=tmp_path)
    assert piped.stderr == "" and "rendered 1 file to one" in piped.stdout

    shown = on_a_terminal(["export", "--out", "a.zip", "--db", "ct.db"], tmp_path)
    assert re.search(r"export: .*\d+ file", shown) and "6 rounds" in shown
    piped = crowdtune("export", "--out", "b.zip", "--db", "ct.db", cwd=tmp_path)
    assert piped.stderr == "" and "6 rounds" in piped.stdout


def test_a_session_s_first_edit_says_why_it_stays_whatever_it_is_rated(tmp_path):
    """Found by a user trial: `printf '1\\nq\\n' | crowdtune run` printed "rated 1.0/10: the edit stays": piped
    ratings do not rate the starting track, so the first edit stays whatever it gets, and the line says so; a
    preset that keeps every edit says that."""
    first = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="1\nq\n", cwd=tmp_path)
    assert "  rated 1/10: the first edit of this track stays and sets the bar (" in first.stdout, first.stdout
    # Found by a fresh-user trial: this line said "blended with the agent's guess before anyone listened", the stored
    # summary and the README "a neutral 5.5": one number, in the same words.
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        (outcome,) = raw.execute("SELECT outcome FROM rounds WHERE status = 'closed'").fetchone()
    assert "blended with a neutral 5.5" in json.loads(outcome)["summary"]
    assert re.search(r"^  rated 1/10: .*, your rating blended with a neutral 5\.5$", first.stdout, re.M), first.stdout
    paper = crowdtune("run", "--new", "--preset", "paper", "--no-audio", "--db", "ct.db", stdin="2\n3\nq\n", cwd=tmp_path)
    kept = [line for line in paper.stdout.splitlines() if line.startswith("  rated ")]
    assert len(kept) == 2 and all(": the paper preset keeps every edit, so the edit stays (" in line for line in kept), paper.stdout
    # `random` chooses every edit at random, so it learns nothing that chooses one, whatever it stores.
    wild = crowdtune("run", "--new", "--preset", "random", "--no-audio", "--db", "ct.db", stdin="2\nq\n", cwd=tmp_path)
    assert re.search(r"^session 3: .*preset random.*; the agent learns nothing \(its edits are random\)$", wild.stdout, re.M), wild.stdout
    assert "  rated 2/10: the random preset keeps every edit, so the edit stays (" in wild.stdout, wild.stdout


def test_judged_edits_are_counted_as_the_readme_defines_them(tmp_path):
    """Four piped ratings teach the model three judged edits: the first edit had no rated track before it and
    only sets the bar. The README once called every rated edit a judged edit."""
    result = crowdtune("run", "--aspects", "--no-audio", "--db", "ct.db", stdin="7 5 6\n6 6 7\n5 5 5\n8 7 6\nq\n", cwd=tmp_path)
    assert "(3 judged edits so far)" in result.stdout and "stays and sets the bar" in result.stdout, result.stdout
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [definition] = re.findall(r"A judged edit is an edit you rated[^.]*\.", readme.replace("\n", " "))
    assert "first edit" in definition and "bar" in definition, definition


def test_prompts_take_n_for_neither_answer_help_and_share_one_style(tmp_path):
    """`n` was refused for "neither", and help or ? got "sorry: a vote is...": help answers, asks again and
    changes nothing. The A/B prompt was a capitalised 100-character line unlike `your rating, 1-10?`."""
    ab = crowdtune("run", "--mode", "ab", "--rounds", "1", "--no-audio", "--db", "ab.db", stdin="help\n?\nn\n", cwd=tmp_path)
    assert "sorry" not in ab.stdout and ab.stdout.count("  type a or b ") == 2, ab.stdout
    assert "neither edit beat the track before" in ab.stdout
    rated = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "r.db", stdin="?\nhelp\n7\n", cwd=tmp_path)
    assert "sorry" not in rated.stdout and rated.stdout.count("  type a rating from 1") == 2, rated.stdout
    aspects = crowdtune("run", "--aspects", "--rounds", "1", "--no-audio", "--db", "s.db", stdin="h\n7\n", cwd=tmp_path)
    assert "sorry" not in aspects.stdout and "  type three ratings" in aspects.stdout, aspects.stdout
    with sqlite3.connect(tmp_path / "ab.db") as raw:
        assert raw.execute("SELECT choice FROM votes").fetchall() == [("neither",)]
    for db, answers in (("r.db", 3), ("s.db", 2)):
        with sqlite3.connect(tmp_path / db) as raw:
            assert raw.execute("SELECT COUNT(*) FROM votes").fetchone() == (1,)
    prompts = [line.rsplit("? ", 1)[0] + "?" for out in (ab, rated, aspects) for line in out.stdout.splitlines() if "? " in line]
    assert len(prompts) == 8 and all(p.startswith("  ") and p[2].islower() and len(p) <= 70 for p in prompts), prompts


def test_one_value_per_rating_no_listen_without_audio_and_a_removed_database_said_once(tmp_path):
    """--aspects showed "your rating: 6.25" then "rated 6.2/10"; --no-audio said "listen: ...mid"; a database
    removed mid-session printed its line twice on stderr (logged, then reported)."""
    import subprocess

    rated = crowdtune("run", "--aspects", "--no-audio", "--db", "ct.db", stdin="7 5 6\nq\n", cwd=tmp_path)
    assert "  your rating: 6.25 (" in rated.stdout and "  rated 6.25/10: " in rated.stdout, rated.stdout
    assert "listen:" not in rated.stdout and re.search(r"; MIDI file: \S+round-0001\.mid \(piano roll", rated.stdout), rated.stdout
    ab = crowdtune("run", "--mode", "ab", "--no-audio", "--db", "ab.db", stdin="a\nq\n", cwd=tmp_path)
    assert "listen:" not in ab.stdout and "the track before: MIDI file: " in ab.stdout, ab.stdout
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    child = subprocess.Popen([CROWDTUNE, "run", "--no-audio", "--db", "gone.db"], cwd=tmp_path, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdin.write("5\n")
    child.stdin.flush()
    while not child.stdout.readline().startswith("  your rating, 1-10? 5"):
        pass
    while "rated 5/10" not in child.stdout.readline():  # round 1 is closed: the next write finds the file gone
        pass
    for path in tmp_path.glob("gone.db*"):
        if path.suffix != ".lock":
            path.unlink()
    out, err = child.communicate("6\n", timeout=WAIT)
    assert child.returncode == 8 and err.count("was removed or replaced") == 1, err


def test_stopping_at_the_starting_track_also_says_what_the_agent_has_learned(tmp_path, player):
    """q at the starting track's prompt (a new session of a scope that learned before) said only that the next
    run starts from this track: every other stop also says what the agent has learned, as the README says."""
    env, _ = player
    first = spawn(["--rounds", "1", "--no-audio", "--preset", "paper"], tmp_path, env)
    first.expect(r"your rating, 1-10\?")  # the starting track
    first.sendline("5")
    first.expect(r"your rating, 1-10\?")  # round 1
    first.sendline("8")
    first.expect(pexpect.EOF)
    again = spawn(["--new", "--rounds", "1", "--no-audio", "--preset", "paper"], tmp_path, env)
    again.expect(r"your rating, 1-10\?")  # the new session's starting track
    again.sendline("q")
    again.expect(pexpect.EOF)
    assert "starts from this track" in again.before and "the agent holds" in again.before, again.before



def test_a_rating_is_shown_in_one_form_whatever_decimals_it_was_typed_with(tmp_path):
    """Found by a fresh-user trial: "5.00" was shown as "rated 5.0/10" and "5.0000001" as "rated 5.00/10": every
    line crowdtune writes shows a rating alike (at most two decimals, no trailing zeros), and a refused one as it
    was typed, never rounded into the range ("not 10" for 10.000001)."""
    from core.crowd import rating_text

    assert [rating_text(r) for r in (5.0, 5.0000001, 7.5, 6.25, 19 / 3, 9.999, 7.555, 6.255)] == [
        "5", "5", "7.5", "6.25", "6.33", "10", "7.56", "6.26"]  # halves up, as typed (a later trial: 7.555 showed 7.55)
    rated = crowdtune("run", "--rounds", "3", "--no-audio", "--db", "r.db", stdin="5.00\n10.000001\n5.0000001\n7.50\n", cwd=tmp_path)
    lines = rated.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("  rated ")] == ["  rated 5/10", "  rated 5/10", "  rated 7.5/10"]
    assert "  sorry: a rating is a number from 1 to 10, not '10.000001'" in lines, rated.stdout
    from core.crowd import parse_rating  # a later trial: float() took "1e1", "1_0" and Arabic-Indic digits as 10

    assert [parse_rating(t) for t in ("7", " 7.5 ", "10.", "1.0")] == [7.0, 7.5, 10.0, 1.0]
    for typed in ("1e1", "1_0", "\u0661\u0660", "0x5", "nan", "inf", "", "7,5"):
        with pytest.raises(ValueError, match="a rating is a number from 1 to 10"):
            parse_rating(typed)
    aspects = crowdtune("run", "--aspects", "--rounds", "1", "--no-audio", "--db", "s.db", stdin="7.00 5 6.0\n", cwd=tmp_path)
    assert "  your rating: 6.25 " in aspects.stdout and "  rated 6.25/10: " in aspects.stdout, aspects.stdout


def test_with_aspects_the_line_after_a_rating_says_how_the_numbers_typed_were_counted(tmp_path):
    """Found by a fresh-user trial: one number typed with --aspects was answered "your rating: 7.0 (musicality
    counts twice)", which means nothing when all three got the same number: the line says the one number rated
    each aspect and how to rate them apart; three different numbers are told how they were combined. Three equal
    numbers were told to type three numbers, as if one had been typed (a later trial)."""
    result = crowdtune("run", "--aspects", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="7\n7 5 6\n3 3 3\n", cwd=tmp_path)
    said = [line for line in result.stdout.splitlines() if line.startswith("  your rating: ")]
    assert said == [
        "  your rating: 7 (7 for each of musicality, novelty and coherence; to rate them apart, type three numbers such as 7 5 6)",
        "  your rating: 6.25 (musicality 7, novelty 5, coherence 6: their mean with musicality counted twice)",
        "  your rating: 3 (3 for each of musicality, novelty and coherence)",
    ], result.stdout


def test_three_numbers_typed_to_a_session_without_aspects_say_why_they_are_refused(tmp_path):
    """Found by a fresh-user trial: `7 5 6` in a session started without --aspects (resumed with it: not applied)
    was refused as "a rating is a number from 1 to 10, not '7 5 6'", with no word of why three numbers fail."""
    result = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="7 5 6\n7 5\n6\n", cwd=tmp_path)
    for typed in ("7 5 6", "7 5"):
        assert f"not '{typed}': this session takes one rating (it was started without --aspects)" in result.stdout, result.stdout
    assert "  rated 6/10: " in result.stdout, result.stdout  # the refused line changed nothing; the next one rated


def test_neither_alone_with_a_preset_that_keeps_every_edit_says_neither_edit_beat_the_track_before(tmp_path):
    """Found by a fresh-user trial: `n` with `--preset paper` was answered "A and B tied (each beat the track before
    with a chance of 25% ...)", a tie where the person had said the track before was best."""
    result = crowdtune("run", "--mode", "ab", "--preset", "paper", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="n\n", cwd=tmp_path)
    [line] = [line for line in result.stdout.splitlines() if "the track before (" in line]
    assert line.startswith("  neither edit beat the track before (") and "tied" not in line, result.stdout
    assert re.search(r"\); a coin flip chose ([AB]) and the paper preset keeps every edit, so \1's edit stays: ", line), line


def test_an_undone_edit_says_why_the_kept_tracks_score_moves_too(tmp_path):
    """Found by a fresh-user trial: "... so the edit is undone and the track before stays (now 6.2)": the kept
    track's score moved with no word of why, as if the rating had been applied to the wrong track. It moves a
    tenth of the way toward the rating (the preset's `rescore`: the two tracks differ by one edit); the first
    such line says why, later ones how much."""
    result = crowdtune("run", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="7\n2\n2\n", cwd=tmp_path)
    undone = [line for line in result.stdout.splitlines() if "the edit is undone" in line]
    assert len(undone) == 2, result.stdout
    for line in undone:
        before, now = (float(x) for x in re.search(rf"the {SCORE} of the track before.*, now {SCORE}", line).groups())
        assert "its score moves 10% of the way toward your rating, now " in line, line
        assert abs(now - (before + 0.1 * (2 - before))) <= 0.1, line
    assert "(the two differ by one edit, so your rating says a little about it too)" in undone[0], undone[0]
    assert "differ by one edit" not in undone[1], undone[1]


def test_a_refused_rating_is_quoted_exactly_as_it_was_typed(tmp_path):
    """Found by a fresh-user trial: `10.00000000000001` was refused as "not 10", `0.0000001` as "not 1e-07" and
    `1e400` as "not inf": a refused number is quoted as typed, as a refused word is, with or without aspects."""
    typed = ["10.00000000000001", "0.0000001", "1e400", "-0"]
    rated = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "r.db", stdin="\n".join([*typed, "5"]) + "\n", cwd=tmp_path)
    refusals = [line for line in rated.stdout.splitlines() if line.startswith("  sorry: ")]
    assert refusals == [f"  sorry: a rating is a number from 1 to 10, not '{text}'" for text in typed], rated.stdout
    aspects = crowdtune("run", "--aspects", "--rounds", "1", "--no-audio", "--db", "s.db", stdin="7 1e400 6\n5\n", cwd=tmp_path)
    assert "  sorry: novelty: a rating is a number from 1 to 10, not '1e400'" in aspects.stdout.splitlines(), aspects.stdout


def test_an_undone_edit_s_small_move_of_the_kept_score_is_shown_in_enough_decimals(tmp_path):
    """Found by a fresh-user trial: "its score moves 10% of the way toward your rating, now 6.1" after "the 6.1 of
    the track before": one decimal hid a move of 0.008. A rating a little below the kept track's score moves it a
    little, and the line shows the two scores apart."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    child = subprocess.Popen([CROWDTUNE, "run", "--rounds", "2", "--seed", "7", "--no-audio", "--db", "ct.db"], cwd=tmp_path,
                             env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdin.write("7\n")  # a 9 would keep the score where it is (core.engine.WEAR_LIMIT below the 9)
    child.stdin.flush()
    while not (line := child.stdout.readline()).startswith("  rated 7/10"):
        assert line, "the session ended before round 1 was rated"
    kept = float(re.search(rf"the track now scores {SCORE}", line).group(1))
    out, _ = child.communicate(f"{kept - 0.1:.2f}\n", timeout=WAIT)
    [undone] = [line for line in out.splitlines() if "the edit is undone" in line]
    before, now = re.search(rf"the {SCORE} of the track before.*, now {SCORE}", undone).groups()
    assert before != now and float(now) < float(before), undone


def test_an_undone_edit_that_reads_level_with_the_track_before_is_not_said_to_score_below_it(tmp_path):
    """Found by a fresh-user trial: "rated 5/10: blended with the 5 of the track before, the edit scores below it":
    two numbers that read alike called one below the other. The line compares them as the engine's summary does
    (core.crowd.rating_comparison): as they read. A 6 kept scores 5.666..., shown 5.67; a 5.665 (shown 5.67) blends
    into an edit score a hair under it, which reads 5.67 too."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    child = subprocess.Popen([CROWDTUNE, "run", "--rounds", "2", "--seed", "7", "--no-audio", "--db", "ct.db"], cwd=tmp_path,
                             env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdin.write("6\n")
    child.stdin.flush()
    while not (line := child.stdout.readline()).startswith("  rated 6/10"):
        assert line, "the session ended before round 1 was rated"
    assert "the track now scores 5.67" in line, line
    out, _ = child.communicate("5.665\n", timeout=WAIT)
    [undone] = [line for line in out.splitlines() if "the edit is undone" in line]
    assert "rated 5.67/10: blended with the 5.67 of the track before, the edit scores level with it, so" in undone, undone


def test_a_score_reads_as_a_rating_does_and_alike_in_every_line(tmp_path):
    """Found by a fresh-user trial: a score was shown with one decimal, or with as many as told two apart ("the
    6.33 of the track before ... now 6.30"), so one score read 6.3 in a line and 6.33 in the next, "6.0" and "6.30"
    kept trailing zeros, and a kept edit read "scores 6.0, ... blended with the 6.0 of the track before". A score is
    on a rating's scale and shown as a rating is (core.crowd.rating_text), in every line alike."""
    from core.crowd import rating_text

    result = crowdtune("run", "--rounds", "6", "--seed", "7", "--no-audio", "--db", "ct.db", stdin="9\n2\n2\n6.3\n6.2\n9\n", cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith("  rated ")]
    assert len(lines) == 6, result.stdout
    for line in lines:
        for shown in re.findall(rf"(?:scores|the|now|stays) {SCORE}\b", line):
            assert shown == rating_text(float(shown)), line  # at most two decimals, no trailing zeros
    kept = [re.search(rf"(?:scores|now|stays) {SCORE}\b(?!.*(?:scores|now|stays) \d)", line).group(1) for line in lines]
    befores = [re.search(rf"the {SCORE} of the track before", line).group(1) for line in lines[1:]]
    assert befores == kept[:-1], lines  # the kept track's score, then the track before's: one number, one text
    for line, before in zip(lines[1:], befores):  # a kept edit's score and the track before's, these apart by 0.09 or more
        assert "the track now scores" not in line or re.search(rf"scores {SCORE}\b", line).group(1) != before, line
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        [(score,)] = raw.execute("SELECT incumbent_score FROM sessions").fetchall()
    assert kept[-1] == rating_text(score), (kept[-1], score)


def test_without_audio_no_line_offers_a_replay(tmp_path, player):
    """Found by a fresh-user trial: with --no-audio the A/B prompt said "press Enter for round 1 (r replays, q
    stops)", and the help lines offered r, with nothing to replay. Without audio no line offers it; with audio
    every one still does."""
    env, _ = player
    import io

    child = spawn(["--mode", "ab", "--rounds", "1", "--no-audio"], tmp_path, env)
    child.logfile_read = transcript = io.StringIO()
    child.expect(r"press Enter for round 1 \(([^)]*)\) ")
    assert child.match.group(1) == "q stops", child.before
    child.sendline("?")
    child.expect(r"round 1 \(q stops\) ")
    child.sendline("")
    child.expect(r"a, b, both or neither\? ")
    child.sendline("help")
    child.expect(r"a, b, both or neither\? ")
    child.sendline("q")
    child.expect(pexpect.EOF)
    shown = transcript.getvalue()
    assert "replay" not in shown and "sorry" not in shown and shown.count("type a or b ") == 1, shown
    rated = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "r.db", stdin="help\n5\n", cwd=tmp_path)
    assert "  type a rating from 1" in rated.stdout and "replay" not in rated.stdout, rated.stdout


@pytest.mark.parametrize("mode, prompt", [("rating", "your rating, 1-10? "), ("ab", ") ")])
def test_help_at_the_starting_track_words_a_stop_there_alike_in_both_modes(tmp_path, player, mode, prompt):
    """Found by a fresh-user trial: A/B's help said "q stops (the next `crowdtune run` starts from it)", rating's
    "... starts from this track" (STARTS_HERE), as the stop itself says: one wording."""
    env, _ = player
    child = spawn(["--mode", mode, "--rounds", "1", "--no-audio"], tmp_path, env)
    child.expect("the starting track")
    child.expect_exact(prompt)
    child.sendline("help")
    child.expect(r"\r?\n(  [^\r\n]*)\r?\n")
    assert child.match.group(1).endswith("q stops (the next `crowdtune run` starts from this track)"), child.match.group(1)
    child.expect_exact(prompt)
    child.sendline("q")
    child.expect(pexpect.EOF)
    assert "stopped; the next `crowdtune run` starts from this track" in child.before, child.before


ASPECTS_PROMPT = "  musicality, novelty, coherence, 1-10 each (such as 7 5 6)? "


def test_a_resumed_session_keeps_its_aspects_and_names_a_differing_aspects_as_not_applied(tmp_path):
    """Found by a fresh-user trial: --aspects was not stored with the session, so a resumed session switched
    between aspect ratings and plain ratings with each run's --aspects. It keeps the way it was started."""
    crowdtune("run", "--aspects", "--rounds", "3", "--no-audio", "--db", "a.db", stdin="7 5 6\nq\n", cwd=tmp_path)
    resumed = crowdtune("run", "--no-audio", "--db", "a.db", stdin="8 6 6\nq\n", cwd=tmp_path)
    assert "resuming session 1: rating mode (musicality, novelty and coherence apart), C4 major" in resumed.stdout, resumed.stdout
    assert "not applied" not in resumed.stdout, resumed.stdout  # --aspects left out: nothing asked otherwise
    assert f"{ASPECTS_PROMPT}8 6 6" in resumed.stdout and "  rated 7/10: " in resumed.stdout, resumed.stdout
    crowdtune("run", "--rounds", "3", "--no-audio", "--db", "p.db", stdin="7\nq\n", cwd=tmp_path)
    plain = crowdtune("run", "--aspects", "--no-audio", "--db", "p.db", stdin="7 5 6\n8\nq\n", cwd=tmp_path)
    assert re.search(r"resuming session 1: rating mode, C4 major.*\n  not applied: --aspects \(this session was started otherwise\)",
                     plain.stdout), plain.stdout
    assert "  your rating, 1-10? 7 5 6\n  sorry: " in plain.stdout and "  rated 8/10: " in plain.stdout, plain.stdout
    assert "musicality" not in plain.stdout.split("not applied")[1], plain.stdout
    listed = crowdtune("sessions", "--db", "a.db", cwd=tmp_path).stdout
    assert "rating mode (musicality, novelty and coherence apart), C4 major" in listed, listed


def test_with_aspects_the_starting_track_takes_three_numbers_as_the_readme_says(tmp_path, player):
    """Found by a fresh-user trial: with --aspects the starting track's prompt on a terminal asked for one
    rating and refused the README's `7 5 6`. Every rating prompt of an aspects session takes three numbers or one."""
    env, _ = player
    child = spawn(["--aspects", "--rounds", "1", "--no-audio"], tmp_path, env)
    child.expect("the starting track")
    child.expect_exact(ASPECTS_PROMPT)
    child.sendline("?")  # a later trial: its help said "the round stays open", before any round was
    child.expect_exact("q stops (the next `crowdtune run` starts from this track)")
    child.expect_exact(ASPECTS_PROMPT)
    child.sendline("7 5 6")
    child.expect_exact("  your rating: 6.25 (musicality 7, novelty 5, coherence 6")
    child.expect_exact("  rated 6.25/10: the first edit is compared with this")
    child.expect("round 1:")
    child.expect_exact(ASPECTS_PROMPT)
    child.sendline("q")
    child.expect(pexpect.EOF)
    assert "sorry" not in child.before, child.before
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        assert raw.execute("SELECT incumbent_score FROM sessions").fetchall() == [(6.25,)]


def test_a_refused_line_is_quoted_short_however_long_it_is(tmp_path):
    """Found by a fresh-user trial: a 5,000-character line was quoted back whole, a screenful of one 'sorry'. Every
    refusal quotes what was typed through one rule (core.words.quoted): its first 40 characters and its length."""
    from core.words import QUOTE_LIMIT

    long = "x" * 5000
    rated = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "r.db", stdin=f"{long}\n5\n", cwd=tmp_path)
    refusals = [line for line in rated.stdout.splitlines() if line.startswith("  sorry: ")]
    assert refusals == [f"  sorry: a rating is a number from 1 to 10, not '{'x' * QUOTE_LIMIT}...' (5,000 characters)"], rated.stdout
    assert rated.returncode == 0


def test_a_kept_tracks_score_wears_down_no_further_than_the_limit_and_says_so(tmp_path):
    """Found by fresh-user trials: a track rated 10 wore down to the 3s its person gave every later edit, until a 3
    kept an edit; and, with the limit measured from the track's score (7), a 5 replaced it after nine 3s. Undone
    edits wear the score down no lower than WEAR_LIMIT below the 10, a score already under that stays, and the line
    says why it does not move."""
    result = crowdtune("run", "--rounds", "12", "--no-audio", "--db", "ct.db", stdin="10\n" + "3\n" * 9 + "5\n6\n", cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith("  rated ")]
    assert len(lines) == 12, result.stdout
    kept = float(re.search(rf"the track now scores {SCORE}", lines[0]).group(1))
    assert all("the edit is undone" in line for line in lines[1:]), result.stdout
    # Found by a fresh-user trial: "its score is now 3.92: ... no lower than 2 below the 10 that kept its last edit" read as
    # a contradiction: the floor is said as a number, and a score already under it is said to stay; a later trial read
    # "wear a bar down to 7 at the lowest" beside a 6.67 as one too: the limit is said as what it does.
    for line in lines[1:]:
        assert line.endswith(f"; its score stays {rating_text(kept)}: undone edits' ratings lower a score only while it is "
                             "above 8, 2 below the 10 that kept the track's last edit"), line


# -- the final track and where a session's files go ------------------------------------------------


def files_folder(stdout: str) -> Path:
    """The folder a session's line names ("files in FOLDER; at the prompt: ...")."""
    return Path(re.search(r"^files in (.+?); at the prompt", stdout, re.M).group(1))


def session_track_midi(db: Path, session: int) -> bytes:
    from core.midi import midi_bytes, track_to_midi
    from core.music import track_from_dict

    with sqlite3.connect(db) as raw:
        (track,) = raw.execute("SELECT track FROM sessions WHERE id = ?", (session,)).fetchone()
    return midi_bytes(track_to_midi(track_from_dict(json.loads(track))))


@pytest.mark.parametrize("how, stdin", [("finished", "5\n6\n"), ("q", "5\nq\n"), ("end of input", "5\n")])
def test_a_session_s_end_writes_its_track_as_final_mid_and_says_where_in_one_line(tmp_path, how, stdin):
    """Found by a fresh-user trial: "where is my finished song?": a session ended naming no file, and its folder held
    every proposal, undone ones too. Its end (finished, q, the end of input; Ctrl-C: the test above) writes the track
    as it stands to final.mid (final.wav with audio, as simulate writes it) and names it in one line."""
    result = crowdtune("run", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin=stdin, cwd=tmp_path)
    folder = files_folder(result.stdout)
    assert folder.is_absolute() and (folder / "final.mid").read_bytes() == session_track_midi(tmp_path / "ct.db", 1)
    assert [line for line in result.stdout.splitlines() if "final.mid" in line] == [f"your track: {folder / 'final.mid'}"]


def test_with_audio_the_final_track_is_a_wav_too(tmp_path):
    result = crowdtune("run", "--rounds", "1", "--db", "ct.db", stdin="5\n", cwd=tmp_path)
    folder = files_folder(result.stdout)
    assert (folder / "final.wav").read_bytes()[:4] == b"RIFF" and (folder / "final.mid").is_file()
    assert f"your track: {folder / 'final.mid'} and final.wav" in result.stdout.splitlines(), result.stdout


def test_a_session_resumed_without_audio_leaves_no_final_wav_of_an_older_track_and_says_so(tmp_path):
    """Found by a fresh-user trial: resumed with --no-audio, a session wrote a new final.mid beside the final.wav of
    the track it had ended on before, and its last line named final.mid alone: the two files told different tracks.
    The older final.wav is removed, and the line says so (--no-audio named as applied)."""
    first = crowdtune("run", "--rounds", "6", "--seed", "5", "--db", "ct.db", stdin="9\nq\n", cwd=tmp_path)
    folder = files_folder(first.stdout)
    assert (folder / "final.wav").is_file()
    resumed = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="9\n9\n9\nq\n", cwd=tmp_path)
    assert (folder / "final.mid").read_bytes() == session_track_midi(tmp_path / "ct.db", 1)
    assert not (folder / "final.wav").exists()
    last = [line for line in resumed.stdout.splitlines() if "final.mid" in line]
    assert last == [f"your track: {folder / 'final.mid'} (no audio this run: the final.wav of an earlier run removed, as it "
                    "no longer matches)"], resumed.stdout


def test_a_final_wav_of_the_same_track_is_kept_without_audio_and_one_that_cannot_be_written_is_named_alone(tmp_path):
    """Found by a trial: resumed with --no-audio and stopped before any rating, a session removed final.wav though its
    track had not changed (final.wav was still its audio); and with final.wav a folder, the last line said the track
    could not be written, though final.mid was."""
    first = crowdtune("run", "--rounds", "6", "--seed", "5", "--db", "ct.db", stdin="9\nq\n", cwd=tmp_path)
    folder = files_folder(first.stdout)
    wav = (folder / "final.wav").read_bytes()
    unchanged = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path)
    assert (folder / "final.wav").read_bytes() == wav, unchanged.stdout
    last = [line for line in unchanged.stdout.splitlines() if "final.mid" in line]
    assert last == [f"your track: {folder / 'final.mid'} and final.wav (no audio this run: the final.wav an earlier run "
                    "wrote is of this same track)"], unchanged.stdout
    (folder / "final.wav").unlink()
    (folder / "final.wav").mkdir()
    blocked = crowdtune("run", "--db", "ct.db", stdin="9\nq\n", cwd=tmp_path)
    assert (folder / "final.mid").read_bytes() == session_track_midi(tmp_path / "ct.db", 1) and (folder / "final.wav").is_dir()
    last = [line for line in blocked.stdout.splitlines() if "your track" in line]
    assert len(last) == 1 and last[0].startswith(f"your track: {folder / 'final.mid'}; {folder / 'final.wav'} could not be written: "), last
    assert "a folder" in last[0], last


def test_a_resumed_session_writes_where_it_started_and_a_new_out_is_named_as_not_applied(tmp_path):
    """Found by a fresh-user trial: `run --out o1`, q, then `run` wrote the same session's later rounds into rounds/:
    one session's files in two folders. The folder is kept with the session, and --out is shown absolute."""
    first = crowdtune("run", "--out", "o1", "--rounds", "4", "--no-audio", "--db", "ct.db", stdin="5\nq\n", cwd=tmp_path)
    folder = files_folder(first.stdout)
    assert folder.is_absolute() and folder.parent == tmp_path / "o1", first.stdout
    resumed = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="5\nq\n", cwd=tmp_path)
    assert files_folder(resumed.stdout) == folder and (folder / "round-0002.mid").is_file(), resumed.stdout
    assert not (tmp_path / "rounds").exists()
    moved = crowdtune("run", "--out", "o2", "--no-audio", "--db", "ct.db", stdin="5\nq\n", cwd=tmp_path)
    assert files_folder(moved.stdout) == folder and (folder / "round-0003.mid").is_file(), moved.stdout
    # Nothing is made that is not used (an empty o2 was), and one line says where the files go instead.
    assert not (tmp_path / "o2").exists()
    assert f"  --out o2 not applied: this session keeps its files in {folder}" in moved.stdout.splitlines(), moved.stdout
    assert "not applied: --out" not in moved.stdout, moved.stdout  # said once, in that line


def test_a_refused_run_makes_no_out_folder(tmp_path):
    """Found by review: `run --out o3` on a database another crowdtune holds was refused (exit 8) after making o3,
    left empty: nothing is made before it is known to be used."""
    with terminal_at_its_prompt("ct.db", tmp_path):
        refused = crowdtune("run", "--out", "o3", "--no-audio", "--db", "ct.db", stdin="5\n", cwd=tmp_path, check=False)
    assert refused.returncode == ExitCode.DATABASE, refused
    assert not (tmp_path / "o3").exists()


def stored_options(db: Path, session: int) -> dict:
    with sqlite3.connect(db) as raw:
        (options,) = raw.execute("SELECT options FROM sessions WHERE id = ?", (session,)).fetchone()
    return json.loads(options)


def test_a_session_keeps_its_folder_relative_to_the_database_s_and_an_old_absolute_one_still_works(tmp_path):
    """Found by review: a session kept its folder as an absolute path (/home/alice/...), which went wherever the
    database went (copy-db into a shared PostgreSQL, a backup handed on): the host's file layout. It is kept relative
    to the database's folder; a session stored before, with its absolute folder, still resumes there."""
    (tmp_path / "data").mkdir()
    first = crowdtune("run", "--out", "o1", "--rounds", "4", "--no-audio", "--db", "data/ct.db", stdin="5\nq\n", cwd=tmp_path)
    assert stored_options(tmp_path / "data" / "ct.db", 1)["out"] == "../o1", first.stdout
    assert str(tmp_path) not in json.dumps(stored_options(tmp_path / "data" / "ct.db", 1))
    resumed = crowdtune("run", "--no-audio", "--db", "data/ct.db", stdin="5\nq\n", cwd=tmp_path)
    assert files_folder(resumed.stdout) == files_folder(first.stdout), resumed.stdout
    # As a session was stored before: its folder absolute, elsewhere (its files there: one not found is not made again).
    elsewhere = tmp_path / "old"
    elsewhere.mkdir()
    files_folder(first.stdout).rename(elsewhere / files_folder(first.stdout).name)
    with sqlite3.connect(tmp_path / "data" / "ct.db") as raw:
        raw.execute("UPDATE sessions SET options = ? WHERE id = 1", (json.dumps({"aspects": False, "out": str(elsewhere)}),))
    old = crowdtune("run", "--no-audio", "--db", "data/ct.db", stdin="5\nq\n", cwd=tmp_path)
    assert files_folder(old.stdout).parent == elsewhere and (files_folder(old.stdout) / "round-0003.mid").is_file(), old.stdout


def test_a_rating_level_with_the_bar_keeps_the_edit_in_every_round(tmp_path):
    """Found by a fresh-user trial: rating everything 5 kept the edits of rounds 1-6 ("now scores 5") and undid round
    7's ("scores level with it, so the edit is undone"): the blended scores drifted by a rounding error (5 blended with
    5 gave 5.000000000000001), and the next 5 fell below it. The rule undoes only an edit scored below the track before."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    child = spawn(["--seed", "7", "--no-audio", "--rounds", "10"], tmp_path, env)
    said = []
    for _ in range(11):  # the starting track, then 10 rounds
        child.expect(r"your rating, 1-10\? ")
        said.append(child.before)
        child.sendline("5")
    child.expect(pexpect.EOF)
    said = "".join([*said, child.before])
    assert said.count("the edit stays") == 10 and "undone" not in said, said
