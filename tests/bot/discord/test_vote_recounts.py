"""Counting a round's votes again (task votes19): the re-read of the reactions after a restart (and before a
close) with several vote reactions of one person; the bot's vote reactions put back after a moderator's clear,
in their first order; and the membership age applied to every vote when the round is counted, however cast.
Each test was written to fail on the code before its fix, except where its docstring says it proves what
already held."""

from __future__ import annotations

import asyncio

import pytest
from test_discord_bot import (  # noqa: F401
    KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running, uid,
)
from test_security import buttons_of, config, member_since
from test_vote_rate import REACTION_ROUTE, first_round

from bot.discord.votes import AB_EMOJI, emoji_for_mode

pytestmark = pytest.mark.asyncio

A, B, BOTH, NEITHER = AB_EMOJI  # 🅰️ 🅱️ 👍 👎


async def close_round(env, number: int = 1) -> str:
    """/close the open round; its summary."""
    await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
    closed = await env.server.wait_for_message(env.channel, lambda m: f"Round {number} closed" in m["content"])
    return closed["content"]


async def recounted(env, bot) -> None:
    """Wait until the restart's recount of the open round is done and its votes are stored."""
    session_id = db_rows(env, "SELECT id FROM sessions ORDER BY id DESC LIMIT 1")[0][0]
    assert await bot.runner.recounts.recounted(session_id)
    await bot.runner.ballot_box.settle_votes()


# -- 1. the recount with several reactions of one person -------------------------------------------------------


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_the_restart_recount_keeps_the_stored_vote_while_its_reaction_is_still_on(env, mode):
    """Proves what already held: the vote the bot stored live stands while its reaction is among the person's
    and every other of theirs is one it recorded before (live, the newest replaced it: 7 then 9, 9 stays)."""
    server = env.server
    older, newer = (KEYCAPS[6], KEYCAPS[8]) if mode == "rating" else (NEITHER, A)
    async with running(env):
        post = await first_round(env, mode=mode)
        await server.react(env.carol, post["id"], older)
        await server.react(env.carol, post["id"], newer)  # live: the newest replaces, the older reaction stays on
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM vote_events")) == 2, "both of carol's votes")
        stored = await ballots(env)
        assert stored == {uid(env.carol): 9.0 if mode == "rating" else "a"}
    async with running(env) as bot:
        await recounted(env, bot)
        assert await ballots(env) == stored
        summary = await close_round(env)
    assert "1 voted" in summary
    assert await ballots(env) == stored  # the close's re-read keeps it too


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_a_reaction_added_while_the_bot_was_down_replaces_the_stored_vote_still_on(env, mode):
    """Found by a trial: alice had 4 on (stored 4) and added 8 while the bot was down, leaving 4 on; the recount
    kept 4, though the round promises that her latest vote counts. The bot never recorded 8 for her in this round,
    so it came after everything it did record: it counts (🅰️ stored, 🅱️ added: B). Several such: their
    `recounted_vote`. A re-read again (the close's) keeps what the recount counted."""
    server = env.server
    stored, added = (KEYCAPS[3], KEYCAPS[7]) if mode == "rating" else (A, B)
    async with running(env):
        post = await first_round(env, mode=mode)
        await server.react(env.alice, post["id"], stored)
        await server.react(env.bob, post["id"], stored)
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM vote_events")) == 2, "alice's and bob's votes")
    await server.react(env.alice, post["id"], added)  # while the bot is down; her first reaction stays on
    several = (KEYCAPS[6], KEYCAPS[9]) if mode == "rating" else (B, BOTH)
    for emoji in several:
        await server.react(env.bob, post["id"], emoji)
    expected = {uid(env.alice): 8.0, uid(env.bob): 8.5} if mode == "rating" else {uid(env.alice): "b", uid(env.bob): "b"}
    async with running(env) as bot:
        await recounted(env, bot)
        assert await ballots(env) == expected
        # The recount's reactions are now ones the bot saw: a live vote after them is her latest at the close.
        await server.react(env.alice, post["id"], KEYCAPS[1] if mode == "rating" else NEITHER)
        expected[uid(env.alice)] = 2.0 if mode == "rating" else "neither"
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM vote_events WHERE voter = ?", (uid(env.alice),))) == 3, "her live vote")
        summary = await close_round(env)
    assert "2 voted" in summary
    assert await ballots(env) == expected  # the close's re-read keeps them: bob's 8.5 though his 4 is on too


MESSAGE = "GET /channels/{channel_id}/messages/{message_id}"  # the re-read's first request


def applied(env, user) -> int:
    return len(db_rows(env, "SELECT 1 FROM vote_events WHERE voter = ?", (uid(user),)))


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_a_vote_recorded_after_the_restart_beats_a_reaction_added_while_the_bot_was_down(env, mode):
    """Found in review: alice had 4 (stored), added 8 while the bot was down, and right after the restart, before
    the recount read her reactions, added 2, which the bot recorded. The recount counted 8, the reaction it never
    recorded, over 2, her latest. A vote recorded after the bot's gateway session began came after every reaction
    it missed: 2 counts, and 8 is recorded as seen, so the next restart does not count it either."""
    server = env.server
    stored, missed, later = (KEYCAPS[3], KEYCAPS[7], KEYCAPS[1]) if mode == "rating" else (A, B, NEITHER)
    async with running(env):
        post = await first_round(env, mode=mode)
        await server.react(env.alice, post["id"], stored)
        await eventually(lambda: applied(env, env.alice) == 1, "her first vote")
    await server.react(env.alice, post["id"], missed)  # while the bot is down
    server.hold(MESSAGE)  # the recount's read waits until her later vote is in
    expected = {uid(env.alice): 2.0 if mode == "rating" else "neither"}
    async with running(env) as bot:
        await server.wait_until(lambda: server.held[MESSAGE] >= 1, what="the recount to read the message")
        await server.react(env.alice, post["id"], later)
        await eventually(lambda: applied(env, env.alice) == 2, "her later vote")
        server.release(MESSAGE)
        await recounted(env, bot)
        assert await ballots(env) == expected
    async with running(env) as bot:  # another restart: 8 is no longer a reaction the bot never saw
        await recounted(env, bot)
        assert await ballots(env) == expected
        summary = await close_round(env)
    assert "1 voted" in summary
    assert await ballots(env) == expected


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_a_vote_recorded_after_a_new_gateway_session_beats_a_reaction_whose_event_was_lost(env, mode):
    """The same without a restart: the gateway session ended (not resumable), 8 was added before the new one began
    (its event is lost), then 2, seen live before the new session's recount read her reactions. The close's re-read
    counted 8; 2 is her latest and counts, in the recount and at the close."""
    server = env.server
    stored, missed, later = (KEYCAPS[3], KEYCAPS[7], KEYCAPS[1]) if mode == "rating" else (A, B, NEITHER)
    async with running(env) as bot:
        gate = asyncio.Event()

        async def identify_when_let(shard_id, *, initial=False):  # discord.py's hook before an IDENTIFY
            await gate.wait()

        bot.before_identify_hook = identify_when_let
        post = await first_round(env, mode=mode)
        await server.react(env.alice, post["id"], stored)
        await eventually(lambda: applied(env, env.alice) == 1, "her first vote")
        server.hold(MESSAGE)  # the new session's recount reads the message once her later vote is in
        await server.drop_connections(code=4000, resumable=False)  # the session is gone: what comes now is lost
        await server.react(env.alice, post["id"], missed)
        gate.set()
        await server.wait_until(lambda: server.held[MESSAGE] >= 1, what="the new session's recount")
        await server.react(env.alice, post["id"], later)
        await eventually(lambda: applied(env, env.alice) == 2, "her later vote")
        server.release(MESSAGE)
        await recounted(env, bot)
        assert await ballots(env) == {uid(env.alice): 2.0 if mode == "rating" else "neither"}
        summary = await close_round(env)
    assert "1 voted" in summary
    assert await ballots(env) == {uid(env.alice): 2.0 if mode == "rating" else "neither"}


async def test_the_recount_counts_the_middle_rating_of_several_when_none_stored_is_on(env):
    """Before: the highest of the person's reactions counted (the last in emoji order)."""
    server = env.server
    async with running(env):
        post = await first_round(env)
        await server.react(env.carol, post["id"], KEYCAPS[3])  # stored live: 4
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM votes")) == 1, "carol's vote")
    for user, ratings in ((env.alice, (2, 6, 10)), (env.bob, (7, 9)), (env.carol, (1, 10))):
        for rating in ratings:
            await server.react(user, post["id"], KEYCAPS[rating - 1])
    await server.unreact(env.carol, post["id"], KEYCAPS[3])  # her stored 4 is gone: the recount chooses
    async with running(env) as bot:
        await recounted(env, bot)
        expected = {uid(env.alice): 6.0, uid(env.bob): 8.0, uid(env.carol): 5.5}
        assert await ballots(env) == expected
        summary = await close_round(env)
    assert "3 voted (5.5, 6, 8)" in summary, summary
    assert await ballots(env) == expected


async def test_the_recount_of_several_ab_reactions_does_not_let_neither_win_by_its_place(env):
    """Before: 👎 (neither), the last A/B emoji, won over whatever else the person reacted with."""
    server = env.server
    async with running(env):
        post = await first_round(env, mode="ab")
    reactions = {env.alice: (A, NEITHER), env.bob: (A, B), env.carol: (BOTH, B, NEITHER), env.mod: (NEITHER,)}
    for user, emoji in reactions.items():
        for one in emoji:
            await server.react(user, post["id"], one)
    async with running(env) as bot:
        await recounted(env, bot)
        assert await ballots(env) == {uid(env.alice): "a", uid(env.bob): "both", uid(env.carol): "b", uid(env.mod): "neither"}


# -- 2. the bot's reactions put back in their first order ------------------------------------------------------


def own_order(server, message_id) -> list[str]:
    """The bot's reactions on the message, in the order Discord lists them (the order they were first added)."""
    return [emoji for emoji, users in server.message(message_id)["reactions"].items() if server.bot_user.id in users]


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_a_clear_puts_the_bots_reactions_back_in_their_first_order(env, mode):
    """Before: a clear during the putting back, or of one emoji, left them out of order (9, 10 before 1, ...)."""
    server = env.server
    server.set_route_limit(REACTION_ROUTE, 1, 0.25)  # Discord's observed pace for adding reactions
    order = list(emoji_for_mode(mode))
    async with running(env):
        post = await first_round(env, mode=mode)
        assert own_order(server, post["id"]) == order
        await server.clear_reactions(post["id"])
        await server.wait_until(lambda: len(own_order(server, post["id"])) == 2, what="two put back")
        await server.clear_reactions(post["id"])  # again, while the bot is putting them back
        await server.wait_until(lambda: len(own_order(server, post["id"])) == len(order), what="all put back")
        assert own_order(server, post["id"]) == order
        await server.react(env.alice, post["id"], order[0])  # a member's reaction: the bot's own there stays
        await server.clear_reactions(post["id"], order[1])  # one emoji, in the middle
        await server.wait_until(lambda: len(own_order(server, post["id"])) == len(order), what="the emoji put back")
        assert own_order(server, post["id"]) == order
        assert list(server.message(post["id"])["reactions"]) == order
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0")) == 1, "alice's vote")
        summary = await close_round(env)
    assert "1 voted" in summary


async def test_a_clear_while_the_first_reactions_go_on_keeps_their_order(env):
    """Before: the first posting of the reactions and their putting back ran side by side, interleaved."""
    server = env.server
    server.set_route_limit(REACTION_ROUTE, 1, 0.25)
    async with running(env):
        await compose(env, rounds=3, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1))
        await server.wait_until(lambda: len(own_order(server, post["id"])) == 3, what="three reactions")
        await server.clear_reactions(post["id"])
        await server.wait_until(lambda: len(own_order(server, post["id"])) == 10, what="all ten")
        assert own_order(server, post["id"]) == KEYCAPS


# -- 3. the membership age applies to every vote when the round is counted ----------------------------------


@pytest.mark.parametrize("style", ["buttons", "aspects"])
async def test_a_raised_membership_age_applies_at_the_close_to_votes_cast_before_it(env, style):
    """Before: a button or menu vote cast before member_days was raised still counted at the close, while a reaction
    vote was re-checked there (test_security's test_a_membership_age_counts_reactions_only_...)."""
    server = env.server
    two_days = member_since(server, env.guild, "two_days", 2)
    veteran = member_since(server, env.guild, "veteran", 30)
    async with running(env):
        await config(env, vote_style="buttons", member_days=1)
        await compose_style(env, style)
        post = await server.wait_for_message(env.channel, is_round(1))
        for user, value in ((two_days, "2"), (veteran, "7")):
            said = await vote(env, post, user, style, value)
            assert "Your " in said, said
        assert "at least 3 days before the round began" in await config(env, member_days=3)
        status = (await final_answer(await server.slash(env.mod, env.channel, "status")))["content"]
        assert "1 voted so far (7)" in status and "1 vote set aside: its voter joined the server less than 3 days" in status, status
        summary = await close_round(env)
    assert "1 voted (7)" in summary and "1 vote set aside: its voter joined the server less than 3 days before" in summary, summary
    assert summary.count("7/10") == 1, summary  # the verdict said once (the trial read "reward 7/10. The crowd gave 7/10")
    assert "The one voter gave 7/10" in summary, summary  # one voter is no crowd (a later trial)
    # Set aside, not withdrawn (the member did not take it back): voided with the close, as it was cast.
    assert await ballots(env) == {uid(veteran): 7.0}
    assert db_rows(env, "SELECT rating, retracted, voided FROM votes WHERE voter = ?", (uid(two_days),)) == [(2.0, 0, 1)]


@pytest.mark.parametrize("style", ["buttons", "reactions"])
async def test_a_membership_age_raised_and_lowered_again_before_the_close_loses_no_vote(env, style):
    """A trial's moderator raised member_days while a round was open (a quorum check ran), then set it back: the
    button votes the raise had withdrawn were lost for good, though each member had been told it counted."""
    server = env.server
    newcomers = [member_since(server, env.guild, f"new{i}", 1) for i in range(2)]
    veteran = member_since(server, env.guild, "veteran", 30)
    async with running(env):
        post = await quorum_round(env, style, 4)
        for user, value in ((newcomers[0], "3"), (newcomers[1], "9"), (veteran, "8")):
            await cast(env, post, user, style, value)
        await config(env, member_days=3)
        await cast(env, post, member_since(server, env.guild, "veteran2", 30), style, "6")  # 4 standing: a quorum check
        # Nothing to wait for when it is right (the check changes nothing); the pause lets the check run before the
        # rule is lowered, so that a check that withdrew votes would show it. Correct code passes either way.
        await asyncio.sleep(0.5)
        await config(env, member_days=0)
        summary = await close_round(env)
    assert "4 voted (" in summary and "set aside" not in summary, summary
    assert sorted((await ballots(env)).values()) == [3.0, 6.0, 8.0, 9.0]


async def test_a_raised_membership_age_is_applied_before_a_quorum_closes_a_round(env):
    """A vote the rule no longer counts does not make up a quorum (as a re-read does for reactions)."""
    server = env.server
    two_days = member_since(server, env.guild, "two_days", 2)
    veterans = [member_since(server, env.guild, f"veteran{i}", 30) for i in range(2)]
    async with running(env):
        await config(env, vote_style="buttons", member_days=1)
        await compose_style(env, "buttons", quorum=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        assert "Your rating: 2" in await vote(env, post, two_days, "buttons", "2")
        await config(env, member_days=3)
        assert "Your rating: 7" in await vote(env, post, veterans[0], "buttons", "7")  # 2 votes, 1 standing under the rule
        assert "Your rating: 8" in await vote(env, post, veterans[1], "buttons", "8")  # the quorum of 2
        summary = (await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"]))["content"]
    assert "2 voted (7, 8)" in summary and "1 vote set aside" in summary, summary


async def test_a_raised_membership_age_sets_reaction_votes_aside_at_the_close(env):
    """A trial: the close's re-read withdrew a refused member's reaction vote (stored as retracted, as if they had
    taken it back, and no word of it in the summary), while a button vote was set aside."""
    async with running(env):
        two_days = await one_set_aside(env, "reactions")
        summary = await close_round(env)
    assert "1 voted (7)" in summary and "1 vote set aside: its voter joined the server less than 3 days" in summary, summary
    assert db_rows(env, "SELECT rating, retracted, voided FROM votes WHERE voter = ?", (uid(two_days),)) == [(2.0, 0, 1)]


async def test_lowering_the_membership_age_closes_a_round_whose_quorum_it_completes(env):
    """A trial: after the age was lowered, three standing votes against a quorum of 3 waited for a fourth vote."""
    server = env.server
    newcomers = [member_since(server, env.guild, f"new{i}", 1) for i in range(2)]
    async with running(env):
        post = await quorum_round(env, "buttons", 3)
        for user, value in ((newcomers[0], "3"), (newcomers[1], "9")):
            await cast(env, post, user, "buttons", value)
        await config(env, member_days=3)
        await cast(env, post, member_since(server, env.guild, "veteran", 30), "buttons", "7")  # 1 of 3 counts
        await config(env, member_days=0)
        summary = (await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"]))["content"]
    assert "3 voted (" in summary and "set aside" not in summary, summary


async def cast(env, post, user, style: str, value: str) -> None:
    """A rating by button (told it counted) or by reaction (stored once the bot has it)."""
    if style == "buttons":
        said = await vote(env, post, user, "buttons", value)
        assert "Your " in said, said
        return
    await env.server.react(user, post["id"], KEYCAPS[int(value) - 1])
    stored = "SELECT 1 FROM votes v JOIN rounds r ON r.id = v.round_id WHERE r.idx = 0 AND v.voter = ? AND v.retracted = 0"
    await eventually(lambda: db_rows(env, stored, (uid(user),)), f"the vote of {user.name}")


async def one_set_aside(env, style: str):
    """A round of `style` (buttons, reactions, aspects: its musicality) with a vote of 2 from a member of two days and
    7 from one of a month, then member_days raised to 3: the first is set aside. The member of two days."""
    server = env.server
    two_days, veteran = member_since(server, env.guild, "two_days", 2), member_since(server, env.guild, "veteran", 30)
    await config(env, vote_style="buttons" if style == "aspects" else style, member_days=1)
    await compose_style(env, style)
    post = await server.wait_for_message(env.channel, is_round(1))
    for user, value in ((two_days, "2"), (veteran, "7")):
        if style == "aspects":
            assert "Your " in await vote(env, post, user, style, value)
        else:
            await cast(env, post, user, style, value)
    await config(env, member_days=3)
    return two_days


async def quorum_round(env, style: str, quorum: int) -> dict:
    """/config vote_style:`style` and /compose of long rounds closing at `quorum` votes; the first round's post."""
    await config(env, vote_style=style)
    await compose(env, rounds=3, round_minutes=600, quorum=quorum)
    return await env.server.wait_for_message(env.channel, is_round(1))


async def compose_style(env, style: str, **options) -> None:
    await compose(env, rounds=3, round_minutes=600, **({"aspects": True} if style == "aspects" else {}), **options)


async def vote(env, post, user, style: str, value: str) -> str:
    """A button press (buttons) or a musicality answer (aspects); what the voter is told."""
    if style == "aspects":
        menu = next(c for row in post["components"] for c in row["components"] if c["custom_id"].endswith(":musicality"))
        interaction = await env.server.select(user, post["id"], menu["custom_id"], [value])
    else:
        interaction = await env.server.press_button(user, post["id"], buttons_of(post)[value])
    return (await interaction.wait_response())["data"]["content"]
