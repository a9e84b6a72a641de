"""The Confirm questions of /forget-me and /reset, through the real bot and the local Discord-compatible server.

Found by a fresh-user trial: the question waited 120 s, then said nothing; a press after that, or after a restart
of the bot, was never answered (Discord: "This interaction failed"), and the question kept its live-looking buttons
with no hint to run the command again. Now the question says when it expired, and a late press is answered with
how to be asked again, changing nothing; so is a press on the buttons of a question an earlier version asked."""

from __future__ import annotations

import asyncio
import logging
import time

import discord
import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, is_round, renderer, running, uid  # noqa: F401 - fixtures

from bot.discord.views import ALREADY_BEING_DONE, UNKNOWN_COMPONENT
from storage import ConfirmedRequest

pytestmark = pytest.mark.asyncio

ORIGINAL = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"  # the question's edits


def button(message: dict, label: str) -> str:
    return next(c["custom_id"] for row in message["components"] for c in row["components"] if c["label"] == label)


async def a_vote(env) -> None:
    """Alice votes once and the round closes, so /forget-me has something to delete and /reset something to forget
    (both ask: the paper preset learns Q-values from a first round)."""
    await (await env.server.slash(env.mod, env.channel, "config", {"preset": "paper"})).wait_response()
    await compose(env, rounds=5)
    post = await env.server.wait_for_message(env.channel, is_round(1))
    await env.server.react(env.alice, post["id"], KEYCAPS[2])
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == 1, "vote")
    await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds WHERE status = 'closed'")[0][0] == 1, "the close")


async def late_press(env, user, question: dict, label: str) -> dict:
    """Press `label` on `question` when the bot no longer waits for it: the answer it gets, at once (not Discord's
    "This interaction failed" after 3 s)."""
    press = await env.server.press_button(user, question["id"], button(question, label))
    await env.server.wait_until(lambda: press.callbacks or press.missed_deadline, what="an answer or the deadline")
    assert not press.missed_deadline, "the press was left unanswered"
    return press.response


def says_expired(answer: dict, command: str) -> bool:
    """Whether a late press's answer turns the question into "expired", without its buttons (UPDATE_MESSAGE)."""
    text = f"This question has expired, so nothing was changed. Run /{command} to be asked again."
    return answer["type"] == 7 and answer["data"]["content"] == text and answer["data"]["components"] == answer["data"]["attachments"] == []


async def test_a_question_left_unanswered_says_it_expired_and_a_later_press_changes_nothing(env):
    server = env.server
    async with running(env) as bot:
        bot.question_seconds = 0.05  # in place of 120 s
        await a_vote(env)

        reset = await server.slash(env.mod, env.channel, "reset")
        ended = await reset.wait_original(lambda m: "expired" in m["content"])
        assert ended["content"] == "This question expired unanswered. Nothing was reset. Run /reset to be asked again."
        assert ended["components"] == []

        # The expiry's edit is refused (the question's first edit is held past the fault, so the fault is the
        # expiry's): the buttons stay, and a press on them must still be answered.
        edits = server.request_counts[ORIGINAL]
        server.hold(ORIGINAL)
        forget = await server.slash(env.alice, env.channel, "forget-me")
        await server.wait_until(lambda: server.held[ORIGINAL] == 1, what="the question held")
        server.fail(ORIGINAL, status=404, code=10008, message="Unknown Message")
        server.release(ORIGINAL)
        question = await forget.wait_original()
        await server.wait_until(lambda: server.request_counts[ORIGINAL] == edits + 2, what="the expiry's edit tried")
        assert question["components"] and question["attachments"]
        answer = await late_press(env, env.alice, question, "Delete my data")
        assert says_expired(answer, "forget-me"), answer
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(1,)]
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action IN ('reset', 'forget_me')") == [(0,)]


async def test_a_question_asked_before_a_restart_is_answered_after_it_and_changes_nothing(env):
    server = env.server
    async with running(env) as bot:
        # A question as an earlier version posted it: discord.py's random custom ids, which no restart can know.
        earlier = discord.ui.View(timeout=120)
        earlier.add_item(discord.ui.Button(label="Delete my data", style=discord.ButtonStyle.danger))
        earlier_question = await bot.get_channel(env.channel.id).send("Delete it all?", view=earlier)
        await a_vote(env)
        forget = await server.slash(env.alice, env.channel, "forget-me")
        forgetting = await forget.wait_original()
        reset = await server.slash(env.mod, env.channel, "reset")
        resetting = await reset.wait_original()
        # A shutdown that cannot reach Discord (here: the expiry's edits refused) leaves the buttons on the questions.
        server.fail(ORIGINAL, count=2, status=404, code=10008, message="Unknown Message")
    async with running(env):
        answer = await late_press(env, env.alice, forgetting, "Delete my data")
        assert says_expired(answer, "forget-me"), answer
        answer = await late_press(env, env.mod, resetting, "Reset the agent")
        assert says_expired(answer, "reset"), answer
        assert server.message(forgetting["id"])["components"] == []  # nothing left that looks as if it worked
        answer = await late_press(env, env.alice, server.message(earlier_question.id), "Delete my data")
        assert answer["type"] == 4 and answer["data"]["flags"] & 64 and answer["data"]["content"] == UNKNOWN_COMPONENT, answer
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(1,)]
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action IN ('reset', 'forget_me')") == [(0,)]


async def test_a_clean_shutdown_marks_open_questions_expired(env):
    """Before: at a clean shutdown (SIGTERM, bot.close) the open questions kept their live-looking buttons and words
    until a press after the restart. Now each is edited to say it expired, as one whose time ran out."""
    server = env.server
    async with running(env):
        await a_vote(env)
        forget = await server.slash(env.alice, env.channel, "forget-me")
        reset = await server.slash(env.mod, env.channel, "reset")
        questions = [await forget.wait_original(lambda m: m["components"]), await reset.wait_original(lambda m: m["components"])]
    forgetting, resetting = (server.message(question["id"]) for question in questions)
    assert forgetting["content"] == "This question expired as the bot shut down. Nothing was deleted. Run /forget-me to be asked again."
    assert resetting["content"] == "This question expired as the bot shut down. Nothing was reset. Run /reset to be asked again."
    assert forgetting["components"] == forgetting["attachments"] == resetting["components"] == []
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(1,)]
    assert db_rows(env, "SELECT COUNT(*) FROM audit WHERE action IN ('reset', 'forget_me')") == [(0,)]


async def test_a_second_press_while_the_first_is_carried_out_says_so(env):
    """Before: a second press on "Delete my data" (or on Cancel) while the deletion of the first was under way was
    answered "This question has expired" (and the question turned into that, until the outcome replaced it)."""
    server = env.server
    async with running(env) as bot:
        await a_vote(env)
        store = bot.conductor.store
        forget_user, deleting, release = store.forget_user, asyncio.Event(), asyncio.Event()

        async def held(*args, **kwargs):
            deleting.set()
            await release.wait()
            return await forget_user(*args, **kwargs)

        store.forget_user = held
        forget = await server.slash(env.alice, env.channel, "forget-me")
        question = await forget.wait_original(lambda m: m["components"])
        first = await server.press_button(env.alice, question["id"], button(question, "Delete my data"))
        assert (await first.wait_response())["type"] == 6  # acknowledged; the question shows the outcome when done
        await deleting.wait()
        answers = [await late_press(env, env.alice, question, label) for label in ("Delete my data", "Cancel")]
        release.set()
        outcome = await forget.wait_original(lambda m: not m["components"])
    for answer in answers:
        assert answer["type"] == 4 and answer["data"]["flags"] & 64, answer  # privately, the question left as it is
        assert answer["data"]["content"] == ALREADY_BEING_DONE, answer
    assert outcome["content"].startswith("Deleted 1 vote"), outcome["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(0,)]


async def test_a_confirmed_question_cut_short_by_a_crash_is_carried_out_at_the_next_start(env):
    """Found by a fresh-user trial: a crash (SIGKILL) right after a member pressed "Delete my data" (or "Reset the
    agent"), acknowledged by Discord, dropped the request: nothing deleted, the question kept its live buttons, nobody
    told. Now the press is recorded before it is acknowledged, and the next start carries it out and says so in the
    question. The crash: the work is held where it would write, and the bot's tasks end there (no Exception)."""
    server = env.server
    async with running(env) as bot:
        await a_vote(env)
        store, held = bot.conductor.store, []

        def hold(name: str) -> None:
            async def never(*args, **kwargs):
                held.append(asyncio.current_task())
                await asyncio.Event().wait()

            setattr(store, name, never)

        hold("forget_user")
        hold("reset_scope")
        forget = await server.slash(env.alice, env.channel, "forget-me")
        reset = await server.slash(env.mod, env.channel, "reset")
        for command, user, label in ((forget, env.alice, "Delete my data"), (reset, env.mod, "Reset the agent")):
            question = await command.wait_original(lambda m: m["components"])
            press = await server.press_button(user, question["id"], button(question, label))
            assert (await press.wait_response())["type"] == 6  # acknowledged: the member is told it is under way
        await eventually(lambda: len(held) == 2, "both held where they write")
        for task in held:
            task.cancel()  # the process dies here
    assert db_rows(env, "SELECT command FROM confirmed_requests ORDER BY confirmed_at") == [("forget-me",), ("reset",)]
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(1,)]
    async with running(env):
        forgotten = await forget.wait_original(lambda m: not m["components"])
        was_reset = await reset.wait_original(lambda m: not m["components"])
    assert forgotten["content"].startswith("Deleted 1 vote"), forgotten["content"]
    # The copy of the person's data stays with the outcome: theirs to keep once the data is gone.
    assert [a["filename"] for a in forgotten["attachments"]] == ["my-crowdtune-data.json"], forgotten["attachments"]
    assert was_reset["content"] == "The agent is reset: it starts learning afresh from the next round.", was_reset["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voter = ?", (uid(env.alice),)) == [(0,)]
    assert db_rows(env, "SELECT action FROM audit WHERE action IN ('reset', 'forget_me') ORDER BY id") == [("forget_me",), ("reset",)]
    assert db_rows(env, "SELECT COUNT(*) FROM qvalues") + db_rows(env, "SELECT COUNT(*) FROM models") == [(0,), (0,)]
    assert db_rows(env, "SELECT COUNT(*) FROM confirmed_requests") == [(0,)]


async def test_a_press_on_a_question_whose_confirmed_work_is_still_recorded_says_it_is_being_carried_out(env):
    """A question confirmed before a crash keeps its buttons until the next start has carried it out: a press on it
    meanwhile is told that, not that it expired (which would say nothing was changed)."""
    server = env.server
    async with running(env):
        await a_vote(env)
        forget = await server.slash(env.alice, env.channel, "forget-me")
        question = await forget.wait_original(lambda m: m["components"])
        server.fail(ORIGINAL, status=404, code=10008, message="Unknown Message")  # its buttons stay after the shutdown
    async with running(env) as bot:
        # As a crash leaves it: recorded, not carried out (the start's pass over the records has been made).
        data = {"user": env.alice.id, "application_id": 1, "token": "t"}
        await bot.conductor.store.record_confirmed(ConfirmedRequest(str(forget.id), "forget-me", str(env.guild.id), data, 1.0))
        answer = await late_press(env, env.alice, question, "Delete my data")
    assert answer["type"] == 4 and answer["data"]["flags"] & 64 and answer["data"]["content"] == ALREADY_BEING_DONE, answer


async def test_a_confirmed_request_of_a_copied_database_is_carried_out_without_its_token(env, caplog):
    """`crowdtune copy-db` leaves a confirmed request's interaction token out (a secret): a start on the copy carries
    the request out all the same, and only its question is not edited (a KeyError on the token stopped the pass)."""
    async with running(env) as bot:
        await a_vote(env)
        scope = db_rows(env, "SELECT scope_id FROM sessions")[0][0]
        data = {"user": env.mod.id, "application_id": 1, "scope": scope}  # as the copy holds it: no "token"
        await bot.conductor.store.record_confirmed(ConfirmedRequest("99", "reset", str(env.guild.id), data, time.time()))
    caplog.set_level(logging.INFO, logger="crowdtune.bot")
    async with running(env):  # its pass ends with the line (the database's commit comes before it)
        await eventually(lambda: any("cannot be edited" in r.getMessage() for r in caplog.records), "the request carried out, said")
    assert db_rows(env, "SELECT action FROM audit WHERE action = 'reset'") == [("reset",)]
    assert db_rows(env, "SELECT COUNT(*) FROM confirmed_requests") == [(0,)]
