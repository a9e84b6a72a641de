"""What /status, /stats and /stop tell members and moderators, through the real bot and the local
Discord-compatible server: a slow restart recount is waited for once, votes held over the vote rate are
shown as waiting, a round open in another channel of the server is named, and /stop counts the round it
stops and says what became of its votes (report trial 19)."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running  # noqa: F401
from test_round_counts import REACTION_USERS, close_with, command, restarted_with_a_vote_made_while_down

from bot.discord import runner

pytestmark = pytest.mark.asyncio

NEVER = 3600.0  # a vote-rate refill the tests never wait for
STILL_COUNTING = "The votes are still being counted after my restart or reconnection"


async def test_a_slow_restart_recount_is_waited_for_once_then_status_answers_at_once(env, monkeypatch):
    """Each /status used to wait RECOUNT_WAIT again while the recount was slow. The recount is held open by the
    test (the listing of reactions it reads is held) for the whole of the first two calls."""
    monkeypatch.setattr(runner, "RECOUNT_WAIT", 0.05)  # seconds the first /status waits for it
    await restarted_with_a_vote_made_while_down(env)
    async with running(env):
        await env.server.wait_until(lambda: env.server.held[REACTION_USERS] >= 1, what="the recount to read the reactions")
        first = await env.server.slash(env.bob, env.channel, "status")
        assert (await first.wait_response())["type"] == 5  # waited for the recount, acknowledged first
        waited = (await final_answer(first))["content"]
        answers = []
        for user in (env.bob, env.alice):  # the same member again, and another one
            asked = await env.server.slash(user, env.channel, "status")
            assert (await asked.wait_response())["type"] == 4, user  # answered at once, not deferred to wait again
            answers.append((await final_answer(asked))["content"])
        assert env.server.held[REACTION_USERS] >= 1  # the recount was still under way for all three
        env.server.release(REACTION_USERS)
        for answer in (waited, *answers):
            assert "1 voted so far (4)" in answer, answer  # what is known so far
            [line] = [line for line in answer.splitlines() if STILL_COUNTING in line]
            assert line == f"{STILL_COUNTING} (reactions made while I was offline): these counts may change.", answer


async def test_status_says_how_many_votes_held_over_the_vote_rate_wait_to_be_counted(env):
    server = env.server
    async with running(env, vote_burst=1, vote_refill_seconds=NEVER) as bot:
        await compose(env, rounds=3, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
        for user in (env.alice, env.carol):
            await server.react(user, post["id"], KEYCAPS[3])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "their first votes")
        before = await command(env, env.mod, env.channel, "status")
        assert "2 voted so far" in before and "waiting" not in before, before  # nothing held: nothing said
        for user in (env.alice, env.carol):  # each one's second change is over their rate of one: held
            await server.react(user, post["id"], KEYCAPS[7])
        held = bot.runner.ballot_box.held
        await eventually(lambda: held.holds(int(post["id"]), env.alice.id) and held.holds(int(post["id"]), env.carol.id), "held")
        status = await command(env, env.mod, env.channel, "status")
    assert "2 voted so far (2× 8)" in status, status  # as the count will take them: the held second votes
    assert status.splitlines()[1] == (
        "2 vote changes came faster than the vote rate allows: shown as they will count, they are counted in turn, "
        "at the latest when the round closes."
    ), status


async def test_stats_in_another_channel_names_where_the_servers_round_is_open(env):
    """/stats said "No rounds with votes yet. Start with `/compose`." in a channel of the server other than the one
    where its session's round was open."""
    other = env.server.add_text_channel(env.guild, "chat")
    async with running(env):
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.react(env.alice, post["id"], KEYCAPS[5])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")
        for name in ("stats", "top"):
            shown = await command(env, env.bob, other, name)
            assert "/compose" not in shown and f"Round 1 is open in <#{env.channel.id}> with 1 vote," in shown, shown
        here = await command(env, env.bob, env.channel, "stats")
        assert "Round 1 is open here with 1 vote," in here, here


async def test_stop_counts_the_round_it_stops_and_says_its_votes_are_not_counted(env):
    """After two rounds closed and the third was posted, /stop said "after 2 rounds" and nothing of round 3's votes."""
    server = env.server
    async with running(env):
        await compose(env, rounds=5)
        for number, voter in ((1, env.alice), (2, env.bob)):
            await close_with(env, await server.wait_for_message(env.channel, is_round(number)), voter, KEYCAPS[6])
        third = await server.wait_for_message(env.channel, is_round(3))
        for user in (env.alice, env.bob):
            await server.react(user, third["id"], KEYCAPS[4])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 4, "the votes on round 3")
        stopped = await command(env, env.mod, env.channel, "stop")
    assert stopped.splitlines() == [
        "Session stopped after 3 rounds (1 cancelled); what the agent learned is kept.",
        "Round 3 was still open: it is cancelled, and its 2 votes are not counted (nothing is learned from them).",
    ], stopped
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "closed"), (2, "cancelled")]


async def test_one_held_vote_is_spoken_of_in_the_singular():  # async: the module is marked asyncio
    """A trial read "1 vote is waiting to be counted: they came faster ... and count in turn"."""
    from bot.discord.reports import held_votes_note

    assert held_votes_note(0, 1) == [
        "1 vote change came faster than the vote rate allows: shown as it will count, it is counted in turn, at the "
        "latest when the round closes."
    ]
    assert held_votes_note(1, 0)[0].startswith("1 vote came faster than the vote rate allows: shown as it will count")
    assert held_votes_note(0, 0) == []
