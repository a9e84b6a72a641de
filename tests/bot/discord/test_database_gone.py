"""The database file removed while the bot runs, on the real bot. Found by a trial: a /compose in another channel was
answered "Sorry, something went wrong on my side. Nothing was started; please try again." (trying again cannot work
until the operator restarts the bot) with a DatabaseGone traceback in the log, and /status still gave the round's
closing time as if voting went on. Every answer says what is so: the database is gone, the operator must restart."""

from __future__ import annotations

import logging
import os

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
