"""A round's post once the round has ended, through the real bot and the local Discord-compatible server: it says the
round closed or was cancelled, not "Voting closes <t:…:R>" (a relative time that still shows a future time after an
early /close), and has no vote buttons left. Found by a trial: members saw a live-looking round after it closed."""

from __future__ import annotations

import asyncio

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio

EDIT_MESSAGE = "PATCH /channels/{channel_id}/messages/{message_id}"


async def buttons_session(env, rounds: int = 3) -> dict:
    """A session with vote buttons; its first round's post, recorded."""
    await (await env.server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
    await compose(env, rounds=rounds)
    post = await env.server.wait_for_message(env.channel, is_round(1))
    await round_recorded(env, 1)
    return post


async def test_a_closed_round_s_post_says_so_and_a_stopped_one_s_says_cancelled_both_without_buttons(env):
    server = env.server
    async with running(env) as bot:
        first = await buttons_session(env)
        assert "Voting closes <t:" in first["content"] and first["components"]
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**: nobody voted"))
        second = await server.wait_for_message(env.channel, is_round(2))
        await server.wait_until(lambda: not server.message(first["id"])["components"], what="round 1's buttons removed")
        await round_recorded(env, 2)
        stopped = (await final_answer(await server.slash(env.mod, env.channel, "stop")))["content"]
        assert stopped.startswith("Session stopped"), stopped
        await server.wait_until(lambda: not server.message(second["id"])["components"], what="round 2's buttons removed")
        await eventually(lambda: all(task.done() for task in bot.runner._tasks.values()), "the session's rounds to end")
    closed, cancelled = server.message(first["id"])["content"], server.message(second["id"])["content"]
    assert closed.startswith("**Round 1 of 3** (closed): ") and closed.endswith(" Voting has closed; its summary follows."), closed
    assert cancelled.startswith("**Round 2 of 3** (cancelled): "), cancelled
    assert cancelled.endswith(" The session was stopped, so votes on it do not count."), cancelled
    assert [m["id"] for m in server.messages(env.channel) if "Voting closes" in m["content"]] == []
    assert server.request_counts[EDIT_MESSAGE] == 2  # one edit per round post
    assert db_rows(env, "SELECT content, message_id FROM announcements WHERE sent_at IS NULL") == []


async def test_the_edit_is_in_the_outbox_a_restart_makes_it_and_a_deleted_post_is_skipped(env):
    """The edit is stored with the close, as the summary is: a bot that goes down before it could edit makes it
    after its restart. A post deleted before its edit (404 Unknown Message) is passed over: the session goes on."""
    server = env.server
    async with running(env) as bot:
        first = await buttons_session(env)
        gone = asyncio.Event()

        async def down(channel_id=None):  # the bot goes down right after the close is stored: nothing reaches Discord
            await gone.wait()

        bot.runner.announce = down
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM rounds WHERE idx = 0") == [("closed",)], "round 1 closed")
    assert server.message(first["id"])["components"] and server.request_counts[EDIT_MESSAGE] == 0
    async with running(env):
        await server.wait_until(lambda: not server.message(first["id"])["components"], what="round 1's post edited after the restart")
        second = await server.wait_for_message(env.channel, is_round(2))
        await round_recorded(env, 2)
        server.hold(EDIT_MESSAGE)
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_until(lambda: server.held[EDIT_MESSAGE] >= 1, what="round 2's edit on its way")
        await server.delete_message(second["id"])
        server.release(EDIT_MESSAGE)
        third = await server.wait_for_message(env.channel, is_round(3))
    assert "Voting has closed" in server.message(first["id"])["content"]
    assert third["components"] and db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "closed"), (2, "open")]
    assert db_rows(env, "SELECT content, message_id FROM announcements WHERE sent_at IS NULL") == []


def hold_the_record(monkeypatch, store, recording: asyncio.Event, go: asyncio.Event) -> None:
    """Hold the round's record (set_round_messages) inside its transaction, its message id written but not yet
    committed, until `go`: where a /stop's transaction may come in between."""
    import contextvars

    import storage.postgres
    import storage.sqlite

    in_record = contextvars.ContextVar("in_record", default=False)
    set_round_messages = store.set_round_messages

    async def record(*args, **kwargs):
        token = in_record.set(True)
        try:
            return await set_round_messages(*args, **kwargs)
        finally:
            in_record.reset(token)

    def held(edit):
        async def edit_held(*args, **kwargs):
            if in_record.get():
                recording.set()
                await go.wait()
            return await edit(*args, **kwargs)

        return edit_held

    monkeypatch.setattr(store, "set_round_messages", record)
    monkeypatch.setattr(storage.postgres, "_edit_ended_posts", held(storage.postgres._edit_ended_posts))
    monkeypatch.setattr(storage.sqlite._Tx, "edit_ended_posts", held(storage.sqlite._Tx.edit_ended_posts))


async def test_a_stop_while_the_post_is_recorded_edits_it_once(env, monkeypatch):
    """A /stop while the round's post, already in the channel, is being recorded with its message id. On PostgreSQL
    each transaction read the round before the other committed (the record: still open; the stop: no message yet), so
    neither queued the post's edit and it stayed a live round's, buttons and all. The stop now waits for the record."""
    server, recording, go = env.server, asyncio.Event(), asyncio.Event()
    async with running(env) as bot:
        store = bot.conductor.store
        hold_the_record(monkeypatch, store, recording, go)
        stopping = asyncio.Event()
        end_session = store.end_session

        async def stop(*args, **kwargs):
            stopping.set()
            return await end_session(*args, **kwargs)

        monkeypatch.setattr(store, "end_session", stop)
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        await recording.wait()
        post = await server.wait_for_message(env.channel, is_round(1))
        stop_command = await server.slash(env.mod, env.channel, "stop")
        if env.db.startswith("postgresql"):  # the stop's transaction has come as far as it can: it waits for a lock
            await stopping.wait()  # (SQLite runs one transaction at a time: the stop comes after the record)
            waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            await eventually(lambda: db_rows(env, waiting)[0][0] >= 1, "the stop to wait for the record")
        go.set()
        stopped = (await final_answer(stop_command))["content"]
        await server.wait_until(lambda: not server.message(post["id"])["components"], what="the post's buttons removed")
        await eventually(lambda: all(task.done() for task in bot.runner._tasks.values()), "the session's rounds to end")
    assert stopped.startswith("Session stopped"), stopped
    assert server.message(post["id"])["content"].startswith("**Round 1 of 2** (cancelled): ")
    assert server.request_counts[EDIT_MESSAGE] == 1
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "cancelled")]
    assert db_rows(env, "SELECT content, message_id FROM announcements WHERE sent_at IS NULL") == []


@pytest.mark.parametrize("when", ["running", "at a restart"])
async def test_a_closed_rounds_post_carries_its_summary_when_discord_refuses_to_post_it(env, when):
    """A trial: Send Messages denied mid-round; the post was edited to "Voting has closed; its summary follows.", the
    summary was refused (an edit of the bot's own message needs no Send Messages, a new message does), and none
    followed. The post then carries the summary in place of that promise, as the session stops; also when the refusal
    comes as the restart posts what the outbox holds."""
    from fakediscord.world import Permission

    server = env.server
    async with running(env):
        post = await buttons_session(env)
        if when == "at a restart":
            server.hold(EDIT_MESSAGE)  # the edit and the summary wait in the outbox: the bot stops meanwhile
        else:
            server.set_permissions(env.channel, server.bot_user, deny=int(Permission.SEND_MESSAGES))
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM rounds") == [("closed",)], "the close")
        if when == "running":
            await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the session stopped")
        else:
            await server.wait_until(lambda: server.held[EDIT_MESSAGE] >= 1, what="the edit on its way")
    if when == "at a restart":
        server.release(EDIT_MESSAGE)
        server.set_permissions(env.channel, server.bot_user, deny=int(Permission.SEND_MESSAGES))
        async with running(env):
            await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the session stopped")
    closed = server.message(post["id"])["content"]
    assert closed.startswith("**Round 1 of 3** (closed): "), closed
    assert closed.endswith(" Voting has closed: **Round 1 closed**: nobody voted, so nothing was learned: the edit is undone and the track before stays."), closed
    assert not [m for m in server.messages(env.channel) if "Round 1 closed" in m["content"] and m["id"] != post["id"]]


async def test_a_refused_summary_is_not_posted_into_the_channel_s_next_session(env):
    """Trial 24 (s11): the summary Discord refused stayed queued, and was posted when Send Messages came back and a new
    /compose started, right after the new session's announcement: members read "**Round 1 closed**: ..." as the new
    session's. Its moment was the ended session's: the post carries it, and a later session posts nothing of it."""
    from fakediscord.world import Permission

    server = env.server
    async with running(env):
        post = await buttons_session(env)
        server.set_permissions(env.channel, server.bot_user, deny=int(Permission.SEND_MESSAGES))
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the session stopped")
        assert server.message(post["id"])["content"].endswith(" Voting has closed: **Round 1 closed**: nobody voted, so nothing was learned: the edit is undone and the track before stays.")
        server.set_permissions(env.channel, server.bot_user, allow=int(Permission.SEND_MESSAGES))
        await compose(env, rounds=1)
        new_post = await server.wait_for_message(env.channel, lambda m: is_round(1)(m) and m["id"] != post["id"])
    assert not [m for m in server.messages(env.channel) if "Round 1 closed" in m["content"] and m["id"] not in (post["id"], new_post["id"])]
    assert db_rows(env, "SELECT COUNT(*) FROM announcements WHERE sent_at IS NULL") == [(0,)]
