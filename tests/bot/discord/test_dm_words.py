"""What a personal agent (a DM with the bot) is told, and a refused start (task words23, from a fresh-user trial). Each
test was written to fail on the code before its fix."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, is_round, renderer, running  # noqa: F401
from test_moderator_words import LISTED, config, forget
from test_security import fingerprint, raw_slash

pytestmark = pytest.mark.asyncio


async def test_config_in_a_dm_leaves_out_and_refuses_the_server_only_options(env):
    """Before: /config in a DM listed mod_role and share_learning, which mean nothing for a personal agent, and took
    share_learning (which then shared the person's learning with servers)."""
    dm = env.server.dm_channel(env.mod)
    async with running(env):
        shown = await config(env, dm)
        assert "mod_role" not in shown and "share_learning" not in shown, shown
        assert all(f"{option}: " in shown for option in LISTED if option not in ("mod_role", "share_learning")), shown
        before = fingerprint(env)
        refused = await config(env, dm, share_learning=True, preset="paper")
        assert refused == (
            "Sorry: share_learning applies in servers only: your personal agent has one moderator, you, and learns from your "
            "votes alone. Nothing was changed."
        ), refused
        assert fingerprint(env) == before
        assert "share_learning: off" in await config(env)  # a server's still lists it


async def test_forget_me_in_a_dm_ends_the_open_round_s_post_and_a_reaction_on_it_counts_for_nothing(env):
    """Before: after /forget-me in a DM the open round's post still said "Rate it 1-10 ... Voting closes ...", though
    /status said no session was running."""
    server = env.server
    dm = server.dm_channel(env.alice)
    async with running(env):
        await compose(env, user=env.alice, channel=dm, rounds=3, round_minutes=600)
        post = await server.wait_for_message(dm, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the vote")
        done = await forget(env, env.alice, dm, press="Delete my data")
        assert done["content"].startswith("Deleted 1 vote and your personal agent"), done["content"]
        await server.wait_until(lambda: "(cancelled)" in server.message(post["id"])["content"], what="the post edited")
        edited = server.message(post["id"])
        assert "Rate it" not in edited["content"] and "closes" not in edited["content"], edited["content"]
        await server.react(env.alice, post["id"], KEYCAPS[8])
        status = (await (await server.slash(env.alice, dm, "status")).wait_response())["data"]["content"]
        assert "No session" in status or "no session" in status, status
    assert db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 0
    assert db_rows(env, "SELECT COUNT(*) FROM rounds")[0][0] == 0


async def test_forget_me_in_a_dm_says_it_deletes_everywhere_and_leaves_the_person_their_copy(env):
    """Found by a trial: /forget-me in a DM also deleted the person's server votes (it deletes all of their data) but said
    only "Deleted 1 vote ...", and pressing Delete edited away the copy of their data the question carried."""
    server = env.server
    dm = server.dm_channel(env.alice)
    async with running(env):
        await compose(env, rounds=3, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the vote")
        prompt = await forget(env, env.alice, dm)
        assert "on every server and in DMs" in prompt["content"], prompt["content"]
        assert [a["filename"] for a in prompt["attachments"]] == ["my-crowdtune-data.json"], prompt["attachments"]
        done = await forget(env, env.alice, dm, press="Delete my data")
        assert done["content"].startswith("Deleted 1 vote on every server and in DMs"), done["content"]
        assert "copy" in done["content"], done["content"]
        assert [a["filename"] for a in done["attachments"]] == ["my-crowdtune-data.json"], done["attachments"]
        nothing = await forget(env, env.bob, server.dm_channel(env.bob))
        assert nothing["content"].startswith("Nothing of yours is stored on any server or in DMs"), nothing["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 0


async def test_a_forged_compose_option_is_refused_saying_nothing_was_started(env):
    """Before: "... Nothing was changed." for a /compose, which changes nothing but would have started something."""
    async with running(env):
        before = fingerprint(env)
        forged = await raw_slash(env.server, env.mod, env.channel, "compose", [{"name": "rounds", "type": 4, "value": -3}])
        content = (await forged.wait_response())["data"]["content"]
        assert content.startswith("Sorry") and content.endswith("Nothing was started.") and "\n" not in content, content
        assert fingerprint(env) == before
