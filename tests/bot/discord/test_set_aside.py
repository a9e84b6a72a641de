"""The votes the membership rule (/config member_days) sets aside, as every count says them (task aside20): /stop
counts them as the close would; /status reads the round's votes once, leaves them out of its aspect means and answers
at once unless Discord must be asked when someone joined; and a member who left the server keeps their vote whatever
the bot remembers. Each test failed on the code before its fix, but where its docstring says otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from test_discord_bot import (  # noqa: F401
    KEYCAPS, ballots, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running, uid,
)
from test_security import config, member_since
from test_vote_recounts import cast, close_round, compose_style, one_set_aside, recounted

from bot.discord.anti_brigade import DAY
from storage.export import write_person_copy

pytestmark = pytest.mark.asyncio


async def status(env) -> tuple[str, bool]:
    """/status's answer, and whether it was deferred (the person saw "thinking..." first)."""
    interaction = await env.server.slash(env.mod, env.channel, "status")
    answer = await final_answer(interaction)
    return answer["content"], interaction.deferred


@contextlib.contextmanager
def votes_read(store):
    """Record the store's reads of rows of the votes table (its `_all`, which every read of rows goes through, in both
    backends). A count of them (`ballot_count`) is left out: the quorum check a /config change wakes may make one
    meanwhile."""
    statements: list[str] = []
    read = store._all

    async def recorded(sql, *args):
        if "FROM votes" in sql and "COUNT(" not in sql:
            statements.append(sql)
        return await read(sql, *args)

    store._all = recorded
    try:
        yield statements
    finally:
        del store._all


async def test_stop_counts_the_open_rounds_votes_as_the_close_would(env):
    """Before: /stop said "its 2 votes are not counted" of a round whose /status said 1 voted and 1 was set aside."""
    async with running(env):
        await one_set_aside(env, "buttons")
        stopped = (await final_answer(await env.server.slash(env.mod, env.channel, "stop")))["content"]
    assert "its 1 vote is not counted" in stopped, stopped
    assert "1 vote set aside: its voter joined the server less than 3 days before the round began" in stopped, stopped


async def test_status_leaves_set_aside_votes_out_of_the_aspect_means(env):
    """Before: "1 voted so far (7); per aspect: musicality 4.5 (2)": the set-aside 2 was in the mean."""
    async with running(env):
        await one_set_aside(env, "aspects")
        said, _ = await status(env)
    assert "1 voted so far (7); per aspect: musicality 7 (1)," in said and "1 vote set aside" in said, said


@pytest.mark.parametrize("style", ["buttons", "aspects"])
async def test_status_reads_the_rounds_votes_once(env, style):
    """Before: /status read the round's votes for the rule, again for its counts (and, with aspects, a third time)."""
    async with running(env) as bot:
        await one_set_aside(env, style)
        with votes_read(bot.conductor.store) as statements:
            said, _ = await status(env)
    assert "1 voted so far (7)" in said and "1 vote set aside" in said, said
    assert len(statements) == 1, statements


async def test_status_answers_at_once_when_every_join_date_is_known(env):
    """Before: with anti-brigading on, /status always deferred (the person saw "thinking..." first), though every
    voter's join date came with their vote and Discord had nothing to be asked."""
    async with running(env):
        await one_set_aside(env, "buttons")
        said, deferred = await status(env)
    assert "1 voted so far (7)" in said and not deferred, said


@pytest.mark.parametrize("style", ["buttons", "reactions"])
async def test_a_member_who_left_keeps_their_vote_whatever_the_bot_remembers(env, style, tmp_path):
    """Before: a member who voted and then left counted while the bot remembered their join date, and was set aside
    once it did not (after a restart Discord answers 404 Unknown Member for them)."""
    server = env.server
    leaver, stayer = member_since(server, env.guild, "leaver", 30), member_since(server, env.guild, "stayer", 30)
    async with running(env):
        await config(env, vote_style=style, member_days=3)
        await compose_style(env, style)
        post = await server.wait_for_message(env.channel, is_round(1), timeout=20)
        for user, value in ((leaver, "7"), (stayer, "5")):
            await cast(env, post, user, style, value)
        server.remove_member(env.guild, leaver)
        remembered, _ = await status(env)
    async with running(env) as bot:  # a restart: what the bot remembered of join dates is gone
        if style == "reactions":
            await recounted(env, bot)
        forgotten, _ = await status(env)
        summary = await close_round(env)
    assert "2 voted so far" in remembered and "set aside" not in remembered, remembered
    assert "2 voted so far" in forgotten and "set aside" not in forgotten, forgotten
    assert "2 voted (5, 7)" in summary and "set aside" not in summary, summary
    # The date is the leaver's data too: their copy (/forget-me) holds it.
    await asyncio.to_thread(write_person_copy, env.db, uid(leaver), tmp_path / "copy.json", 0)  # as in a worker
    [copied] = json.loads((tmp_path / "copy.json").read_text())["votes"]
    assert abs(copied["joined_server_at"] - (time.time() - 30 * DAY)) < 600, copied


async def test_status_defers_only_when_discord_must_be_asked_when_a_voter_joined(env):
    """A reaction made while the bot was down, recounted with anti-brigading off, came with no join date: once the rule
    is on, /status asks Discord for it, acknowledged first ("thinking..."), and counts the vote as the close does.
    (This held before; it keeps the deferral where it is needed.)"""
    server = env.server
    veteran = member_since(server, env.guild, "veteran", 30)
    async with running(env):
        await compose(env, rounds=3, round_minutes=600)
        post = await server.wait_for_message(env.channel, is_round(1), timeout=20)
        await server.wait_until(lambda: len(server.message(post["id"])["reactions"]) == 10, what="reactions")
    await server.react(veteran, post["id"], KEYCAPS[6])
    async with running(env) as bot:
        await recounted(env, bot)
        await config(env, member_days=3)
        said, deferred = await status(env)
        summary = await close_round(env)
    assert "1 voted so far (7)" in said and "set aside" not in said and deferred, (said, deferred)
    assert "1 voted (7)" in summary, summary
