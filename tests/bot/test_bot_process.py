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


async def start(server: FakeDiscord, tmp_path: Path, token: str):
    return await asyncio.create_subprocess_exec(
        CROWDTUNE, "run", cwd=tmp_path, env=bot_env(server, tmp_path / "bot.db", token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def test_the_bot_process_runs_a_round_and_stops_cleanly_on_sigterm(tmp_path):
    async with FakeDiscord() as server:
        mod = server.add_user("mod")
        guild = server.add_guild("Lab", owner=mod)
        channels = [server.add_text_channel(guild, name) for name in ("one", "two")]
        process = await start(server, tmp_path, server.bot_token)
        try:
            await server.wait_until(lambda: server.commands[None], timeout=30, what="commands synced")
            await server.wait_for_session(timeout=30)
            # Two channels at once: neither waits for the other.
            for channel in channels:
                reply = await (await server.slash(mod, channel, "compose", {"rounds": 2}, check_permissions=False)).wait_response()
                assert "Composing" in reply["data"]["content"]
            for channel in channels:
                post = await server.wait_for_message(channel, lambda m: m["content"].startswith("**Round 1"), timeout=30)
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


async def test_a_refused_token_is_one_clear_line_and_never_echoed(tmp_path):
    async with FakeDiscord() as server:
        process = await start(server, tmp_path, "not.the-right.token")
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 5  # README "Exit codes"
    assert "refused the token" in err.decode()
    assert "not.the-right.token" not in out.decode() + err.decode()
    assert "Traceback" not in err.decode()
