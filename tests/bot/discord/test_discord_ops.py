"""How the bot behaves on real Discord (issue 12): it never stalls, works in threads and forum posts,
declares where its commands run, syncs them only when they change, posts each round once across
deployments, and starts with one clear line per problem. Against the local Discord-compatible server,
which runs on its own thread and clock, so a frozen bot loop misses Discord's deadlines there too."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import pytest
from fakediscord import Permission
from fakediscord.interactions import APPLICATION_COMMAND, GUILD_CONTEXT, GUILD_INSTALL, PRIVATE_CHANNEL_CONTEXT, USER_INSTALL
from test_discord_bot import KEYCAPS, compose, db_rows, env, eventually, final_answer, is_round, round_recorded, running  # noqa: F401 (env: a fixture)
from test_discord_bot import drawer, renderer  # noqa: F401 (fixtures)

from bot.conductor import Conductor
from bot.discord.app import CrowdtuneBot
from bot.settings import Settings
from storage import clone_rounds, is_postgres_url, open_store

pytestmark = pytest.mark.asyncio


async def long_history(env, copies: int) -> None:
    """A session whose first round was rated (one vote) and closed, then `copies` closed copies of it
    (3 votes each, by direct inserts); its second round is open."""
    await compose(env, rounds=0)
    post = await env.server.wait_for_message(env.channel, is_round(1))
    await env.server.react(env.alice, post["id"], KEYCAPS[6])
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "a vote")
    await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
    await env.server.wait_for_message(env.channel, is_round(2))
    [(first,)] = db_rows(env, "SELECT id FROM rounds WHERE idx = 0")
    # In a thread: the bot shares this loop, and a transaction of its own it has begun needs the loop to commit.
    await asyncio.to_thread(clone_rounds, env.db, first, copies, 3)


async def test_a_long_history_export_never_stalls_the_bot(env):
    """2,000 rounds took the old on-loop export about 10 s: a /status asked meanwhile missed
    Discord's 3-second deadline. Now the export is made in a worker process while the bot answers."""
    server = env.server
    async with running(env):
        await long_history(env, 2000)

        exported = await server.slash(env.mod, env.channel, "export")
        assert (await exported.wait_response())["type"] == 5  # deferred at once, "thinking"
        status = await server.slash(env.alice, env.channel, "status")
        answer = await status.wait_response()
        assert "Round 2" in answer["data"]["content"]
        assert exported.original is None or exported.original["attachments"] == []  # answered while exporting
        done = await exported.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=120)
        assert done["attachments"], done["content"]
        assert exported.followups == []  # the original response is edited, not a deprecated follow-up
        archive = zipfile.ZipFile(io.BytesIO(server.attachment_bytes(done["attachments"][0])))
        rounds = archive.read("rounds.jsonl").splitlines()
        assert len(rounds) == 2002 and len([n for n in archive.namelist() if n.endswith(".mid")]) == 2002 + 1
        assert sum(1 for _ in archive.read("votes.jsonl").splitlines()) == 1 + 3 * 2000
        assert json.loads(rounds[0])["round"] == 1  # numbered from 1, as people see them
    assert server.missed_deadlines == []


async def test_stats_reads_and_draws_a_long_history_off_the_loop_and_edits_its_answer(env):
    server = env.server
    async with running(env):
        await long_history(env, 500)
        stats = await server.slash(env.bob, env.channel, "stats")
        assert (await stats.wait_response())["type"] == 5
        answer = await stats.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=120)
    assert answer["content"].startswith("501 rated rounds, mean reward") and stats.followups == [], answer["content"]
    assert server.attachment_bytes(answer["attachments"][0]).startswith(b"\x89PNG")


# -- threads and forum posts (Discord checks Send Messages in Threads there, not Send Messages) --------


async def test_compose_in_a_thread_needs_send_messages_in_threads_and_says_so(env):
    server = env.server
    thread = server.add_thread(env.channel, "jam")
    server.set_permissions(env.channel, server.world.bot, deny=Permission.SEND_MESSAGES_IN_THREADS)  # the parent's overwrite applies
    async with running(env):
        reply = await compose(env, channel=thread)
        assert "missing the Send Messages in Threads permission" in reply["data"]["content"] and reply["data"]["flags"] & 64
        assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0
    assert server.messages(thread) == []


async def test_compose_runs_in_a_thread_where_only_posting_in_threads_is_allowed(env):
    server = env.server
    thread = server.add_thread(env.channel, "jam")
    server.set_permissions(env.channel, server.world.bot, deny=Permission.SEND_MESSAGES)  # not needed in a thread
    async with running(env):
        reply = await compose(env, channel=thread, rounds=2)
        assert "Composing" in reply["data"]["content"]
        post = await server.wait_for_message(thread, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "a vote in the thread")
    assert server.messages(env.channel) == []


async def test_compose_runs_in_a_forum_post(env):
    server = env.server
    forum = server.add_forum_channel(env.guild, "tracks")
    post_thread = server.add_forum_post(forum, "Our song", env.alice, "Let's compose here")
    async with running(env):
        reply = await compose(env, user=env.alice, channel=post_thread, rounds=2)
        assert "Composing" in reply["data"]["content"]
        post = await server.wait_for_message(post_thread, is_round(1))
        assert any(a["filename"] == "round-1.ogg" for a in post["attachments"])


# -- where commands may be used ---------------------------------------------------------------------


async def test_commands_declare_a_server_install_and_the_server_and_bot_dm_contexts(env):
    async with running(env) as bot:
        await env.server.wait_until(lambda: env.server.commands.get(None), what="commands synced")
        declared = {c.name: c.to_dict(bot.tree) for c in bot.tree.get_commands()}
    assert declared and all(d["integration_types"] == [0] for d in declared.values())  # guild install only
    assert all(set(d["contexts"]) <= {0, 1} for d in declared.values())  # a server, or a DM with the bot
    assert declared["compose"]["contexts"] == [0, 1] and declared["strike"]["contexts"] == [0]


async def test_with_user_install_enabled_the_commands_still_appear_only_where_the_bot_is(env):
    """An operator enables user install in the Developer Portal: commands that declare no install
    type would follow it and be offered in servers the bot is not in (where /compose said
    "Composing..." and then failed)."""
    server = env.server
    server.installation_types = [GUILD_INSTALL, USER_INSTALL]
    elsewhere = server.add_guild("Elsewhere", owner=env.alice, with_bot=False)
    channel = server.add_text_channel(elsewhere, "chat")
    async with running(env):
        with pytest.raises(PermissionError, match="not installed here"):
            await server.slash(env.alice, channel, "compose", {})
        reply = await compose(env, user=env.alice, channel=server.dm_channel(env.alice), rounds=1)  # a DM with the bot works
        assert "Composing" in reply["data"]["content"]


@pytest.mark.parametrize("where", ["a server without the bot", "a group chat"])
async def test_a_command_used_where_the_bot_cannot_post_gets_a_clear_answer(env, where):
    """As Discord sends it for a user-installed command (one synced before, or a forged request): in a
    server the bot is not in, or in a group chat (the PRIVATE_CHANNEL context)."""
    server = env.server
    if where == "a group chat":
        channel, context = server.dm_channel(env.alice), PRIVATE_CHANNEL_CONTEXT
    else:
        elsewhere = server.add_guild("Elsewhere", owner=env.alice, with_bot=False)
        channel, context = server.add_text_channel(elsewhere, "chat"), GUILD_CONTEXT
    async with running(env):
        command = next(c for c in server.commands[None] if c["name"] == "compose")
        data = {"id": command["id"], "name": "compose", "type": 1, "options": []}
        interaction = await server._interact(
            env.alice, channel, APPLICATION_COMMAND, data, context=context, owners={str(USER_INSTALL): str(env.alice.id)}
        )
        reply = await interaction.wait_response()
        text = reply["data"]["content"]
        assert reply["data"]["flags"] & 64 and text.endswith("Nothing was started."), text
        assert ("not in this server" in text) if where != "a group chat" else ("group chats" in text), text
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0


# -- command sync ----------------------------------------------------------------------------------

SYNC = "PUT /applications/{application_id}/commands"
CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"


async def test_commands_are_synced_once_and_not_again_while_they_stay_the_same(env):
    server = env.server
    async with running(env) as bot:
        assert await bot.wait_until_commands_synced()
    assert server.request_counts[SYNC] == 1
    for _ in range(2):  # restarts, as in a crash loop: no request, no rate limit
        async with running(env) as bot:
            assert await bot.wait_until_commands_synced()
            reply = await (await env.server.slash(env.alice, env.channel, "status")).wait_response()
            assert "No session is running here" in reply["data"]["content"]
    assert server.request_counts[SYNC] == 1
    # a changed declaration is synced again
    db_rows(env, "UPDATE deployment SET value = 'an older digest' WHERE key LIKE 'commands:%'")
    async with running(env) as bot:
        assert await bot.wait_until_commands_synced()
    assert server.request_counts[SYNC] == 2


async def test_a_failed_command_sync_is_retried_and_open_rounds_run_meanwhile(env, caplog):
    server = env.server
    async with running(env):
        await compose(env, rounds=0)
        await server.wait_for_message(env.channel, is_round(1))
    db_rows(env, "DELETE FROM deployment")
    server.fail(SYNC, count=2, status=403, code=50001, message="Missing Access")
    store = await open_store(env.db)
    bot = CrowdtuneBot(Settings(_env_file=None), Conductor(store), env.renderer, env.drawer, guild_ready_timeout=0.05)
    bot.command_sync_retry_seconds = 0.05
    try:
        async with server.connect(bot):
            # The open round resumed (its timer runs) although the sync failed: /close works on it.
            await server.wait_until(lambda: server.request_counts[SYNC] >= 1, what="a first sync")
            # Until the resumed round is back in the runner's hands (a /close while its post is adopted closes it then).
            acted = ("Closing", "The next round is being posted; I'll close it")
            for _ in range(200):
                answer = (await final_answer(await server.slash(env.mod, env.channel, "close")))["content"]
                if answer.startswith(acted):
                    break
                await asyncio.sleep(0.05)
            assert answer.startswith(acted), answer
            await server.wait_for_message(env.channel, is_round(2))
            assert await bot.wait_until_commands_synced()
    finally:
        await store.close()
    assert server.request_counts[SYNC] == 1 + 3  # the first run's, then two refused and one that worked
    assert sum("could not sync the commands" in r.getMessage() for r in caplog.records) == 2


async def test_a_compose_answered_as_the_bot_shuts_down_runs_no_round_after_it(env):
    """Found by a run with every store write late (flaky22): /compose starts its session's rounds once its answer is
    sent; sent while the bot shut down, they began after the runner had stopped every session, on a store then closed
    ("Task exception was never retrieved"). The session is in the database: the next start runs it."""
    server = env.server
    async with running(env) as bot:
        server.hold(CALLBACK)
        interaction = await server.slash(env.mod, env.channel, "compose", {"rounds": 2})
        await server.wait_until(lambda: server.held[CALLBACK] == 1, what="/compose's answer on its way")
        await bot.runner.shutdown()  # what bot.close() does first
        server.release(CALLBACK)
        await interaction.wait_response()
        await eventually(lambda: 1 in bot.runner.followups._followups, "the /compose handler past its answer")
        assert all(task.done() for task in bot.runner._tasks.values())


# -- round-post nonces -----------------------------------------------------------------------------


async def test_round_posts_stay_unique_after_the_database_is_recreated(env):
    """Round ids start again at 1 in a new database (or in a second deployment on the same token):
    with a nonce made of the round id alone, Discord (enforce_nonce) returned the old round's message
    instead of posting the new one."""
    server = env.server
    async with running(env):
        await compose(env, rounds=3)
        first = await server.wait_for_message(env.channel, is_round(1))
    if is_postgres_url(env.db):  # every table dropped: the next start migrates an empty database
        db_rows(env, "DROP SCHEMA public CASCADE")
        db_rows(env, "CREATE SCHEMA public")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(env.db + suffix).unlink(missing_ok=True)
    async with running(env):
        await compose(env, rounds=3)
        await round_recorded(env, 1)
    [(message_ids,)] = db_rows(env, "SELECT message_ids FROM rounds WHERE idx = 0")
    posts = [m for m in server.messages(env.channel) if is_round(1)(m)]
    assert len(posts) == 2 and json.loads(message_ids) == [str(posts[1]["id"])] and posts[0]["id"] == first["id"]
    nonces = [m.get("nonce") for m in posts]
    assert len(set(nonces)) == 2 and all(n and len(n) <= 25 for n in nonces), nonces


async def test_an_export_over_the_upload_limit_says_what_to_run_instead(env, monkeypatch):
    """The limit is the one Discord gives with the interaction (attachment_size_limit), here lowered."""
    import fakediscord.interactions

    monkeypatch.setattr(fakediscord.interactions, "ATTACHMENT_SIZE_LIMIT", 50 * 1024)
    server = env.server
    async with running(env):
        await long_history(env, 400)
        exported = await server.slash(env.mod, env.channel, "export")
        answer = await exported.wait_original(lambda m: "upload limit" in m["content"], timeout=60)
    assert answer["attachments"] == [] and f"crowdtune export --scope guild:{env.guild.id}" in answer["content"]
    assert "over Discord's 0 MiB" not in answer["content"]
