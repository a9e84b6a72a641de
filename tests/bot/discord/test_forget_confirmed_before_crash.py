"""A /forget-me confirmed, then cut short by a crash and carried out at the next start, through the real bot and the
local Discord-compatible server: only the reactions the person had when they confirmed are withdrawn; one they added
while the bot was down (which the restart's re-read finds) is a vote made after the confirmation, and counts, as a
vote made after a deletion does. Found by a trial: the deletion carried out at the restart took those too.

Discord gives a reaction no time, and a re-read none either: what the bot can know is which reactions the person had
on each round when they confirmed (every one of its rounds' reactions came to it as an event or in a full re-read),
recorded with the press; a reaction re-read at the restart that is not among them was added later."""

from __future__ import annotations

import asyncio

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, renderer, running, uid  # noqa: F401 - fixtures
from test_questions import button
from test_stop_after_restart import voted_round

pytestmark = pytest.mark.asyncio


def votes_of(env, user) -> list[tuple]:
    return db_rows(env, "SELECT rating FROM votes WHERE voter = ? AND retracted = 0 AND voided = 0", (uid(user),))


async def test_a_reaction_added_while_the_bot_was_down_after_a_confirmed_forget_me_counts_and_those_before_do_not(env):
    """Alice rated 3 and confirmed /forget-me; the bot died before deleting. While it was down she added a 9 (her 3
    still on) and bob, who had rated 8, added nothing. The restart deletes her data (her 3 is withdrawn), and her 9 is a
    new vote: stored, and counted at the close with bob's 8."""
    server = env.server
    async with running(env) as bot:
        await compose(env, rounds=3)
        post = await voted_round(env, env.channel, [(env.alice, 3), (env.bob, 8)])
        held = []

        async def never(*args, **kwargs):  # the crash: the deletion never runs
            held.append(asyncio.current_task())
            await asyncio.Event().wait()

        bot.conductor.store.forget_user = never
        forget = await server.slash(env.alice, env.channel, "forget-me")
        question = await forget.wait_original(lambda m: m["components"])
        press = await server.press_button(env.alice, question["id"], button(question, "Delete my data"))
        assert (await press.wait_response())["type"] == 6
        await eventually(lambda: held, "held where it deletes")
        held[0].cancel()
    await server.react(env.alice, post["id"], KEYCAPS[8])  # while the bot is down, after her confirmation
    async with running(env):
        outcome = await forget.wait_original(lambda m: not m["components"])
        assert outcome["content"].startswith("Deleted 1 vote"), outcome["content"]
        assert votes_of(env, env.alice) == [(9.0,)]  # her 3 withdrawn, her 9 a new vote
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**"))
    assert votes_of(env, env.alice) == [(9.0,)] and votes_of(env, env.bob) == [(8.0,)]
    assert "2 voted" in summary["content"], summary["content"]


async def test_a_reaction_added_after_the_confirm_press_before_the_deletion_runs_counts(env, monkeypatch):
    """The same rule without a crash: alice's 9, added after her press and before the deletion begins (held there until
    the bot has seen it), is a new vote; her 3, on at the press, is withdrawn."""
    from bot.discord import confirmed as confirmed_work

    server = env.server
    async with running(env) as bot:
        await compose(env, rounds=3)
        post = await voted_round(env, env.channel, [(env.alice, 3), (env.bob, 8)])
        after_pickup, seen = confirmed_work.after_pickup, bot.runner.ballot_box.seen

        async def held(*args, **kwargs):
            await server.react(env.alice, post["id"], KEYCAPS[8])
            await eventually(lambda: len(seen.of_person(env.alice.id)[int(post["id"])]) == 2, "her 9 seen")
            return await after_pickup(*args, **kwargs)

        monkeypatch.setattr(confirmed_work, "after_pickup", held)
        forget = await server.slash(env.alice, env.channel, "forget-me")
        question = await forget.wait_original(lambda m: m["components"])
        await server.press_button(env.alice, question["id"], button(question, "Delete my data"))
        outcome = await forget.wait_original(lambda m: not m["components"])
        assert outcome["content"].startswith("Deleted "), outcome["content"]
        assert votes_of(env, env.alice) == [(9.0,)]
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 closed**"))
    assert votes_of(env, env.alice) == [(9.0,)] and "2 voted" in summary["content"], summary["content"]
