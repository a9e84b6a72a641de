"""A stop (SIGTERM: CrowdtuneBot.close) while a press on the bot's buttons is being handled, on the real bot. Found by a
trial: the commands running at a stop were waited for and answered, but a press (a vote button, a Confirm) was not:
cut off by the HTTP session's close, its member was left with "This interaction failed" or no word of what it did.
Every interaction in flight at a stop finishes within the bound or is answered with the commands' restart words; one
that comes in as the bot stops is answered at once that nothing was changed."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, is_round, renderer, running  # noqa: F401 - fixtures
from test_questions import a_vote, button

from bot.discord import in_flight, views

pytestmark = pytest.mark.asyncio

CUT_SHORT = "Sorry, I am restarting and could not finish answering this; in a minute, /status shows whether it took effect."
REFUSED = "Sorry, I am restarting and could not finish this. Nothing was changed; please try again in a minute."


def vote_button(post: dict, value: str) -> str:
    return next(c["custom_id"] for row in post["components"] for c in row["components"] if c["custom_id"].endswith(f":{value}"))


async def buttons_round(env) -> dict:
    await (await env.server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
    await compose(env, rounds=2)
    return await env.server.wait_for_message(env.channel, is_round(1))


def votes_wait(monkeypatch, bot, until: asyncio.Event) -> asyncio.Event:
    """The bot's button votes made to wait for `until`; the event returned is set once a press waits there."""
    waiting, vote = asyncio.Event(), bot.runner.button_vote

    async def slow(*args, **kwargs):
        waiting.set()
        await until.wait()
        return await vote(*args, **kwargs)

    monkeypatch.setattr(bot.runner, "button_vote", slow)
    return waiting


def never_returns(monkeypatch, owner, name: str) -> asyncio.Event:
    """The coroutine method `owner.name` made to wait forever; the event returned is set once a call waits."""
    called = asyncio.Event()

    async def never(*args, **kwargs):
        called.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(owner, name, never)
    return called


async def pressed_while_held(env, bot, monkeypatch, user, command: str, label: str, held: str):
    """After a vote, `user`'s /`command` and its `label` pressed, once the press's work waits in the store's method
    `held`, which never returns: (the command's interaction, its question, the press)."""
    await a_vote(env)
    asked = await env.server.slash(user, env.channel, command)
    question = await asked.wait_original(lambda m: m["components"])
    waiting = never_returns(monkeypatch, bot.conductor.store, held)
    press = await env.server.press_button(user, question["id"], button(question, label))
    await waiting.wait()
    return asked, question, press


async def test_a_vote_press_cut_short_by_a_stop_is_answered_and_one_coming_in_then_is_refused(env, monkeypatch, caplog):
    monkeypatch.setattr(in_flight, "SHUTDOWN_GRACE", 0.3)  # the press below never finishes: the bound is what ends it
    caplog.set_level(logging.INFO)
    server = env.server
    async with running(env) as bot:
        post = await buttons_round(env)
        waiting = votes_wait(monkeypatch, bot, asyncio.Event())  # never set
        pressed = await server.press_button(env.alice, post["id"], vote_button(post, "7"))
        await waiting.wait()
        closing = asyncio.create_task(bot.close())
        await eventually(lambda: bot.in_flight.stopping, "the stop begun")
        late = await server.press_button(env.bob, post["id"], vote_button(post, "3"))  # as the bot stops
        refused = await late.wait_response()
        await closing
        answer = await pressed.wait_response()
    assert answer["data"]["content"] == CUT_SHORT and answer["data"]["flags"] & 64, answer
    assert refused["data"]["content"] == REFUSED and refused["data"]["flags"] & 64, refused
    assert db_rows(env, "SELECT COUNT(*) FROM votes") == [(0,)]  # the refused press changed nothing
    assert "1 press cut short by the stop" in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


async def test_a_vote_press_that_finishes_within_the_bound_gives_its_own_answer(env, monkeypatch):
    monkeypatch.setattr(in_flight, "SHUTDOWN_GRACE", 60.0)  # far more than it takes: the press finishes first
    server = env.server
    async with running(env) as bot:
        post = await buttons_round(env)
        go_on = asyncio.Event()
        waiting = votes_wait(monkeypatch, bot, go_on)
        pressed = await server.press_button(env.alice, post["id"], vote_button(post, "7"))
        await waiting.wait()
        closing = asyncio.create_task(bot.close())
        await eventually(lambda: bot.in_flight.stopping, "the stop begun")
        go_on.set()
        await closing
        answer = await pressed.wait_response()
    assert "Your rating: 7" in answer["data"]["content"], answer
    assert db_rows(env, "SELECT COUNT(*) FROM votes") == [(1,)]


async def test_a_confirm_press_whose_command_a_stop_cuts_short_is_answered(env, monkeypatch, caplog):
    """The press is carried on by its command's task (record, acknowledge, work): cut short before it was acknowledged,
    the press itself is answered, not left to Discord's "This interaction failed"."""
    monkeypatch.setattr(in_flight, "SHUTDOWN_GRACE", 0.3)
    monkeypatch.setattr(views, "RECORD_SECONDS", 60.0)  # the press waits for its record, which never comes
    caplog.set_level(logging.INFO)
    server = env.server
    async with running(env) as bot:
        _, _, press = await pressed_while_held(env, bot, monkeypatch, env.mod, "reset", "Reset the agent", "record_confirmed")
        await bot.close()
        answer = await press.wait_response()
    assert answer["data"]["content"] == CUT_SHORT and answer["data"]["flags"] & 64, answer
    assert db_rows(env, "SELECT COUNT(*) FROM confirmed_requests") == [(0,)]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


async def test_a_deletion_cut_short_by_a_stop_keeps_the_copy_of_the_person_s_data(env, monkeypatch):
    """A /forget-me whose Delete press a stop cuts short is carried out at the next start, and its outcome, filling in
    the question, says the copy of the person's data stays attached: it does (the edit removed it)."""
    monkeypatch.setattr(in_flight, "SHUTDOWN_GRACE", 0.3)
    server = env.server
    async with running(env) as bot:
        forget, question, _ = await pressed_while_held(env, bot, monkeypatch, env.alice, "forget-me", "Delete my data", "forget_user")
        await bot.close()
    assert [a["filename"] for a in server.message(question["id"])["attachments"]] == ["my-crowdtune-data.json"]
    async with running(env):  # the deletion is carried out, and its outcome fills in the question, the copy kept
        done = await forget.wait_original(lambda m: m["content"].startswith("Deleted"))
    assert done["content"].startswith("Deleted 1 vote on every server and in DMs; the copy of your data stays attached"), done
    assert [a["filename"] for a in done["attachments"]] == ["my-crowdtune-data.json"], done["attachments"]
