"""/strike says what it did and refuses what makes no sense; a round summary says when a bar moved because votes were
removed, and when a round's only vote was voided (task words23, from a fresh-user trial). Each test was written to fail
on the code before its fix."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, db_rows, drawer, env, eventually, final_answer, renderer, running, uid  # noqa: F401
from test_vote_rate import first_round
from test_vote_recounts import close_round

pytestmark = pytest.mark.asyncio


async def strike(env, user) -> str:
    return (await final_answer(await env.server.slash(env.mod, env.channel, "strike", {"user": user})))["content"]


async def unstrike(env, user) -> str:
    return (await final_answer(await env.server.slash(env.mod, env.channel, "unstrike", {"user": user})))["content"]


def strikes(env) -> int:
    return db_rows(env, "SELECT COUNT(*) FROM strikes")[0][0]


async def test_strike_refuses_the_bot_and_oneself_and_says_already_struck(env):
    """Before: "Voided 0 votes by @crowdtune; their new votes here are ignored" for the bot and for the moderator
    themself, and a second strike answered as a first."""
    async with running(env):
        said = await strike(env, env.server.bot_user)
        assert said == "The bot casts no votes, so there is nothing to strike. Nothing was changed.", said
        said = await strike(env, env.mod)
        assert said == "You cannot strike yourself. Nothing was changed.", said
        assert strikes(env) == 0
        assert (await strike(env, env.bob)).startswith("Voided 0 votes by <@")
        said = await strike(env, env.bob)
        assert said == f"<@{env.bob.id}> is already struck here. Nothing was changed.", said
        assert strikes(env) == 1
        assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action = 'strike'")[0][0] == 1


async def test_a_strike_says_its_rounds_apart_and_the_next_summary_names_the_removed_vote(env):
    """Round 1 rated 8, 1 (a troll), 8, closed; the troll struck with a vote in the open round 2 too. Before: "Voided 2
    votes" (one in a closed round, whose verdict stands), and round 2's summary said the bar "(moved since it was set, as
    the votes' weights were learned)", inside another bracket, when a /strike had moved it."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        for user, key in ((env.alice, 8), (env.bob, 1), (env.carol, 8)):
            await server.react(user, post["id"], KEYCAPS[key - 1])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 3, "three votes")
        await close_round(env, 1)
        second = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 2") and m["attachments"])
        await server.react(env.bob, second["id"], KEYCAPS[0])
        await server.react(env.alice, second["id"], KEYCAPS[9])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 5, "round 2's votes")
        said = await strike(env, env.bob)
        assert said == (
            f"Voided 2 votes by <@{env.bob.id}> (1 in the open round, which no longer counts it; 1 in rounds already over, "
            "whose verdicts stand); their new votes here are ignored. This is in the audit log."
        ), said
        summary = await close_round(env, 2)
        # /stats's mean is of the verdicts as the rounds closed, and says so (a trial took it for a stale figure).
        stats = (await final_answer(await server.slash(env.mod, env.channel, "stats")))["content"]
        assert stats.startswith("2 rated rounds, mean reward ") and "(each round's verdict when it closed, which stands)." in stats, stats
    assert "1 of the votes that set it was removed by /strike or /forget-me" in summary, summary
    assert "set, as the votes' weights" not in summary and "((" not in summary, summary


async def test_a_round_whose_only_vote_was_struck_says_so(env):
    """Before: "Round 1 closed: nobody voted" when bob had voted and a /strike voided it."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        await server.react(env.bob, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.bob),))[0][0] == 1, "bob's vote")
        await strike(env, env.bob)
        summary = await close_round(env, 1)
    assert "nobody voted" not in summary and "1 vote was voided by /strike." in summary, summary


async def test_strike_and_unstrike_refuse_any_bot_in_one_line(env):
    """Before: /strike refused the bot itself only; another bot (Discord's resolved user says `"bot": true`), whose
    reactions are never counted, was struck: "Voided 0 votes by @helper; their new votes here are ignored"."""
    helper = env.server.add_user("helper", bot=True)
    env.server.add_member(env.guild, helper)
    async with running(env):
        said = await strike(env, helper)
        assert said == f"<@{helper.id}> is a bot, and bots' votes are not counted, so there is nothing to strike. Nothing was changed.", said
        said = await unstrike(env, helper)
        assert said == f"<@{helper.id}> is a bot, and bots' votes are not counted, so there is no strike to lift. Nothing was changed.", said
        said = await unstrike(env, env.server.bot_user)
        assert said == "The bot casts no votes, so there is no strike to lift. Nothing was changed.", said
    assert strikes(env) == 0
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action IN ('strike', 'unstrike')")[0][0] == 0


async def test_a_strike_landing_as_a_round_is_stored_closed_is_counted_in_its_summary(env):
    """Alice 7 and bob 8; a /strike of bob lands after the close took its votes and before it stores the close (made
    here right before the store's close, as from another process). The verdict counted alice's 7 alone, and the summary
    must say so: before, it read the struck votes before the close and left bob's out ("1 voted", no vote voided)."""
    server = env.server
    async with running(env) as bot:
        post = await first_round(env)
        for user, value in ((env.alice, 7), (env.bob, 8)):
            await server.react(user, post["id"], KEYCAPS[value - 1])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 2, "both votes")
        store = bot.conductor.store
        close_round_stored, struck = store.close_round, []

        async def strike_first(round_id, *args, **kwargs):
            [(scope_id,)] = db_rows(env, "SELECT scope_id FROM sessions")
            struck.append(await store.strike(scope_id, uid(env.bob), uid(env.mod)))
            return await close_round_stored(round_id, *args, **kwargs)

        store.close_round = strike_first
        summary = await close_round(env, 1)
    assert struck == [{"open": 1, "over": 0}]
    assert "1 voted (7)" in summary and "1 vote was voided by /strike." in summary, summary
    assert db_rows(env, "SELECT voter, voided FROM votes ORDER BY voided") == [(uid(env.alice), 0), (uid(env.bob), 1)]


async def test_a_bar_whose_every_vote_was_struck_is_what_it_was_blended_with(env):
    """Found by a trial: bob rated round 1 a 9 ("sets the bar at 6.67 (the 9 blended with a neutral 5.5 counted as 2
    votes)"), was struck, and alice's 6 on round 2 was "below the 6.67 of the track before, so the edit is undone": a bar
    no vote stood behind any more. Now the bar is the neutral 5.5 the 9 was blended with, so the 6 keeps the edit."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        await server.react(env.bob, post["id"], KEYCAPS[8])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "bob's vote")
        assert "sets the bar at 6.67 (the 9 blended with a neutral 5.5 counted as 2 votes)" in await close_round(env, 1)
        second = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 2") and m["attachments"])
        await strike(env, env.bob)
        await server.react(env.alice, second["id"], KEYCAPS[5])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes WHERE voided = 0")[0][0] == 1, "alice's vote")
        summary = await close_round(env, 2)
    assert "gave 6/10 and the edit stays" in summary and "The bar is now 5.67 (the 6 blended with the old bar, 5.5," in summary, summary
    assert ("That 5.5 moved since it was set, as the vote that set it was removed by /strike or /forget-me, leaving only "
            "what it was blended with") in summary, summary
