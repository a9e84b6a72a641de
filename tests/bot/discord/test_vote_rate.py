"""The per-person vote rate delays a reaction, never loses it or swaps it for an older one; a moderator's
clear of a round's reactions puts the bot's vote reactions back (trial 18d, items 1, 2 and 4).

The rate is driven by the settings (a refill that never comes within the test) or by the limiter's clock,
which the test holds still and then moves: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.discord.votes import bare
from test_discord_bot import KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, is_round, renderer, running, uid  # noqa: F401

pytestmark = pytest.mark.asyncio

CROWDTUNE = str(Path(sys.executable).parent / "crowdtune")
NEVER = 3600.0  # a refill the tests never wait for
REACTION_ROUTE = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"


async def first_round(env, **options) -> dict:
    """/compose in the server's channel; the first round's post, once the bot's vote reactions are on it."""
    await compose(env, rounds=3, round_minutes=600, **options)
    post = await env.server.wait_for_message(env.channel, is_round(1))
    count = 4 if options.get("mode") == "ab" else 10
    await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == count, what="the vote reactions")
    return post


def applied(env, user) -> int:
    """How many of the person's vote changes reached the database."""
    return db_rows(env, "SELECT COUNT(*) FROM vote_events WHERE voter = ?", (uid(user),))[0][0]


async def closed(env) -> str:
    return (await env.server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"]))["content"]


async def test_the_latest_reaction_over_the_rate_counts_at_the_close_not_an_older_one(env):
    server = env.server
    async with running(env, vote_burst=6, vote_refill_seconds=NEVER):
        post = await first_round(env, quorum=2)
        for emoji in KEYCAPS[:8]:  # carol adds 1..8 quickly and removes none: 7 and 8 are over her rate
            await server.react(env.carol, post["id"], emoji)
        await server.unreact(env.carol, post["id"], KEYCAPS[7])  # then takes 8 back: 7 is her latest standing
        await eventually(lambda: applied(env, env.carol) == 6, "her first six changes")
        status = await (await server.slash(env.mod, env.channel, "status")).wait_response()
        assert "1 voted so far" in status["data"]["content"]
        await server.react(env.alice, post["id"], KEYCAPS[4])  # the quorum of 2: the round closes
        summary = await closed(env)
    assert "2 voted (5, 7)" in summary
    assert await ballots(env) == {uid(env.alice): 5.0, uid(env.carol): 7.0}
    assert applied(env, env.carol) == 7  # her held changes were applied as one, once


async def test_a_held_reaction_is_applied_when_the_bucket_allows_and_counts_toward_the_quorum(env):
    server = env.server
    async with running(env, vote_burst=1, vote_refill_seconds=0.5) as bot:
        now = [0.0]
        bot.runner.limiter.clock = lambda: now[0]  # the bucket refills only when the test moves this clock
        assert bot.runner.limiter.allow(env.carol.id)  # her burst spent: every reaction of hers is held
        post = await first_round(env, quorum=1)
        await server.react(env.carol, post["id"], KEYCAPS[1])
        await server.unreact(env.carol, post["id"], KEYCAPS[1])
        for emoji in (KEYCAPS[8], KEYCAPS[3]):
            await server.react(env.carol, post["id"], emoji)  # each supersedes the one before
        await server.unreact(env.carol, post["id"], KEYCAPS[3])  # the held 4 taken back: her 9 stands
        await server.react(env.carol, post["id"], KEYCAPS[6])
        await server.unreact(env.carol, post["id"], KEYCAPS[6])
        status = await (await server.slash(env.mod, env.channel, "status")).wait_response()
        assert "1 voted so far (9)" in status["data"]["content"]  # as the count will take it, held while her bucket is empty
        assert db_rows(env, "SELECT COUNT(*) FROM votes") == [(0,)]  # nothing applied yet: no quorum
        assert db_rows(env, "SELECT status FROM rounds") == [("open",)]
        now[0] += 0.5  # one refill: the held reaction is applied, and it brings the quorum of 1
        summary = await closed(env)
    assert "1 voted (9)" in summary
    assert await ballots(env) == {uid(env.carol): 9.0}
    assert applied(env, env.carol) == 1  # her seven changes, applied as one


async def test_status_shows_the_vote_the_count_uses_while_a_newer_one_is_held(env):
    """Found in review: carol's 7 was stored; over her rate she added 9 and took 7 back, both held. /status showed
    "1 voted so far (7)", the vote of a reaction no longer on, which the count never uses (it applies what it holds
    first: 9). /status shows the votes as the count will take them, held ones included, and says they are held."""
    server = env.server
    async with running(env, vote_burst=1, vote_refill_seconds=0.5) as bot:
        now = [0.0]
        bot.runner.limiter.clock = lambda: now[0]  # the bucket refills only when the test moves this clock
        post = await first_round(env)
        await server.react(env.carol, post["id"], KEYCAPS[6])  # her one change: 7 is stored
        await eventually(lambda: applied(env, env.carol) == 1, "her 7")
        await server.react(env.carol, post["id"], KEYCAPS[8])  # over her rate: held
        await server.unreact(env.carol, post["id"], KEYCAPS[6])  # held behind it
        await server.react(env.carol, post["id"], "\U0001f170\ufe0f")  # 🅰️: no vote in a rating round, held too
        seen = bot.runner.ballot_box.seen
        await eventually(lambda: set(seen.remaining(int(post["id"]), env.carol.id)) == {bare(KEYCAPS[8]), "\U0001f170"}, "her events")
        status = (await (await server.slash(env.mod, env.channel, "status")).wait_response())["data"]["content"]
        assert "1 voted so far (9)" in status, status
        assert "1 vote change came faster than the vote rate allows" in status, status
        assert await ballots(env) == {uid(env.carol): 7.0}  # nothing written: /status only shows
        now[0] += 0.5
        await eventually(lambda: applied(env, env.carol) == 2, "her held 9")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await closed(env)
    assert "1 voted (9)" in summary


async def test_a_reaction_held_when_the_bot_stops_cleanly_counts_after_the_restart(env):
    server = env.server
    async with running(env, vote_burst=6, vote_refill_seconds=NEVER):
        post = await first_round(env)
        for emoji in KEYCAPS[:8]:
            await server.react(env.carol, post["id"], emoji)
        await eventually(lambda: applied(env, env.carol) == 6, "her first six changes")
    assert await ballots(env) == {uid(env.carol): 8.0}  # applied on the way out
    async with running(env, vote_burst=6, vote_refill_seconds=NEVER):
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await closed(env)
    assert "1 voted (8)" in summary


@pytest.mark.parametrize("mode", ["rating", "ab"])
async def test_a_moderators_clear_puts_the_bots_vote_reactions_back(env, mode):
    server = env.server
    server.set_route_limit(REACTION_ROUTE, 1, 0.25)  # Discord's observed pace for adding reactions
    async with running(env):
        post = await first_round(env, mode=mode)
        own = set(server.message(post["id"])["reactions"])
        first, second = sorted(own)[:2]
        await server.react(env.alice, post["id"], first)
        await server.react(env.bob, post["id"], second)
        await eventually(lambda: len(db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0")) == 2, "two votes")

        def mine() -> set[str]:
            return {emoji for emoji, users in server.message(post["id"])["reactions"].items() if server.bot_user.id in users}

        await server.clear_reactions(post["id"], second)  # one emoji: bob's vote goes, the bot's reaction comes back
        await server.wait_until(lambda: mine() == own, what="the bot's cleared emoji put back")
        assert await ballots(env) == {uid(env.alice): "a" if mode == "ab" else 1.0}
        await server.clear_reactions(post["id"])  # every reaction
        await server.wait_until(lambda: mine() == own, what="every vote reaction put back")
        await eventually(lambda: not db_rows(env, "SELECT 1 FROM votes WHERE retracted = 0"), "every vote withdrawn")
        await server.react(env.carol, post["id"], second)  # the emoji is there to vote with again
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await closed(env)
    assert "1 voted" in summary
    assert set(await ballots(env)) == {uid(env.carol)}


async def forget_user_beside_the_bot(env, user) -> None:
    """`crowdtune forget-user USER_ID --yes` on the running bot's database, in a process of its own."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    forget = await asyncio.create_subprocess_exec(
        CROWDTUNE, "forget-user", str(user.id), "--db", env.db, "--yes", cwd=env.folder, env=child_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(forget.communicate(), 120)
    assert forget.returncode == 0 and "deleted 1 vote" in out.decode(), (out, err)


@pytest.mark.parametrize("by", ["/forget-me", "crowdtune forget-user"])
async def test_a_reaction_held_when_its_person_deletes_their_data_never_counts(env, by):
    """Found by a re-trial (18e): a reaction held over the vote rate was applied after its person deleted their data
    with /forget-me, stored their vote again and changed the reward. What /forget-me deletes includes what is held.
    So does `crowdtune forget-user` beside a running bot on PostgreSQL, which the bot heard nothing of: it hears of
    the deletion now (NOTIFY) and drops what it holds of the person."""
    from test_moderator_words import forget

    if by == "crowdtune forget-user" and not env.db.startswith("postgresql://"):
        pytest.skip("on SQLite forget-user refuses a database a bot holds: nothing runs beside it")
    server = env.server
    async with running(env, vote_burst=1, vote_refill_seconds=0.5) as bot:
        now = [0.0]
        bot.runner.limiter.clock = lambda: now[0]  # the bucket refills only when the test moves this clock
        post = await first_round(env)
        await server.react(env.carol, post["id"], KEYCAPS[1])  # her one token: stored
        await eventually(lambda: applied(env, env.carol) == 1, "her first vote")
        await server.react(env.carol, post["id"], KEYCAPS[8])  # held
        held = bot.runner.ballot_box.held
        await eventually(lambda: held.waiting([int(post["id"])]) == 1, "her held reaction")
        if by == "/forget-me":
            deleted = await forget(env, env.carol, env.channel, press="Delete my data")
            assert deleted["content"].startswith("Deleted 1 vote"), deleted["content"]
        else:
            await forget_user_beside_the_bot(env, env.carol)
        await eventually(lambda: held.waiting([int(post["id"])]) == 0, "the bot dropping what it held of her")
        now[0] += 10  # her bucket is full again: nothing of hers may come back
        await server.react(env.alice, post["id"], KEYCAPS[4])
        await eventually(lambda: applied(env, env.alice) == 1, "alice's vote")
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        summary = await closed(env)
    assert "1 voted (5)" in summary, summary
    assert await ballots(env) == {uid(env.alice): 5.0}
    assert applied(env, env.carol) == 0


def clock_held_with_burst_spent(bot, user) -> list[float]:
    """Hold the limiter's clock still (the bucket refills only when the test moves it: the list's one value) and spend
    `user`'s burst of one, as votes elsewhere would."""
    now = [0.0]
    bot.runner.limiter.clock = lambda: now[0]
    assert bot.runner.limiter.burst == 1 and bot.runner.limiter.allow(user.id)
    return now


async def test_a_first_vote_over_the_rate_is_not_called_a_change_and_a_change_is(env):
    """Found by a trial: a member's first press in a round, over the rate (their bucket spent by votes elsewhere), was
    answered "You are changing your vote very fast". Each answer says what the press would have done."""
    server = env.server
    async with running(env, vote_burst=1, vote_refill_seconds=1.0) as bot:
        now = clock_held_with_burst_spent(bot, env.carol)
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, rounds=3, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1))
        button = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in post["components"] for c in row["components"]}

        async def press(value: str) -> str:
            return (await (await server.press_button(env.carol, post["id"], button[value])).wait_response())["data"]["content"]

        first = await press("3")
        withdraw_none = await press("x")
        now[0] += 1.0
        stored = await press("4")
        change = await press("5")
        withdraw = await press("x")
    assert first == "You are voting very fast, so this vote was not saved; wait a few seconds, then press again.", first
    assert withdraw_none == "You had no vote to withdraw.", withdraw_none
    assert stored.startswith("Your rating: 4."), stored
    assert change == "You are changing your vote very fast, so your vote stays as it was; wait a few seconds, then press again.", change
    assert withdraw == (
        "You are changing your vote very fast, so your vote is not withdrawn yet; wait a few seconds, then press Withdraw again."
    ), withdraw
    assert await ballots(env) == {uid(env.carol): 4.0}


async def test_status_calls_a_held_first_reaction_a_vote_and_a_held_one_after_a_stored_vote_a_change(env):
    async with running(env, vote_burst=1, vote_refill_seconds=1.0) as bot:
        server = env.server
        post = await first_round(env)
        clock_held_with_burst_spent(bot, env.carol)  # her first reaction is held
        await server.react(env.carol, post["id"], KEYCAPS[6])
        held = bot.runner.ballot_box.held
        await eventually(lambda: held.waiting([int(post["id"])]) == 1, "her held reaction")
        first = (await (await server.slash(env.mod, env.channel, "status")).wait_response())["data"]["content"]
        await server.react(env.alice, post["id"], KEYCAPS[2])  # stored at once
        await eventually(lambda: applied(env, env.alice) == 1, "alice's 3")
        await server.react(env.alice, post["id"], KEYCAPS[4])  # a change over her rate: held
        await eventually(lambda: held.waiting([int(post["id"])]) == 2, "her held change")
        both = (await (await server.slash(env.mod, env.channel, "status")).wait_response())["data"]["content"]
    assert "1 voted so far (7)" in first, first
    assert "1 vote came faster than the vote rate allows: shown as it will count, it is counted in turn" in first, first
    assert "2 voted so far" in both, both
    assert "1 vote and 1 vote change came faster than the vote rate allows: shown as they will count" in both, both
