"""The performance benchmarks run and count correctly, at tiny sizes; nothing here asserts on time.

Also the storage changes made for speed: a batch of votes applied in one go leaves exactly what
applying them one by one leaves, and voters' histories come back as the per-voter query gave them.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

import pytest

from bot.bench import common, footprint, qtable
from bot.bench import export as export_benchmark
from bot.bench import loop as loop_benchmark
from bot.bench import render as render_benchmark
from bot.bench import votes as votes_benchmark
from bot.conductor import Conductor
from bot.errors import ExitCode
from core.engine import SessionSpec
from core.midi import track_to_midi
from storage import Store, VoteOp, open_store



def test_render_benchmark_compares_every_path_and_the_render_command(capsys):
    """Two runs of each command, as the real benchmark makes: `crowdtune bench render` ended in a traceback
    (its second `crowdtune render` into the same folder was refused, the audio files being there)."""
    results = render_benchmark.bench_render(note_counts=(8,), trials=1, cli_files=2, cli_runs=2)
    ratios = results["sizes"][8]
    assert set(ratios) == {
        "midi2audio / crowdtune OGG", "midi2audio / crowdtune WAV", "crowdtune OGG / synthesis", "crowdtune WAV / synthesis",
        "levelling: OGG / level kept", "levelling: WAV / level kept", "WAV level kept / synthesis",
    }  # fmt: skip
    assert all(ratio > 0 for ratio in ratios.values())
    assert set(results["cli"]) == {"ogg", "wav"} and all(ratio > 0 for ratio in results["cli"].values())
    assert "midi2audio -> WAV" in capsys.readouterr().out


def test_the_benchmark_clip_is_the_anchors_shape():
    assert render_benchmark.benchmark_track(32).seconds == 16
    assert render_benchmark.benchmark_track(8).seconds == 4


async def test_qtable_benchmark_fills_the_scope_and_times_both_operations():
    """It timed the default preset, whose linear model reads and writes no Q-entry: 0 keys a choice."""
    results = await qtable.bench_qtable(rows=3000, trials=4, note_counts=(8,))
    assert results["rows"] == 3000
    assert {"choose (1e6)", "update: write (1e6)", "choose (small)"} <= set(results[8])
    assert results[8]["keys"] > 8 and results[8]["stored"] == 4 * 2  # a state a note and more; an update a round, both scopes


async def test_export_benchmark_exports_every_round_in_a_worker(capsys):
    figures = await export_benchmark.main(big_rounds=200, small_rounds=20)
    printed = capsys.readouterr().out
    assert "200 rounds, 600 votes, 201 MIDI files" in printed  # the scope's rounds, 3 votes each, and its current track
    assert figures["lag_p99_ms"] >= 0 and figures["worker_growth_mib"] >= 0 and figures["seconds_per_1000"] > 0


def test_footprint_benchmark_reads_resident_memory_and_help_time(capsys):
    """Its targets are judged by the one rule (bot.bench.verdicts): memory measured once as it is, and one timed
    `--help` gives no interval to judge a median by."""
    results = footprint.bench_footprint(help_runs=1)
    targets = [line.lstrip() for line in capsys.readouterr().out.splitlines() if " < " in line]
    assert len(targets) == 3 and all(line.startswith(("MET ", "NOT MET ")) for line in targets[:2]), targets
    assert targets[2].startswith("NOT JUDGED crowdtune --help < 0.3 s") and "1 trial gives no interval; use 6 trials or more" in targets[2]
    assert set(results["stages"]) == {"python", "imports", "soundfont", "renders", "bot", "drawer"}
    assert results["stages"]["renders"][0] > results["stages"]["python"][0] > 0
    assert results["with_drawer_mib"] > results["peak_mib"] + results["stages"]["python"][0]  # a second interpreter
    assert results["help_seconds"] > 0


def test_ogg_renders_are_byte_identical_across_renderers():
    from bot.media.render import Renderer

    midi = track_to_midi(render_benchmark.benchmark_track(8))
    with Renderer.open() as renderer:
        first = renderer.render_ogg(midi)
        assert renderer.render_ogg(midi) == first
    with Renderer.open() as fresh:
        assert fresh.render_ogg(midi) == first


def test_percentile_interpolates():
    assert common.percentile([1, 2, 3, 4], 50) == 2.5
    assert common.percentile([5], 99) == 5


async def test_votes_benchmark_stores_every_vote_by_reactions_and_buttons():
    results = await votes_benchmark.main(users=4, rounds=1, length=4)
    assert set(results) == {(style, label) for style in ("reactions", "buttons") for label in ("burst", "paced 2000/s")}
    for result in results.values():
        assert result["complete"], result
        assert result["events"] == result["committed"] == result["events_stored"] == 12  # 4 users x 3 votes
        assert result["kinds"] == {"cast": 8, "retract": 4}
        assert len(result["latencies"]) == 12 and all(latency > 0 for latency in result["latencies"])


async def test_loop_benchmark_runs_rounds_while_it_ticks_in_every_variant():
    """Every variant, the ones that undo a change too: the variant drawing piano rolls on a thread replaced the
    drawer's method by one taking two of its four arguments, so each of its rounds failed and was retried, and
    the benchmark compared the shipped bot with one that posted nothing."""
    # settled: the sessions' first rounds are posted before the crowd starts and a vote is stored before it
    # ends, however loaded the machine; the test counts what was done, not what fitted in a window.
    results = await loop_benchmark.main(seconds=1.0, diagnose=1.0, repeats=1, idle_seconds=0.2, settled=True)
    assert set(results["runs"]) == {"bot idle", *loop_benchmark.VARIANTS}
    for name in loop_benchmark.VARIANTS:
        [busy] = results["runs"][name]
        assert busy["lags"] and busy["votes"] > 0 and busy["renders"] >= loop_benchmark.SESSIONS, name


async def test_a_loop_benchmark_variant_whose_rounds_fail_ends_it_with_one_line_and_no_figures(monkeypatch, capsys):
    @contextlib.contextmanager
    def drawing_fails(bot):
        async def broken(*args):
            raise TypeError("drawn wrong")

        bot.drawer._draw = broken
        yield

    monkeypatch.setitem(loop_benchmark.VARIANTS, "broken", (drawing_fails,))
    with pytest.raises(common.BenchmarkFailed) as failed:
        await loop_benchmark.main(seconds=1.0, diagnose=0, variants=("broken",), repeats=1, idle_seconds=0.2, settled=True)
    assert failed.value.code == ExitCode.BUG
    assert str(failed.value).startswith("loop, variant 'broken': ") and "TypeError: drawn wrong" in str(failed.value)
    assert "\n" not in str(failed.value) and "loop lag" not in capsys.readouterr().out


def test_a_failed_benchmark_in_its_own_process_is_one_line_and_exit_code_1(capsys):
    async def fails():
        raise common.BenchmarkFailed("loop, variant 'x': 2 errors logged, so no figures; the first: it broke")

    with pytest.raises(SystemExit) as ended:
        common.run_in_own_process(fails())
    assert ended.value.code == ExitCode.BUG
    assert capsys.readouterr().err == "crowdtune bench: loop, variant 'x': 2 errors logged, so no figures; the first: it broke\n"


# -- storage: batched votes ------------------------------------------------------------------------


async def _open_rounds(path: Path) -> tuple[Store, list[int]]:
    store = await open_store(path)
    conductor = Conductor(store)
    rounds = []
    for channel in range(2):
        session = await conductor.start("guild:1", "guild", f"c{channel}", SessionSpec(rounds=5), actor="mod")
        rounds.append((await conductor.open_round(session.id)).id)
    closed = await conductor.start("guild:2", "guild", "elsewhere", SessionSpec(rounds=5), actor="mod")
    closed_round = await conductor.open_round(closed.id)
    await conductor.close(closed_round.id)
    await store.strike("guild:1", "v3", actor="mod")
    return store, [*rounds, closed_round.id, 999_999]  # two open, one closed, one unknown


def _random_ops(rounds: list[int], count: int, rng: random.Random) -> list[VoteOp]:
    ops = []
    for number in range(count):
        round_id, voter, rating = rng.choice(rounds), f"v{rng.randrange(6)}", float(rng.randint(1, 3))
        if rng.random() < 0.4:
            only = rng.random() < 0.5
            ops.append(VoteOp(round_id, voter, "retract", rating if only else None, None, only_if_standing=only, at=float(number)))
        else:
            ops.append(VoteOp(round_id, voter, "cast", rating, None, at=float(number)))
    return ops


def _contents(path: Path) -> tuple[list, list]:
    with sqlite3.connect(path) as db:
        return (
            db.execute("SELECT round_id, voter, rating, choice, cast_at, retracted, voided FROM votes ORDER BY round_id, voter").fetchall(),
            db.execute("SELECT round_id, voter, kind, rating, choice, at FROM vote_events ORDER BY id").fetchall(),
        )


@pytest.mark.parametrize("seed", range(6))
async def test_a_batch_of_votes_leaves_what_applying_them_one_by_one_leaves(tmp_path, seed):
    rng = random.Random(seed)
    batched, rounds = await _open_rounds(tmp_path / "batched.db")
    single, same_rounds = await _open_rounds(tmp_path / "single.db")
    assert rounds == same_rounds
    for _ in range(3):
        ops = _random_ops(rounds, rng.randint(1, 80), rng)
        together = await batched.apply_votes(ops)
        one_by_one = [(await single.apply_votes([op]))[0] for op in ops]
        assert together == one_by_one
    await batched.close()
    await single.close()
    assert _contents(tmp_path / "batched.db") == _contents(tmp_path / "single.db")


async def test_voter_history_is_each_voters_latest_ratings_newest_first(tmp_path):
    store = await open_store(tmp_path / "history.db")
    conductor = Conductor(store)
    rng = random.Random(4)
    for scope in ("guild:1", "guild:2"):
        session = await conductor.start(scope, "guild", scope, SessionSpec(rounds=20), actor="mod")
        for _ in range(8):
            open_round = await conductor.open_round(session.id)
            for voter in range(6):
                if rng.random() < 0.8:
                    await conductor.vote(open_round.id, f"user:{voter}", rng.randint(1, 10))
            await conductor.close(open_round.id)
    await store.close()
    voters = [f"user:{v}" for v in range(8)]
    with sqlite3.connect(tmp_path / "history.db") as db:
        expected = {}
        for voter in voters:
            rows = db.execute(
                "SELECT v.rating, r.id, r.reward FROM votes v JOIN rounds r ON r.id = v.round_id JOIN sessions s ON s.id = r.session_id "
                "WHERE v.voter = ? AND s.scope_id = 'guild:1' AND r.status = 'closed' AND r.mode = 'rating' AND r.reward IS NOT NULL "
                "AND v.retracted = 0 AND v.voided = 0 AND v.rating IS NOT NULL ORDER BY r.closed_at DESC LIMIT 5",
                (voter,),
            ).fetchall()
            if rows:
                expected[voter] = rows
    store = await open_store(tmp_path / "history.db")
    async with store._tx() as db:
        assert await db.voter_history("guild:1", voters, limit=5) == expected
    await store.close()


# A user's settings, each bad (bench reads none, but the processes it measures would: README, "Exit codes" 3).
BAD_SETTINGS = {"CROWDTUNE_ROUNDS": "abc", "CROWDTUNE_DB": ":memory:", "DISCORD_TOKEN": "not-a-token"}


@pytest.fixture
def bad_settings(tmp_path, monkeypatch):
    """A folder whose .env and environment hold bad settings, as the current folder."""
    (tmp_path / ".env").write_text("".join(f"{key}={value}\n" for key, value in BAD_SETTINGS.items()))
    monkeypatch.chdir(tmp_path)
    for key, value in BAD_SETTINGS.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def test_the_render_command_is_measured_whatever_settings_the_user_has(bad_settings, tmp_path_factory):
    """Found by a fresh-user trial: with CROWDTUNE_ROUNDS=abc in .env, `crowdtune bench render` worked for a minute,
    then its `crowdtune render` child refused the setting: a traceback, exit code 1."""
    scratch = tmp_path_factory.mktemp("scratch")
    results = render_benchmark._bench_render_command(common.TIMGM6MB, scratch, files=1, runs=1)
    assert set(results) == {"ogg", "wav"} and all(ratio > 0 for ratio in results.values())
    assert sorted(p.name for p in (scratch / "ogg").iterdir()) == ["many-0.ogg"]
    assert sorted(p.name for p in bad_settings.iterdir()) == [".env"]  # nothing written where the user is


def test_the_footprint_probe_builds_its_bot_whatever_settings_the_user_has(bad_settings):
    results = footprint.bench_footprint(help_runs=1)
    assert set(results["stages"]) == {"python", "imports", "soundfont", "renders", "bot", "drawer"}


def test_a_benchmark_s_processes_inherit_no_setting_nor_the_token(bad_settings):
    environment = common.measured_environment(CROWDTUNE_BENCH_DB="postgresql://u@h/db")
    assert not any(key.startswith("CROWDTUNE_") or key == "DISCORD_TOKEN" for key in set(environment) - {"CROWDTUNE_BENCH_DB"})
    assert environment["CROWDTUNE_BENCH_DB"] == "postgresql://u@h/db" and environment["PATH"] == __import__("os").environ["PATH"]


@pytest.mark.parametrize("command, crowdtune, code, line", [
    ([*common.crowdtune_command(), "render", "missing.mid", "--out-dir", "out"], True, 12, "cannot read missing.mid (no such file)"),  # crowdtune's own code
    (["sh", "-c", "echo first >&2; echo last words >&2; exit 3"], False, 1, "last words"),  # another program's: not crowdtune's 3
    (["sh", "-c", "kill -TERM $$"], True, 143, "it said nothing on stderr"),
])
def test_a_measured_process_that_fails_is_one_line_with_its_last_words_and_an_exit_code_of_the_table(tmp_path, command, crowdtune, code, line):
    from bot.errors import StartupError, user_facing

    with pytest.raises(StartupError) as failed:
        common.run_measured("the measured thing", command, tmp_path, crowdtune=crowdtune)
    text, exit_code = user_facing(failed.value)
    assert exit_code == code and text.startswith("the measured thing failed (") and text.endswith(line) and "\n" not in text, text
