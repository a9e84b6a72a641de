"""Faults from Discord, injected by the local server, on the real bot: rate limits (429 with
retry-after), server errors (500, 502), a dropped gateway connection resumed with the missed events
replayed (and one that cannot be resumed), duplicated events, a round message deleted by a
moderator, a channel where the bot lacks a permission, and a database that stops taking writes."""

from __future__ import annotations

import json
import sqlite3

import asyncpg
import pytest
from fakediscord import Permission
from test_discord_bot import (  # noqa: F401
    KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running, uid,
)
from test_reliability_kill import record_figures

from storage import DatabaseUnwritable, is_postgres_url


MESSAGES = "POST /channels/{channel_id}/messages"
OWN_REACTION = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
REACTION_USERS = "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}"
CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"


def voters_of_first_round(env) -> int:
    [(outcome,)] = db_rows(env, "SELECT outcome FROM rounds WHERE idx = 0")
    return json.loads(outcome)["voters"]


def round_posts(env, number: int) -> list[dict]:
    return [m for m in env.server.messages(env.channel) if is_round(number)(m)]


async def close_and_wait_next(env, number: int) -> dict:
    await round_recorded(env, number)  # seen in the channel, its record may lag: a /close before it changes nothing
    reply = await final_answer(await env.server.slash(env.mod, env.channel, "close"))  # once the re-read took the votes
    assert "Closing" in reply["content"]
    return await env.server.wait_for_message(env.channel, is_round(number + 1))


async def test_rate_limits_and_server_errors_are_retried_without_losing_or_doubling_a_round(env):
    faults = 0
    async with running(env):
        env.server.rate_limit(MESSAGES, count=2, retry_after=0.2)  # the round's post: 429 twice
        env.server.rate_limit(OWN_REACTION, count=3, retry_after=0.1)
        env.server.rate_limit(CALLBACK, count=1, retry_after=0.1)  # the answer to /compose
        faults += 6
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="all ten reactions")
        await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await env.server.react(env.bob, post["id"], KEYCAPS[2])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "votes")

        env.server.fail(REACTION_USERS, count=1, status=502)  # reading the reactions at the close
        env.server.fail(MESSAGES, count=1, status=500)  # the summary
        faults += 2
        await close_and_wait_next(env, 1)
        assert env.server.request_counts[MESSAGES] == 6  # round 1 (+2 retries), the summary (+1), round 2
    assert len(round_posts(env, 1)) == len(round_posts(env, 2)) == 1  # retried, never doubled
    assert await ballots(env) == {uid(env.alice): 7.0, uid(env.bob): 3.0}
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
    # Settled once (a session's first round measures its new track: the model learns from the next ones).
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action = 'round_closed'")[0][0] == 1
    record_figures("discord_http_faults", faults=faults, votes_checked=2, votes_lost=0)


async def test_a_dropped_connection_resumes_and_replayed_or_duplicated_events_count_once(env):
    async with running(env):
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")

        await env.server.drop_connections()  # TCP cut: the client RESUMEs and gets what it missed
        await env.server.react(env.bob, post["id"], KEYCAPS[7])  # sent while disconnected
        await env.server.unreact(env.alice, post["id"], KEYCAPS[4])
        await env.server.react(env.alice, post["id"], KEYCAPS[8])
        await env.server.wait_for_session(resumed=1)
        await eventually(lambda: len(db_rows(env, "SELECT * FROM vote_events")) == 4, "the replayed events")
        assert await ballots(env) == {uid(env.alice): 9.0, uid(env.bob): 8.0}

        await env.server.replay_last(3)  # the same three events delivered again
        await env.server.replay_last(1)
        await env.server.react(env.carol, post["id"], KEYCAPS[0])  # a later event: the replays are handled by now
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 3, "carol's vote")
        assert await ballots(env) == {uid(env.alice): 9.0, uid(env.bob): 8.0, uid(env.carol): 1.0}
        # An unchanged vote writes nothing: each replayed reaction changed nothing.
        assert len(db_rows(env, "SELECT * FROM vote_events WHERE voter != ?", (uid(env.carol),))) == 4
        await close_and_wait_next(env, 1)
    # Settled once (a session's first round measures its new track: the model learns from the next ones).
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action = 'round_closed'")[0][0] == 1
    assert voters_of_first_round(env) == 3
    record_figures("gateway_resume_and_replay", faults=3, votes_checked=3, votes_lost=0)


async def test_reactions_whose_events_were_lost_still_count(env):
    async with running(env) as bot:
        bot.before_identify_hook = _no_identify_delay  # discord.py waits 5 s before a re-IDENTIFY
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.drop_connections(code=4000, resumable=False)  # the session is gone: missed events are lost
        await env.server.react(env.alice, post["id"], KEYCAPS[5])
        await env.server.react(env.bob, post["id"], KEYCAPS[9])
        await env.server.wait_until(lambda: env.server.events_received["IDENTIFY"] == 2, what="a new session")
        # The events never arrive: the new session's recount reads the reactions on the message (test_new_gateway_session.py).
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "the recount's votes")
        await close_and_wait_next(env, 1)
    # And the close's re-read keeps them: both votes counted, once.
    assert await ballots(env) == {uid(env.alice): 6.0, uid(env.bob): 10.0}
    assert voters_of_first_round(env) == 2
    record_figures("gateway_events_lost", faults=1, votes_checked=2, votes_lost=0)


async def _no_identify_delay(shard_id, *, initial=False):
    return None


async def test_a_round_message_deleted_by_a_moderator_cancels_the_round_cleanly(env):
    async with running(env):
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[8])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "a vote")
        await env.server.delete_message(post["id"])
        notice = await env.server.wait_for_message(env.channel, lambda m: "cancelled" in m["content"])
        assert notice["content"].startswith("**Round 1 cancelled**")
        second = await env.server.wait_for_message(env.channel, is_round(2))
        await eventually(lambda: db_rows(env, "SELECT message_ids FROM rounds WHERE idx = 1") == [(f'["{second["id"]}"]',)], "recorded")
    # While the bot is down, the new round's message is deleted too: found missing at the restart.
    await env.server.delete_message(second["id"])
    async with running(env):
        await env.server.wait_for_message(env.channel, is_round(3))
    assert db_rows(env, "SELECT idx, status, reward FROM rounds ORDER BY idx") == [
        (0, "cancelled", None), (1, "cancelled", None), (2, "open", None)
    ]
    assert db_rows(env, "SELECT COUNT(*) FROM qvalues")[0][0] == 0  # nothing learned from a cancelled round
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(0, "active")]
    assert len(db_rows(env, "SELECT * FROM audit WHERE action = 'round_cancelled'")) == 2
    record_figures("round_message_deleted", faults=2, votes_lost=0)


@pytest.mark.parametrize(
    "missing, named",
    [
        (Permission.SEND_MESSAGES, "Send Messages"),
        (Permission.ATTACH_FILES, "Attach Files"),
        (Permission.ADD_REACTIONS, "Add Reactions"),
        (Permission.READ_MESSAGE_HISTORY, "Read Message History"),
    ],
)
async def test_compose_where_the_bot_lacks_a_permission_says_which_and_creates_nothing(env, missing, named):
    locked = env.server.add_text_channel(env.guild, "locked")
    env.server.set_permissions(locked, env.server.bot_user, deny=int(missing))
    async with running(env):
        reply = await compose(env, channel=locked)
    assert reply["data"]["flags"] & 64 and f"I am missing the {named} permission. " in reply["data"]["content"], reply["data"]["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 0
    assert db_rows(env, "SELECT COUNT(*) FROM rounds")[0][0] == 0
    assert env.server.messages(locked) == []
    record_figures(f"permission_missing_{named.lower().replace(' ', '_')}", faults=1)


@pytest.mark.parametrize("revoked, told", [(Permission.ATTACH_FILES, True), (Permission.SEND_MESSAGES, False)])
async def test_a_permission_revoked_mid_session_stops_it_cleanly(env, revoked, told):
    async with running(env):
        await compose(env, rounds=5)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[3])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "a vote")
        env.server.set_permissions(env.channel, env.server.bot_user, deny=int(revoked))
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the session stopped")
        if told:  # text still goes through: the channel is told why
            stopped = await env.server.wait_for_message(env.channel, lambda m: "stopped this session" in m["content"])
            assert "Missing Permissions" in stopped["content"]
        status = await (await env.server.slash(env.alice, env.channel, "status")).wait_response()
        assert "No session is running here" in status["data"]["content"]
    # The closed round kept its reward; a round it could not post is cancelled, not left half-open
    # (without Send Messages the summary already fails, before a next round is planned).
    expected = [(0, "closed"), (1, "cancelled")] if told else [(0, "closed")]
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == expected
    # Settled once (a session's first round measures its new track: the model learns from the next ones).
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action = 'round_closed'")[0][0] == 1
    assert len(round_posts(env, 2)) == 0
    record_figures(f"permission_revoked_{'told' if told else 'silent'}", faults=1, votes_checked=1, votes_lost=0)


@pytest.mark.parametrize("revoked, named", [(Permission.ATTACH_FILES, "Attach Files"), (Permission.SEND_MESSAGES, "Send Messages")])
async def test_a_session_stopped_by_a_revoked_permission_names_the_one_missing(env, revoked, named):
    """Found by a fresh-user trial: the bot lost Send Messages mid-session and its stop message (through the /compose
    followup, the channel being closed to it) listed all five permissions it needs, not the one it lacked."""
    async with running(env):
        asked = await env.server.slash(env.mod, env.channel, "compose", {"rounds": 5})
        await asked.wait_response()
        await round_recorded(env, 1)  # seen in the channel, its record may lag: a /close before it changes nothing
        env.server.set_permissions(env.channel, env.server.bot_user, deny=int(revoked))
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the session stopped")
        if revoked == Permission.SEND_MESSAGES:  # the channel is closed to the bot: the person who started it is told
            [stopped] = await asked.wait_followups()
        else:
            stopped = await env.server.wait_for_message(env.channel, lambda m: "stopped this session" in m["content"])
        text = stopped["content"]
        assert f"I am missing the {named} permission" in text, text
        others = {"View Channel", "Send Messages", "Attach Files", "Add Reactions", "Read Message History"} - {named}
        assert not any(other in text for other in others), text


@pytest.mark.parametrize("named", [True, False], ids=["as-the-store-names-it", "as-the-driver-reports-it"])
async def test_when_the_database_stops_taking_writes_votes_and_commands_say_so_and_nothing_is_lost(env, monkeypatch, named):
    """A full disk as a store raises it (DatabaseUnwritable, both backends: tests/storage/test_full_disk.py; a command
    then answered "something went wrong on my side") and as a driver reports what a store does not name."""
    async with running(env) as bot:
        await (await env.server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        button = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}
        await (await env.server.press_button(env.alice, post["id"], button["6"])).wait_response()

        store = bot.conductor.store

        async def full(*args, **kwargs):  # a full disk, as each backend's driver reports it
            if named:
                raise DatabaseUnwritable(f"the database {env.db} cannot be written: the disk is full")
            if is_postgres_url(env.db):
                raise asyncpg.exceptions.DiskFullError('could not extend file "base/16384/2619": No space left on device')
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store, "apply_votes", full)
        monkeypatch.setattr(store, "create_session", full)
        refused = await (await env.server.press_button(env.bob, post["id"], button["9"])).wait_response()
        assert "could not be saved" in refused["data"]["content"]
        other = env.server.add_text_channel(env.guild, "other")
        command = await (await env.server.slash(env.mod, other, "compose", {})).wait_response()
        # Named by the store, the member is told why (the README's full disk); a driver's unnamed error is a failure.
        assert ("disk is full" if named else "database failed") in command["data"]["content"] and command["data"]["flags"] & 64
        monkeypatch.undo()  # space again: the same press now counts
        saved = await (await env.server.press_button(env.bob, post["id"], button["9"])).wait_response()
        assert "Your rating: 9" in saved["data"]["content"]
    assert await ballots(env) == {uid(env.alice): 6.0, uid(env.bob): 9.0}
    assert db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0] == 1
    record_figures("database_full_at_run_time", faults=2, votes_checked=2, votes_lost=0)
