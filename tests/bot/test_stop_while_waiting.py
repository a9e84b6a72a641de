"""A stop signal ends the running bot (`crowdtune run` with a token, a process of its own) with its line and exit code 0
in every phase where it waits on something outside: discord.py's reconnect back-off, the login retried after a 429,
a gateway that never answers. Found by a fresh-user trial: SIGTERM during "Attempting a reconnect in 32.05s" ended the
bot only once the 32 s had run out (once after a 209.83 s back-off): `docker stop` kills it after 10 s.

Each wait here is longer than the guard the test gives the process to end in (30 s; the gateway's 60 s, the others
600 s), so a bot that waits it out fails the test by not having ended: no time window is asserted."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import sys

import pytest
from aiohttp import web
from fakediscord import FakeDiscord

from bot.stopping import WORDS, bot_stopped
from test_bot_process import bot_env
from test_discord_bot import KEYCAPS, uid

pytestmark = pytest.mark.asyncio
WAIT = 600.0  # every outside wait in these tests, in seconds: far past the guard below
GUARD = 30.0  # how long a test lets the process take to end after the signal, in seconds
CROWDTUNE = "import sys\nfrom bot.entry import main\nsys.exit(main())"  # the installed `crowdtune` script's lines
# The same after drawing discord.py's reconnect back-off at WAIT seconds: it is random (up to 2**exp s, exp growing
# by one a failure), and a long one otherwise takes minutes of failures to come.
LONG_BACK_OFF = f"import discord.backoff\ndiscord.backoff.ExponentialBackoff.delay = lambda self: {WAIT!r}\n{CROWDTUNE}"


async def start(server: FakeDiscord, tmp_path, *command: str, **settings: str):
    env = {**bot_env(server, tmp_path / "bot.db", server.bot_token), **settings}
    return await asyncio.create_subprocess_exec(
        *command, "run", cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def read_until(process, words: str) -> str:
    """The bot's log up to the first line holding `words`."""
    lines = []
    while not lines or words not in lines[-1]:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=GUARD)
        assert line, "the bot ended first:\n" + "".join(lines)
        lines.append(line.decode())
    return "".join(lines)


async def stopped(process, number: signal.Signals = signal.SIGTERM) -> str:
    """Send `number` and return the rest of the log once the process has ended; killed if it has not within GUARD."""
    process.send_signal(number)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=GUARD)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the bot had not ended {GUARD:g} s after {number.name}: it waits out a {WAIT:g} s wait")
    return out.decode() + err.decode()


def assert_stopped_cleanly(process, logs: str, number: signal.Signals = signal.SIGTERM) -> None:
    assert process.returncode == 0, logs  # README "Exit codes": the running bot stopped by a signal
    assert logs.rstrip().endswith(bot_stopped(number)), logs
    assert "Traceback" not in logs and "Unclosed" not in logs, logs


@pytest.mark.parametrize(("number", "shards"), [
    (signal.SIGTERM, None), (signal.SIGINT, None), (signal.SIGHUP, None), (signal.SIGTERM, "2"),
], ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGTERM-2-shards"])
async def test_a_signal_during_the_reconnect_back_off_stops_the_bot_at_once(tmp_path, number, shards):
    settings = {"CROWDTUNE_SHARD_COUNT": shards} if shards else {}
    server = FakeDiscord()
    await server.__aenter__()
    try:
        process = await start(server, tmp_path, sys.executable, "-c", LONG_BACK_OFF, **settings)
        await server.wait_until(lambda: server.commands[None], timeout=GUARD, what="commands synced")  # after on_ready
    finally:
        await server.__aexit__(None, None, None)  # Discord goes away and stays away
    # "Attempting a reconnect in 600.00s" ("for shard ID 0 in" when sharded): the back-off has begun
    before = await read_until(process, f"in {WAIT:.2f}s")
    logs = before + await stopped(process, number)
    assert "Attempting a reconnect" in before, before
    assert_stopped_cleanly(process, logs, number)
    assert WORDS[number] in logs


async def test_sigterm_while_the_login_waits_out_a_429_stops_the_bot_at_once(tmp_path):
    async with FakeDiscord() as server:
        server.rate_limit("GET /users/@me", retry_after=WAIT)  # discord.py waits the whole retry_after, then tries again
        process = await start(server, tmp_path, sys.executable, "-c", CROWDTUNE)
        await server.wait_until(lambda: server.request_counts["GET /users/@me"] == 1, timeout=GUARD, what="the login's 429")
        logs = await stopped(process)
        assert server.request_counts["GET /users/@me"] == 1  # the login was not tried again
    assert_stopped_cleanly(process, logs)


@pytest.mark.parametrize("answers", ["nothing", "the upgrade only"])
async def test_sigterm_while_the_gateway_never_answers_stops_the_bot_at_once(tmp_path, answers):
    """A gateway that takes the connection and says nothing, or accepts the websocket and never sends HELLO:
    discord.py waits 60 s for it, then backs off and tries again."""
    reached, released, held = asyncio.Event(), asyncio.Event(), []

    async def silent(reader, writer):
        held.append(writer)
        reached.set()

    async def no_hello(request):
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        reached.set()
        await released.wait()  # till the test ends (the server's cleanup would wait 60 s for it)
        return socket

    if answers == "nothing":
        gateway = await asyncio.start_server(silent, "127.0.0.1", 0, family=socket.AF_INET)
        port = gateway.sockets[0].getsockname()[1]
    else:
        app = web.Application()
        app.router.add_get("/", no_hello)
        gateway = web.AppRunner(app, handle_signals=False)
        await gateway.setup()
        site = web.TCPSite(gateway, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
    try:
        async with FakeDiscord() as server:
            process = await start(server, tmp_path, sys.executable, "-c", CROWDTUNE, CROWDTUNE_GATEWAY_URL=f"ws://127.0.0.1:{port}/")
            await asyncio.wait_for(reached.wait(), timeout=GUARD)
            logs = await stopped(process)
    finally:
        released.set()
        for writer in held:
            writer.close()
        await gateway.cleanup() if answers != "nothing" else gateway.close()
    assert_stopped_cleanly(process, logs)


async def test_sigterm_stores_a_vote_held_over_the_rate_before_the_bot_ends(tmp_path):
    """The stop cancels the connection first: what the bot had already heard still reaches the database, as at any
    clean stop (here a reaction held over the vote rate, which a refill would have applied an hour later)."""
    async with FakeDiscord() as server:
        mod, carol = server.add_user("mod"), server.add_user("carol")
        guild = server.add_guild("Lab", owner=mod)
        channel = server.add_text_channel(guild, "lab")
        server.add_member(guild, carol)
        process = await start(server, tmp_path, sys.executable, "-c", CROWDTUNE,
                              CROWDTUNE_VOTE_BURST="1", CROWDTUNE_VOTE_REFILL_SECONDS="3600")
        try:
            await server.wait_until(lambda: server.commands[None], timeout=GUARD, what="commands synced")
            await (await server.slash(mod, channel, "compose", {"rounds": 2}, check_permissions=False)).wait_response()
            post = await server.wait_for_message(channel, lambda m: m["content"].startswith("**Round 1"), timeout=GUARD)
            await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, timeout=GUARD, what="the vote reactions")
            await server.react(carol, post["id"], KEYCAPS[2])  # her one change at once
            await server.unreact(carol, post["id"], KEYCAPS[2])  # over her rate: held, and so is the next
            await server.react(carol, post["id"], KEYCAPS[8])
            status = await (await server.slash(mod, channel, "status")).wait_response()
            assert "1 voted so far (9)" in status["data"]["content"]  # the bot holds her 9
        finally:
            logs = await stopped(process)
    assert_stopped_cleanly(process, logs)
    with sqlite3.connect(tmp_path / "bot.db") as raw:
        assert raw.execute("SELECT voter, rating, retracted FROM votes").fetchall() == [(uid(carol), 9.0, 0)]
