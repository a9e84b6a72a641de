"""Votes at scale, end to end: the real bot (unmodified discord.py, RoundRunner, SQLite) against the
tests' Discord-compatible server, 1,000 users voting on 10 round messages at once, by reactions and
then by buttons.

    python -m bot.bench.votes [--users 1000] [--rounds 10] [--style reactions|buttons]

The server runs in a subprocess (bot/bench/fakeserver.py), so it shares neither the bot's event loop
nor its core. Each user, on each round message, votes 3, withdraws it and votes 8 (reactions: add 3️⃣,
remove it, add 8️⃣; buttons: 3, Withdraw, 8): three votes, every one of which must reach vote_events,
and every user's standing vote must be 8.

Two runs a style, on fresh rounds: a burst (every event sent as fast as the server can: the bot's peak
throughput) and a paced run at the issue's 2,000 votes/s (the latency a vote sees when the bot keeps
up). Latency runs from the server's dispatch of the gateway event to the commit of the transaction
holding the vote. Throughput counts votes from the first dispatch to the last commit. CPU seconds per
vote say what the bot could do on a core of its own: this machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bot.bench.common import machine_description, percentile, run_in_own_process, ticker
from bot.bench.fakeserver import ServerProcess, running_bot
from bot.bench.verdicts import judge, worst
from bot.bench.verdicts import line as verdict_line
from bot.media.render import Renderer
from storage import Store, open_store

STYLES = ("reactions", "buttons")
FIRST, SECOND = 3, 8
PACED_VOTES_PER_SECOND = 2000
TARGET_VOTES_PER_SECOND = 2000
COMMIT_TIMEOUT = 600.0


@dataclass
class Commits:
    """When each vote's transaction committed, by (round, voter), in order."""

    times: dict[tuple[int, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    count: int = 0

    def watch(self, store: Store) -> None:
        apply_votes = store.apply_votes

        async def stamped(ops):
            results = await apply_votes(ops)
            now = time.perf_counter()
            for op in ops:
                self.times[(op.round_id, op.voter)].append(now)
            self.count += len(ops)
            return results

        store.apply_votes = stamped


async def main(users: int, rounds: int, length: int, styles: tuple[str, ...] = STYLES) -> dict:
    print(machine_description())
    print(f"{users} users x {rounds} round messages x 3 votes (vote, withdraw, vote again), by {' then by '.join(styles)}.")
    server = ServerProcess()
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory() as scratch, Renderer.open() as renderer:
            db = Path(scratch) / "votes.db"
            world = await server.call("world", users=users, guilds={style: 2 * rounds for style in styles})
            store = await open_store(db)
            commits = Commits()
            commits.watch(store)
            try:
                async with running_bot(world, store, renderer):
                    for style in styles:
                        if style == "buttons":
                            await server.call("slash", guild=style, command="config", options={"vote_style": "buttons"})
                        opened = await server.call("compose_everywhere", guild=style, options={"length": length, "round_minutes": 600.0})
                        for label, messages, rate in (("burst", opened[:rounds], None), (f"paced {PACED_VOTES_PER_SECOND}/s", opened[rounds:], PACED_VOTES_PER_SECOND)):
                            result = await _run(server, store, commits, db, style, messages, rate)
                            results[(style, label)] = result
                            _print_run(style, label, result)
            finally:
                await store.close()
    finally:
        await server.stop()
    _print_summary(results)
    return results


async def _run(server: ServerProcess, store: Store, commits: Commits, db: Path, style: str, messages: list[dict], rate: float | None) -> dict:
    round_ids = {m["message_id"]: (await store.round_for_message(str(m["message_id"]))).id for m in messages}
    committed_before = commits.count
    lags: list[float] = []
    stop = asyncio.Event()
    ticking = asyncio.create_task(ticker(lags, stop))
    cpu = time.process_time()
    sent = await server.call("storm", style=style, rounds=messages, first=FIRST, second=SECOND, votes_per_second=rate)
    expected = sum(len(times) for times in sent["stamps"].values())
    deadline = time.perf_counter() + COMMIT_TIMEOUT
    while commits.count - committed_before < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    committed_cpu = time.process_time() - cpu
    answered_at = time.perf_counter()
    while style == "buttons" and await server.call("unanswered") and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)  # every press is answered after its commit; finish before the next run
    answered_after = time.perf_counter() - answered_at
    bot_cpu = time.process_time() - cpu
    stop.set()
    await ticking
    latencies, first_sent, last_commit = [], float("inf"), 0.0
    for (message_id, user_id), sent_times in sent["stamps"].items():
        committed = commits.times.get((round_ids[message_id], f"user:{user_id}"), [])
        latencies += [done - dispatched for dispatched, done in zip(sent_times, committed)]
        first_sent = min(first_sent, sent_times[0])
        last_commit = max([last_commit, *committed[: len(sent_times)]])
    stored = _stored(db, list(round_ids.values()))
    return {
        "events": expected,
        "committed": commits.count - committed_before,
        "wall": last_commit - first_sent,
        "throughput": len(latencies) / (last_commit - first_sent) if latencies else 0.0,
        "latencies": latencies,
        "lags": lags,
        "cpu_per_vote": committed_cpu / max(1, expected),
        "bot_cpu": bot_cpu,
        "server_cpu": sent["server_cpu"],
        "send_seconds": sent["sent_seconds"],
        "answered_after": answered_after,
        **stored,
        "complete": stored["events_stored"] == expected == 3 * len(round_ids) * len(sent["users"])
        and stored["standing"] == len(round_ids) * len(sent["users"]),
    }


def _stored(db: Path, round_ids: list[int]) -> dict:
    """The database itself: the vote events of these rounds and the standing votes of SECOND."""
    from storage import open_reader

    with open_reader(db) as reader:
        kinds, standing = reader.round_votes(round_ids, SECOND)
    return {"events_stored": sum(kinds.values()), "kinds": kinds, "standing": standing}


def _print_run(style: str, label: str, result: dict) -> None:
    latencies, lags = result["latencies"], result["lags"]
    print(
        f"\n{style}, {label}: {result['events']} vote events sent in {result['send_seconds']:.2f} s; "
        f"{result['committed']} committed {result['wall']:.2f} s after the first was sent"
    )
    print(
        f"  throughput {result['throughput']:.0f} votes/s; bot CPU {result['cpu_per_vote'] * 1e6:.0f} us a vote "
        f"(so {1 / result['cpu_per_vote']:.0f} votes/s on a core of its own)"
    )
    if latencies:
        print(
            "  gateway event -> committed vote, ms: "
            + ", ".join(f"{name} {value * 1000:.1f}" for name, value in (("median", statistics.median(latencies)), ("p90", percentile(latencies, 90)), ("p99", percentile(latencies, 99)), ("max", max(latencies))))
        )  # fmt: skip
    print(
        f"  in SQLite: {result['events_stored']} vote events {result['kinds']}, {result['standing']} standing votes of {SECOND}: "
        f"{'every vote stored' if result['complete'] else 'VOTES MISSING'}"
    )
    if style == "buttons":
        print(f"  every press answered {result['answered_after']:.2f} s after the last commit")
    print(f"  CPU seconds: bot {result['bot_cpu']:.2f}, server {result['server_cpu']:.2f} (sending)")
    if lags:
        print(f"  the bot's loop lag meanwhile, ms: median {statistics.median(lags) * 1000:.2f}, p99 {percentile(lags, 99) * 1000:.2f}, max {max(lags) * 1000:.2f}")


def _print_summary(results: dict) -> None:
    print(f"\nsummary (target: >= {TARGET_VOTES_PER_SECOND} votes/s, every vote stored; the burst shows the peak):")
    for (style, label), result in results.items():
        p99 = percentile(result["latencies"], 99) * 1000
        line = f"  {style:9} {label:12} {result['throughput']:7.0f} votes/s  p99 gateway->commit {p99:8.1f} ms  all stored: {'yes' if result['complete'] else 'NO'}"
        print(line)
    for (style, label), result in results.items():
        if label == "burst":  # the peak; every vote stored is part of the target
            stored = judge(float(result["complete"]), 1.0)
            verdict = worst(judge(result["throughput"], TARGET_VOTES_PER_SECOND), stored)
            print(verdict_line(f"{style}, burst: >= {TARGET_VOTES_PER_SECOND} votes/s, every vote stored", verdict,
                               f"{result['throughput']:.0f} votes/s, all stored: {'yes' if result['complete'] else 'NO'}"))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10, help="round messages voted on at once, per run")
    parser.add_argument("--length", type=int, default=8, help="notes in each round's track")
    parser.add_argument("--style", choices=STYLES, action="append", help="reactions or buttons (default: both)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    run_in_own_process(main(arguments.users, arguments.rounds, arguments.length, tuple(arguments.style or STYLES)))
