"""Shards (issue 16): which process owns which server, and two shard processes sharing one PostgreSQL
database against the local Discord-compatible server, one of them SIGKILLed mid-round."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from fakediscord import FakeDiscord

from bot.discord.shards import ShardPlan, shard_of
from bot.errors import ExitCode, StartupError
from pgserver import PASSWORD
from storage import open_store

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")


# -- the plan ------------------------------------------------------------------------------------


def test_a_server_belongs_to_its_shard_and_dms_to_shard_zero():
    guild = (1_234_567 << 22) | 99  # a snowflake made 1,234,567 ms after Discord's epoch
    assert shard_of(guild, 4) == 1_234_567 % 4 == 3
    assert shard_of(None, 4) == 0
    plan = ShardPlan.make(4, "3, 1")
    assert plan.ids == (1, 3) and plan.sharded
    assert plan.owns_scope(f"guild:{guild}") and not plan.owns_scope(f"guild:{guild - (1 << 22)}")
    assert not plan.owns_scope("user:42")  # a personal agent lives on shard 0
    assert ShardPlan.make(4, "0").owns_scope("user:42")
    assert ShardPlan.make(2, None).ids == (0, 1)
    unsharded = ShardPlan.make(None, None)
    assert not unsharded.sharded and unsharded.owns_scope(f"guild:{guild}") and unsharded.owns_scope("user:1")


@pytest.mark.parametrize(
    "count, ids, problem",
    [(2, "2", "outside 0-1"), (2, "0,x", "whole numbers"), (None, "0", "needs the shard count"), (0, None, "must be 1-"),
     (81, "0,1", "at least 3 of the 81 shards, not 2")],
)
def test_a_shard_plan_that_cannot_work_is_one_clear_line(count, ids, problem):
    with pytest.raises(StartupError, match=problem):
        ShardPlan.make(count, ids)


def test_each_process_paces_at_its_share_of_the_bots_requests_by_its_shards():
    """Discord's global limit is the token's: the processes' shares add up to the bot's 40 requests a second at most."""
    assert ShardPlan.make(None, None).requests_per_second() == 40
    assert ShardPlan.make(4, None).requests_per_second() == 40  # one process runs them all
    assert [ShardPlan.make(4, ids).requests_per_second() for ids in ("0,1", "2", "3")] == [20, 10, 10]
    assert sum(ShardPlan.make(3, str(i)).requests_per_second() for i in range(3)) == 39  # rounded down, never over
    assert ShardPlan.make(80, "0,1").requests_per_second() == 1


# -- two processes ---------------------------------------------------------------------------------


def _env(server: FakeDiscord, db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_") and k != "DISCORD_TOKEN"}
    env.update(
        DISCORD_TOKEN=server.bot_token,
        CROWDTUNE_DB=db,
        CROWDTUNE_API_BASE=server.api_base,
        CROWDTUNE_GATEWAY_URL=server.gateway_url,
        CROWDTUNE_GUILD_READY_TIMEOUT="0.05",
        CROWDTUNE_ROUND_SECONDS="3600",  # rounds close by /close only
        CROWDTUNE_VOTE_BURST="1000",
        CROWDTUNE_SHARD_COUNT="2",
    )
    return env


async def _start(server: FakeDiscord, folder: Path, db: str, shard: int) -> asyncio.subprocess.Process:
    log = open(folder / f"shard{shard}.log", "ab")
    try:
        return await asyncio.create_subprocess_exec(
            CROWDTUNE, "run", "--shard-ids", str(shard), cwd=folder, env=_env(server, db),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )
    finally:
        log.close()


async def test_two_shard_processes_on_one_database_lose_no_vote_when_one_is_killed(tmp_path, postgres_server):
    url = postgres_server.new_database()
    async with FakeDiscord() as server:
        mod = server.add_user("mod")
        guilds: dict[int, object] = {}
        made = 0
        while len(guilds) < 2:  # snowflakes carry the time: make servers until both shards have one
            made += 1
            guild = server.add_guild(f"lab{made}", owner=mod)
            guilds.setdefault(shard_of(guild.id, 2), guild)
        channels = {shard: server.add_text_channel(guild, "music") for shard, guild in guilds.items()}
        voters = {shard: server.add_users(6, guild=guild, prefix=f"s{shard}v") for shard, guild in guilds.items()}
        processes = {shard: await _start(server, tmp_path, url, shard) for shard in (0, 1)}
        acked: dict[int, dict[int, dict[int, float]]] = {0: {}, 1: {}}  # shard -> round index -> user -> rating
        try:
            await server.wait_until(lambda: sum(s.connected for s in server.sessions) >= 2, timeout=60, what="both shards connected")
            await server.wait_until(lambda: server.commands[None], what="commands synced")

            async def slash(shard: int, name: str, **options) -> str:
                interaction = await server.slash(mod, channels[shard], name, options, check_permissions=False)
                response = await interaction.wait_response()  # a /close may first say "thinking..."
                return (await interaction.wait_original())["content"] if interaction.deferred else response["data"]["content"]

            async def post_of(shard: int, index: int) -> dict:
                return await server.wait_for_message(
                    channels[shard], lambda m: m["content"].startswith(f"**Round {index + 1}"), timeout=60
                )

            async def vote(shard: int, index: int, post: dict, user, value: int) -> None:
                custom_id = next(
                    c["custom_id"] for row in post["components"] for c in row["components"] if c["custom_id"].endswith(f":{value}")
                )
                reply = (await (await server.press_button(user, post["id"], custom_id)).wait_response())["data"]["content"]
                assert reply.startswith("Your rating:"), reply
                acked[shard].setdefault(index, {})[user.id] = float(value)

            for shard in (0, 1):
                assert "vote_style: buttons" in await slash(shard, "config", vote_style="buttons")
                assert "Composing" in await slash(shard, "compose", rounds=2)
            posts = {shard: await post_of(shard, 0) for shard in (0, 1)}
            for k in range(4):
                for shard in (0, 1):
                    await vote(shard, 0, posts[shard], voters[shard][k], 1 + (3 * k + shard) % 10)

            # A second process for a shard already running refuses to start.
            twin = await asyncio.create_subprocess_exec(
                CROWDTUNE, "run", "--shard-ids", "0", cwd=tmp_path, env=_env(server, url),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(twin.communicate(), timeout=60)
            assert twin.returncode == ExitCode.DATABASE and "shard 0 of 2 is already run" in err.decode()  # README "Exit codes"
            assert PASSWORD not in (out + err).decode()

            # Shard 0 is killed mid-round; shard 1 carries on, closing its own round only.
            processes[0].kill()
            await processes[0].wait()
            await vote(1, 0, posts[1], voters[1][4], 9)
            assert (await slash(1, "close")).startswith("Closing")
            await server.wait_for_message(channels[1], lambda m: m["content"].startswith("**Round 1 closed**"), timeout=60)
            posts[1] = await post_of(1, 1)
            await vote(1, 1, posts[1], voters[1][0], 4)

            # Shard 0 comes back, resumes its round with every acknowledged vote, and closes it.
            processes[0] = await _start(server, tmp_path, url, 0)
            await server.wait_until(lambda: sum(s.connected for s in server.sessions) >= 2, timeout=60, what="shard 0 back")
            # It resumes its own session only, though shard 1's is active in the same database.
            ready = await server.wait_until(
                lambda: [line for line in (tmp_path / "shard0.log").read_text().splitlines() if " running" in line and "ready as" in line][1:],
                timeout=60, what="shard 0 ready again",
            )
            assert "(shards 0 of 2); 1 session running" in ready[0]
            await vote(0, 0, posts[0], voters[0][5], 2)
            for shard in (0, 1):
                assert (await slash(shard, "close")).startswith("Closing")
            for shard, index in ((0, 1), (1, 2)):
                await server.wait_for_message(channels[shard], lambda m, i=index: m["content"].startswith(f"**Round {i} closed**"), timeout=60)
        finally:
            for process in processes.values():
                if process.returncode is None:
                    process.terminate()
                    await asyncio.wait_for(process.wait(), 30)
        closed_posts = {
            shard: [m for m in server.messages(channels[shard]) if "closed**" in m["content"]] for shard in (0, 1)
        }
    logs = "".join((tmp_path / f"shard{s}.log").read_text(errors="replace") for s in (0, 1))
    assert PASSWORD not in logs and "Traceback" not in logs

    store = await open_store(url)
    try:
        for shard, guild in guilds.items():
            scope = f"guild:{guild.id}"
            rows = await store.export_rows(scope)
            rounds = {r["round"] - 1: r for r in rows["rounds"]}  # exports number rounds from 1
            # Every acknowledged vote is stored, once, as the voter's standing vote.
            for index, standing in acked[shard].items():
                stored = {int(v["voter"].split(":")[1]): v["rating"] for v in rows["votes"] if v["round"] == index + 1 and not v["retracted"]}
                assert stored == standing, (shard, index)
            closed = [r for r in rounds.values() if r["status"] == "closed"]
            # Every round rewarded once: one close each in the audit and on Discord, and learned from once
            # (the default linear model holds one rating per closed round after the session's first).
            closes = [a for a in rows["audit"] if a["action"] == "round_closed"]
            assert len(closes) == len(closed) == len({a["detail"]["round"] for a in closes}) == len(closed_posts[shard])
            assert sum(m["data"]["count"] for m in rows["models"]) == max(0, len(closed) - 1)
            assert [r["outcome"]["voters"] for r in sorted(closed, key=lambda r: r["round"])] == [
                len(acked[shard].get(i, {})) for i in sorted(i for i, r in rounds.items() if r["status"] == "closed")
            ]
    finally:
        await store.close()


async def test_a_bot_whose_shard_lock_another_process_took_while_its_connection_was_down_ends_with_one_line(tmp_path, postgres_server):
    """The lock's backend is terminated, and another process is waiting for the shard at that moment: it gets the
    lock before the bot can take it again. The bot must stop (exit code 8, one line), never run the shard beside it."""
    from pgserver import USER, find_bin

    url = postgres_server.new_database()
    async with FakeDiscord() as server:
        bot = await _start(server, tmp_path, url, 0)
        other = None
        try:
            await server.wait_until(lambda: sum(s.connected for s in server.sessions) >= 1, timeout=60, what="shard 0 connected")
            # One statement: the bot's lock connection is ended and this session queues for shard 0's lock before the
            # bot can ask again (storage.postgres: _SHARD_LOCKS), then holds it as a second bot process would.
            take = (
                f"SELECT pg_advisory_lock({0x73686172}, 0) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name LIKE 'process {bot.pid} %') ended; SELECT pg_sleep(3600)"
            )
            other = await asyncio.create_subprocess_exec(
                find_bin("psql"), "-h", str(postgres_server.folder), "-p", str(postgres_server.port), "-U", USER,
                "-d", url.rsplit("/", 1)[1], "-c", take, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            assert await asyncio.wait_for(bot.wait(), 60) == ExitCode.DATABASE  # README "Exit codes"
        finally:
            for process in (bot, other):
                if process is not None and process.returncode is None:
                    process.terminate()
                    await asyncio.wait_for(process.wait(), 30)
    log = (tmp_path / "shard0.log").read_text(errors="replace")
    assert log.splitlines()[-1] == (
        "crowdtune run: the database connection holding shard 0 of 2 was lost (the server restarted, or the connection was cut), "
        "and another process took it meanwhile (shard 0 of 2 is already run by another bot process on this database; give each "
        "process its own --shard-ids); this process stops, so that one process only runs it"
    )
    assert "Traceback" not in log and PASSWORD not in log
