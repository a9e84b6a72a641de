"""A round counts the votes standing at its close, also when the bot dies right after the close began and reactions
change while it is down (found by a trial: "Closing this round now.", SIGKILL, then a vote removed and another added
while the bot was down were read into the round at the restart). Each crash here is the bot's tasks cancelled while
its close is held at a gate (the close's re-read of the reactions), as a SIGKILL would leave them: nothing after the
gate runs. Each test was written to fail on the code before its fix, except where its docstring says it proves what
already held."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, ballots, db_rows, drawer, env, eventually, final_answer, renderer, running, uid  # noqa: F401
from test_vote_rate import first_round

pytestmark = pytest.mark.asyncio

MESSAGE = "GET /channels/{channel_id}/messages/{message_id}"  # the close's re-read of the reactions begins with it


async def crash_while_closing(env, post, close) -> None:
    """Run the bot: alice votes 5; `close(bot)` begins the round's close, whose re-read is held; the bot dies there."""
    server = env.server
    async with running(env) as bot:
        await server.react(env.alice, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")
        server.hold(MESSAGE)
        await close(bot)
        await server.wait_until(lambda: server.held[MESSAGE] >= 1, what="the close to re-read the reactions")
    server.release(MESSAGE)
    assert db_rows(env, "SELECT status FROM rounds") == [("open",)]  # the crash came before the round was counted


async def changed_while_down(env, post) -> str:
    """While the bot is down alice takes her 5 back and bob adds 2; the restart's summary of round 1."""
    await env.server.unreact(env.alice, post["id"], KEYCAPS[4])
    await env.server.react(env.bob, post["id"], KEYCAPS[1])
    async with running(env):
        summary = await env.server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"], timeout=30)
    return summary["content"]


async def test_a_round_closed_by_hand_counts_its_votes_at_the_close_after_a_crash(env):
    """The trial: /close answered, the bot killed at once; alice's 5, standing at the close, was lost and bob's 2,
    added after it, counted ("2 voted (2, 8.5)" in the trial). The close moment is stored before the answer, and a
    round whose close began is counted at the restart from its votes as stored then."""
    server = env.server
    async with running(env):
        post = await first_round(env)

    async def close(bot) -> None:
        assert (await final_answer(await server.slash(env.mod, env.channel, "close")))["content"] == "Closing this round now."

    await crash_while_closing(env, post, close)
    summary = await changed_while_down(env, post)
    assert summary.startswith("**Round 1 closed**: 1 voted (5)."), summary
    assert await ballots(env) == {uid(env.alice): 5.0}


async def test_a_round_whose_time_ran_out_while_it_was_counted_counts_its_votes_at_the_close_after_a_crash(env):
    """The same when the round's time ran out and the bot was closing it (the closing begun is stored as its close
    moment), not only after a /close."""
    async with running(env):
        post = await first_round(env)

    async def time_up(bot) -> None:
        db_rows(env, "UPDATE rounds SET closes_at = 0")  # its time is up: the runner, woken, closes it
        bot.runner.wake(db_rows(env, "SELECT id FROM sessions")[0][0])

    await crash_while_closing(env, post, time_up)
    summary = await changed_while_down(env, post)
    assert summary.startswith("**Round 1 closed**: 1 voted (5)."), summary


async def test_a_round_whose_time_ran_out_while_the_bot_was_down_counts_the_reactions_made_meanwhile(env):
    """Proves what already held, and is kept (README): a round whose time ran out while the bot was down was never
    seen to close, and Discord does not date a reaction, so the restart counts the reactions on it as they are then
    (a vote made while the bot was down, before the round's time, is not lost)."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        await server.react(env.alice, post["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")
    db_rows(env, "UPDATE rounds SET closes_at = 0")  # its time ran out while the bot was down
    summary = await changed_while_down(env, post)
    assert summary.startswith("**Round 1 closed**: 1 voted (2)."), summary
