"""`crowdtune run` with a token, as an operator starts it: a separate process talking to the
local Discord-compatible server through the URL overrides, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from fakediscord import FakeDiscord

pytestmark = pytest.mark.asyncio
CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")


def bot_env(server: FakeDiscord, db: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDTUNE_")}
    env.update(
        DISCORD_TOKEN=token,
        CROWDTUNE_DB=str(db),
        CROWDTUNE_API_BASE=server.api_base,
        CROWDTUNE_GATEWAY_URL=server.gateway_url,
    )
    return env


async def start(server: FakeDiscord, tmp_path: Path, token: str, **settings: str):
    return await asyncio.create_subprocess_exec(
        CROWDTUNE, "run", cwd=tmp_path, env={**bot_env(server, tmp_path / "bot.db", token), **settings},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def retries_then_sigterm(process, retry: str, times: int = 2) -> tuple[list[str], str]:
    """Read the bot's log until `times` lines hold `retry`, then stop it with SIGTERM: (those lines, the whole log)."""
    lines: list[str] = []
    try:
        while sum(retry in line for line in lines) < times:
            line = await asyncio.wait_for(process.stderr.readline(), timeout=60)
            assert line, "the bot stopped instead of trying again"
            lines.append(line.decode())
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    return [line for line in lines if retry in line], "".join(lines) + out.decode() + err.decode()


async def test_the_bot_process_runs_a_round_and_stops_cleanly_on_sigterm(tmp_path):
    async with FakeDiscord() as server:
        mod = server.add_user("mod")
        guild = server.add_guild("Lab", owner=mod)
        channels = [server.add_text_channel(guild, name) for name in ("one", "two")]
        process = await start(server, tmp_path, server.bot_token)
        try:
            await server.wait_until(lambda: server.commands[None], what="commands synced")
            await server.wait_for_session(timeout=30)
            # Two channels at once: neither waits for the other.
            for channel in channels:
                reply = await (await server.slash(mod, channel, "compose", {"rounds": 2}, check_permissions=False)).wait_response()
                assert "Composing" in reply["data"]["content"]
            for channel in channels:
                post = await server.wait_for_message(channel, lambda m: m["content"].startswith("**Round 1"))
                assert any(a["filename"] == "round-1.ogg" for a in post["attachments"])
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    logs = out.decode() + err.decode()
    assert server.bot_token not in logs and "Traceback" not in logs
    assert "PyNaCl" not in logs and "davey" not in logs  # no voice warnings: the bot has no voice
    with sqlite3.connect(tmp_path / "bot.db") as raw:
        # Open rounds stay open in the database, for the next start to resume.
        assert raw.execute("SELECT COUNT(*) FROM rounds WHERE status = 'open'").fetchone()[0] == 2


async def test_while_discord_is_unreachable_each_reconnect_is_one_line_not_a_traceback(tmp_path):
    """discord.py logs each reconnect attempt with the traceback of what broke the connection: with Discord
    down, an operator's log filled with tracebacks every few seconds."""
    server = FakeDiscord()
    await server.__aenter__()
    try:
        process = await start(server, tmp_path, server.bot_token)
        await server.wait_until(lambda: server.commands[None], what="commands synced")  # after on_ready
    finally:
        await server.__aexit__(None, None, None)  # Discord goes away; the bot keeps trying
    attempts, logs = await retries_then_sigterm(process, "Attempting a reconnect")
    assert "Traceback" not in logs, logs
    assert "\x1b[" not in logs  # no colour codes into a pipe (discord.py colours whenever it runs in Docker)
    assert all("WARNING" in line and "(" in line for line in attempts), attempts  # the reason, on the line


async def test_a_refused_token_is_one_clear_line_and_never_echoed(tmp_path):
    async with FakeDiscord() as server:
        process = await start(server, tmp_path, "not.the-right.token")
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 5  # README "Exit codes"
    assert "refused the token" in err.decode()
    assert "not.the-right.token" not in out.decode() + err.decode()
    assert "Traceback" not in err.decode()


async def test_a_shard_that_cannot_reach_the_gateway_retries_in_one_line_not_a_traceback(tmp_path):
    """A sharded bot (discord.py's AutoShardedClient) retries a shard's first connection every 5 s, logging
    the whole traceback each time ("Failed to connect for shard_id"): the same kind as a reconnect. And it
    retried after SIGTERM had closed it, so it never ended."""
    import socket

    with socket.socket() as closed:  # a port nothing listens on: the gateway is down, the REST API is up
        closed.bind(("127.0.0.1", 0))
        dead_gateway = f"ws://127.0.0.1:{closed.getsockname()[1]}/"
    async with FakeDiscord() as server:
        process = await start(server, tmp_path, server.bot_token, CROWDTUNE_GATEWAY_URL=dead_gateway, CROWDTUNE_SHARD_COUNT="2")
        failures, logs = await retries_then_sigterm(process, "Failed to connect for shard_id")
    assert process.returncode == 0, logs  # SIGTERM stops it as it stops an unsharded bot
    assert "Traceback" not in logs, logs
    assert all("WARNING" in line and "(" in line for line in failures), failures  # the reason, on the line


@pytest.mark.parametrize("number, word", [(signal.SIGTERM, "terminated (SIGTERM)"), (signal.SIGINT, "interrupted (Ctrl-C or SIGINT)"),
                                          (signal.SIGHUP, "hung up (SIGHUP: the terminal closed)")])
async def test_a_signal_stops_the_bot_with_exit_code_0_and_one_last_line_saying_what_stopped_it(tmp_path, number, word):
    """README "Exit codes": crowdtune ends with one line on stderr, the running bot too (it printed none),
    and its log counts in words ("0 sessions running", not "0 session(s)")."""
    async with FakeDiscord() as server:
        process = await start(server, tmp_path, server.bot_token)
        try:
            await server.wait_until(lambda: server.commands[None], what="commands synced")
            await server.wait_for_session(timeout=30)
        finally:
            process.send_signal(number)
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    logs = err.decode()
    assert process.returncode == 0, logs
    last = logs.rstrip("\n").splitlines()[-1]
    assert last.startswith(word) and "open rounds resume" in last, last
    assert sum(line.startswith(word) for line in logs.splitlines()) == 1, logs
    assert "0 sessions running" in logs and "(s)" not in logs, logs


async def test_a_database_file_removed_under_the_bot_is_said_to_be_put_back_before_a_restart_which_would_start_empty(tmp_path):
    """Found by a trial: after the database file was removed, the channel and the log said only that the operator must
    restart the bot, the SIGTERM line that "its open rounds resume at its next start", and the restart, with no file,
    said only "0 sessions running" of the new, empty database it made. Each says what is so: the file (or a backup)
    must be put back first, and a start that makes a database says so."""
    db = tmp_path / "bot.db"
    async with FakeDiscord() as server:
        mod = server.add_user("mod")
        channel = server.add_text_channel(server.add_guild("Lab", owner=mod), "one")
        process = await start(server, tmp_path, server.bot_token)
        try:
            await server.wait_until(lambda: server.commands[None], what="commands synced")
            await server.wait_for_session(timeout=30)
            await (await server.slash(mod, channel, "compose", {"rounds": 2}, check_permissions=False)).wait_response()
            await server.wait_for_message(channel, lambda m: m["content"].startswith("**Round 1"))
            os.remove(db)
            told = await server.wait_for_message(channel, lambda m: "Voting has stopped" in m["content"])
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        logs = err.decode()
        assert process.returncode == 0, logs
        assert logs.count(f"created a new, empty database at {db}") == 1, logs  # its first start made it
        assert "put the database file (or a backup) back before restarting me" in told["content"], told["content"]
        stopped = [line for line in logs.splitlines() if "voting stopped in every session" in line]
        last = logs.rstrip("\n").splitlines()[-1]
        for line in (stopped[0], last):
            assert f"put the database file (or a backup) back at {db} before restarting" in line, logs
            assert "new, empty database" in line and "resume" not in line, line
        assert last.startswith("terminated (SIGTERM): the bot has stopped;"), last
        # Restarted without it, as the operator was not to: the new, empty database is said.
        process = await start(server, tmp_path, server.bot_token)
        _, logs = await retries_then_sigterm(process, "ready as", times=1)  # said as it is ready, before that line
        assert f"created a new, empty database at {db}" in logs and process.returncode == 0, logs
