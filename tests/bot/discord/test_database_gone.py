"""The database file removed while the bot runs, on the real bot. Found by a trial: a /compose in another channel was
answered "Sorry, something went wrong on my side. Nothing was started; please try again." (trying again cannot work
until the operator restarts the bot) with a DatabaseGone traceback in the log, and /status still gave the round's
closing time as if voting went on. Every answer says what is so: the database is gone, the operator must restart."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil

import pytest
from test_discord_bot import compose, drawer, env, final_answer, is_round, renderer, round_recorded, running  # noqa: F401


@pytest.mark.asyncio
async def test_commands_after_the_database_file_is_removed_say_the_operator_must_restart_with_no_traceback(env, caplog):
    if str(env.db).startswith("postgresql://"):
        pytest.skip("a file removed under the bot: SQLite only (a PostgreSQL database is not a file)")
    server = env.server
    caplog.set_level(logging.INFO)
    async with running(env):
        await compose(env, rounds=3)
        await server.wait_for_message(env.channel, is_round(1), timeout=20)
        await round_recorded(env, 1)
        os.remove(env.db)  # an operator's mistake, or a deploy replacing the file
        other = server.add_text_channel(env.guild, "other")
        started = await final_answer(await server.slash(env.mod, other, "compose", {}))
        assert "restart" in started["content"] and "try again" not in started["content"], started["content"]
        assert started["flags"] & 64  # for its user alone
        told = await server.wait_for_message(env.channel, lambda m: "Voting has stopped" in m["content"], timeout=20)
        assert "restart" in told["content"]
        status = await final_answer(await server.slash(env.alice, env.channel, "status"))
        assert "Voting has stopped" in status["content"] and "closes <t:" not in status["content"], status["content"]
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert not [m for m in server.messages(other)], "nothing started in the other channel"


def _in_a_folder_of_its_own(env):
    """The same environment with its database in a folder of its own, which a test can remove whole."""
    folder = env.folder / "data"
    folder.mkdir()
    return dataclasses.replace(env, db=str(folder / "t.db"))


def _left_beside(db: str) -> list[str]:
    """SQLite's files kept beside the database `db` that are still there."""
    return [suffix for suffix in ("-wal", "-shm", "-journal") if os.path.lexists(db + suffix)]


@pytest.mark.asyncio
async def test_a_stop_right_after_the_database_file_is_removed_leaves_no_wal_holding_the_followup_token(env):
    """Found by a trial: a clean stop (SIGTERM) after the database file was removed left SQLite's -wal and -shm beside
    the missing file (SQLite does not checkpoint into a file that moved, nor remove its -wal then), the -wal holding
    the /compose's followup token, a live credential for 15 minutes; and a backup restored at that path would have
    had that foreign -wal replayed into it. The stop removes them, as it would have on a database still there."""
    if str(env.db).startswith("postgresql://"):
        pytest.skip("a file removed under the bot: SQLite only (a PostgreSQL database is not a file)")
    server = env.server
    async with running(env):
        interaction = await server.slash(env.mod, env.channel, "compose", {"rounds": 3})
        await interaction.wait_response()
        await server.wait_for_message(env.channel, is_round(1), timeout=20)
        await round_recorded(env, 1)
        with open(env.db + "-wal", "rb") as wal:
            assert interaction.token.encode() in wal.read()  # kept for a restart within its 15 minutes (followups.py)
        os.remove(env.db)
    assert _left_beside(env.db) == [] and not os.path.exists(env.db)
