"""Moderation and /forget-me sent right after a restart, before the bot has taken back its open rounds, through the real
bot and the local Discord-compatible server, the order fixed by gates (the taking back held, a store call held until
the command has acted or waits), never by timing.

Found by review after /close and /stop learned to wait (test_stop_after_restart.py): a /reset right after a restart
landed before the close of the round whose time had run out while the bot was down, and that round's learning went into
the reset agent; a /strike or a /config changed what that close counted; a /forget-me was undone by the recount of the
reactions made meanwhile, which re-added the member's vote after the deletion."""

from __future__ import annotations

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running  # noqa: F401 - fixtures
from test_stop_after_restart import restarted_before_pickup, voted_round

pytestmark = pytest.mark.asyncio


def audits(env, action: str) -> int:
    return db_rows(env, "SELECT COUNT(*) FROM audit WHERE action = ?", (action,))[0][0]


def button(message: dict, label: str) -> str:
    return next(c["custom_id"] for row in message["components"] for c in row["components"] if c["label"] == label)


async def confirmed(server, user, interaction, label: str) -> str:
    """The question a command asked (`label`: its Confirm button), pressed; what it finally says."""
    prompt = await interaction.wait_original()
    await (await server.press_button(user, prompt["id"], button(prompt, label))).wait_response()
    return (await interaction.wait_original(lambda m: not m["components"]))["content"]


async def sent_before_the_close(env, bot, release, command: str, options: dict, acted):
    """`command` sent by the moderator before the bot has taken back its open rounds (`restarted_before_pickup`),
    then the taking back let go; the close of the round whose time ran out held until the command has acted (`acted()`)
    or waits for that close (then it goes first): `acted` is given the interaction. The interaction and its first response."""
    store, steering = bot.conductor.store, bot.runner.steering
    close_round, sent = store.close_round, None

    async def held_close(*args, **kwargs):
        await eventually(lambda: getattr(steering, "_closes", None) or acted(sent), f"the /{command} to act or wait")
        return await close_round(*args, **kwargs)

    store.close_round = held_close
    sent = await env.server.slash(env.mod, env.channel, command, options)
    first = await sent.wait_response()
    release.set()
    return sent, first


def summary_of_round_1(env) -> str:
    [summary] = [m["content"] for m in env.server.messages(env.channel) if m["content"].startswith("**Round 1 closed**")]
    return summary


@pytest.mark.parametrize("command, options, action", [
    ("reset", {}, "reset"),
    ("strike", {"user": "bob"}, "strike"),
    ("config", {"member_days": 365}, "config"),  # everyone here joined today: it would set both votes aside
])
async def test_a_scope_command_right_after_a_restart_acts_after_the_close_of_a_round_whose_time_ran_out(env, command, options, action):
    """Alice 7 and bob 8, the round's time up while the bot was down; the command is sent before the rounds are taken
    back. The round's close is held until the command has acted, or waits for that close (then it goes first)."""
    server = env.server
    options = {key: getattr(env, value) if key == "user" else value for key, value in options.items()}
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"preset": "paper"})).wait_response()  # learns from round 1
        await compose(env, rounds=3)
        await voted_round(env, env.channel, [(env.alice, 7), (env.bob, 8)])
    before = audits(env, action)
    async with restarted_before_pickup(env, time_up=True) as (bot, release):
        sent, first = await sent_before_the_close(env, bot, release, command, options, lambda sent: audits(env, action) > before)
        said = await confirmed(server, env.mod, sent, "Reset the agent") if command == "reset" else (await final_answer(sent))["content"]
        await server.wait_for_message(env.channel, is_round(2))
    summary = summary_of_round_1(env)
    assert "2 voted" in summary and "set aside" not in summary, summary  # counted as it stood when the command came
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "open")]
    assert first["type"] == 5, first  # acknowledged while it waits (Discord's 3 s)
    if command == "reset":  # what round 1 taught went into the agent the reset cleared
        assert said.startswith("The agent is reset"), said
        assert db_rows(env, "SELECT COUNT(*) FROM qvalues") == [(0,)]
        assert db_rows(env, "SELECT COUNT(*) FROM models") == [(0,)]
    elif command == "strike":
        assert said.startswith("Voided 1 vote by"), said
        assert db_rows(env, "SELECT voter FROM votes WHERE voided = 1") == [(f"user:{env.bob.id}",)]
    else:
        assert said.startswith("Updated."), said


async def test_a_forget_me_right_after_a_restart_is_not_undone_by_the_recount(env):
    """Alice changed her 7 to a 3 while the bot was down; her /forget-me comes before the rounds are taken back. The
    recount that counts her 3 is held, after reading the reactions, until the deletion is done or waits for it."""
    server = env.server
    async with running(env):
        await compose(env, rounds=3)
        post = await voted_round(env, env.channel, [(env.alice, 7), (env.bob, 8)])
    await server.unreact(env.alice, post["id"], KEYCAPS[6])
    await server.react(env.alice, post["id"], KEYCAPS[2])
    async with restarted_before_pickup(env) as (bot, release):
        store, recounts = bot.conductor.store, bot.runner.recounts
        recorded_votes = store.recorded_votes

        async def held_recount(*args):  # the recount's last read before it casts the votes it found
            await eventually(lambda: recounts._wait_ends or audits(env, "forget_me"), "the /forget-me to delete or wait")
            return await recorded_votes(*args)

        store.recorded_votes = held_recount
        forget = await server.slash(env.alice, env.channel, "forget-me")
        await forget.wait_response()
        release.set()
        deleted = await confirmed(server, env.alice, forget, "Delete my data")
        [session_id] = [s.id for s in await store.active_sessions()]
        await eventually(lambda: not recounts.recounting(session_id), "the recount")
    assert deleted.startswith("Deleted 1 vote"), deleted
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (f"user:{env.alice.id}",)) == [(0,)]
    assert db_rows(env, "SELECT voter, rating FROM votes") == [(f"user:{env.bob.id}", 8.0)]


async def test_an_unstrike_right_after_a_restart_acts_after_the_close_of_a_round_whose_time_ran_out(env):
    """Alice's 7 counted; bob, struck, reacted 8 while the bot was down, and the round's time ran out. The /unstrike,
    sent before the rounds are taken back, waits for that round's recount and close, which count it as it stood: bob's
    vote, made while he was struck, is not counted (were the /unstrike first, the recount would count it)."""
    server = env.server
    async with running(env):
        await compose(env, rounds=3)
        post = await voted_round(env, env.channel, [(env.alice, 7)])
        assert (await final_answer(await server.slash(env.mod, env.channel, "strike", {"user": env.bob})))["content"].startswith("Voided 0 votes")
    await server.react(env.bob, post["id"], KEYCAPS[7])
    async with restarted_before_pickup(env, time_up=True) as (bot, release):
        sent, first = await sent_before_the_close(env, bot, release, "unstrike", {"user": env.bob}, lambda sent: audits(env, "unstrike"))
        said = (await final_answer(sent))["content"]
        await server.wait_for_message(env.channel, is_round(2))
    summary = summary_of_round_1(env)
    assert "1 voted" in summary, summary
    assert said.startswith("Lifted the strike on"), said
    assert first["type"] == 5, first  # acknowledged while it waits (Discord's 3 s)


async def test_a_compose_right_after_a_restart_starts_once_the_channel_s_last_round_has_closed(env):
    """A one-round session whose round's time ran out while the bot was down: a /compose in its channel, sent before
    the rounds are taken back, waits for that close, which ends the session, then starts the next one (without the
    wait it was refused: a session was still running there)."""
    server = env.server
    async with running(env):
        await compose(env, rounds=1)
        await voted_round(env, env.channel, [(env.alice, 7)])
    async with restarted_before_pickup(env, time_up=True) as (bot, release):
        sessions = lambda: db_rows(env, "SELECT COUNT(*) FROM sessions")[0][0]  # noqa: E731
        sent, first = await sent_before_the_close(
            env, bot, release, "compose", {"rounds": 2}, lambda sent: sent.response and not sent.deferred or sessions() == 2,
        )
        [announcement] = await sent.wait_followups() if sent.deferred else [first["data"]]
        assert announcement["content"].startswith("Composing with"), announcement["content"]
        await server.wait_until(lambda: len([m for m in server.messages(env.channel) if is_round(1)(m)]) == 2, what="the new session's round")
    assert first["type"] == 5, first  # acknowledged while it waits (Discord's 3 s)
    assert "2 voted" not in summary_of_round_1(env) and "1 voted" in summary_of_round_1(env)
    assert db_rows(env, "SELECT status FROM sessions ORDER BY id") == [("finished",), ("active",)]
