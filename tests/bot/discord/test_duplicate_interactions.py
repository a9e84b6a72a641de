"""An interaction delivered twice by the gateway, through the real bot and the local Discord-compatible server.

Found by a fresh-user trial: a button press whose INTERACTION_CREATE came again was handled twice; the vote was not
doubled, but the second answer failed with an ERROR traceback ("40060 Interaction has already been acknowledged").
Now a repeated interaction id is dropped before any handler, with one debug line, for every kind of interaction."""

from __future__ import annotations

import logging

import pytest
from test_discord_bot import ballots, compose, env, eventually, is_round, renderer, drawer, running, uid  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio

CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"


async def test_a_duplicated_interaction_is_handled_once_and_quietly(env, caplog):
    caplog.set_level(logging.DEBUG, logger="crowdtune.bot")
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons", "preset": "paper"})).wait_response()
        await compose(env, rounds=3, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1))
        button = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}
        answered = server.request_counts[CALLBACK]
        await (await server.press_button(env.bob, post["id"], button["7"])).wait_response()
        await server.replay_last(1)  # the press again
        await (await server.slash(env.alice, env.channel, "status")).wait_response()
        await server.replay_last(1)  # the command again
        # A later press, handled after the duplicates (the gateway's events are parsed in order).
        await (await server.press_button(env.carol, post["id"], button["3"])).wait_response()
        await eventually(lambda: server.request_counts[CALLBACK] >= answered + 3, "the three answers")
        assert await ballots(env) == {uid(env.bob): 7.0, uid(env.carol): 3.0}
    assert server.request_counts[CALLBACK] == answered + 3  # each interaction answered once: no second try
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    quiet = [r for r in caplog.records if "delivered again by the gateway" in r.getMessage()]
    assert len(quiet) == 2 and all(r.levelno == logging.DEBUG and r.exc_info is None for r in quiet), quiet
