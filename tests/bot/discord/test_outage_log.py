"""Discord unreachable while a round runs (the local server stops listening: each connection refused), on the real bot:
the round's retries are expected, not a bug. Found by a trial: every 5 s the bot logged "round failed; retrying" with a
~60-line aiohttp traceback (777 lines in a minute, for one session). The retries are counted, not timed: the test waits
for many of them, then brings the server back and the round goes on."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, is_round, renderer, round_recorded, running  # noqa: F401

from bot.discord import runner as runner_module
from bot.discord.outage import Outage, RetryLog, is_outage, reason, say_failure

MESSAGES = "POST /channels/{channel_id}/messages"
TRIES = 25  # failed tries the outage lasts for: far more than the lines it may log


SESSIONS = 3  # sessions (each a server's channel) that an outage stops at once


@pytest.mark.asyncio
async def test_an_outage_is_one_warning_for_the_process_however_many_sessions_wait_then_works_again_once(env, monkeypatch, caplog):
    """Found by a review: the log was throttled per session, so 100 servers gave 100 warnings as an outage began and 100
    "still failing" lines a minute; an outage is the process's, one warning naming how many sessions wait."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)  # many retries soon; how many is what is counted
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    channels = [env.channel, *(env.server.add_text_channel(env.guild, f"music-{n}") for n in range(1, SESSIONS))]
    async with running(env) as bot:
        for channel in channels:
            await compose(env, channel=channel, rounds=3)
        for channel in channels:
            post = await env.server.wait_for_message(channel, is_round(1))
            await env.server.react(env.alice, post["id"], KEYCAPS[6])
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == SESSIONS, "alice's votes")
        await eventually(lambda: all(ids != "[]" for (ids,) in db_rows(env, "SELECT message_ids FROM rounds")), "rounds recorded")
        tries = []  # what each try of a close's re-read of the reactions raised
        reconcile = bot.runner.reconciler.reconcile

        async def counted(*args, **kwargs):
            try:
                return await reconcile(*args, **kwargs)
            except Exception as problem:
                tries.append(problem)
                raise

        monkeypatch.setattr(bot.runner.reconciler, "reconcile", counted)
        await env.server.go_down()
        rounds = db_rows(env, "SELECT session_id, id FROM rounds")
        assert len(rounds) == SESSIONS
        for session_id, round_id in rounds:  # their time is up: each close re-reads the reactions
            assert await bot.runner.store.set_closes_at(round_id, time.time())
            bot.runner.wake(session_id)
        await eventually(lambda: len(tries) >= TRIES * SESSIONS, f"{TRIES * SESSIONS} failed tries", timeout=120)
        await env.server.come_back()
        for channel in channels:  # each round closed; the next is posted
            await env.server.wait_for_message(channel, is_round(2), timeout=60)
    assert all(is_outage(problem) for problem in tries), [reason(p) for p in tries]
    said = [r for r in caplog.records if r.name == "crowdtune.rounds"]
    assert not [r for r in said if r.exc_info], caplog.text  # no traceback for an outage
    warnings = [r.getMessage() for r in said if r.levelno >= logging.WARNING]
    # One line for the outage (its reason: class and message), however many sessions wait and none for each of their
    # retries; a line every minute, for them all, only if it lasted one.
    began = [w for w in warnings if "cannot reach Discord" in w]
    assert len(began) == 1 and len(warnings) <= 1 + len(tries) // (10 * SESSIONS), warnings
    assert warnings[0].startswith("cannot reach Discord (") and f"; {SESSIONS} running sessions wait for it" in warnings[0], warnings
    assert "Error" in warnings[0] and env.server.bot_token not in caplog.text
    assert len([r for r in said if "works again" in r.getMessage()]) == 1, caplog.text
    assert db_rows(env, "SELECT idx, status, COUNT(*) FROM rounds GROUP BY idx, status ORDER BY idx") == [(0, "closed", SESSIONS), (1, "open", SESSIONS)]


def test_a_bug_keeps_its_traceback_once_and_a_long_one_is_said_again_each_minute(monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    retries = RetryLog(logging.getLogger("crowdtune.rounds"), "session 1's round", Outage(logging.getLogger("crowdtune.rounds"), 5.0, lambda: 1))
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    for _ in range(30):  # a bug, every 5 s for 150 s
        try:
            raise KeyError("x")
        except KeyError as problem:
            retries.failed(problem)
        clock[0] += 5.0
    retries.failed(ConnectionResetError("reset by peer"))  # another kind: said at once
    retries.worked()
    lines = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    assert lines[0] == ("ERROR", "session 1's round failed; retrying every 5 s", True)
    assert [line[1].split(" (")[0] for line in lines[1:3]] == [
        "session 1's round: still failing after 13 tries in 60 s", "session 1's round: still failing after 25 tries in 120 s",
    ]
    assert lines[3][:2] == ("WARNING", "cannot reach Discord (ConnectionResetError: reset by peer); 1 running session waits "
                                       "for it, each retrying every 5 s; said again each minute while it lasts")
    assert lines[4][1] == "Discord works again, after 1 failed try in 0 s" and len(lines) == 5
    assert reason(OSError("POST https://discord.com/api/v10/webhooks/1/SECRET failed")) == "OSError: POST https://discord.com failed"


def test_a_long_outage_is_said_each_minute_for_every_session_at_once_and_a_bug_in_one_keeps_its_traceback(monkeypatch, caplog):
    """Counted on a clock of our own: three sessions fail every 5 s for 150 s, as in an outage; one then hits a bug."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    log = logging.getLogger("crowdtune.rounds")
    outage = Outage(log, 5.0, lambda: SESSIONS)
    sessions = [RetryLog(log, f"session {n}'s round", outage) for n in range(1, SESSIONS + 1)]
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    for _ in range(30):
        for retries in sessions:
            retries.failed(aiohttp.ServerDisconnectedError())
        clock[0] += 5.0
    try:
        raise KeyError("x")
    except KeyError as problem:
        sessions[1].failed(problem)  # session 2 reached Discord, and a bug: its own traceback
    for retries in sessions:
        retries.worked()
    lines = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    assert [line[1].split(" (")[0] for line in lines[:3]] == [
        "cannot reach Discord", "still cannot reach Discord after 60 s", "still cannot reach Discord after 120 s",
    ], lines
    assert lines[0][1].endswith(f"; {SESSIONS} running sessions wait for it, each retrying every 5 s; said again each minute while it lasts")
    assert lines[1][1].endswith(f": {SESSIONS} sessions wait, {12 * SESSIONS + 1} tries failed; retrying")
    assert lines[3] == ("ERROR", "session 2's round failed; retrying every 5 s", True)
    assert lines[4][1] == "session 2's round works again, after 1 failed try in 0 s"
    assert lines[5][1] == f"Discord works again, after {30 * SESSIONS} failed tries in 150 s" and len(lines) == 6


@pytest.mark.asyncio
async def test_a_command_that_cannot_reach_discord_is_one_warning_and_a_bug_keeps_its_traceback(env, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="crowdtune.bot")
    async with running(env) as bot:
        async def unreachable(*args, **kwargs):  # what a request the command makes raises when Discord's side drops it
            raise aiohttp.ServerDisconnectedError()

        monkeypatch.setattr(bot.conductor.store, "create_session", unreachable)
        answer = await compose(env)
        assert "Discord did not answer me" in answer["data"]["content"] and answer["data"]["flags"] & 64
        monkeypatch.setattr(bot.conductor.store, "create_session", lambda *args, **kwargs: {}["bug"])
        answer = await compose(env)
        assert "something went wrong on my side" in answer["data"]["content"]
    said = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records if r.name == "crowdtune.bot" and r.levelno >= logging.WARNING]
    assert said == [
        ("WARNING", "command /compose: cannot reach Discord (ServerDisconnectedError: Server disconnected)", False),
        ("ERROR", "command /compose failed", True),
    ]


@pytest.mark.asyncio
async def test_a_round_whose_post_is_retried_is_rendered_and_drawn_once(env, monkeypatch):
    """Found by a review: while Discord refused the post (a 503: an outage on its side), every 5 s retry rendered the
    round's audio with FluidSynth and drew its piano roll again; what the round posts is the same each time."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    made = {"render": 0, "draw": 0}

    def counting(name: str, make):
        async def counted(*args, **kwargs):
            made[name] += 1
            return await make(*args, **kwargs)
        return counted

    monkeypatch.setattr(env.renderer, "render_async", counting("render", env.renderer.render_async))
    monkeypatch.setattr(env.drawer, "piano_roll", counting("draw", env.drawer.piano_roll))
    refused = 3  # tries of the post that Discord refuses (503: discord.py does not retry it itself)
    async with running(env):
        env.server.fail(MESSAGES, count=refused, status=503)
        await compose(env, rounds=3, mode="ab")
        await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        assert env.server.request_counts[MESSAGES] == refused + 1
    # An A/B round: both edits and the track before rendered, both edits drawn; once, not at each of the 4 tries.
    assert made == {"render": 3, "draw": 2}
    assert len([m for m in env.server.messages(env.channel) if is_round(1)(m)]) == 1
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "open")]


OWN_REACTION = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"


async def refuses_connections(server) -> bool:
    """Whether the server's port refuses a new connection (go_down has stopped listening)."""
    try:
        _, writer = await asyncio.open_connection(server.host, server.port)
    except OSError:
        return True
    writer.close()
    return False


@pytest.mark.asyncio
async def test_the_vote_reactions_cut_off_by_an_outage_are_retried_and_counted_in_the_outage_log(env, monkeypatch, caplog):
    """Found by a trial: an outage just after a round was posted, while the bot added its 1️⃣-🔟, left the round without
    them for its whole hour (only a restart put them back), and the log had "Task exception was never retrieved" with
    the connection error's traceback. Every background step that asks Discord retries an outage as the rounds do."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    caplog.set_level(logging.INFO)
    async with running(env) as bot:
        env.server.hold(OWN_REACTION)
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await env.server.wait_until(lambda: env.server.held[OWN_REACTION] or None, what="a reaction held")
        down = asyncio.ensure_future(env.server.go_down())  # its shutdown waits for the held request
        while not await refuses_connections(env.server):
            await asyncio.sleep(0.02)
        env.server.release(OWN_REACTION)
        await down
        await eventually(lambda: bot.runner.outage.tries >= TRIES, f"{TRIES} failed tries of the reactions")
        await env.server.come_back()
        bot_id = env.server.bot_user.id
        mine = lambda: [e for e, users in env.server.message(post["id"])["reactions"].items() if bot_id in users]  # noqa: E731
        await env.server.wait_until(lambda: len(mine()) == len(KEYCAPS) or None, what="all ten vote reactions")
        assert mine() == KEYCAPS  # in their order
        await eventually(lambda: not bot.runner.outage.waiting, "the bot's side of the last reaction")
    assert "never retrieved" not in caplog.text, caplog.text
    said = [r for r in caplog.records if r.name.startswith("crowdtune") and r.levelno >= logging.WARNING]
    assert not [r for r in said if r.exc_info], caplog.text
    assert [r.getMessage().split(" (")[0] for r in said] == ["cannot reach Discord"], caplog.text
    assert len([r for r in caplog.records if r.getMessage().startswith("Discord works again")]) == 1, caplog.text


EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"


@pytest.mark.asyncio
async def test_a_stopped_rounds_post_whose_edit_discord_refused_is_retried_and_works_again_is_said_only_once_it_worked(env, monkeypatch, caplog):
    """Found by a trial: after a /stop during an outage, the round's post was edited into a cancelled one's only ~67 s
    later (discord.py's reconnect), looking open and votable meanwhile: the runner, finding its session ended, gave up
    on the outbox and said "works again" while Discord was still out. Its edit is retried like the rest of its work."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    async with running(env) as bot:
        await compose(env, rounds=2)
        post = await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        env.server.fail(EDIT, count=TRIES, status=503)  # Discord's side fails: discord.py does not retry a 503 itself
        await (await env.server.slash(env.mod, env.channel, "stop")).wait_response()
        await env.server.wait_until(lambda: "(cancelled)" in env.server.message(post["id"])["content"] or None, what="the edit")
        assert env.server.request_counts[EDIT] == TRIES + 1
        await eventually(lambda: bot.runner.outage.tries and not bot.runner.outage.waiting, "the bot's side of the edit")
    again = [r.getMessage() for r in caplog.records if "works again" in r.getMessage() or "waits for Discord" in r.getMessage()]
    assert again == [f"Discord works again, after {TRIES} failed tries in {again[0].split(' in ')[1]}"], caplog.text


@pytest.mark.asyncio
async def test_a_background_step_that_fails_is_said_as_it_ends_an_outage_in_one_line_a_bug_with_its_traceback(caplog):
    """Else asyncio says "Task exception was never retrieved" (with the traceback, at garbage collection), and nothing
    says what was left undone."""
    async def unreachable():
        raise aiohttp.ServerDisconnectedError()

    async def bug():
        raise KeyError("x")

    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    for step in (unreachable, bug):
        task = asyncio.create_task(step(), name=step.__name__)
        task.add_done_callback(lambda t: say_failure(logging.getLogger("crowdtune.rounds"), t))
        await asyncio.gather(task, return_exceptions=True)
    lines = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    assert lines == [
        ("WARNING", "unreachable was not done: cannot reach Discord (ServerDisconnectedError: Server disconnected)", False),
        ("ERROR", "bug failed", True),
    ]


def said(server, channel, start: str) -> list[str]:
    return [m["content"] for m in server.messages(channel) if m["content"].startswith(start)]


@pytest.mark.asyncio
async def test_the_session_finished_line_cut_off_by_an_outage_is_posted_once_it_ends_and_once(env, monkeypatch):
    """Found by a review: "Session finished after N rounds" was sent directly, not through the outbox, so an outage as
    its last round's summary had just been posted lost it (the runner's retry found the session ended, nothing queued).
    It is queued with the close, as the summary is, and posted from the outbox: once the outage ends, and once (a
    restart after it posts nothing again)."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    server = env.server
    async with running(env) as bot:
        await compose(env, rounds=1)
        await server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        server.hold(MESSAGES)
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_until(lambda: server.held[MESSAGES] or None, what="the summary on its way")
        down = asyncio.ensure_future(server.go_down())  # its shutdown waits for the held request: the summary
        while not await refuses_connections(server):
            await asyncio.sleep(0.02)
        server.release(MESSAGES)
        await down
        # Retried while Discord is out (before: the session's runner ended after one failed try, the line lost).
        ended = lambda: all(task.done() for task in bot.runner._tasks.values())  # noqa: E731
        await eventually(lambda: bot.runner.outage.tries >= 3 or ended(), "3 failed tries, or the session's runner ended")
        assert not said(server, env.channel, "Session finished")
        await server.come_back()
        await server.wait_for_message(env.channel, lambda m: m["content"].startswith("Session finished"))
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM announcements WHERE sent_at IS NULL") == [(0,)], "the outbox sent")
    async with running(env):
        pass
    assert said(server, env.channel, "Session finished") == ["Session finished after 1 round. Use `/top` to hear the best."]
    assert len(said(server, env.channel, "**Round 1 closed**")) == 1


@pytest.mark.asyncio
async def test_a_stop_mid_outage_says_the_waiting_ended_because_the_bot_stopped_not_as_if_discord_were_back(env, monkeypatch, caplog):
    """Found by a trial: SIGTERM during an outage logged "no session waits for Discord any more, after 2 failed tries
    in 6 s", which reads as recovery. The last line of the outage says the bot stopped with Discord not reached."""
    monkeypatch.setattr(runner_module, "RETRY_AFTER_ERROR", 0.02)
    caplog.set_level(logging.INFO, logger="crowdtune.rounds")
    async with running(env) as bot:
        await compose(env, rounds=2)
        await env.server.wait_for_message(env.channel, is_round(1))
        await round_recorded(env, 1)
        env.server.fail(MESSAGES, count=10**6, status=503)  # every post fails: the round's summary waits for Discord
        await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: bot.runner.outage.tries >= 2, "2 failed tries")
    ended = [r.getMessage() for r in caplog.records if "waits for Discord" in r.getMessage() or "waiting for Discord" in r.getMessage()]
    assert len(ended) == 1 and ended[0].startswith("stopped waiting for Discord as the bot stops"), caplog.text
    assert "works again" not in caplog.text, caplog.text
