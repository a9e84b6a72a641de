"""A reaction that looks like a vote on a round that votes with buttons or menus is no vote: the bot says so in the
channel, once a round (found by a fresh-user trial: a member reacted 8 on a menu round and it just sat there)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_discord_bot import KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, is_round, record_posts_late, renderer, running  # noqa: F401 - fixtures
from test_round_counts import close_with

from bot.discord import outbox

pytestmark = pytest.mark.asyncio

MESSAGES = "POST /channels/{channel_id}/messages"
NOTICE = "Reactions are not votes in round 1: vote with the {} on its post."


@pytest.mark.parametrize("style, options, controls", [("buttons", {}, "buttons"), ("reactions", {"aspects": True}, "menus")])
async def test_a_vote_reaction_on_a_buttons_or_menu_round_is_said_once_to_be_no_vote(env, style, options, controls):
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": style})).wait_response()
        await compose(env, rounds=2, **options)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, post["id"], "🎉")  # no vote-looking reaction: nothing to say
        await server.react(env.alice, post["id"], KEYCAPS[8])
        notice = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Reactions are not votes"))
        assert notice["content"] == NOTICE.format(controls), notice["content"]
        await server.react(env.bob, post["id"], KEYCAPS[3])
        await server.react(env.alice, post["id"], KEYCAPS[6])
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
        await server.wait_for_message(env.channel, is_round(2))
    assert "nobody voted" in summary["content"] and await ballots(env) == {}, summary["content"]
    said = [m["content"] for m in server.messages(env.channel) if m["content"].startswith("Reactions are not votes")]
    assert said == [NOTICE.format(controls)], said


async def test_a_reactions_round_says_nothing_of_its_vote_reactions(env):
    server = env.server
    async with running(env):
        await compose(env, rounds=2)
        await close_with(env, await server.wait_for_message(env.channel, is_round(1)), env.alice, KEYCAPS[8])
        await server.wait_for_message(env.channel, is_round(2))
    assert not [m for m in server.messages(env.channel) if m["content"].startswith("Reactions are not votes")]


async def test_a_vote_reaction_on_a_post_whose_round_is_not_recorded_yet_is_said_to_be_no_vote_too(env, monkeypatch):
    """Found flaky under load: a reaction in the instant between the post and its record was passed over, as votes
    are not (they wait for the record): the notice waits for it too."""
    server = env.server
    async with running(env) as bot:
        record_posts_late(monkeypatch, bot.conductor.store)
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[8])
        notice = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Reactions are not votes"))
    assert notice["content"] == NOTICE.format("buttons"), notice["content"]


async def test_a_restart_does_not_say_it_again_in_the_same_round(env):
    """Trial 24 (s16): the notice came again after every restart, as only the process remembered that it was said:
    the round's record keeps it, so a restarted bot (another process) says nothing more in that round."""
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.react(env.alice, post["id"], KEYCAPS[8])
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Reactions are not votes"))
    async with running(env):
        await server.react(env.bob, post["id"], KEYCAPS[3])
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
        second = await server.wait_for_message(env.channel, is_round(2))
        await server.react(env.bob, second["id"], KEYCAPS[3])  # a new round is told once too
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Reactions are not votes in round 2"))
    said = [m["content"] for m in server.messages(env.channel) if m["content"].startswith("Reactions are not votes")]
    assert said == [NOTICE.format("buttons"), NOTICE.format("buttons").replace("round 1", "round 2")], said


async def test_a_notice_still_queued_when_its_round_closes_is_dropped_and_the_summary_posted_once(env, monkeypatch):
    """Found by a review: the notice is queued in the outbox (so an outage does not lose it), but carried no round: one
    Discord failed to take and that still waited as the round closed was posted by the close's run of the outbox, after
    the close, telling people to vote on a closed round. It carries its round and is dropped once that round is no longer
    open; the summary the close queued is posted, once."""
    monkeypatch.setattr(outbox, "OUTBOX_RETRY_SECONDS", 3600.0)  # no retry before the close: the close's run posts the outbox
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        server.fail(MESSAGES, count=1, status=503)  # Discord's side fails (discord.py does not retry a 503 itself)
        await server.react(env.alice, post["id"], KEYCAPS[8])
        await server.wait_until(lambda: server.request_counts[MESSAGES] >= 2 or None, what="the notice's failed post")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_for_message(env.channel, is_round(2))
    said = [m["content"] for m in server.messages(env.channel)]
    assert not [content for content in said if content.startswith("Reactions are not votes")], said
    assert len([content for content in said if "Round 1 closed" in content]) == 1, said
    assert db_rows(env, "SELECT count(*) FROM announcements WHERE sent_at IS NULL") == [(0,)]  # given up, not left queued


async def test_a_notice_discord_was_down_for_is_posted_once_discord_is_back_not_after_the_close(env, monkeypatch, caplog):
    """Found by a trial: the notice, queued as Discord was down when it was to be posted, waited in the outbox until the
    round closed and came after the post said "(closed)": only a start or a close posted the outbox. A resumed gateway
    session (Discord back) posts what waits in it."""
    caplog.set_level(logging.INFO, logger="crowdtune.votes")
    server = env.server
    async with running(env) as bot:
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        store = bot.conductor.store
        tell, told, go_on = store.tell_reactions_are_no_votes, asyncio.Event(), asyncio.Event()

        async def tell_then_wait(*args):  # Discord goes down once the notice is queued, before it is posted
            queued = await tell(*args)
            told.set()
            await go_on.wait()
            return queued

        monkeypatch.setattr(store, "tell_reactions_are_no_votes", tell_then_wait)
        resumes = server.gateway.received["RESUME"]
        await server.react(env.alice, post["id"], KEYCAPS[8])
        await told.wait()
        await server.go_down()
        go_on.set()
        await eventually(lambda: "waits for Discord" in caplog.text, "the notice's post failed")
        await server.come_back()
        await server.wait_for_session(resumed=resumes + 1, timeout=60)
        notice = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Reactions are not votes"))
        assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]  # before the close
    assert notice["content"] == NOTICE.format("buttons"), notice["content"]


async def test_a_notice_queued_while_discords_rest_fails_is_posted_once_it_recovers_though_the_gateway_stayed(env, monkeypatch):
    """Found by a trial: in an outage where Discord's REST answers 5xx but the gateway stays connected, no session
    resumes, so the notice waited in the outbox until the round's runner posted next (its close). The outbox retries by
    itself, a pause between tries that doubles up to a bound (one try per pause, not a busy loop), whatever the gateway
    does."""
    monkeypatch.setattr(outbox, "OUTBOX_RETRY_SECONDS", 0.05)  # in place of seconds: the count is what is checked
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        sessions, posts = dict(server.gateway.received), server.request_counts[MESSAGES]
        server.fail(MESSAGES, count=3, status=503)  # the first post and two retries fail; discord.py retries no 503
        await server.react(env.alice, post["id"], KEYCAPS[8])
        notice = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Reactions are not votes"))
        assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]  # long before the close
        assert server.request_counts[MESSAGES] - posts == 4  # three failed, the fourth posted it; no more tries
        assert {op: server.gateway.received[op] for op in ("IDENTIFY", "RESUME")} == {op: sessions.get(op, 0) for op in ("IDENTIFY", "RESUME")}
    assert notice["content"] == NOTICE.format("buttons"), notice["content"]


async def test_the_outboxs_retries_wait_longer_each_time_up_to_a_bound():
    pauses = outbox.retry_pauses()
    assert [next(pauses) for _ in range(10)] == [min(outbox.OUTBOX_RETRY_SECONDS * 2**n, outbox.OUTBOX_RETRY_MAX_SECONDS) for n in range(10)]
    assert outbox.OUTBOX_RETRY_MAX_SECONDS <= 60.0
