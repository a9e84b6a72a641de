"""The `crowdtune` command end to end, as a subprocess, the way a user runs it."""

import contextlib
import json
import re
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest

from bot.errors import ExitCode
from bot.media.render import find_soundfont
from core.crowd import rating_text
from core.engine import SessionSpec
from core.midi import track_to_midi
from core.music import track_from_dict
from core.theory import melody_notes

from test_bad_input_start import read_only  # noqa: F401 (a fixture)

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
README = Path(__file__).resolve().parents[2] / "README.md"
# A command line's prefix that starts the command as a shell without job control starts one in the background
# (`crowdtune simulate ... &` in a script, or an agent's tool): with SIGINT ignored, which Python keeps ignored.
IGNORING_SIGINT = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]


def crowdtune(*args, cwd, stdin="", env_extra=None, check=True, prefix=()):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    env.update(env_extra or {})
    result = subprocess.run([*prefix, CROWDTUNE, *args], cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def test_help_everywhere(tmp_path):
    for command in ([], ["run"], ["simulate"], ["render"], ["export"], ["bench"], ["forget-user"], ["reset"], ["upgrade"]):
        result = crowdtune(*command, "--help", cwd=tmp_path)
        assert "usage: crowdtune" in result.stdout
    assert not (tmp_path / "crowdtune-data").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--rounds", "0", "--out", "o"],
        ["simulate", "--rounds", "many", "--out", "o"],
        ["simulate", "--length", "999", "--out", "o"],
        ["simulate", "--scale", "klingon", "--out", "o"],
        ["simulate", "--base", "H9", "--out", "o"],
        ["simulate", "--base", "120", "--out", "o"],
        ["simulate", "--base", "G9", "--out", "o"],
        ["run", "--base", "127", "--no-audio"],
        ["run", "--base", "0", "--no-audio"],
        ["simulate", "--preset", "nope", "--out", "o"],
        ["simulate", "--rater", "nobody", "--out", "o"],
        ["simulate"],
        ["run", "--tempo", "9"],
        ["run", "--mode", "vote"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_get_one_clear_line_and_exit_2_and_write_nothing(tmp_path, args):
    result = crowdtune(*args, cwd=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0]
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_simulate_with_the_builtin_crowd_writes_its_files(tmp_path):
    options = ("--rounds", "12", "--seed", "3", "--db", "t.db", "--base", "F#3", "--instrument", "violin")
    result = crowdtune("simulate", *options, "--out", "sim", cwd=tmp_path)
    # The session in words, as a terminal session names it: what was composed and how it was played.
    assert result.stdout.startswith("8 raters, rating mode, F#3 major, 8 notes, 120 bpm, played on Violin, preset default, seed 3, 12 rounds;")
    out = tmp_path / "sim"
    assert sorted(p.name for p in out.glob("round-*.mid")) == [f"round-{i:04d}.mid" for i in range(1, 13)]
    results = json.loads((out / "results.json").read_text())
    assert len(results["rounds"]) == 12
    first = results["rounds"][0]
    assert first["index"] == 1 and first["actions"] and len(first["ratings"]) >= 7
    assert all(1 <= v <= 10 for v in first["ratings"].values())
    assert {"brigader", "troll"} <= set(first["ratings"])
    assert all(1 <= r["score"] <= 10 and r["spread"] >= 0 for r in results["rounds"])  # the kept track's score
    assert (out / "learning-curve.png").read_bytes().startswith(b"\x89PNG")
    # The first and the last track, to judge the run with any scorer: the last is what the session ended on.
    start, final = (mido.MidiFile(out / name) for name in ("start.mid", "final.mid"))
    assert len(melody_notes(start)) == 8 and melody_notes(final) == melody_notes(track_to_midi(track_from_dict(results["final_track"])))
    again = crowdtune("simulate", *options, "--out", "sim2", cwd=tmp_path)
    assert again.returncode == 0
    # A fresh scope per run: the same seed gives the same rounds.
    assert json.loads((tmp_path / "sim2" / "results.json").read_text())["rounds"] == results["rounds"]


def test_simulate_with_audio_names_the_audio_it_wrote(tmp_path):
    """Found by a fresh-user trial: `simulate --audio` said it wrote MIDI files only, and its OGG files were a surprise."""
    result = crowdtune("simulate", "--audio", "--rounds", "1", "--seed", "2", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    assert result.stdout.rstrip().endswith("wrote sim/results.json, learning-curve.png, start.mid, final.mid, final.ogg and round MIDI and OGG files")
    assert (tmp_path / "sim" / "round-0001.ogg").read_bytes().startswith(b"OggS")
    assert (tmp_path / "sim" / "final.ogg").read_bytes().startswith(b"OggS")  # the final track as audio, as a terminal's


@pytest.mark.parametrize(("preset", "unit"), [("default", "judged_edits"), ("context", "q_values"), ("hillclimb", None)])
def test_results_json_counts_what_the_agent_learned_as_what_it_is(tmp_path, preset, unit):
    """Every round reported `q_size`, the Q-table's size: always 0 for `default`, which learns a model."""
    crowdtune("simulate", "--preset", preset, "--rounds", "6", "--seed", "2", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    rounds = json.loads((tmp_path / "sim" / "results.json").read_text())["rounds"]
    units = {"judged_edits", "q_values", "q_size"}
    if unit is None:
        assert all(not units & set(r) for r in rounds)  # an agent that learns nothing counts nothing
        return
    counts = [r[unit] for r in rounds]
    assert all(not (units - {unit}) & set(r) for r in rounds)
    assert counts == sorted(counts) and counts[-1] > 0


def _tenths(rounds: list) -> tuple[list, list]:
    tenth = max(1, len(rounds) // 10)
    return rounds[:tenth], rounds[-tenth:]


@pytest.mark.parametrize("mode", ["rating", "ab"])
def test_simulate_reports_what_its_mode_measures_and_the_judged_quality_of_the_start_and_final_tracks(tmp_path, mode):
    """An A/B reward is each kept edit's chance of beating the track before it (1 + 9 x that chance), so its
    mean can fall while the music improves (seed 5: 6.17 -> 4.71 printed as "mean reward" while the crowd's
    noise-free judge rose): A/B reports the votes that preferred an edit and the edits kept, and both modes
    the crowd's noise-free judge of the starting and the final track, on the 1-10 scale the judge uses."""
    from core.raters import judge

    result = crowdtune("simulate", "--mode", mode, "--rounds", "30", "--seed", "5", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    out = tmp_path / "sim"
    rounds = json.loads((out / "results.json").read_text())["rounds"]
    scores = [judge("builtin")(mido.MidiFile(out / name)) for name in ("start.mid", "final.mid")]
    assert f"the builtin crowd's noise-free judge scores the starting track {rating_text(scores[0])} and the final one {rating_text(scores[1])}" in result.stdout
    assert f"an edit kept in {sum(r['kept_edit'] for r in rounds)} of 30 rounds" in result.stdout
    assert rounds[-1]["judge"] == pytest.approx(scores[1])
    first, last = _tenths(rounds)
    if mode == "ab":
        assert "reward" not in result.stdout and "score " not in result.stdout, result.stdout
        share = [sum(v != "neither" for r in part for v in r["votes"].values()) / sum(len(r["votes"]) for r in part) for part in (first, last)]
        assert f"votes preferring an edit to the track before: {share[0]:.0%} in the first 3 rounds, {share[1]:.0%} in the last 3 rounds" in result.stdout
        # Each edit's chance of beating the track before, as the chance it is (0-1), not as a 1-10 "reward" or "score".
        assert all("reward" not in r and "score" not in r and len(r["beat_before"]) == 2 for r in rounds)
        assert all(0 < c < 1 for r in rounds for c in r["beat_before"])
    else:
        means = [sum(r["reward"] for r in part) / len(part) for part in (first, last)]
        assert f"the crowd's verdict on each proposal: {rating_text(means[0])} on average in the first 3 rounds, {rating_text(means[1])} on average in the last 3 rounds" in result.stdout
    assert (out / "learning-curve.png").read_bytes().startswith(b"\x89PNG")


def test_a_simulation_with_one_rater_reports_its_verdict_not_a_crowd_s(tmp_path):
    """Found by a fresh-user trial's kind (a report saying "crowd" where one voter rated): `simulate --rater theorist`
    said "1 rater, ...; the crowd's verdict on each proposal"."""
    result = crowdtune("simulate", "--rater", "theorist", "--rounds", "2", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    assert "1 rater," in result.stdout and "; the theorist's verdict on each proposal: " in result.stdout, result.stdout
    assert "crowd" not in result.stdout, result.stdout
    # Found by a fresh-user trial: a rater named by its module read "the mymodule:my_rater's verdict".
    (tmp_path / "mymodule.py").write_text("def my_rater(midi):\n    return 6\n")
    mine = crowdtune("simulate", "--rater", "mymodule:my_rater", "--rounds", "2", "--out", "sim2", "--db", "t.db", cwd=tmp_path)
    assert "; the verdict of the rater mymodule:my_rater on each proposal: 6 on average" in mine.stdout, mine.stdout
    assert "'s verdict" not in mine.stdout, mine.stdout


@pytest.mark.parametrize(("rounds", "says"), [(2, "on average in the first round, "), (1, "on average in its one round")])
def test_a_short_simulation_names_the_rounds_its_figures_cover_not_a_tenth(tmp_path, rounds, says):
    """A tenth of two rounds is no tenth: the report names the rounds it averages (at least one)."""
    result = crowdtune("simulate", "--rounds", str(rounds), "--seed", "5", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    assert says in result.stdout and "tenth" not in result.stdout, result.stdout


def test_an_ab_round_in_results_json_says_which_edit_stayed_or_that_none_did(tmp_path):
    """results.json named a `winner` in every A/B round, also where neither edit beat the track before clearly
    enough and the track before stayed: read as what the track became, it told another history than the
    session's. A round now says `kept`: "a", "b" or null, beside each edit's chance (`beat_before`); following
    the kept edits from the first track leads to the final one."""
    from core.actions import Action, apply

    crowdtune("simulate", "--mode", "ab", "--rounds", "30", "--seed", "5", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    results = json.loads((tmp_path / "sim" / "results.json").read_text())
    rounds = results["rounds"]
    assert all("winner" not in r and (r["kept"] is not None) == r["kept_edit"] for r in rounds)
    assert {r["kept"] for r in rounds} == {"a", "b", None}, [r["kept"] for r in rounds]  # each case is met
    track = SessionSpec.from_dict(results["spec"]).first_track()
    for r in rounds:
        if r["kept"] is not None:
            track = apply(track, Action.from_key(r["actions"]["ab".index(r["kept"])]))
    assert track == track_from_dict(results["final_track"])


@pytest.mark.parametrize("mode", ["rating", "ab"])
def test_results_json_shows_the_bar_each_round_was_compared_with(tmp_path, mode):
    """Found by a fresh-user trial: round 6 had `score` 6.84, round 7 `reward` 7.06 yet `kept_edit` false and the score
    still 6.84: the verdict was compared with the score moved as the crowd's scale drifted, which no field showed.
    Each round's `bar` is what its verdict had to reach (rating points; A/B: a chance like `beat_before`), and it
    alone says whether the edit stayed; null where nothing was compared (the first rating round, whose starting track
    nobody rated, and a preset that keeps every edit)."""
    crowdtune("simulate", "--mode", mode, "--rounds", "30", "--seed", "5", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    rounds = json.loads((tmp_path / "sim" / "results.json").read_text())["rounds"]
    if mode == "rating":
        assert rounds[0]["bar"] is None and rounds[0]["kept_edit"]
        assert all(r["kept_edit"] == (r["reward"] >= r["bar"]) for r in rounds[1:]), rounds
        # The bar is the score before it, moved as the crowd's verdict on the ballots that set it has moved since.
        assert any(r["bar"] != before["score"] for before, r in zip(rounds, rounds[1:]))
    else:
        for r in rounds:
            chances = [c for c in r["beat_before"] if c is not None]
            assert 0.5 <= r["bar"] < 1 and (max(chances) >= r["bar"] if r["kept_edit"] else max(chances) <= r["bar"]), r
    assert len({r["kept_edit"] for r in rounds}) == 2  # both fates are met
    crowdtune("simulate", "--preset", "paper", "--rounds", "3", "--out", "paper", "--db", "t.db", cwd=tmp_path)
    assert [r["bar"] for r in json.loads((tmp_path / "paper" / "results.json").read_text())["rounds"]] == [None] * 3


def test_simulate_with_an_outside_rater_in_ab_mode(tmp_path):
    (tmp_path / "myraters.py").write_text(
        "def short_is_sweet(midi):\n    return max(1.0, min(10.0, 11 - midi.length))\n"
        "def constant(midi):\n    return 6\n"
    )
    crowdtune(
        "simulate", "--rater", "myraters:short_is_sweet", "--rater", "myraters:constant", "--mode", "ab",
        "--rounds", "5", "--out", "ab", "--db", "t.db", cwd=tmp_path,  # imported from the current folder, no PYTHONPATH
    )
    out = tmp_path / "ab"
    assert (out / "round-0001-a.mid").exists() and (out / "round-0001-b.mid").exists()
    rounds = json.loads((out / "results.json").read_text())["rounds"]
    assert all(r["votes"]["myraters:constant"] == "both" for r in rounds)  # a tie counts as both
    assert all(len(r["actions"]) == 2 for r in rounds)


@pytest.mark.parametrize(
    "body, shown",
    [
        ("return 42", "returned 42"),
        ("return float('nan')", "returned nan"),
        ("return None", "returned None"),
        ("return '7'", "returned '7'"),
        ("return True", "returned True"),
        ("raise KeyError('oops')", "failed in round 3: KeyError"),
        # SystemExit is no Exception: it ended the command silently with exit code 3, "a bad setting".
        ("raise SystemExit(3)", "failed in round 3: SystemExit: 3"),
    ],
)
def test_a_rater_that_misbehaves_is_named_with_its_round_and_leaves_no_open_session(tmp_path, body, shown):
    (tmp_path / "bad.py").write_text(f"calls = 0\ndef rater(midi):\n    global calls\n    calls += 1\n    if calls < 3:\n        return 5\n    {body}\n")
    result = crowdtune("simulate", "--rater", "bad:rater", "--out", "o", "--db", "t.db", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "rater 'bad:rater'" in result.stderr and shown in result.stderr and "round 3" in result.stderr
    with sqlite3.connect(tmp_path / "t.db") as raw:
        assert raw.execute("SELECT status FROM sessions").fetchall() == [("stopped",)]
        assert raw.execute("SELECT status FROM rounds ORDER BY id").fetchall() == [("closed",), ("closed",), ("cancelled",)]


def _rounds(db):
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT idx, status, reward FROM rounds ORDER BY id").fetchall()


def test_run_in_the_terminal_reads_ratings_and_a_second_run_continues_the_agent(tmp_path):
    (tmp_path / "d").mkdir()
    first = crowdtune("run", "--rounds", "2", "--db", "d/ct.db", "--out", "rounds", stdin="7\n3\n", cwd=tmp_path)
    assert "round 1" in first.stdout and "round 2" in first.stdout
    wavs = sorted((tmp_path / "rounds").rglob("round-*.wav"))  # and the session's end's final.wav
    assert len(wavs) == 2 and all(w.read_bytes()[:4] == b"RIFF" for w in wavs)
    assert len(list((tmp_path / "rounds").rglob("round-*.png"))) == 2
    assert _rounds(tmp_path / "d/ct.db") == [(0, "closed", 7.0), (1, "closed", 3.0)]
    second = crowdtune("run", "--rounds", "1", "--db", "d/ct.db", "--out", "rounds", "--no-audio", stdin="9\n", cwd=tmp_path)
    known = int(second.stdout.split("learned from ")[1].split()[0])
    assert known == 1, second.stdout  # the same agent, with what it learned (the first round measured the track)
    assert _rounds(tmp_path / "d/ct.db")[-1] == (0, "closed", 9.0)


@pytest.mark.parametrize(
    "name, value",
    [("CROWDTUNE_ROUND_SECONDS", "-5"), ("CROWDTUNE_ROUND_SECONDS", "nan"), ("CROWDTUNE_QUORUM", "-3"),
     ("CROWDTUNE_ROUNDS", "-1"), ("CROWDTUNE_ROUNDS", "10001"), ("CROWDTUNE_PRESET", "bogus")],
)
def test_a_bad_setting_is_one_clear_line_at_start_and_nothing_is_written(tmp_path, name, value):
    """A setting a session could never be started with is refused at start (README: 'A bad setting is one
    clear line at start'), not only later by /compose."""
    result = crowdtune("run", "--rounds", "1", "--db", "ct.db", "--no-audio", stdin="5\n", cwd=tmp_path, check=False,
                       env_extra={name: value})
    assert result.returncode == ExitCode.SETTING and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "bad setting" in line and name in line
    assert list(tmp_path.iterdir()) == []


def test_a_terminal_session_takes_the_round_defaults_the_bot_takes_and_its_options_win(tmp_path):
    """Found by a user trial: CROWDTUNE_ROUNDS=3 CROWDTUNE_PRESET=theory started 10 rounds of preset default in the
    terminal, which yet refused CROWDTUNE_ROUNDS=abc: the settings that mean the same there apply, from .env too."""
    (tmp_path / ".env").write_text("CROWDTUNE_PRESET=theory\n")
    first = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path, env_extra={"CROWDTUNE_ROUNDS": "3"})
    assert re.match(r"session 1: .*preset theory, seed \d+, 3 rounds ", first.stdout), first.stdout
    given = crowdtune("run", "--new", "--rounds", "2", "--preset", "hillclimb", "--no-audio", "--db", "ct.db", stdin="q\n",
                      cwd=tmp_path, env_extra={"CROWDTUNE_ROUNDS": "3"})
    assert re.search(r"session 2: .*preset hillclimb, seed \d+, 2 rounds ", given.stdout), given.stdout
    endless = crowdtune("run", "--new", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path, env_extra={"CROWDTUNE_ROUNDS": "0"})
    assert re.search(r"session 3: .*preset theory, seed \d+, endless ", endless.stdout), endless.stdout


def test_a_resumed_session_names_the_settings_it_does_not_apply_as_it_names_options_and_help_names_them(tmp_path):
    """Found by a fresh-user trial: CROWDTUNE_PRESET and CROWDTUNE_ROUNDS, the terminal's defaults, were silently
    not applied to a resumed session, where an option given got "not applied: ...". An option given wins over
    its setting, so only the option is named then; a setting equal to the session's is no news."""
    crowdtune("run", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="6\n", cwd=tmp_path)
    (tmp_path / ".env").write_text("CROWDTUNE_PRESET=paper\n")
    resumed = crowdtune("run", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path, env_extra={"CROWDTUNE_ROUNDS": "0"})
    assert "  not applied: CROWDTUNE_PRESET=paper, CROWDTUNE_ROUNDS=0 (this session was started otherwise); " in resumed.stdout, resumed.stdout
    given = crowdtune("run", "--rounds", "7", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path,
                      env_extra={"CROWDTUNE_ROUNDS": "5", "CROWDTUNE_PRESET": "default"})
    assert "  not applied: --rounds 7 (this session" in given.stdout, given.stdout
    helped = " ".join(crowdtune("run", "--help", cwd=tmp_path).stdout.split())
    assert "(default: CROWDTUNE_PRESET, from the environment or .env, else default)" in helped, helped
    assert "(default: CROWDTUNE_ROUNDS, from the environment or .env, 0 meaning endless, else 10)" in helped, helped


def test_run_rounds_0_is_endless_as_the_setting_is_and_simulate_still_refuses_it(tmp_path):
    """Found by a fresh-user trial: CROWDTUNE_ROUNDS=0 and `run --help` meant endless, yet `run --rounds 0` was
    refused ("must be 1-10000"). A simulation must end, so `simulate --rounds 0` is refused with one line."""
    endless = crowdtune("run", "--rounds", "0", "--no-audio", "--db", "ct.db", stdin="5\n6\nq\n", cwd=tmp_path)
    assert re.match(r"session 1: .*seed \d+, endless ", endless.stdout), endless.stdout
    crowdtune("run", "--new", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="5\n", cwd=tmp_path)
    resumed = crowdtune("run", "--rounds", "0", "--no-audio", "--db", "ct.db", stdin="q\n", cwd=tmp_path)
    assert "  not applied: --rounds 0 (this session was started otherwise); " in resumed.stdout, resumed.stdout
    assert "rounds to run, 1-10000 or 0 (default: " in " ".join(crowdtune("run", "--help", cwd=tmp_path).stdout.split())
    assert "rounds to run, 1-10000 (default: 30)" in " ".join(crowdtune("simulate", "--help", cwd=tmp_path).stdout.split())
    refused = crowdtune("simulate", "--rounds", "0", "--out", "sim", "--db", "sim.db", cwd=tmp_path, check=False)
    assert refused.returncode == ExitCode.USAGE and "--rounds must be 1-10000, not 0" in refused.stderr, refused.stderr
    assert not (tmp_path / "sim").exists()


def test_run_explains_bad_ratings_and_asks_again(tmp_path):
    result = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="eleven\n0\n\n8\n", cwd=tmp_path)
    # Enter alone is told what to type (test_terminal_answers.py), the others are refused.
    assert result.stdout.count("sorry") == 2 and "type a rating from 1 (worst) to 10 (best)" in result.stdout
    assert _rounds(tmp_path / "ct.db") == [(0, "closed", 8.0)]


def test_run_stopped_mid_round_resumes_it_next_time(tmp_path):
    crowdtune("run", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="6\n", cwd=tmp_path)
    assert [r[1] for r in _rounds(tmp_path / "ct.db")] == ["closed", "open"]
    resumed = crowdtune("run", "--rounds", "3", "--no-audio", "--db", "ct.db", stdin="5\n4\n", cwd=tmp_path)
    assert "resuming" in resumed.stdout
    assert [(r[0], r[1], r[2]) for r in _rounds(tmp_path / "ct.db")] == [(0, "closed", 6.0), (1, "closed", 5.0), (2, "closed", 4.0)]


def test_run_with_aspects_stores_their_compound_and_explains_bad_lines(tmp_path):
    result = crowdtune(
        "run", "--aspects", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="8 4\n8 4 eleven\n8, 4, 6\n5\n", cwd=tmp_path
    )
    assert "musicality, novelty, coherence" in result.stdout
    assert result.stdout.count("sorry") == 2
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        ratings = raw.execute("SELECT rating FROM votes ORDER BY round_id").fetchall()
    assert ratings == [(6.5,), (5.0,)]  # (2 x 8 + 4 + 6) / 4, then one number for all three
    refused = crowdtune("run", "--aspects", "--mode", "ab", "--db", "other.db", check=False, cwd=tmp_path)
    assert refused.returncode == 2 and "--mode rating" in refused.stderr
    assert not (tmp_path / "other.db").exists()


def test_run_in_ab_mode(tmp_path):
    result = crowdtune("run", "--mode", "ab", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="c\nb\nneither\n", cwd=tmp_path)
    assert "your favourite of the three: a, b, both or neither?" in result.stdout and "sorry" in result.stdout
    # what a vote means, as Discord's post says
    assert "a vote is your favourite of the three (A, B and the track before)" in result.stdout
    assert [r[1] for r in _rounds(tmp_path / "ct.db")] == ["closed", "closed"]


def test_render_many_files_and_export(tmp_path):
    crowdtune("simulate", "--rounds", "3", "--out", "sim", "--db", "ct.db", cwd=tmp_path)
    mids = sorted(str(p) for p in (tmp_path / "sim").glob("round-*.mid"))
    crowdtune("render", *mids, "--out-dir", "audio", cwd=tmp_path)
    oggs = sorted((tmp_path / "audio").glob("*.ogg"))
    assert len(oggs) == 3 and all(o.read_bytes()[:4] == b"OggS" for o in oggs)
    crowdtune("render", mids[0], "--out-dir", "wav", "--format", "wav", cwd=tmp_path)
    assert next((tmp_path / "wav").glob("*.wav")).read_bytes()[:4] == b"RIFF"

    crowdtune("export", "--out", "all.zip", "--db", "ct.db", cwd=tmp_path)
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        names = archive.namelist()
        assert {"rounds.jsonl", "votes.jsonl", "audit.jsonl", "qtable.json"} <= set(names)
        assert sum(n.endswith(".mid") for n in names) >= 3
        # The session's track as it stands is named as the simulation's folder and a terminal session's name it.
        (final,) = [n for n in names if n.endswith("/final.mid")]
        assert archive.read(final) == (tmp_path / "sim" / "final.mid").read_bytes()
        rounds = [json.loads(line) for line in archive.read("rounds.jsonl").splitlines()]
        assert {"scope", "session", "round", "status", "actions", "reward"} <= set(rounds[0])
    bad = crowdtune("export", "--scope", "guild:404", "--out", "x.zip", "--db", "ct.db", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and not (tmp_path / "x.zip").exists()


def test_run_with_no_token_and_nothing_on_standard_input_is_one_line_and_creates_nothing(tmp_path):
    """A container started without a terminal (or `< /dev/null`): no session opens a round nobody can rate."""
    result = crowdtune("run", "--rounds", "2", "--db", "ct.db", "--no-audio", stdin="", cwd=tmp_path, check=False)
    assert result.returncode == 4  # README "Exit codes"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0] and "standard input is empty" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []


def test_run_with_a_missing_soundfont_named_says_which_setting_names_it(tmp_path):
    result = crowdtune("run", "--rounds", "1", "--db", "ct.db", cwd=tmp_path, check=False,
                       env_extra={"CROWDTUNE_SOUNDFONT": str(tmp_path / "none.sf2")})
    assert result.returncode == ExitCode.SETTING  # README "Exit codes": a bad setting (a path typed wrong)
    assert f"CROWDTUNE_SOUNDFONT is '{tmp_path / 'none.sf2'}' (in the environment)" in result.stderr, result.stderr
    assert "apt-get" not in result.stderr  # a path typed wrong: nothing to install
    assert "Traceback" not in result.stderr


def _first_track(db):
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT plan FROM rounds ORDER BY id LIMIT 1").fetchone()[0]


def test_each_run_starts_from_a_fresh_seed_that_it_prints_and_seed_repeats(tmp_path):
    runs = [crowdtune("run", "--rounds", "1", "--no-audio", "--db", f"{n}.db", stdin="5\n", cwd=tmp_path) for n in "ab"]
    seeds = [int(re.search(r"seed (\d+)", run.stdout)[1]) for run in runs]
    assert seeds[0] != seeds[1]
    assert json.loads(_first_track(tmp_path / "a.db"))["incumbent"] != json.loads(_first_track(tmp_path / "b.db"))["incumbent"]
    again = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "c.db", "--seed", str(seeds[0]), stdin="5\n", cwd=tmp_path)
    assert f"seed {seeds[0]}" in again.stdout
    assert _first_track(tmp_path / "c.db") == _first_track(tmp_path / "a.db")
    simulated = crowdtune("simulate", "--rounds", "2", "--out", "sim", "--db", "s.db", cwd=tmp_path)
    assert "seed " in simulated.stdout


def test_export_never_overwrites_the_database_or_another_file_and_names_the_scopes(tmp_path):
    crowdtune("simulate", "--rounds", "2", "--seed", "1", "--out", "sim", "--db", "ct.db", cwd=tmp_path)
    before = (tmp_path / "ct.db").read_bytes()
    (tmp_path / "keep.zip").write_bytes(b"mine")
    (tmp_path / "folder").mkdir()
    for out, says, code in [("ct.db", "is the database", 2), ("./ct.db-wal", "is the database", 2), ("ct.db-shm", "is the database", 2),
                            ("keep.zip", "--force", 2), ("folder", "a folder, not a file: name a file in it, such as folder/export.zip", 12)]:
        result = crowdtune("export", "--out", out, "--db", "ct.db", cwd=tmp_path, check=False)
        assert result.returncode == code and says in result.stderr and len(result.stderr.splitlines()) == 1, (out, result.stderr)
        assert ".export-" not in result.stderr
    assert (tmp_path / "ct.db").read_bytes() == before and (tmp_path / "keep.zip").read_bytes() == b"mine"
    assert not list(tmp_path.glob(".export-*")) and not list((tmp_path / "folder").iterdir())
    crowdtune("export", "--out", "keep.zip", "--db", "ct.db", "--force", cwd=tmp_path)
    assert zipfile.is_zipfile(tmp_path / "keep.zip")
    unknown = crowdtune("export", "--scope", "guild:404", "--out", "x.zip", "--db", "ct.db", cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "sim:default-rating-s1-1" in unknown.stderr


def test_bench_learning_says_when_too_few_seeds_make_its_verdicts_chance_and_quotes_line_names(tmp_path):
    """With 2 seeds it printed "MET personal agent not below hillclimb: after 10: -0.91 ± 3.16" as if it meant
    something; and an unknown --only listed names that hold commas joined by commas."""
    few = crowdtune("bench", "learning", "--seeds", "2", "--rounds", "2", "--only", "default", "--only", "hillclimb", "--out", "b", cwd=tmp_path)
    assert few.stdout.count("not judged: 2 seeds give") == 6, few.stdout  # 3 targets these lines measure, 2 crowds
    assert (tmp_path / "b" / "BENCHMARKS.md").read_text().count("**not judged**") == 6
    assert "2 seeds (0-1)" in (tmp_path / "b" / "BENCHMARKS.md").read_text()
    moved = crowdtune("bench", "learning", "--seeds", "1", "--first-seed", "40", "--rounds", "2", "--only", "default", "--out", "c", cwd=tmp_path)
    report = (tmp_path / "c" / "BENCHMARKS.md").read_text()
    # Found by a fresh-user trial: the first lines said "1 settings x 2 crowds x 1 seeds".
    assert re.search(r"^1 setting x 2 crowds x 1 seed x 2 rounds on \d+ worker process(es)?$", moved.stdout, re.M), moved.stdout
    assert moved.returncode == 0 and "--first-seed 40" in report and "1 seed (40-40)" in report
    assert "Warning" not in few.stderr, few.stderr  # matplotlib's, for a panel with no line that ran
    unknown = crowdtune("bench", "learning", "--seeds", "1", "--only", "nope", cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "'default, A/B', 'hillclimb, A/B'" in unknown.stderr, unknown.stderr


def test_bench_learning_s_wall_time_covers_all_its_work_and_is_never_said_as_0_s(tmp_path):
    """Found by a fresh-user trial: `bench learning` printed "wall time 0 s" for a run that took 11 s: it timed the
    sessions alone, rounded to whole seconds. The wall time runs from the benchmark's start to its report (its
    sessions, what a vote says, its plots), is named so, is shown in enough decimals, and covers the parts it names."""
    ran = crowdtune("bench", "learning", "--seeds", "1", "--rounds", "2", "--only", "default", "--crowd", "builtin", "--out", "b", cwd=tmp_path)
    [line] = [line for line in ran.stdout.splitlines() if "wall time" in line]
    found = re.fullmatch(r"wall time (\d+(?:\.\d+)?) s from the benchmark's start to its report: its sessions (\d+(?:\.\d+)?) s "
                         r"\(\d+\.\d+ s per session in one process\), its plots (\d+(?:\.\d+)?) s", line)
    assert found, line
    wall, sessions, plots = map(float, found.groups())
    # Each is rounded to the decimals it shows: compared within half a unit of its last digit.
    slack = sum(0.5 * 10 ** -len(shown.partition(".")[2]) for shown in found.groups())
    assert wall > 0 and sessions > 0 and wall + slack >= sessions + plots, line
    assert line in (tmp_path / "b" / "BENCHMARKS.md").read_text()  # the report says what was printed


def test_runs_never_mix_in_one_folder_and_bench_learning_defaults_to_a_new_one(tmp_path):
    crowdtune("simulate", "--rounds", "2", "--out", "sim", "--db", "ct.db", cwd=tmp_path)
    before = sorted(p.name for p in (tmp_path / "sim").iterdir())
    again = crowdtune("simulate", "--rounds", "3", "--out", "sim", "--db", "ct.db", cwd=tmp_path, check=False)
    assert again.returncode == 2 and "--force" in again.stderr and len(again.stderr.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == before
    crowdtune("simulate", "--rounds", "3", "--out", "sim", "--db", "ct.db", "--force", cwd=tmp_path)
    assert (tmp_path / "sim" / "round-0003.mid").exists()

    refused = crowdtune("bench", "learning", "--seeds", "1", "--rounds", "3", "--out", "sim", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr and not (tmp_path / "sim" / "BENCHMARKS.md").exists()
    ran = crowdtune("bench", "learning", "--seeds", "1", "--rounds", "3", cwd=tmp_path)  # unmet targets are findings: exit 0
    assert re.search(r"^targets: 14 not judged \(too few samples\), 0 met$", ran.stdout, re.M), ran.stdout  # 1 seed judges none
    [folder] = tmp_path.glob("bench-learning-*")
    report = (folder / "BENCHMARKS.md").read_text()
    assert "Quality after 3 rounds" in report and "after 10" not in report
    assert (folder / "learning-builtin.png").exists() and (folder / "learning-contrarian.png").exists()  # one per crowd


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--rounds", "1", "--no-audio", "--out", "taken"],
        ["run", "--rounds", "1", "--no-audio", "--out", "taken/rounds"],
        ["simulate", "--rounds", "2", "--out", "taken/sim"],
        ["render", "song.mid", "--out-dir", "taken"],
        ["bench", "learning", "--seeds", "1", "--rounds", "2", "--out", "taken"],
    ],
)
def test_an_output_folder_that_is_a_file_is_a_path_that_cannot_be_written(tmp_path, args):
    (tmp_path / "taken").write_text("a file of the user's")
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    before = sorted(p.name for p in tmp_path.iterdir())
    with_db = ["--db", "ct.db"] if args[0] in ("run", "simulate") else []
    result = crowdtune(*args, *with_db, cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.FILE and len(result.stderr.strip().splitlines()) == 1
    assert "taken" in result.stderr and "not a folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before and (tmp_path / "taken").read_text() == "a file of the user's"


@pytest.mark.parametrize("how, code, prefix", [("SIGINT", 130, []), ("SIGINT", 130, IGNORING_SIGINT), ("SIGTERM", 143, [])],
                         ids=["SIGINT-130", "SIGINT-130-started-with-SIGINT-ignored", "SIGTERM-143"])
def test_an_interrupted_simulation_is_stopped_not_left_active(tmp_path, how, code, prefix):
    """Ctrl-C (SIGINT) or SIGTERM (docker stop, kill) during `simulate`: exit code 130 or 143, and the session
    is stopped with no round open (a simulation is never resumed, so an active one would stay active for ever).
    Also when it was started with SIGINT ignored, as a shell starts a command in the background: it ran on.
    Found by a fresh-user trial: it left the rounds' MIDI files and no results.json, start.mid or final.mid;
    both signals now leave them for the rounds done, saying why it stopped."""
    import signal
    import time

    words = "interrupted" if how == "SIGINT" else "terminated"
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    process = subprocess.Popen([*prefix, CROWDTUNE, "simulate", "--rounds", "10000", "--out", "sim", "--db", "ct.db"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until two rounds have closed (a bound against a hang, not a time assertion)
            if (tmp_path / "sim" / "round-0002.mid").exists():
                break
            time.sleep(0.1)
        process.send_signal(getattr(signal, how))
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    # One line: the newline that ends a prompt's line on a terminal is no blank line in a log (a fresh-user trial).
    assert process.returncode == code and err == f"{words}\n", err
    results = _results_of_a_stopped_run(tmp_path / "sim")
    assert len(results["rounds"]) >= 2 and results["stopped"].startswith(words), results["stopped"]
    assert re.search(rf"^stopped after {len(results['rounds'])} of 10000 rounds: {words} \(.*\); wrote sim/results\.json", out, re.M), out
    with sqlite3.connect(tmp_path / "ct.db") as raw:
        assert raw.execute("SELECT status FROM sessions").fetchall() == [("stopped",)]
        assert raw.execute("SELECT COUNT(*) FROM rounds WHERE status = 'open'").fetchone() == (0,)
        assert raw.execute("SELECT COUNT(*) FROM rounds WHERE status = 'closed'").fetchone() == (len(results["rounds"]),)


@pytest.mark.parametrize("command", [["simulate", "--rounds", "1", "--out", "sim", "--db", "ct.db"],
                                     ["copy-db", "--from", "full.db", "--to", "ct.db"]], ids=["simulate", "copy-db"])
def test_a_read_only_database_is_said_at_the_start_of_every_command_that_writes(tmp_path, command, read_only):
    """Found by a fresh-user trial: `simulate` on a database that cannot be written said "the database stopped
    working: attempt to write a readonly database" (not naming it, as if mid-run) and left an empty --out folder,
    while `run` said "the database ro.db cannot be written: ...". Every command that writes checks it one way
    (storage.open_to_write), before it makes anything."""
    import asyncio

    from storage import open_store

    crowdtune("simulate", "--rounds", "1", "--out", "first", "--db", "full.db", cwd=tmp_path)
    if command[0] == "copy-db":  # a copy's target must hold no data yet

        async def make_empty() -> None:
            await (await open_store(str(tmp_path / "ct.db"))).close()

        asyncio.run(make_empty())
    else:
        shutil.copy(tmp_path / "full.db", tmp_path / "ct.db")
    read_only(tmp_path / "ct.db")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = crowdtune(*command, cwd=tmp_path, check=False)
    assert (result.returncode, result.stderr.splitlines()) == (
        ExitCode.DATABASE, [f"crowdtune {command[0]}: the database ct.db cannot be written: attempt to write a readonly database"])
    made = {p.name for p in tmp_path.iterdir()} - set(before)
    assert {name for name in made if not name.endswith(("-wal", "-shm", ".lock"))} == set(), made  # SQLite's, beside it


@pytest.mark.parametrize("problem", ["another program's database", "no soundfont"])
def test_a_simulation_that_cannot_start_writes_nothing(tmp_path, problem):
    """Every check (the database, the soundfont for --audio) comes before the --out folder or a session is made."""
    if problem == "no soundfont":  # a file there that FluidSynth cannot load (one not there is a bad setting)
        (tmp_path / "none.sf2").write_bytes(bytes(range(256)) * 20)
        args, env = ["--audio"], {"CROWDTUNE_SOUNDFONT": str(tmp_path / "none.sf2")}
    else:
        with sqlite3.connect(tmp_path / "ct.db") as raw:
            raw.execute("CREATE TABLE notes (text TEXT)")
        args, env = [], {}
    before = sorted(p.name for p in tmp_path.iterdir())
    result = crowdtune("simulate", "--rounds", "2", "--out", "sim", "--db", "ct.db", *args, cwd=tmp_path, check=False, env_extra=env)
    expected = ExitCode.NO_SOUNDFONT if problem == "no soundfont" else ExitCode.DATABASE
    assert result.returncode == expected and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no sim/ folder, no database with a session left active


def _midi_bytes(ticks_per_beat=480, tempo=500_000) -> bytes:
    import io

    import mido

    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo), mido.Message("note_on", note=60, velocity=90),
                            mido.Message("note_off", note=60, time=480), mido.Message("note_on", note=64, velocity=90),
                            mido.Message("note_off", note=64, time=480)])
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    data = bytearray(buffer.getvalue())
    data[12:14] = ticks_per_beat.to_bytes(2, "big", signed=True)  # the header's time division
    return bytes(data)


@pytest.mark.parametrize(
    "data, reason",
    [
        (_midi_bytes(ticks_per_beat=0), "time division of 0"),
        (_midi_bytes(ticks_per_beat=-(25 << 8) + 40), "SMPTE"),  # 25 frames/s, 40 ticks a frame
        (_midi_bytes(tempo=0), "tempo of 0"),
        (b"", "is not a valid MIDI file (it ends"),  # mido's EOFError has no message of its own
        (_midi_bytes()[:20], "is not a valid MIDI file (it ends"),
    ],
)
def test_render_refuses_midi_timing_it_cannot_honour_with_one_line(tmp_path, data, reason):
    (tmp_path / "odd.mid").write_bytes(data)
    (tmp_path / "fine.mid").write_bytes(_midi_bytes())
    result = crowdtune("render", "fine.mid", "odd.mid", "--out-dir", "audio", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "odd.mid" in line and reason in line
    assert not (tmp_path / "audio").exists()


def test_the_export_numbers_rounds_from_1_everywhere_as_the_session_shows_them(tmp_path):
    shown = crowdtune("run", "--rounds", "2", "--no-audio", "--db", "ct.db", stdin="6\n4\n", cwd=tmp_path).stdout
    assert "round 1:" in shown and "round 2:" in shown
    crowdtune("export", "--out", "all.zip", "--db", "ct.db", cwd=tmp_path)
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        lines = {name: [json.loads(line) for line in archive.read(name).splitlines()] for name in ("rounds.jsonl", "votes.jsonl", "audit.jsonl")}
        midis = sorted(n.rsplit("/", 1)[1] for n in archive.namelist() if "/round-" in n)
    assert [r["round"] for r in lines["rounds.jsonl"]] == [1, 2]
    assert [v["round"] for v in lines["votes.jsonl"]] == [1, 2]
    assert [a["detail"]["round"] for a in lines["audit.jsonl"] if a["action"] == "round_closed"] == [1, 2]
    assert midis == ["round-0001.mid", "round-0002.mid"]


def test_help_names_every_builtin_rater_and_the_render_limits(tmp_path):
    from bot.cli import RATER_NAMES
    from core.raters import BUILTIN_RATERS

    assert list(RATER_NAMES) == ["crowd", *BUILTIN_RATERS]
    simulate = " ".join(crowdtune("simulate", "--help", cwd=tmp_path).stdout.split())
    assert all(name in simulate for name in RATER_NAMES) and "current folder" in simulate
    assert "600 s" in " ".join(crowdtune("render", "--help", cwd=tmp_path).stdout.split())
    assert "apply to it only" in " ".join(crowdtune("bench", "--help", cwd=tmp_path).stdout.split())
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in RATER_NAMES)


def test_output_piped_into_a_reader_that_stops_is_no_traceback(tmp_path):
    """`crowdtune run ... | head -c 1`: the reader has gone when the session writes again (after the rating
    it reads once head has exited), so the write fails: exit 141 and no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    head = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    process = subprocess.Popen([CROWDTUNE, "run", "--rounds", "3", "--db", "ct.db", "--no-audio"], cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=head.stdin, stderr=subprocess.PIPE, env=env)
    head.stdin.close()  # only head holds the pipe's reading end now
    head.wait(timeout=60)
    _, stderr = process.communicate(b"5\n5\n5\n", timeout=120)
    assert process.returncode == 141 and b"Traceback" not in stderr, (process.returncode, stderr)


def test_a_reader_that_stops_gives_141_only_if_it_stopped_before_the_write_as_the_readme_says(tmp_path):
    """Found by a fresh-user trial: `crowdtune sessions | head -1` ended 0 or 141 by timing, where README gave 141 as
    the outcome: a listing that fits the pipe is written before head exits (0); a reader gone first makes it 141."""
    crowdtune("simulate", "--rounds", "1", "--out", "sim", "--db", "ct.db", cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    for reader_gone, code in ((True, ExitCode.BROKEN_PIPE), (False, ExitCode.OK)):
        read_end, write_end = os.pipe()
        if reader_gone:
            os.close(read_end)
        with os.fdopen(write_end, "wb") as out:
            result = subprocess.run([CROWDTUNE, "sessions", "--db", "ct.db"], cwd=tmp_path, stdout=out, stderr=subprocess.PIPE, env=env,
                                    timeout=120)
        if not reader_gone:
            os.close(read_end)  # read nothing: the listing waited in the pipe, as for a head that had not yet exited
        assert result.returncode == code and result.stderr == b"", (reader_gone, result)
    row = next(line for line in README.read_text().splitlines() if line.startswith("| 141 |"))
    assert "0 when" in row and "before" in row, row


@contextlib.contextmanager
def terminal_at_its_prompt(db: str, cwd: Path, env_extra: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A `crowdtune run` on `db` (`env_extra`: more environment, such as who runs it), its pipes open, once it waits at
    its first prompt (holding the database); killed at the end if it has not ended."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")} | (env_extra or {})
    first = subprocess.Popen([CROWDTUNE, "run", "--rounds", "3", "--db", db, "--no-audio"], cwd=cwd,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        seen = b""
        while b"your rating" not in seen:
            chunk = first.stdout.read1(4096)
            assert chunk, first.stderr.read()
            seen += chunk
        yield first
    finally:
        first.kill()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_second_terminal_on_the_same_database_is_refused_and_no_rating_is_lost(tmp_path, request, backend):
    """Two `crowdtune run` on one database would share its session: the second closed the first's round,
    and the rating typed into the first was lost. The second now refuses, naming the first. On PostgreSQL,
    which bots share by shard, the claim is the terminal's scope: two terminals mixed their ratings there."""
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None
    db = server.new_database() if server else "ct.db"
    with terminal_at_its_prompt(db, tmp_path) as first:
        second = crowdtune("run", "--rounds", "3", "--db", db, "--no-audio", stdin="8\n", cwd=tmp_path, check=False)
        assert second.returncode == 8 and "already running" in second.stderr and f"process {first.pid}" in second.stderr, second.stderr
        # Found by a fresh-user trial: it read "already running local:root on postgresql://...", no sentence.
        assert not server or re.search(r"another crowdtune is already running the sessions of local:\S+ on postgresql://", second.stderr), second.stderr
        assert server or (tmp_path / "ct.db.lock").exists()  # the refused one left the claim alone
        first.communicate(b"6\n", timeout=120)
    assert first.returncode == 0 and not (tmp_path / "ct.db.lock").exists()  # a clean end leaves no lock file to wonder at
    if server:
        assert server.psql(db, "SELECT rating FROM votes").split() == ["6"]
    else:
        with sqlite3.connect(tmp_path / "ct.db") as raw:
            assert raw.execute("SELECT rating FROM votes").fetchall() == [(6.0,)]


async def test_a_claim_that_opens_the_lock_file_as_its_holder_removes_it_takes_the_file_there_now(tmp_path, monkeypatch):
    """A clean end removes `<database>.lock` while still holding it. A process that opened the file just before
    and locks it just after (the pause between the two made here, the rest real: a real first process, real
    flocks) holds a removed file, a claim nobody else sees: it takes the file now at the path instead, so a third
    process is refused, naming it, rather than running alongside."""
    import fcntl
    import types

    import storage.sqlite
    from storage import open_store

    def flock_once_the_first_has_ended(fd: int, operation: int) -> None:
        if first.returncode is None:  # this process has opened the first's lock file: now the first ends cleanly
            first.communicate(b"q\n", timeout=120)
            assert first.returncode == 0 and not (tmp_path / "ct.db.lock").exists()
        fcntl.flock(fd, operation)

    with terminal_at_its_prompt("ct.db", tmp_path) as first:
        store = await open_store(tmp_path / "ct.db")
        try:
            monkeypatch.setattr(storage.sqlite, "fcntl", types.SimpleNamespace(
                flock=flock_once_the_first_has_ended, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB))
            await store.claim_instance("the second, a test")
            monkeypatch.undo()
            third = crowdtune("run", "--rounds", "3", "--db", "ct.db", "--no-audio", stdin="8\n", cwd=tmp_path, check=False)
            assert third.returncode == 8 and "already running" in third.stderr and "the second, a test" in third.stderr, third.stderr
        finally:
            await store.close()
    assert not (tmp_path / "ct.db.lock").exists()


def test_the_end_of_a_terminal_session_says_what_was_learned_or_that_nothing_is_sure_yet(tmp_path):
    """Two ratings: the first sets the bar, the second is the model's one rating, too few for any lesson
    (each needs 3): the session says so rather than nothing."""
    result = crowdtune("run", "--rounds", "2", "--db", "ct.db", "--no-audio", stdin="6\n7\n", cwd=tmp_path)
    assert "the agent is not yet sure of anything you like or dislike (1 judged edit so far)" in result.stdout, result.stdout
    more = crowdtune("run", "--new", "--rounds", "30", "--db", "ct.db", "--no-audio", stdin="".join(f"{2 + i % 7}\n" for i in range(30)),
                     cwd=tmp_path)
    assert "what the agent has learned from your votes so far:" in more.stdout or "(30 judged edits so far)" in more.stdout


@pytest.mark.parametrize("preset, says", [("paper", "the agent holds"), ("context", "the agent holds"), ("hillclimb", "learns nothing"),
                                           ("random", "learns nothing")])
def test_a_session_of_any_preset_ends_saying_what_its_agent_learned(tmp_path, preset, says):
    """The README: every way of stopping prints what the agent has learned. A table-based or learning-free
    preset ended with nothing after its last round, though its first line spoke of it."""
    finished = crowdtune("run", "--preset", preset, "--rounds", "2", "--db", "ct.db", "--no-audio", stdin="5\n8\n", cwd=tmp_path)
    last = finished.stdout.strip().splitlines()[-1]
    assert says in last, finished.stdout
    stopped = crowdtune("run", "--new", "--preset", preset, "--rounds", "2", "--db", "ct.db", "--no-audio", stdin="q\n", cwd=tmp_path)
    assert says in stopped.stdout.strip().splitlines()[-1], stopped.stdout


@pytest.mark.parametrize("preset", ["random", "hillclimb"])
def test_a_preset_that_learns_nothing_leaves_no_q_values_for_the_next_session(tmp_path, preset):
    """`random` wrote a Q-entry a round (of the context kind), which a later `context` session counted and used."""
    crowdtune("run", "--preset", preset, "--rounds", "2", "--db", "ct.db", "--no-audio", stdin="5\n8\n", cwd=tmp_path)
    table = crowdtune("run", "--new", "--preset", "context", "--db", "ct.db", "--no-audio", stdin="q\n", cwd=tmp_path)
    assert "the agent holds 0 learned Q-values" in table.stdout.splitlines()[0], table.stdout


def test_a_tabular_preset_counts_only_the_q_values_of_its_own_kind(tmp_path):
    """The README: the tabular presets keep Q-values of their own kinds. A `context` session after a `paper` one
    said it held the paper agent's Q-values (every row of the folder's table), which it never reads."""

    def held(preset: str, rounds: int = 0) -> int:
        ratings = "".join(f"{3 + i}\n" for i in range(rounds)) if rounds else "q\n"
        result = crowdtune("run", "--new", "--preset", preset, "--rounds", str(rounds or 1), "--db", "ct.db", "--no-audio",
                           stdin=ratings, cwd=tmp_path)
        first = next(line for line in result.stdout.splitlines() if line.startswith("session") and "preset" in line)
        return int(re.search(r"the agent holds (\d+) learned Q-value", first).group(1))

    assert held("paper", 3) == 0
    paper = held("paper")
    assert paper > 0 and held("context") == 0
    held("context", 3)
    context = held("context")
    assert context > 0 and held("paper") == paper
    (total,) = sqlite3.connect(tmp_path / "ct.db").execute("SELECT COUNT(*) FROM qvalues").fetchone()
    assert paper + context == total


def test_what_an_ab_session_learned_from_is_counted_and_worded_as_judged_edits_not_ratings(tmp_path):
    """An A/B round gives no rating: each edit a vote compared with the track before is one judged edit ("a":
    A only; "neither": both), so two A/B rounds teach the model 3, and no line calls them ratings."""
    first = crowdtune("run", "--mode", "ab", "--rounds", "2", "--db", "ct.db", "--no-audio", stdin="a\nneither\n", cwd=tmp_path)
    assert "(3 judged edits so far)" in first.stdout or "what the agent has learned from your votes so far:" in first.stdout, first.stdout
    second = crowdtune("run", "--new", "--mode", "ab", "--rounds", "1", "--db", "ct.db", "--no-audio", stdin="b\n", cwd=tmp_path)
    assert "the agent has learned from 3 judged edits" in second.stdout, second.stdout
    assert "rating" not in first.stdout + second.stdout
    table = crowdtune("run", "--new", "--preset", "context", "--rounds", "1", "--db", "ct.db", "--no-audio", stdin="b\n", cwd=tmp_path,
                      check=False)
    assert "learned from" not in table.stdout.splitlines()[0] and "learned Q-value" in table.stdout.splitlines()[0], table.stdout


def test_an_output_folder_that_cannot_be_made_stops_run_before_a_session_starts(tmp_path):
    result = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", "--out", "/proc/crowdtune-rounds", stdin="5\n",
                       cwd=tmp_path, check=False)
    assert result.returncode == 12 and len(result.stderr.strip().splitlines()) == 1 and "/proc/crowdtune-rounds" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no database, no session to resume


def mode_bits_bind_root() -> tuple[str, ...]:
    """A command prefix under which a file's mode bits hold even for root: setpriv drops the capabilities
    that let root read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). () when not root."""
    if os.geteuid() != 0:
        return ()
    caps = "-dac_override,-dac_read_search"
    prefix = ("setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}")
    if shutil.which("setpriv") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode:
        pytest.skip("running as root where setpriv cannot drop CAP_DAC_OVERRIDE: no way to make a file unreadable")
    return prefix


# Every option that reads a file the user names, as (the arguments naming FILE, what FILE holds when it exists).
INPUT_FILES = {
    "render": (["render", "FILE", "--out-dir", "audio"], "midi"),
    "run --from": (["run", "--from", "FILE", "--no-audio", "--db", "ct.db"], "midi"),
    "copy-db --from": (["copy-db", "--from", "FILE", "--to", "copy.db"], "db"),
    "sessions --db": (["sessions", "--db", "FILE"], "db"),
    "export --db": (["export", "--db", "FILE", "--out", "all.zip"], "db"),
    "simulate --rater": (["simulate", "--rater", "FILE:rate", "--out", "sim", "--db", "ct.db"], "module"),
    "render --soundfont": (["render", "song.mid", "--out-dir", "audio", "--soundfont", "FILE"], "soundfont"),
    "simulate --rater PATH": (["simulate", "--rater", "./FILE:rate", "--out", "sim", "--db", "ct.db"], "rater file"),
}
WHY = {"missing": "no such file", "folder": "a folder, not a file", "unreadable": "permission denied"}


# A folder named as a rater module is a package, a module like any other: not a file that cannot be read. A
# database that is not there is nothing to read, no unreadable file (tests/bot/test_cli_edges.py).
@pytest.mark.parametrize("option, why", [(o, w) for o in INPUT_FILES for w in WHY
                                         if (o, w) != ("simulate --rater", "folder") and (INPUT_FILES[o][1], w) != ("db", "missing")])
def test_an_input_file_that_cannot_be_read_is_one_line_naming_it_and_why_exit_12_and_writes_nothing(tmp_path, option, why):
    """README "Exit codes": 12 for a file named on the command line that cannot be read (the soundfont has its
    own code, 10); the line names the file and says why; no database, session or output folder is made."""
    argv, holds = INPUT_FILES[option]
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    # A rater is named as a module: the file is MODULE.py (found in the current folder, as with python -m).
    name, file = ("mymod", tmp_path / "mymod.py") if holds == "module" else ("input.x", tmp_path / "input.x")
    prefix = ()
    if why == "folder":
        file.mkdir()
    elif why == "unreadable":
        rater = b"def rate(midi):\n    return 5\n"
        file.write_bytes({"midi": _midi_bytes(), "db": b"", "module": rater, "rater file": rater, "soundfont": b"sfbk"}[holds])
        file.chmod(0)
        prefix = mode_bits_bind_root()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = crowdtune(*[a.replace("FILE", name) for a in argv], cwd=tmp_path, stdin="7\n", check=False, prefix=prefix)
    expected = ExitCode.NO_SOUNDFONT if holds == "soundfont" else ExitCode.FILE
    assert result.returncode == expected and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert file.name in line and WHY[why] in line.lower(), line
    if holds == "soundfont":  # a path typed wrong, not a soundfont to install (that advice is for none found)
        assert "apt-get" not in line, line
        # Found by a fresh-user trial: the advice named CROWDTUNE_SOUNDFONT first; it names what the user typed.
        assert line.endswith(": --soundfont must name an .sf2 file that can be read") and "CROWDTUNE_SOUNDFONT" not in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no database, no output


def _base_range() -> str:
    """The valid base notes as every message and help states them, from the constants core.music.check_base uses."""
    from core.music import BASE_MAX, BASE_MIN, note_name

    return f"{note_name(BASE_MIN)}-{note_name(BASE_MAX)} (MIDI {BASE_MIN}-{BASE_MAX})"


@pytest.mark.parametrize("base", ["200", "128", "127", "104", "32", "0", "C9", "C10", "H9", "²"])
@pytest.mark.parametrize("command", [["run", "--no-audio", "--db", "ct.db"], ["simulate", "--out", "sim", "--db", "ct.db"]])
def test_a_base_note_out_of_range_is_told_the_range_it_may_take(tmp_path, command, base):
    """The track needs an octave below its base and two above, so the base's range is narrower than MIDI's
    0-127: a refused base states that range, not MIDI's."""
    result = crowdtune(*command, "--base", base, cwd=tmp_path, stdin="7\n", check=False)
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert _base_range() in line and "0-127" not in line, line
    assert list(tmp_path.iterdir()) == []


def test_the_base_range_is_stated_alike_in_help_and_readme(tmp_path):
    for command in ("run", "simulate"):
        assert _base_range() in " ".join(crowdtune(command, "--help", cwd=tmp_path).stdout.split()), command
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert readme.count(_base_range()) >= 2  # --base, and /compose's base note


def _a_database(folder: Path) -> Path:
    """A crowdtune database with a session in it (two rounds of a simulation)."""
    crowdtune("simulate", "--rounds", "2", "--out", "made-sim", "--db", "made.db", cwd=folder)
    shutil.rmtree(folder / "made-sim")
    return folder / "made.db"


def _files(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under `folder`, with its bytes (None for a folder): what a refused command must not change."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


# Every command that opens a database, as (its arguments, the one naming the database: DB).
DATABASE_ARGS = {
    "run": ["run", "--rounds", "1", "--no-audio", "--db", "DB"],
    "simulate": ["simulate", "--rounds", "2", "--out", "sim", "--db", "DB"],
    "sessions": ["sessions", "--db", "DB"],
    "export": ["export", "--out", "all.zip", "--db", "DB"],
    "copy-db --from": ["copy-db", "--from", "DB", "--to", "copy.db"],
    "copy-db --to": ["copy-db", "--from", "made.db", "--to", "DB"],
}


@pytest.mark.parametrize("command", DATABASE_ARGS)
def test_a_folder_as_the_database_is_the_same_line_and_exit_code_for_every_command(tmp_path, command):
    """`run --db FOLDER` exited 8 (a database that cannot be used) while `sessions --db FOLDER` exited 12: a
    path that names the wrong kind of thing is the same mistake everywhere, a file named on the command line
    that cannot be used (README "Exit codes": 12), said the same way."""
    _a_database(tmp_path)
    (tmp_path / "folder").mkdir()
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("DB", "folder") for a in DATABASE_ARGS[command]], cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.FILE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert "the database folder (a folder, not a file" in line and "such as folder/crowdtune.db" in line, line
    # What is to be written is said as such: copy-db --to FOLDER said "cannot read the database folder".
    assert f"cannot {'read' if command in ('sessions', 'export', 'copy-db --from') else 'write'} the database folder" in line, line
    assert _files(tmp_path) == before


# URLs naming no database crowdtune can use, and what the line says of each.
BAD_URLS = {
    "postgresql+asyncpg://u:s3cretpw@127.0.0.1/db": "leave out +asyncpg, as in postgresql://",
    "postgresql://u:s3cretpw@[::1/db": "a [ or ] is out of place",
    "postgresql://u:s3cretpw@127.0.0.1:notaport/db": "its port is not a number from 1 to 65535",
    # Mistyped (a later trial): each was taken for a file's path, printed whole and made, the password in its name.
    " postgresql://u:s3cretpw@127.0.0.1/db": "has spaces around it",
    "postgresql:/u:s3cretpw@127.0.0.1/db": "postgresql:/u:***@127.0.0.1/db cannot be used: postgresql: must be followed by //",
    "postgresql//u:s3cretpw@127.0.0.1/db": "postgresql//u:***@127.0.0.1/db cannot be used: postgresql must be followed by ://",
    "postgresql:u:s3cretpw@h": "postgresql:u:***@h cannot be used: postgresql: must be followed by //",
    # The scheme left out: taken for a file's path, made with the password in its name (rounds/u_s3cretpw_...).
    "u:s3cretpw@127.0.0.1/db": "u:***@127.0.0.1/db cannot be used: it lacks postgresql:// before its user name: write postgresql://u:***@127.0.0.1/db",
    # Taken silently (a later trial): asyncpg connected to port 5432, and kept %zz in the password as typed.
    "postgresql://u:s3cretpw@127.0.0.1:/db": "its port is not a number from 1 to 65535",
    "postgresql://u:s3cret%zzpw@127.0.0.1/db": "a % in it starts no percent-encoding",
}


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("command", DATABASE_ARGS)
def test_a_url_that_names_no_usable_database_is_one_line_without_its_password_for_every_command(tmp_path, command, url):
    """Found by a fresh-user trial: a URL of another scheme was taken for a SQLite path ("the folder
    postgresql+asyncpg:/u:s3cretpw@127.0.0.1 does not exist"), a malformed PostgreSQL URL was a traceback. Any
    location that looks like a URL and cannot be used is a database that cannot be used (exit 8), said in one
    line with the password as ***, and nothing is made."""
    if "made.db" in DATABASE_ARGS[command]:
        _a_database(tmp_path)
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("DB", url) for a in DATABASE_ARGS[command]], cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.DATABASE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert BAD_URLS[url] in line and "***" in line and "s3cretpw" not in result.stdout + result.stderr, line
    assert _files(tmp_path) == before


def test_crowdtune_db_naming_another_kind_of_url_says_what_would_do(tmp_path):
    result = crowdtune("sessions", cwd=tmp_path, env_extra={"CROWDTUNE_DB": "mysql://u:s3cretpw@h/db"}, check=False)
    assert result.returncode == ExitCode.SETTING, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert "CROWDTUNE_DB is 'mysql://u:***@h/db' (in the environment)" in line, line
    assert "a SQLite file's path" in line and "it does not start with postgresql://" in line, line
    assert list(tmp_path.iterdir()) == []


# URLs a user may mean as a database, and what the reason says of each (a SQLAlchemy user's driver, above all).
REASONS = {
    "postgresql+asyncpg://u:s3cretpw@h/db": "leave out +asyncpg",
    "postgresql+psycopg://u:s3cretpw@h/db": "leave out +psycopg",
    "mysql://u:s3cretpw@h/db": "does not start with postgresql://",
    "u:s3cretpw@h:5432": "lacks postgresql:// before its user name: write postgresql://u:***@h:5432",
    "postgresql://u:s3cretpw@h:/db": "its port is not a number",
    "postgresql://u:s3cret%zzpw@h/db": "a % in it starts no percent-encoding",
}


@pytest.mark.parametrize("url", REASONS)
def test_a_bad_database_url_gives_the_same_reason_as_db_and_as_crowdtune_db(tmp_path, url):
    """Found by a fresh-user trial: postgresql+asyncpg://... was "neither a SQLite file's path nor a PostgreSQL URL"
    with --db and "it does not start with postgresql://" in CROWDTUNE_DB, and neither said to drop the driver.
    One reason (storage.location_problem) ends both lines; the exit codes stay a database's (8) and a setting's (3)."""
    given = crowdtune("sessions", "--db", url, cwd=tmp_path, check=False)
    setting = crowdtune("sessions", cwd=tmp_path, env_extra={"CROWDTUNE_DB": url}, check=False)
    assert (given.returncode, setting.returncode) == (ExitCode.DATABASE, ExitCode.SETTING), (given.stderr, setting.stderr)
    [given_line], [setting_line] = given.stderr.strip().splitlines(), setting.stderr.strip().splitlines()
    reason = given_line.split(" cannot be used: ", 1)[1]
    assert setting_line.endswith(f", expected a SQLite file's path or a postgresql:// URL: {reason}"), (given_line, setting_line)
    assert REASONS[url] in reason and "s3cretpw" not in given.stderr + setting.stderr, reason
    assert list(tmp_path.iterdir()) == []


# URLs of a fresh-user trial, each with a password that is a piece of the driver's words, and those words.
DRIVER_WORDS = {
    "postgresql://u:1@localhost:1/db": ["Errno 111", "127.0.0.1", "Connect call failed"],
    "postgresql://u:e@localhost:1/db": ["Errno 111", "127.0.0.1", "Connect call failed"],
    "postgresql://u:p@localhost:1/db?sslmode=bogus": ["`sslmode` parameter must be one of: disable, allow, prefer, require"],
}


@pytest.mark.parametrize("url", DRIVER_WORDS)
def test_a_database_that_cannot_be_reached_is_named_without_its_password_and_the_driver_s_words_kept(tmp_path, url):
    """Found by a fresh-user trial: `--db postgresql://u:1@localhost:1/db` said "[Errno *********] Connect call failed
    ('***27.0.0.***', ***)": every 1 masked, which gave the password away and garbled the reason."""
    result = crowdtune("sessions", "--db", url, cwd=tmp_path, check=False)
    [line] = result.stderr.strip().splitlines()
    shown = url.replace(":1@", ":***@").replace(":e@", ":***@").replace(":p@", ":***@")
    assert result.returncode == ExitCode.DATABASE and line.startswith(f"crowdtune sessions: cannot connect to the database {shown}: "), line
    assert all(words in line for words in DRIVER_WORDS[url]), line


@pytest.mark.parametrize("where", ["the environment", ".env"])
@pytest.mark.parametrize("value", ["postgresql+asyncpg://u:s3cretpw@h/db", "bench.db"])
def test_bench_scaling_checks_crowdtune_bench_db_as_a_setting(tmp_path, value, where):
    """Found by a fresh-user trial: `bench scaling` read CROWDTUNE_BENCH_DB unchecked (not from .env either), ran
    SQLite's figures for a minute and then showed a worker's traceback. It is a setting: one line naming it, exit 3,
    nothing run or written."""
    env = {"CROWDTUNE_BENCH_DB": value} if where == "the environment" else {}
    if where == ".env":
        (tmp_path / ".env").write_text(f"CROWDTUNE_BENCH_DB={value}\n")
    before = _files(tmp_path)
    result = crowdtune("bench", "scaling", cwd=tmp_path, env_extra=env, check=False)
    assert result.returncode == ExitCode.SETTING and result.stdout == "", (result.returncode, result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"crowdtune bench: bad setting: CROWDTUNE_BENCH_DB is '{value.replace('s3cretpw', '***')}' (in {where})"), line
    assert "expected a postgresql:// URL" in line and "s3cretpw" not in line, line
    assert _files(tmp_path) == before


@pytest.mark.parametrize("args, line", [
    (["scaling", "--seeds", "2"], "--seeds is for bench learning only; bench scaling takes only --rounds"),
    # Not "for bench learning only" (a fresh-user trial): bench scaling takes it too, as the README says.
    (["render", "--rounds", "2"], "--rounds is for bench learning and bench scaling only; bench render takes no options"),
    (["render", "--crowd", "builtin"], "--crowd is for bench learning only; bench render takes no options"),
])
def test_bench_scaling_takes_rounds_and_no_other_option(tmp_path, args, line):
    """`bench scaling --rounds N` sets its sessions' rounds (tests/bot/bench/test_scaling_signals.py runs it); any
    other option of bench learning's is refused, one line and exit 2, before anything runs, as for other benches."""
    result = crowdtune("bench", *args, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and result.stdout == "" and result.stderr == f"crowdtune bench: error: {line} (see crowdtune bench --help)\n", result.stderr


@pytest.mark.parametrize("args", [
    ["bench", "render", "--seeds", "2"],
    ["simulate", "--rater", "theorist", "--crowd", "contrarian", "--out", "o"],
    ["simulate", "--noise", "0.5", "--rater", "brigader", "--out", "o"],
    ["simulate", "--base", "G9", "--out", "o"],
    ["copy-db", "--from", "a.db", "--to", "a.db"],
    ["bench", "learning", "--only", "nope", "--seeds", "1", "--rounds", "2"],
])
def test_arguments_refused_after_parsing_read_as_the_parser_s_own_refusals(tmp_path, args):
    """Found by a fresh-user trial: `bench render --seeds 2` lacked the "(see crowdtune bench --help)" that ends every
    other bad argument's line: arguments a command refuses after parsing are said the same way, exit 2, nothing written."""
    result = crowdtune(*args, cwd=tmp_path, check=False)
    [line] = result.stderr.splitlines()
    assert result.returncode == ExitCode.USAGE and line.startswith(f"crowdtune {args[0]}: error: "), line
    assert line.endswith(f" (see crowdtune {args[0]} --help)") and list(tmp_path.iterdir()) == [], line


def test_bench_scaling_on_a_database_it_cannot_reach_says_so_in_one_line_before_any_figure(tmp_path):
    """A later trial: CROWDTUNE_BENCH_DB naming a server that is not there printed SQLite's figures, then each
    worker's traceback, then waited out its start barrier (five minutes). One line, exit 8, no password."""
    result = crowdtune("bench", "scaling", cwd=tmp_path, env_extra={"CROWDTUNE_BENCH_DB": "postgresql://u:s3cretpw@127.0.0.1:1/db"}, check=False)
    assert result.returncode == ExitCode.DATABASE and "votes/s" not in result.stdout, (result.returncode, result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("crowdtune bench: cannot connect to the database postgresql://u:***@127.0.0.1:1/db"), line
    assert "s3cretpw" not in result.stdout + result.stderr


# Every option naming a file or folder to write, as (the arguments, with PATH for it, and what the line calls it).
OUTPUT_ARGS = {
    "run --db": (["run", "--rounds", "1", "--no-audio", "--db", "PATH"], "the database"),
    "run --out": (["run", "--rounds", "1", "--no-audio", "--db", "ct.db", "--out", "PATH"], "the folder"),
    "simulate --db": (["simulate", "--rounds", "2", "--out", "sim", "--db", "PATH"], "the database"),
    "simulate --out": (["simulate", "--rounds", "2", "--db", "ct.db", "--out", "PATH"], "the folder"),
    "render --out-dir": (["render", "song.mid", "--out-dir", "PATH"], "the folder"),
    "export --out": (["export", "--db", "made.db", "--out", "PATH"], "the zip file"),
    "copy-db --to": (["copy-db", "--from", "made.db", "--to", "PATH"], "the database"),
    "bench learning --out": (["bench", "learning", "--seeds", "1", "--rounds", "2", "--out", "PATH"], "the folder"),
}


@pytest.mark.parametrize("option", OUTPUT_ARGS)
def test_a_mistyped_path_whose_folder_does_not_exist_is_refused_and_no_folder_is_made(tmp_path, option):
    """`--db /tmp/typo/dir/x.db` made typo/ and typo/dir/ and a database in them: a path whose folder does not
    exist is a mistake (as for cp or a shell's >), one line naming that folder, exit 12, nothing made."""
    _a_database(tmp_path)
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    argv, what = OUTPUT_ARGS[option]
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("PATH", "typo/dir/x") for a in argv], cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.FILE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert f"cannot write {what} typo/dir/x (the folder typo/dir does not exist)" in line, line
    assert _files(tmp_path) == before


@pytest.mark.parametrize("option", [o for o in OUTPUT_ARGS if "--db" not in o and "--to" not in o])
def test_an_output_that_is_the_wrong_kind_of_thing_is_a_bad_path_like_any_other(tmp_path, option):
    """A folder option naming a file (or export's zip naming a folder) was argparse's usage error, exit 2, while
    a database that is a folder was 12: the same mistake of a path, one line saying what it is, exit 12."""
    _a_database(tmp_path)
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    argv, what = OUTPUT_ARGS[option]
    wrong, kind = ("folder", "a folder, not a file") if what == "the zip file" else ("taken", "a file, not a folder")
    (tmp_path / "folder").mkdir()
    (tmp_path / "taken").write_text("a file of the user's")
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("PATH", wrong) for a in argv], cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.FILE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert f"cannot write {what} {wrong} ({kind}" in line, line
    assert _files(tmp_path) == before


def test_the_default_database_folder_is_made_as_the_readme_says(tmp_path):
    """The folder the tool itself names (crowdtune-data/) is made when missing; only a path the user typed must exist."""
    crowdtune("run", "--rounds", "1", "--no-audio", stdin="5\n", cwd=tmp_path)
    assert (tmp_path / "crowdtune-data" / "crowdtune.db").is_file() and list((tmp_path / "crowdtune-data" / "rounds").iterdir())


# Secrets a .env holds beside the settings (never to be printed by any command).
SECRETS = {"DISCORD_TOKEN": "MTIz.a-secret-token.value", "POSTGRES_PASSWORD": "a-secret-password"}


@pytest.mark.parametrize("command", [name for name, argv in DATABASE_ARGS.items() if "--db" in argv])
def test_crowdtune_db_in_dotenv_names_the_database_of_every_command_and_no_secret_is_printed(tmp_path, command):
    """`CROWDTUNE_DB` in .env was read by `run` only: `sessions`, `simulate` and `export` read the environment
    alone, so `simulate` filled crowdtune-data/crowdtune.db while the bot used the .env's database. Every command
    now reads it the way every setting is read (README: .env, the environment over it, --db over both)."""
    _a_database(tmp_path)
    (tmp_path / "folder").mkdir()
    # run with a token would be the bot: its .env holds the other secret only.
    secrets = {k: v for k, v in SECRETS.items() if command != "run" or k != "DISCORD_TOKEN"}
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in {**secrets, "CROWDTUNE_DB": "folder"}.items()))
    before = _files(tmp_path)
    argv = [a for a in DATABASE_ARGS[command] if a not in ("--db", "DB")]
    result = crowdtune(*argv, cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.FILE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert "the database folder (a folder, not a file" in line, line
    assert not any(secret in result.stdout + result.stderr for secret in SECRETS.values())
    assert _files(tmp_path) == before


def test_the_database_option_comes_before_the_environment_which_comes_before_dotenv(tmp_path):
    """The order every setting has (pydantic-settings: the environment over .env), with --db over both."""
    _a_database(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / ".env").write_text("CROWDTUNE_DB=folder\n")
    listed = crowdtune("sessions", cwd=tmp_path, env_extra={"CROWDTUNE_DB": "made.db"})
    assert listed.stdout.strip().endswith("1 session in made.db"), listed.stdout
    (tmp_path / ".env").write_text("CROWDTUNE_DB=made.db\n")
    listed = crowdtune("sessions", "--db", "made.db", cwd=tmp_path, env_extra={"CROWDTUNE_DB": "folder"})
    assert listed.stdout.strip().endswith("1 session in made.db"), listed.stdout


@pytest.mark.parametrize("command", ["run", "simulate --audio", "render", "simulate", "sessions"])
def test_crowdtune_soundfont_in_dotenv_is_the_soundfont_of_every_command(tmp_path, command):
    """`CROWDTUNE_SOUNDFONT` in .env was the bot's only: `run` in a terminal, `simulate --audio` and `render`
    read the environment and rendered with the Debian soundfont. The same kind as CROWDTUNE_DB's. A later trial:
    naming no file, it passed `simulate` without --audio and `sessions` without a word, though the README says every
    command checks every setting, and its line (exit 10) said not where it was set: a bad setting's line, exit 3."""
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    (tmp_path / ".env").write_text("CROWDTUNE_SOUNDFONT=missing.sf2\n")
    argv = {"run": ["run", "--rounds", "1", "--db", "ct.db"], "simulate --audio": ["simulate", "--audio", "--rounds", "1", "--db", "ct.db", "--out", "sim"],
            "render": ["render", "song.mid", "--out-dir", "."], "simulate": ["simulate", "--rounds", "1", "--db", "ct.db", "--out", "sim"],
            "sessions": ["sessions"]}[command]
    result = crowdtune(*argv, cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.SETTING and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.endswith("bad setting: CROWDTUNE_SOUNDFONT is 'missing.sf2' (in .env), expected a .sf2 soundfont file's path: no such file"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "song.mid"]


def _broken_soundfonts(folder: Path) -> dict[str, Path]:
    """Files FluidSynth cannot load: not a SoundFont at all, and a real one cut short (a download that stopped)."""
    garbage, cut = folder / "garbage.sf2", folder / "cut.sf2"
    garbage.write_bytes(bytes(range(256)) * 20)
    cut.write_bytes(find_soundfont().read_bytes()[:20_000])
    return {"garbage": garbage, "cut short": cut}


@pytest.mark.parametrize("broken", ["garbage", "cut short"])
@pytest.mark.parametrize("command", ["render", "run"])
def test_a_soundfont_fluidsynth_cannot_load_is_one_line_with_its_reason_and_no_library_chatter(tmp_path, command, broken):
    """FluidSynth and GLib (its DLS loader's) printed their own lines to stderr before ours: "fluidsynth: error:
    SoundFont file size mismatch", "** CRITICAL **: ipatch_container_init_iter ...". They go to logging now,
    and ours says what FluidSynth found."""
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    font = _broken_soundfonts(tmp_path)[broken]
    argv = {"render": ["render", "song.mid", "--out-dir", ".", "--soundfont", str(font)],
            "run": ["run", "--rounds", "1", "--db", "ct.db"]}[command]
    result = crowdtune(*argv, cwd=tmp_path, stdin="5\n", check=False, env_extra={"CROWDTUNE_SOUNDFONT": str(font)})
    assert result.returncode == ExitCode.NO_SOUNDFONT, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert f"FluidSynth could not load the SoundFont {font} (" in line, line
    # Named by the setting (run), the line says where it was set, as a bad setting's does; by --soundfont, not.
    assert line.startswith(f"crowdtune {command}: {'CROWDTUNE_SOUNDFONT (in the environment): ' if command == 'run' else ''}FluidSynth"), line


# Every path option of every command, given as ~/NAME (quoted: the shell leaves ~ alone), and what it makes.
HOME_ARGS = {
    "run --db --out": (["run", "--rounds", "1", "--no-audio", "--db", "~/new.db", "--out", "~/rounds"], ["new.db", "rounds"]),
    "run --from": (["run", "--rounds", "1", "--no-audio", "--db", "~/new.db", "--from", "~/melody.mid"], ["new.db"]),
    "simulate --db --out": (["simulate", "--rounds", "2", "--db", "~/new.db", "--out", "~/sim"], ["new.db", "sim/results.json"]),
    "sessions --db": (["sessions", "--db", "~/made.db"], []),
    "export --db --out": (["export", "--db", "~/made.db", "--out", "~/all.zip"], ["all.zip"]),
    "copy-db --from --to": (["copy-db", "--from", "~/made.db", "--to", "~/copy.db"], ["copy.db"]),
    "render FILE --out-dir --soundfont": (["render", "~/song.mid", "--out-dir", "~/audio", "--soundfont", "~/font.sf2"], ["audio/song.ogg"]),
    "bench learning --out": (["bench", "learning", "--seeds", "1", "--rounds", "2", "--crowd", "builtin", "--only", "default",
                              "--out", "~/bench"], ["bench/BENCHMARKS.md"]),
}


@pytest.mark.parametrize("option", HOME_ARGS)
def test_a_quoted_tilde_in_any_path_option_is_the_home_folder(tmp_path, option):
    """`--db '~/x.db'` (quoted, so the shell did not expand ~) was expanded by SqliteStore to look for a folder but
    opened as given, and exports read the expanded one; the command line refused it first ("the folder ~ does
    not exist"). Every path option of every command now means the home folder by ~, as a shell would."""

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    _a_database(tmp_path).rename(home / "made.db")
    (home / "song.mid").write_bytes(_midi_bytes())
    track_to_midi(SessionSpec(seed=1).first_track()).save(home / "melody.mid")
    (home / "font.sf2").symlink_to(find_soundfont())
    argv, made = HOME_ARGS[option]
    result = crowdtune(*argv, cwd=work, stdin="5\n", env_extra={"HOME": str(home)})
    assert all((home / name).exists() for name in made), sorted(p.name for p in home.iterdir())
    assert list(work.iterdir()) == []  # no folder named ~, no crowdtune-data/
    if option == "sessions --db":
        assert result.stdout.strip().endswith(f"1 session in {home / 'made.db'}"), result.stdout


# Every option naming a file (not a folder) that a command writes or reads, as (its arguments with PATH, the exit
# code a path that cannot be used gets there).
FILE_ARGS = {
    **{option: (argv, ExitCode.FILE) for option, (argv, what) in OUTPUT_ARGS.items() if what != "the folder"},
    **{option: ([a.replace("FILE", "PATH") for a in argv], ExitCode.NO_SOUNDFONT if holds == "soundfont" else ExitCode.FILE)
       for option, (argv, holds) in INPUT_FILES.items() if holds != "module"},
}


@pytest.mark.parametrize("name", ["new/", "made.db/", "new/."])
@pytest.mark.parametrize("option", FILE_ARGS)
def test_a_file_path_ending_in_a_separator_names_a_folder_and_is_refused_before_anything_is_made(tmp_path, option, name):
    """`run --db /tmp/x/nd2/` made a 110 KB database at /tmp/x/nd2, then failed (Not a directory, exit 12): pathlib
    drops a final /, so the check looked at another path than SQLite opened. A path that ends in / (or .) names a
    folder: every option naming a file refuses it with one line, before anything is made."""
    _a_database(tmp_path)
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    argv, code = FILE_ARGS[option]
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("PATH", name) for a in argv], cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == code and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert name in line and f"it ends in {name[-1]}, so it names a folder, not a file" in line, line
    assert _files(tmp_path) == before


@pytest.mark.parametrize("option", [*OUTPUT_ARGS, "export --out (replacing)"])
def test_a_place_that_cannot_take_a_new_file_is_the_usual_line_before_anything_is_made(tmp_path, option):
    """`--out /proc/x` gave the system's raw "No such file or directory: /proc/x", `--db /proc/x.db` exit 8
    "unable to open database file", an export into a read-only folder the name of its temporary file: every
    output now tries its place first and says "cannot write WHAT PATH (reason)", exit 12, before anything is made."""
    _a_database(tmp_path)
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    prefix, path = (), "/proc/crowdtune-check"
    if option == "export --out (replacing)":  # the zip is there, its folder takes no new file (the temporary one)
        argv, what = [*OUTPUT_ARGS["export --out"][0], "--force"], "the zip file"
        (tmp_path / "shut").mkdir()
        (tmp_path / "shut" / "all.zip").write_bytes(b"an old export")
        (tmp_path / "shut").chmod(0o555)
        prefix, path = mode_bits_bind_root(), "shut/all.zip"
    else:
        argv, what = OUTPUT_ARGS[option]
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("PATH", path) for a in argv], cwd=tmp_path, stdin="5\n", check=False, prefix=prefix)
    assert result.returncode == ExitCode.FILE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert f"cannot write {what} {path} (" in line and ".export-" not in line, line
    # /proc is there but makes no new entry: the system's "no such file or directory" said otherwise.
    assert path != "/proc/crowdtune-check" or line.endswith(f"{path} (the folder /proc takes no new file)"), line
    assert _files(tmp_path) == before


@pytest.mark.parametrize("option", [o for o in FILE_ARGS if "--rater" not in o] + ["run --out", "render --out-dir"])
def test_a_dash_is_no_path_and_no_file_named_dash_is_written(tmp_path, option):
    """`export --out -` wrote a file named '-' (to other tools, standard output): every path option refuses '-'."""
    _a_database(tmp_path)
    (tmp_path / "song.mid").write_bytes(_midi_bytes())
    argv = FILE_ARGS[option][0] if option in FILE_ARGS else OUTPUT_ARGS[option][0]
    before = _files(tmp_path)
    result = crowdtune(*[a.replace("PATH", "-") for a in argv], cwd=tmp_path, stdin="5\n", check=False)
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert "not '-'" in line, line
    assert _files(tmp_path) == before


def test_a_rater_named_by_its_file_path_is_loaded_from_there_with_the_modules_beside_it(tmp_path):
    """`--rater /tmp/t13/raters/bad.py:zero` said "no /tmp/t13/raters/bad/py.py in the current folder": a path
    was read as a dotted module name. PATH.py:FUNC now loads that file, once however many raters name it."""
    (tmp_path / "raters").mkdir()
    (tmp_path / "raters" / "helper.py").write_text("SCORE = 6\n")
    (tmp_path / "raters" / "mine.py").write_text(
        "import helper\nloads = globals().get('loads', 0) + 1\ndef rate(midi):\n    return helper.SCORE + loads\n")
    (tmp_path / "work").mkdir()
    mine = tmp_path / "raters" / "mine.py"
    result = crowdtune("simulate", "--rounds", "2", "--rater", f"{mine}:rate", "--rater", "../raters/mine.py:rate",
                       "--out", "sim", "--db", "t.db", cwd=tmp_path / "work")
    rounds = json.loads((tmp_path / "work" / "sim" / "results.json").read_text())["rounds"]
    assert [sorted(r["ratings"].values()) for r in rounds] == [[7.0, 7.0], [7.0, 7.0]], result.stdout  # run once: loads == 1
    missing = crowdtune("simulate", "--rater", "../raters/bad.py:zero", "--out", "sim2", "--db", "t2.db",
                        cwd=tmp_path / "work", check=False)
    assert missing.returncode == ExitCode.FILE
    assert missing.stderr.strip() == "crowdtune simulate: cannot read the rater module ../raters/bad.py (no such file)"


def test_a_rater_from_a_file_is_named_without_this_host_s_folders_in_results_and_exports(tmp_path):
    """Found by review: `--rater ~/raters/mine.py:rate` named its votes' voter /home/alice/raters/mine.py:rate, and
    results.json and an export (votes.jsonl) carried the host's file layout. A rater from a file is named by its file's
    name and function, mine.py:rate; nothing an export or results.json holds names a local folder."""
    (tmp_path / "raters").mkdir()
    (tmp_path / "raters" / "mine.py").write_text("def rate(midi):\n    return 6\n")
    crowdtune("simulate", "--rounds", "2", "--rater", f"{tmp_path / 'raters' / 'mine.py'}:rate", "--out", "sim", "--db", "t.db",
              cwd=tmp_path)
    results = (tmp_path / "sim" / "results.json").read_text()
    assert json.loads(results)["raters"] == ["mine.py:rate"] and str(tmp_path) not in results
    crowdtune("run", "--out", str(tmp_path / "o1"), "--rounds", "1", "--no-audio", "--db", "t.db", stdin="5\n", cwd=tmp_path)
    crowdtune("export", "--db", "t.db", "--out", "e.zip", cwd=tmp_path)
    with zipfile.ZipFile(tmp_path / "e.zip") as archive:
        leaking = [name for name in archive.namelist() if str(tmp_path).encode() in archive.read(name)]
    assert leaking == []
    crowdtune("copy-db", "--from", "t.db", "--to", "copy.db", cwd=tmp_path)
    assert str(tmp_path).encode() not in (tmp_path / "copy.db").read_bytes()


def test_a_rater_module_that_exits_as_it_is_imported_is_one_line_exit_2(tmp_path):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\ndef rate(midi):\n    return 5\n")
    for rater in ("quits:rate", "./quits.py:rate"):
        result = crowdtune("simulate", "--rater", rater, "--out", "sim", "--db", "t.db", cwd=tmp_path, check=False)
        assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "cannot import rater module" in line and "SystemExit: 3" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["__pycache__", "quits.py"] or sorted(
        p.name for p in tmp_path.iterdir()) == ["quits.py"]


def test_crowd_without_the_rater_crowd_is_refused_not_ignored(tmp_path):
    """`simulate --mode ab --crowd contrarian --rater theorist` ran with the theorist alone, --crowd ignored."""
    result = crowdtune("simulate", "--mode", "ab", "--crowd", "contrarian", "--rater", "theorist", "--out", "sim",
                       "--db", "t.db", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "--crowd" in line and "--rater crowd" in line, line
    assert list(tmp_path.iterdir()) == []
    crowdtune("simulate", "--rounds", "1", "--crowd", "contrarian", "--rater", "crowd", "--rater", "theorist", "--out", "sim",
              "--db", "t.db", cwd=tmp_path)
    raters = json.loads((tmp_path / "sim" / "results.json").read_text())["raters"]
    assert "leaper" in raters and "theorist" in raters and "calm" not in raters


def test_render_replaces_no_audio_file_without_force(tmp_path):
    """`render` overwrote audio files silently, where export, simulate and bench refuse without --force."""
    for name in ("a.mid", "b.mid"):
        (tmp_path / name).write_bytes(_midi_bytes())
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "b.ogg").write_bytes(b"the user's own recording")
    before = _files(tmp_path)
    result = crowdtune("render", "a.mid", "b.mid", "--out-dir", "audio", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert f"{Path('audio', 'b.ogg')} exists; add --force to replace it" in line, line
    assert _files(tmp_path) == before  # nothing written, a.ogg neither
    crowdtune("render", "a.mid", "b.mid", "--out-dir", "audio", "--force", cwd=tmp_path)
    assert all((tmp_path / "audio" / n).read_bytes()[:4] == b"OggS" for n in ("a.ogg", "b.ogg"))


def test_copy_db_names_its_own_options_and_its_help_what_the_readme_says_it_copies(tmp_path):
    """copy-db refusing another program's database said "choose another file with --db or CROWDTUNE_DB" (its
    option is --to), and its help left learned models out of what it copies."""
    _a_database(tmp_path)
    with sqlite3.connect(tmp_path / "other.db") as raw:
        raw.execute("CREATE TABLE notes (x)")
    result = crowdtune("copy-db", "--from", "made.db", "--to", "other.db", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.DATABASE and "another program's" in result.stderr
    assert "--db" not in result.stderr and "CROWDTUNE_DB" not in result.stderr, result.stderr
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    listed = re.search(r"`copy-db` copies every (.+?) with their ids", readme).group(1)
    things = [re.sub(r"\(.*?\)", "", t).strip() for t in re.split(r", | and ", listed)]
    assert len(things) >= 8 and "learned model" in things
    helped = " ".join(crowdtune("copy-db", "--help", cwd=tmp_path).stdout.split())
    assert [t for t in things if t not in helped] == []


def _results_of_a_stopped_run(folder: Path) -> dict:
    """results.json of a simulation that stopped early, checked against the files beside it: every round it lists
    has its MIDI file and no other round has one, start.mid and final.mid are there, and `stopped` says why."""
    results = json.loads((folder / "results.json").read_text())
    numbers = [r["index"] for r in results["rounds"]]
    assert numbers == list(range(1, len(numbers) + 1))
    assert sorted(p.name for p in folder.glob("round-*.mid")) == [f"round-{n:04d}.mid" for n in numbers]
    assert (folder / "start.mid").exists() and (folder / "final.mid").exists() and (folder / "learning-curve.png").exists()
    final = mido.MidiFile(folder / "final.mid")
    assert final.tracks == track_to_midi(track_from_dict(results["final_track"])).tracks
    return results


def test_a_rater_that_fails_mid_run_leaves_the_rounds_done_and_results_json_saying_why(tmp_path):
    """A custom rater raising in round 3 ended with exit code 2 and the first rounds' MIDI files, with no results.json,
    while README's exit code 2 said nothing is written: the rounds done are kept, with results.json saying why."""
    (tmp_path / "bad.py").write_text("calls = 0\ndef rater(midi):\n    global calls\n    calls += 1\n    if calls < 3:\n"
                                     "        return 5\n    raise KeyError('oops')\n")
    result = crowdtune("simulate", "--rater", "bad:rater", "--out", "o", "--db", "t.db", "--mode", "rating", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "rater 'bad:rater' failed in round 3: KeyError" in line and "o/ holds the 2 rounds done, with results.json" in line, line
    results = _results_of_a_stopped_run(tmp_path / "o")
    assert len(results["rounds"]) == 2 and results["stopped"] == "rater 'bad:rater' failed in round 3: KeyError: 'oops'"
    # Found by a fresh-user trial: a rater failing in round 1 left "o/ holds the 0 rounds done".
    (tmp_path / "worse.py").write_text("def rater(midi):\n    raise KeyError('oops')\n")
    first = crowdtune("simulate", "--rater", "worse:rater", "--out", "w", "--db", "t.db", "--mode", "rating", cwd=tmp_path, check=False)
    assert first.returncode == 2 and "; the session was stopped before any round was done: w/ holds results.json saying why" in first.stderr, first.stderr
    assert _results_of_a_stopped_run(tmp_path / "w")["rounds"] == []
    finished = crowdtune("simulate", "--rounds", "2", "--rater", "theorist", "--out", "fine", "--db", "t.db", cwd=tmp_path)
    assert json.loads((tmp_path / "fine" / "results.json").read_text())["stopped"] is None, finished.stdout
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "the rounds done are kept" in readme and '"stopped"' in readme


def test_a_signal_as_a_finished_simulation_closes_its_database_does_not_swallow_its_summary(tmp_path):
    """SIGTERM just after the last round (as the store closed) ended simulate with only 'terminated', though
    every round was done and results.json complete: the summary line is said before the store closes."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        from storage.sqlite import SqliteStore

        original = SqliteStore.close

        async def close(self):
            os.kill(os.getpid(), signal.SIGTERM)  # the stop comes as the store closes, after the last round
            await original(self)

        SqliteStore.close = close
        from bot.cli import main
        sys.exit(main(["simulate", "--rounds", "2", "--seed", "1", "--out", "sim", "--db", "t.db"]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 143 and "terminated" in result.stderr
    assert "seed 1, 2 rounds;" in result.stdout and "wrote sim/results.json" in result.stdout, result.stdout
    assert json.loads((tmp_path / "sim" / "results.json").read_text())["stopped"] is None
