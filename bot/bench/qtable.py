"""Big Q-tables: `crowdtune bench qtable`. Choosing and updating on a scope of a million state-action
rows against a small scope, interleaved, by the `context` preset: of the presets that keep a Q-table (the
tabular ones, `context` and `paper`), the one reading the most rows a choice (a state per note context, where
`paper` reads one whole-track state). The default preset keeps no Q-table: a fixed-size model per scope.
"""

from __future__ import annotations

import gc
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.bench.common import BenchmarkFailed, spread
from bot.bench.verdicts import AT_MOST, judge_median, line

TARGET_Q_MEDIAN_MS = 1.0
Q_ROWS = 1_000_000
Q_TRIALS = 200
PRESET = "context"


async def bench_qtable(rows: int = Q_ROWS, trials: int = Q_TRIALS, note_counts: tuple[int, ...] = (8, 64)) -> dict:
    from bot.progress import progress_bar
    from core.agent import QEntry, action_keys
    from core.engine import SessionSpec, plan_keys, plan_round, round_rng, settle, settle_keys
    from core.crowd import Ballot, robust_rating
    from storage import open_store

    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        store = await open_store(Path(scratch) / "q.db")
        big, small = "sim:big", "sim:small"
        for scope in (big, small):
            await store.ensure_scope(scope, "sim", scope)
        start = time.perf_counter()
        keys = _realistic_q_keys(rows)
        made = time.perf_counter() - start
        fill_rng = random.Random(1)
        start = time.perf_counter()
        await store.put_q_entries(big, ((key, QEntry(fill_rng.uniform(-3, 3), fill_rng.randint(1, 50))) for key in keys))
        filled = time.perf_counter() - start
        await store.put_q_entries(small, ((key, QEntry(0.5, 3)) for key in keys[:1000]))
        del keys  # a million tuples the bot never holds: the collector would walk them during the choices
        gc.collect()
        size = await store.q_size(big)
        print(f"scope of {size:,} state-action rows ({made:.1f} s to make the keys, {filled:.1f} s to insert them in one transaction);")
        print(f"the same work on a scope of {await store.q_size(small):,} rows, interleaved; {trials} trials; ms: median [p10-p90]")
        for notes in note_counts:
            spec = SessionSpec(length=notes, preset=PRESET)
            tracks = [SessionSpec(length=notes, seed=seed).first_track() for seed in range(trials)]
            stored = 0  # Q-entries the updates wrote
            timings = {f"{what} ({label})": [] for what in ("choose", "update: write", "update: whole close") for label in ("1e6", "small")}
            parts = {"choose, 1e6: plan_keys": [], "choose, 1e6: q_entries (SQLite)": [], "choose, 1e6: plan_round": []}
            for trial, track in enumerate(progress_bar(len(tracks), f"{notes}-note tracks", "trial", iterable=tracks)):
                for scope, label in ((big, "1e6"), (small, "small")) if trial % 2 else ((small, "small"), (big, "1e6")):
                    action_keys.cache_clear()  # each choice computes its track's keys, as a round's new track does
                    start = time.perf_counter()
                    wanted = plan_keys(spec, track)
                    keyed = time.perf_counter()
                    table = await store.q_entries(scope, wanted)
                    fetched = time.perf_counter()
                    plan = plan_round(spec, trial, track, table, round_rng(spec, trial))
                    timings[f"choose ({label})"].append(time.perf_counter() - start)
                    if label == "1e6":
                        parts["choose, 1e6: plan_keys"].append(keyed - start)
                        parts["choose, 1e6: q_entries (SQLite)"].append(fetched - keyed)
                        parts["choose, 1e6: plan_round"].append(time.perf_counter() - fetched)
                    ballots = [Ballot(f"user:{v}", float(1 + (v + trial) % 10), None) for v in range(20)]
                    start = time.perf_counter()
                    before = await store.q_entries(scope, settle_keys(spec, plan))
                    # A rated track before, as in every round but a session's first (where `context` learns nothing).
                    outcome = settle(spec, plan, ballots, before, 5.5, round_rng(spec, trial), robust_rating, {})
                    written = time.perf_counter()
                    await store.put_q_entries(scope, outcome.updates)
                    done = time.perf_counter()
                    stored += len(outcome.updates)
                    timings[f"update: write ({label})"].append(done - written)
                    timings[f"update: whole close ({label})"].append(done - start)
            keys = len(plan_keys(spec, tracks[0]))
            if not keys or not stored:  # the figures would time reading and writing nothing
                raise BenchmarkFailed(f"qtable: the {PRESET} preset read {keys} Q-entries a choice and wrote {stored}")
            print(f"\n{notes}-note tracks, the {PRESET} preset ({keys} keys a choice):")
            for name, values in {**timings, **parts}.items():
                print(f"  {name:34} {spread(values, 1000, 3):>26}")
            for name in ("choose (1e6)", "update: write (1e6)"):
                ms = [value * 1000 for value in timings[name]]
                print(line(f"{name} < {TARGET_Q_MEDIAN_MS:g} ms", *judge_median(ms, TARGET_Q_MEDIAN_MS, AT_MOST, " ms", 3)))
            results[notes] = {name: statistics.median(values) for name, values in {**timings, **parts}.items()}
            results[notes].update(keys=keys, stored=stored)
        results["rows"] = size
        await store.close()
    return results


def _realistic_q_keys(rows: int) -> list[tuple[str, str]]:
    """The keys the tabular presets really make over many generated tracks (note contexts for `context`, whole
    tracks for `paper`), topped up to `rows` with whole-track keys of further random tracks."""
    from core.agent import preset, q_key, candidate_actions
    from core.music import generate_track

    keys: dict[tuple[str, str], None] = {}
    rng = random.Random(7)
    configs = (preset("context"), preset("paper"))
    scales = ("major", "minor", "dorian", "blues", "major_pentatonic")
    for number in range(400):
        track = generate_track(60, rng.choice(scales), rng.choice((8, 16, 32, 64)), 120, rng)
        for config in configs:
            for action in candidate_actions(config, track):
                keys[q_key(config, track, action)] = None
    # The paper's state is the whole track: a new track is a new state with one row per edit of it.
    actions = [action for _, action in itertools.islice(keys, 0, 200)]
    number = 0
    while len(keys) < rows:
        state = f"60:major:synthetic-{number}"
        for action in actions:
            keys[(state, action)] = None
            if len(keys) >= rows:
                break
        number += 1
    return list(keys)[:rows]


main = bench_qtable
