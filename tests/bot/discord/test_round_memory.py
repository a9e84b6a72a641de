"""What the bot holds in memory for a round (which round a message is, the reactions seen on it, those held over the
vote rate) goes when the round ends, however it ends: its post deleted (alone or in a purge), closed, its session
stopped; and a reaction on an ended round's post is handled (refused) as before, leaving nothing behind. Found by a
review: the close path freed it, but a late reaction cached the ended round again (and its reactions), for good, so
what was held grew with a server's history (on the old code: 6 entries for the closed and the stopped rounds here)."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio


async def voted(env, bot, post: dict, user, emoji: str, votes: int) -> None:
    """`user` reacts on `post` (an open round's) and their vote is stored: `votes` vote events in all."""
    await env.server.react(user, post["id"], emoji)
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM vote_events")[0][0] == votes, f"{votes} votes stored")
    await bot.runner.ballot_box.settle_votes()


async def test_every_way_a_round_ends_frees_what_the_bot_held_for_it(env):
    server = env.server
    async with running(env) as bot:
        box = bot.runner.ballot_box
        await compose(env, rounds=9)
        posts = []
        # Round 1 ends with its post deleted, round 2 with it purged (MESSAGE_DELETE_BULK), round 3 closes, round 4 stops.
        for number, end in [(1, "delete"), (2, "purge"), (3, "close"), (4, "stop")]:
            post = await server.wait_for_message(env.channel, is_round(number))
            await round_recorded(env, number)
            posts.append(post)
            await voted(env, bot, post, env.alice, KEYCAPS[number], number)
            assert box.held_for([int(post["id"])]) > 0  # what an open round holds
            if end == "delete":
                await server.delete_message(post["id"])
            elif end == "purge":
                await server.purge([post["id"]])
            else:
                answer = await final_answer(await server.slash(env.mod, env.channel, end))
                assert answer["content"], answer
        await eventually(lambda: all(task.done() for task in bot.runner._tasks.values()), "the session's rounds to end")
        # Late reactions on the posts still there, then one on a new session's round: once it is stored, they were handled.
        await compose(env, rounds=2)
        fresh = await server.wait_for_message(env.channel, lambda m: is_round(1)(m) and m["id"] != posts[0]["id"])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds WHERE message_ids LIKE ?", (f"%{fresh['id']}%",))[0][0] == 1, "the new round recorded")
        for post in posts[2:]:
            await server.react(env.bob, post["id"], KEYCAPS[8])
        await voted(env, bot, fresh, env.carol, KEYCAPS[5], 5)
        assert box.held_for([int(post["id"]) for post in posts]) == 0
        assert box.held_for([int(fresh["id"])]) > 0
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY session_id, idx") == [
        (0, "cancelled"), (1, "cancelled"), (2, "closed"), (3, "cancelled"), (0, "open"),
    ]
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (f"user:{env.bob.id}",)) == [(0,)]  # late: refused
