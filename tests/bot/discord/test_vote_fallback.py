"""Removing a vote reaction while others of the person's stay on the message (task fallback19): the vote falls back
at once to what the remaining reactions say (`recounted_vote`, the rule of the re-read), live, after a restart,
and when a moderator removes one emoji (MESSAGE_REACTION_REMOVE_EMOJI); withdrawn only when none remains. Each
test was written to fail on the code before its fix, except where its docstring says it proves what already held.

"At once" is checked before any re-read of the reactions: no quorum is set and no close comes before the checks."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, is_round, renderer, running, uid  # noqa: F401
from test_moderator_words import forget
from test_stop_races import hold_method
from test_vote_rate import first_round
from test_vote_recounts import close_round, recounted

from bot.discord.votes import AB_EMOJI

pytestmark = pytest.mark.asyncio

A, B, BOTH, NEITHER = AB_EMOJI  # 🅰️ 🅱️ 👍 👎
OLDER, NEWER = {"rating": KEYCAPS[6], "ab": A}, {"rating": KEYCAPS[8], "ab": B}  # per mode: 7 then 9, A then B
FALLEN_BACK = {"rating": 7.0, "ab": "a"}  # the vote once the newer is removed


def events(env) -> int:
    """How many vote changes reached the database (each a cast, a change or a retraction)."""
    return db_rows(env, "SELECT COUNT(*) FROM vote_events")[0][0]


async def status_line(env) -> str:
    return (await (await env.server.slash(env.mod, env.channel, "status")).wait_response())["data"]["content"]


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_removing_the_newer_reaction_falls_back_to_the_older_one_at_once(env, mode):
    """Before: the removal withdrew the vote, and the older reaction counted again only at the close's re-read."""
    server, older, newer = env.server, OLDER[mode], NEWER[mode]
    async with running(env):
        post = await first_round(env, mode=mode)
        await server.react(env.carol, post["id"], older)
        await server.react(env.carol, post["id"], newer)  # the newer replaces her vote; the older stays on
        await eventually(lambda: events(env) == 2, "both of her votes")
        requests = sum(server.request_counts.values())
        await server.unreact(env.carol, post["id"], newer)
        await eventually(lambda: events(env) == 3, "the removal")
        assert await ballots(env) == {uid(env.carol): FALLEN_BACK[mode]}
        assert sum(server.request_counts.values()) == requests  # known from the events: no request to Discord
        assert "1 voted so far" in await status_line(env)
        await server.unreact(env.carol, post["id"], older)  # none left: withdrawn
        await eventually(lambda: events(env) == 4, "the last removal")
        assert await ballots(env) == {}
        summary = await close_round(env)
    assert "nobody voted" in summary, summary


async def test_removing_an_older_reaction_keeps_the_standing_vote_and_the_fallback_counts_the_middle(env):
    """Half proves what already held (removing a reaction other than the standing one changes nothing); the
    fallback among several counts their middle, as the re-read does, and the close's re-read keeps it."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        for rating in (2, 6, 10, 4):
            await server.react(env.carol, post["id"], KEYCAPS[rating - 1])
        await server.unreact(env.carol, post["id"], KEYCAPS[1])  # her 2 goes: her 4 stands
        await eventually(lambda: events(env) == 4, "her four votes")
        assert await ballots(env) == {uid(env.carol): 4.0}
        await server.unreact(env.carol, post["id"], KEYCAPS[3])  # her standing 4 goes: 6 and 10 remain
        await eventually(lambda: events(env) == 5, "the fallback")
        assert await ballots(env) == {uid(env.carol): 8.0}
        await server.unreact(env.carol, post["id"], KEYCAPS[5])  # 8 has no reaction of its own: 10 remains
        await eventually(lambda: events(env) == 6, "the second fallback")
        assert await ballots(env) == {uid(env.carol): 10.0}
        summary = await close_round(env)
    assert "1 voted (10)" in summary, summary


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_after_a_restart_the_reactions_read_back_are_fallen_back_to(env, mode):
    """Before: after the restart the removal withdrew the vote though the reaction made before it was still on."""
    async with running(env):
        post = await first_round(env, mode=mode)
    server, older, newer = env.server, OLDER[mode], NEWER[mode]
    await server.react(env.carol, post["id"], older)  # while the bot is down
    async with running(env) as bot:
        await recounted(env, bot)
        assert events(env) == 1
        await server.react(env.carol, post["id"], newer)
        await eventually(lambda: events(env) == 2, "her newer vote")
        await server.unreact(env.carol, post["id"], newer)
        await eventually(lambda: events(env) == 3, "the removal")
        assert await ballots(env) == {uid(env.carol): FALLEN_BACK[mode]}


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_a_moderator_removing_one_emoji_leaves_the_other_reactions_counting(env, mode):
    """Before: everyone whose vote was that emoji lost it, though their other reactions stayed on."""
    server = env.server
    older, newer, other = OLDER[mode], NEWER[mode], {"rating": KEYCAPS[2], "ab": BOTH}[mode]
    async with running(env):
        post = await first_round(env, mode=mode)
        await server.react(env.alice, post["id"], older)
        await server.react(env.alice, post["id"], newer)  # alice: the newer stands, the older stays on
        await server.react(env.bob, post["id"], newer)  # bob: only the emoji to be removed
        await server.react(env.carol, post["id"], newer)
        await server.react(env.carol, post["id"], other)  # carol: her other stands; the removed one was older
        await eventually(lambda: events(env) == 5, "five votes")
        await server.clear_reactions(post["id"], newer)
        await eventually(lambda: events(env) == 7, "alice's fallback and bob's withdrawal")
        expected = {uid(env.alice): FALLEN_BACK[mode], uid(env.carol): 3.0 if mode == "rating" else "both"}
        assert await ballots(env) == expected
        assert "2 voted so far" in await status_line(env)
        await close_round(env)
    assert await ballots(env) == expected


async def test_a_removal_held_over_the_rate_falls_back_to_a_reaction_made_before_the_hold(env):
    """Before: the held path fell back only among the reactions changed while held; the 7 made before was lost."""
    server = env.server
    async with running(env, vote_burst=2, vote_refill_seconds=0.5) as bot:
        now = [0.0]
        bot.runner.limiter.clock = lambda: now[0]  # the bucket refills only when the test moves this clock
        post = await first_round(env)
        await server.react(env.carol, post["id"], KEYCAPS[6])
        await server.react(env.carol, post["id"], KEYCAPS[8])  # her burst of two spent
        await eventually(lambda: events(env) == 2, "her two votes")
        await server.unreact(env.carol, post["id"], KEYCAPS[8])  # held
        assert await ballots(env) == {uid(env.carol): 9.0}
        now[0] += 0.5  # one refill: the held removal is applied
        await eventually(lambda: events(env) == 3, "the held removal")
        assert await ballots(env) == {uid(env.carol): 7.0}


async def test_reactions_made_before_forget_me_are_not_fallen_back_to(env):
    """Proves the fallback keeps /forget-me's promise: a reaction made before the deletion never counts again, as
    the re-read leaves it out (without forgetting her reactions, taking back a new vote brought back 8)."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        await server.react(env.carol, post["id"], KEYCAPS[6])
        await server.react(env.carol, post["id"], KEYCAPS[8])
        await eventually(lambda: events(env) == 2, "her two votes")
        assert "Deleted 1 vote" in (await forget(env, env.carol, env.channel, "Delete my data"))["content"]
        await server.react(env.carol, post["id"], KEYCAPS[4])  # a new vote counts
        await eventually(lambda: events(env) == 1, "her new vote")
        await server.unreact(env.carol, post["id"], KEYCAPS[4])
        await eventually(lambda: events(env) == 2, "its removal")
        assert await ballots(env) == {}
        summary = await close_round(env)
    assert "nobody voted" in summary, summary



@pytest.mark.parametrize("restart", [False, True], ids=["live", "read back after a restart"])
@pytest.mark.parametrize("removed_super", [True, False], ids=["super removed", "normal removed"])
async def test_a_normal_and_a_super_reaction_of_one_emoji_are_two_reactions(env, removed_super, restart):
    """One person may hold a normal and a super reaction of one emoji (Discord's `me` and `me_burst`); the removal
    event says which went (`burst`, `type`). Before: both were one reaction, so removing either withdrew the vote
    though the other stayed on, until the close's re-read brought it back (the quorum wrong meanwhile)."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        await server.react(env.alice, post["id"], KEYCAPS[4], burst=not removed_super)
        await server.react(env.alice, post["id"], KEYCAPS[4], burst=removed_super)
        await eventually(lambda: events(env) == 1, "her vote")
        if not restart:
            await _remove_one_then_the_other(env, post, removed_super)
            return
    async with running(env) as bot:  # what the bot knows of her reactions comes from the restart's re-read
        await recounted(env, bot)
        await _remove_one_then_the_other(env, post, removed_super)


async def _remove_one_then_the_other(env, post: dict, removed_super: bool) -> None:
    server = env.server
    await server.unreact(env.alice, post["id"], KEYCAPS[4], burst=removed_super)
    await server.react(env.bob, post["id"], KEYCAPS[7])  # after hers, in one queue: once it is stored, hers is
    await eventually(lambda: (uid(env.bob),) in db_rows(env, "SELECT voter FROM votes"), "bob's vote")
    assert await ballots(env) == {uid(env.alice): 5.0, uid(env.bob): 8.0}
    assert events(env) == 2  # her removal changed nothing
    assert "2 voted so far" in await status_line(env)
    await server.unreact(env.alice, post["id"], KEYCAPS[4], burst=not removed_super)  # none left: withdrawn
    await eventually(lambda: events(env) == 3, "the last removal")
    assert await ballots(env) == {uid(env.bob): 8.0}


async def test_a_super_reaction_removed_while_held_over_the_rate_leaves_the_normal_one_counting(env):
    """Before: the hold kept one change per emoji, so the super 5's removal overwrote the normal 5's addition and
    the vote stayed 7, though the normal 5 (her latest) was on."""
    server = env.server
    async with running(env, vote_burst=1, vote_refill_seconds=0.5) as bot:
        post, now = await first_vote_spending_the_burst(env, bot, env.carol, KEYCAPS[6])
        await server.react(env.carol, post["id"], KEYCAPS[4])  # held, and so are the next two
        await server.react(env.carol, post["id"], KEYCAPS[4], burst=True)
        await server.unreact(env.carol, post["id"], KEYCAPS[4], burst=True)
        await server.react(env.bob, post["id"], KEYCAPS[7])  # after hers: once it is stored, hers are all held
        await eventually(lambda: events(env) == 2, "bob's vote")
        now[0] += 0.5  # one refill: the held ones are applied
        await eventually(lambda: events(env) == 3, "the held vote")
        assert await ballots(env) == {uid(env.carol): 5.0, uid(env.bob): 8.0}


async def first_vote_spending_the_burst(env, bot, user, emoji: str) -> tuple[dict, list[float]]:
    """With a bot of vote_burst=1: the first round's post, and the clock of the limiter (a list of one value: its
    buckets refill only when the test moves it), once `user`'s reaction `emoji` is stored, spending their burst."""
    now = [0.0]
    bot.runner.limiter.clock = lambda: now[0]
    post = await first_round(env)
    await env.server.react(user, post["id"], emoji)
    await eventually(lambda: events(env) == 1, "the first vote")
    return post, now


POST_MESSAGE = "POST /channels/{channel_id}/messages"
EARLY = ["before Discord answered the post", "before its round was recorded"]


@pytest.mark.parametrize("removal", ["super 7 of two", "9 of one emoji"])
@pytest.mark.parametrize("window", EARLY)
async def test_a_removal_on_a_post_just_made_leaves_the_other_reactions_counting(env, monkeypatch, window, removal):
    """Found by a trial: a super and a normal 7 on a post a second old, the super one removed: "0 voted so far", and a
    /stop said the round "had no votes" (before the close's re-read). Before: a removal before the bot knew the message
    as its post (Discord's answer to the post, its round recorded) withdrew the standing vote whatever was left on;
    so did a moderator's removal of one emoji. Now what the events said was left counts once the post is known."""
    server = env.server
    async with running(env) as bot:
        if window == EARLY[0]:
            server.hold(POST_MESSAGE, answered=True)  # the post is in the channel; the bot does not have its id
        else:
            _, release = hold_method(monkeypatch, bot.conductor.store, "set_round_messages")
        await compose(env, rounds=1, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1))
        if removal == "super 7 of two":
            await server.react(env.alice, post["id"], KEYCAPS[6], burst=True)
            await server.react(env.alice, post["id"], KEYCAPS[6])
            await server.unreact(env.alice, post["id"], KEYCAPS[6], burst=True)
        else:
            await server.react(env.alice, post["id"], KEYCAPS[6])
            await server.react(env.alice, post["id"], KEYCAPS[8])  # her vote; her 7 stays on
            await server.clear_reactions(post["id"], KEYCAPS[8])
        await server.react(env.bob, post["id"], KEYCAPS[7])  # after hers: once the bot has seen it, it has seen hers
        seen = bot.runner.ballot_box.seen._people  # noqa: SLF001 - the events the bot has taken in
        await eventually(lambda: env.bob.id in seen.get(int(post["id"]), {}), "the events taken in")
        assert db_rows(env, "SELECT message_ids FROM rounds") == [("[]",)]  # all of it before the round was recorded
        server.release(POST_MESSAGE) if window == EARLY[0] else release.set()
        await eventually(lambda: (uid(env.bob),) in db_rows(env, "SELECT voter FROM votes"), "bob's vote")
        assert await ballots(env) == {uid(env.alice): 7.0, uid(env.bob): 8.0}
        assert "2 voted so far" in await status_line(env)
        await server.unreact(env.alice, post["id"], KEYCAPS[6])  # none left: withdrawn
        await eventually(lambda: db_rows(env, "SELECT retracted FROM votes WHERE voter = ?", (uid(env.alice),)) == [(1,)], "her last removal")
        assert await ballots(env) == {uid(env.bob): 8.0}
