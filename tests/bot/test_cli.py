"""The `crowdtune` command end to end, as a subprocess, the way a user runs it."""

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")


def crowdtune(*args, cwd, stdin="", env_extra=None, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    env.update(env_extra or {})
    result = subprocess.run([CROWDTUNE, *args], cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def test_help_everywhere(tmp_path):
    for command in ([], ["run"], ["simulate"], ["render"], ["export"], ["bench"]):
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
        ["simulate", "--preset", "nope", "--out", "o"],
        ["simulate", "--rater", "no_such_module:f", "--out", "o"],
        ["simulate", "--rater", "nobody", "--out", "o"],
        ["simulate"],
        ["run", "--tempo", "9"],
        ["run", "--mode", "vote"],
        ["export", "--out", "x.zip"],
        ["render", "missing.mid", "--out-dir", "o"],
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
    result = crowdtune("simulate", "--rounds", "12", "--seed", "3", "--out", "sim", "--db", "t.db", cwd=tmp_path)
    assert "12 rounds" in result.stdout
    out = tmp_path / "sim"
    assert sorted(p.name for p in out.glob("round-*.mid")) == [f"round-{i:04d}.mid" for i in range(1, 13)]
    results = json.loads((out / "results.json").read_text())
    assert len(results["rounds"]) == 12
    first = results["rounds"][0]
    assert first["index"] == 1 and first["actions"] and len(first["ratings"]) >= 7
    assert all(1 <= v <= 10 for v in first["ratings"].values())
    assert {"brigader", "troll"} <= set(first["ratings"])
    assert results["rounds"][-1]["q_size"] >= 1
    assert (out / "learning-curve.png").read_bytes().startswith(b"\x89PNG")
    again = crowdtune("simulate", "--rounds", "12", "--seed", "3", "--out", "sim2", "--db", "t.db", cwd=tmp_path)
    assert again.returncode == 0
    # A fresh scope per run: the same seed gives the same rounds.
    assert json.loads((tmp_path / "sim2" / "results.json").read_text())["rounds"] == results["rounds"]


def test_simulate_with_an_outside_rater_in_ab_mode(tmp_path):
    (tmp_path / "myraters.py").write_text(
        "def short_is_sweet(midi):\n    return max(1.0, min(10.0, 11 - midi.length))\n"
        "def constant(midi):\n    return 6\n"
    )
    crowdtune(
        "simulate", "--rater", "myraters:short_is_sweet", "--rater", "myraters:constant", "--mode", "ab",
        "--rounds", "5", "--out", "ab", "--db", "t.db", cwd=tmp_path, env_extra={"PYTHONPATH": str(tmp_path)},
    )
    out = tmp_path / "ab"
    assert (out / "round-0001-a.mid").exists() and (out / "round-0001-b.mid").exists()
    rounds = json.loads((out / "results.json").read_text())["rounds"]
    assert all(r["votes"]["myraters:constant"] == "both" for r in rounds)  # a tie counts as both
    assert all(len(r["actions"]) == 2 for r in rounds)


def test_a_rater_returning_out_of_range_is_reported(tmp_path):
    (tmp_path / "bad.py").write_text("def rater(midi):\n    return 42\n")
    result = crowdtune("simulate", "--rater", "bad:rater", "--out", "o", "--db", "t.db", cwd=tmp_path, check=False,
                       env_extra={"PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0 and "outside 1-10" in result.stderr


def _rounds(db):
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT idx, status, reward FROM rounds ORDER BY id").fetchall()


def test_run_in_the_terminal_reads_ratings_and_a_second_run_continues_the_agent(tmp_path):
    first = crowdtune("run", "--rounds", "2", "--db", "d/ct.db", "--out", "rounds", stdin="7\n3\n", cwd=tmp_path)
    assert "round 1" in first.stdout and "round 2" in first.stdout
    wavs = sorted((tmp_path / "rounds").rglob("*.wav"))
    assert len(wavs) == 2 and all(w.read_bytes()[:4] == b"RIFF" for w in wavs)
    assert len(list((tmp_path / "rounds").rglob("*.png"))) == 2
    assert _rounds(tmp_path / "d/ct.db") == [(0, "closed", 7.0), (1, "closed", 3.0)]
    second = crowdtune("run", "--rounds", "1", "--db", "d/ct.db", "--out", "rounds", "--no-audio", stdin="9\n", cwd=tmp_path)
    known = int(second.stdout.split("knows ")[1].split()[0])
    assert known >= 1, second.stdout  # the same agent, with what it learned
    assert _rounds(tmp_path / "d/ct.db")[-1] == (0, "closed", 9.0)


def test_run_explains_bad_ratings_and_asks_again(tmp_path):
    result = crowdtune("run", "--rounds", "1", "--no-audio", "--db", "ct.db", stdin="eleven\n0\n\n8\n", cwd=tmp_path)
    assert result.stdout.count("sorry") == 3
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
    assert "A or B" in result.stdout and "sorry" in result.stdout
    assert [r[1] for r in _rounds(tmp_path / "ct.db")] == ["closed", "closed"]


def test_render_many_files_and_export(tmp_path):
    crowdtune("simulate", "--rounds", "3", "--out", "sim", "--db", "ct.db", cwd=tmp_path)
    mids = sorted(str(p) for p in (tmp_path / "sim").glob("*.mid"))
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
        rounds = [json.loads(line) for line in archive.read("rounds.jsonl").splitlines()]
        assert {"scope", "session", "round", "status", "actions", "reward"} <= set(rounds[0])
    bad = crowdtune("export", "--scope", "guild:404", "--out", "x.zip", "--db", "ct.db", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and not (tmp_path / "x.zip").exists()


def test_run_without_a_soundfont_says_what_to_install(tmp_path):
    result = crowdtune("run", "--rounds", "1", "--db", "ct.db", cwd=tmp_path, check=False,
                       env_extra={"CROWDTUNE_SOUNDFONT": str(tmp_path / "none.sf2")})
    assert result.returncode == 1
    assert "apt-get install" in result.stderr or "CROWDTUNE_SOUNDFONT" in result.stderr
    assert "Traceback" not in result.stderr
