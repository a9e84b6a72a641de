"""What the bot tells members about rounds, through the real bot and the local Discord-compatible server:
numbers that stay true when a round is cancelled, /status after a restart, and the words of closes and /stats
(found by a fresh-user trial: "Round 5 of 4", stale votes after a restart, "0 voted (none yet)" after a close)."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, round_recorded, running  # noqa: F401 - fixtures

from bot.discord import runner

pytestmark = pytest.mark.asyncio

REACTION_USERS = "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}"


async def command(env, user, channel, name: str) -> str:
    return (await final_answer(await env.server.slash(user, channel, name)))["content"]


async def close_with(env, post, user, emoji) -> None:
    before = db_rows(env, "SELECT COUNT(*) FROM votes")[0][0]
    await env.server.react(user, post["id"], emoji)
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == before + 1, "the vote")
    await (await env.server.slash(env.mod, env.channel, "close")).wait_response()


async def test_a_cancelled_round_is_replaced_and_every_count_includes_it(env):
    """A session plays its N rounds that count: a cancelled round is replaced, and every total shown counts it
    (the trial saw "Round 5 of 4", "3 of 4 rounds done" and "finished after 4 rounds" with five rounds posted)."""
    server = env.server
    async with running(env):
        await compose(env, rounds=2)
        first = await server.wait_for_message(env.channel, is_round(1))
        assert first["content"].startswith("**Round 1 of 2**:")
        await close_with(env, first, env.alice, KEYCAPS[6])
        second = await server.wait_for_message(env.channel, is_round(2))
        assert second["content"].startswith("**Round 2 of 2**:")
        await server.delete_message(second["id"])
        notice = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 2 cancelled**"))
        assert "Round 3 takes its place" in notice["content"], notice["content"]
        third = await server.wait_for_message(env.channel, is_round(3))
        # Every count of rounds says how many were cancelled, in one way (before: the post read "Round 3 of 3").
        assert third["content"].startswith("**Round 3 of 3 (1 cancelled)**:"), third["content"]
        await round_recorded(env, 3)
        status = await command(env, env.alice, env.channel, "status")
        assert status.startswith("Round 3 of 3 (1 cancelled): ") and status.endswith(". 2 of 3 rounds done."), status
        await close_with(env, third, env.bob, KEYCAPS[7])
        end = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Session finished"))
        assert end["content"].startswith("Session finished after 3 rounds (1 cancelled)."), end["content"]
        assert server.message(third["id"])["content"].startswith("**Round 3 of 3 (1 cancelled)** (closed): ")
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "cancelled"), (2, "closed")]
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(2, "finished")]


async def test_stop_counts_a_cancelled_round_as_the_posts_do(env):
    server = env.server
    async with running(env):
        await compose(env, rounds=3)
        first = await server.wait_for_message(env.channel, is_round(1))
        await server.delete_message(first["id"])
        # Found by a fresh-user trial: "Round 2 takes its place.", then "Round 2 of 4" in a session of 3, unexplained.
        notice = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1 cancelled**"))
        assert notice["content"].endswith("Round 2 takes its place: the session now has 4 rounds, 3 of which count."), notice["content"]
        second = await server.wait_for_message(env.channel, is_round(2))
        assert second["content"].startswith("**Round 2 of 4 (1 cancelled)**:"), second["content"]
        await close_with(env, second, env.alice, KEYCAPS[4])
        await server.wait_for_message(env.channel, is_round(3))
        await round_recorded(env, 3)
        between = await command(env, env.alice, env.channel, "status")
        assert between.startswith("Round 3 of 4 (1 cancelled): ") and between.endswith(". 2 of 4 rounds done."), between
        stopped = await command(env, env.mod, env.channel, "stop")
        assert stopped.startswith("Session stopped after 3 rounds (2 cancelled);"), stopped  # round 3, posted, is stopped


async def restarted_with_a_vote_made_while_down(env):
    """A round with alice's 4 counted, then carol's 10 made while the bot was down; the listing of reactions,
    which the restart's recount reads, held. Returns the round's post."""
    async with running(env):
        await compose(env, rounds=3)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="reactions")
        await env.server.react(env.alice, post["id"], KEYCAPS[3])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "alice's vote")
    await env.server.react(env.carol, post["id"], KEYCAPS[9])
    env.server.hold(REACTION_USERS)
    return post


async def test_status_right_after_a_restart_shows_the_recounted_votes(env):
    """The trial's /status 0.3 s after a restart showed the votes before the recount of reactions made while the
    bot was down ("0 voted so far"). /status waits for that session's recount (deferred: Discord's 3 s)."""
    await restarted_with_a_vote_made_while_down(env)
    async with running(env):
        await env.server.wait_until(lambda: env.server.held[REACTION_USERS] >= 1, what="the recount to read the reactions")
        asked = await env.server.slash(env.bob, env.channel, "status")
        first = await asked.wait_response()
        env.server.release(REACTION_USERS)
        answer = await final_answer(asked)
        assert first["type"] == 5 and asked.ephemeral, first  # acknowledged privately at once, answered once recounted
        assert "2 voted so far (4, 10)" in answer["content"], answer["content"]
        assert "recount" not in answer["content"]


async def test_status_says_so_when_the_restart_recount_is_still_under_way(env, monkeypatch):
    monkeypatch.setattr(runner, "RECOUNT_WAIT", 0.05)  # seconds /status waits for it; the listing stays held meanwhile
    await restarted_with_a_vote_made_while_down(env)
    async with running(env):
        await env.server.wait_until(lambda: env.server.held[REACTION_USERS] >= 1, what="the recount to read the reactions")
        answer = await command(env, env.bob, env.channel, "status")
        env.server.release(REACTION_USERS)
        assert "1 voted so far (4)" in answer, answer
        assert "still being counted after my restart or reconnection (reactions made while I was offline)" in answer, answer


async def test_a_round_closed_without_votes_says_so_in_one_sentence(env):
    async with running(env):
        await compose(env, rounds=2)
        await round_recorded(env, 1)  # seen in the channel, its record may lag: a /close before it changes nothing
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await env.server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
    assert summary["content"] == (
        "**Round 1 closed**: nobody voted, so nothing was learned: the edit is undone and the track before stays."
    ), summary["content"]


async def test_stats_and_top_name_rounds_by_what_members_see_and_say_what_is_not_learned_yet(env):
    server = env.server
    async with running(env):
        await compose(env, rounds=1)
        post = await server.wait_for_message(env.channel, is_round(1))
        await close_with(env, post, env.alice, KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("finished",)], "the session to finish")
        stats = await server.slash(env.bob, env.channel, "stats")
        stats = (await stats.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60))["content"]
        top = await server.slash(env.bob, env.channel, "top")
        top = (await top.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60))["content"]
    [(started,)] = db_rows(env, "SELECT created_at FROM sessions")
    where = f"round 1 of the session started <t:{int(started)}:f> in <#{env.channel.id}>"
    for shown in (stats, top):
        lines = shown.splitlines()
        assert "session 1" not in shown, shown
        # The heading shows whether or not A/B rounds exist too.
        assert lines[lines.index("Best rated (the crowd's verdict, 1-10):") + 1].endswith(f"/10: {where}"), shown
    # One rated round teaches nothing sure yet: /stats says so, in the terminal's words.
    assert "The agent is not yet sure of anything you like or dislike (" in stats, stats


async def vote_in_a_dm(env, rounds: int, emoji: str):
    """Alice composes in her DM with the bot and votes `emoji` on round 1; its DM channel and round post."""
    dm = env.server.dm_channel(env.alice)
    await compose(env, user=env.alice, channel=dm, rounds=rounds)
    post = await env.server.wait_for_message(dm, is_round(1))
    await env.server.react(env.alice, post["id"], emoji)
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "the owner's vote")
    return dm, post


async def test_stats_in_a_dm_with_a_round_open_says_so_instead_of_start_one(env):
    async with running(env):
        dm, _ = await vote_in_a_dm(env, 2, KEYCAPS[5])
        for name in ("stats", "top"):
            shown = await command(env, env.alice, dm, name)
            assert "/compose" not in shown and "Round 1 is open here with 1 vote," in shown, shown


async def test_stats_and_top_in_a_dm_speak_of_the_person_not_a_crowd(env):
    """Found by a fresh-user trial: in a DM (a personal agent, one voter) /stats headed its list "Best rated (the
    crowd's verdict, 1-10)", as if a crowd had rated; its summary had said "You gave 9/10"."""
    async with running(env):
        dm, _ = await vote_in_a_dm(env, 1, KEYCAPS[8])
        await (await env.server.slash(env.alice, dm, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("finished",)], "the session to finish")
        shown = []
        for name in ("stats", "top"):
            answer = await env.server.slash(env.alice, dm, name)
            shown.append((await answer.wait_original(lambda m: m["attachments"] or "Sorry" in m["content"], timeout=60))["content"])
    for answer in shown:
        assert "Best rated (what you gave, 1-10):" in answer and "crowd" not in answer, answer
