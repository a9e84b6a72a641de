"""What a stop says in every phase of a terminal session, under a pseudo-terminal: before a session is started, while a
round is planned, while one closes, at the summary. Found by a trial: Ctrl-C while round 1 was still being planned said
"this round stays open", with no round there. Each phase is held open by the real `crowdtune` with one of its awaits
made to wait (HELD), so the signal comes there every time: no timing window."""

import signal
import sqlite3
import sys

import pexpect
import pytest

from test_cli import crowdtune
from test_terminal import player  # noqa: F401 (a fixture: the environment without DISCORD_TOKEN)

WAIT = 60  # a limit on waiting for a line, never a measure of how fast it came
# The `crowdtune` script, with the coroutine function $HOLD (module:Class.name) made to wait, once, before its work or
# (HOLD_AFTER set) after it, printing HELD first so that the test knows the session is there.
HELD = """
import asyncio, importlib, os, sys
module, name = os.environ["HOLD"].split(":")
owner = importlib.import_module(module)
*path, last = name.split(".")
for part in path:
    owner = getattr(owner, part)
real, held = getattr(owner, last), []

async def hold(*args, **kwargs):
    if held:
        return await real(*args, **kwargs)
    held.append(True)
    result = await real(*args, **kwargs) if os.environ.get("HOLD_AFTER") else None
    print("HELD", flush=True)
    await asyncio.sleep(600)

setattr(owner, last, hold)
from bot.entry import main
sys.exit(main())
"""
AT_ROUND_1 = r"your rating, 1-10\? "


def stopped_in(tmp_path, env, hold: str, answers: list[str], how: str = "ctrl-c", after: bool = False, rounds: int = 3):
    """Run a session on a terminal, typing `answers` (each at a prompt), with `hold` waiting; stop it there (`how`)
    and return its exit code and its lines (the typed ones too)."""
    env = {**env, "HOLD": hold, **({"HOLD_AFTER": "1"} if after else {})}
    child = pexpect.spawn(sys.executable, ["-c", HELD, "run", "--db", "ct.db", "--out", "rounds", "--no-audio", "--rounds",
                                           str(rounds)], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=WAIT)
    seen = ""
    for answer in answers:
        child.expect(AT_ROUND_1)
        child.sendline(answer)
        seen += child.before + child.after
    child.expect("HELD")
    seen += child.before
    if how == "ctrl-c":
        child.sendintr()
    else:
        child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, [line for line in (seen + child.before).replace("\r", "").splitlines() if line.strip()]


def rounds(db):
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT idx, status FROM rounds ORDER BY id").fetchall()


def test_a_stop_before_the_session_has_started_names_no_round(tmp_path, player):  # noqa: F811
    code, lines = stopped_in(tmp_path, player[0], "bot.conductor:Conductor.start", [])
    assert code == 130
    assert lines[-3:] == ["^C", "stopped before a session started or resumed; the next `crowdtune run` does that", "interrupted"]


@pytest.mark.parametrize("how, code, words", [("ctrl-c", 130, "interrupted"), ("sigterm", 143, "terminated")])
def test_a_stop_while_round_1_is_planned_says_no_round_is_open_and_the_next_run_opens_it(tmp_path, player, how, code, words):  # noqa: F811
    code_seen, lines = stopped_in(tmp_path, player[0], "bot.conductor:Conductor.open_round", ["6"], how)
    assert code_seen == code
    assert not any(line.startswith("stopped") and "stays open" in line for line in lines), lines
    assert "stopped before round 1 opened; the next `crowdtune run` opens it" in lines, lines
    assert lines[-1] == words and lines[-2].startswith("the agent "), lines
    assert rounds(tmp_path / "ct.db") == []
    resumed = crowdtune("run", "--db", "ct.db", "--out", "rounds", "--no-audio", stdin="7\n", cwd=tmp_path)
    assert "round 1:" in resumed.stdout and "starting track" not in resumed.stdout, resumed.stdout


def test_a_stop_while_a_rating_is_counted_says_whether_it_was(tmp_path, player):  # noqa: F811
    """Cut short before its round closed, the rating is asked again; after, its round is closed and the next opens."""
    _, lines = stopped_in(tmp_path, player[0], "bot.conductor:Conductor.close", ["6", "7"])
    assert "stopped; your rating 7 was not counted: this round stays open and the next `crowdtune run` asks for it again" in lines, lines
    assert rounds(tmp_path / "ct.db") == [(0, "open")]
    (tmp_path / "ct.db").unlink()
    _, lines = stopped_in(tmp_path, player[0], "bot.conductor:Conductor.close", ["6", "7"], after=True)
    assert not any(line.startswith("stopped") and "stays open" in line for line in lines), lines
    assert "stopped; round 1 closed with your rating 7, and the next `crowdtune run` opens round 2" in lines, lines
    assert rounds(tmp_path / "ct.db") == [(0, "closed")]


@pytest.mark.parametrize("answers", [["6", "7"], ["6", "q"]], ids=["finished", "stopped-with-q"])
def test_a_stop_at_the_summary_says_each_closing_line_once_and_no_open_round_after_the_last(tmp_path, player, answers):  # noqa: F811
    _, lines = stopped_in(tmp_path, player[0], "bot.terminal:write_final_track", answers, rounds=1)
    assert lines[-1] == "interrupted" and lines[-2].startswith("the agent "), lines
    assert len([line for line in lines if line.startswith("your track: ")]) == 1, lines
    stops = [line for line in lines if line.startswith("stopped")]
    if answers[-1] == "q":
        assert stops == ["stopped; this round stays open and the next `crowdtune run` resumes it"], lines
    else:
        assert stops == [] and any(line.startswith("session 1 finished") for line in lines), lines
