"""/stop and /close raced against the rounds and each other, through the real bot and the local Discord-compatible
server, the order fixed by gates (a held route, a held renderer, a barrier in the store), never by timing (found by a
trial: a round posted after "Session stopped", an acknowledged close thrown away by a /stop after it, duplicates
answered twice, a DM session that silently stopped)."""

from __future__ import annotations

import asyncio

import pytest
from test_discord_bot import KEYCAPS, compose, db_rows, drawer, env, eventually, final_answer, is_round, renderer, running  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio

POST_MESSAGE = "POST /channels/{channel_id}/messages"
EDIT_MESSAGE = "PATCH /channels/{channel_id}/messages/{message_id}"
REACTION_USERS = "GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}"
STOPPED_HERE = "Stopped; I said so in the channel."


def runner_idle(bot) -> bool:
    """Whether no session's rounds run any more in the bot (each ended its task)."""
    return all(task.done() for task in bot.runner._tasks.values())


async def test_a_stop_while_the_first_round_is_posted_marks_that_post_cancelled(env):
    """The trial's /stop right after /compose: "Session stopped after 0 rounds", then "**Round 1 of 2**" posted with
    its deadline, on which votes were silently ignored. The post already on its way is marked cancelled."""
    server = env.server
    async with running(env) as bot:
        server.hold(POST_MESSAGE)
        await compose(env, user=env.alice, rounds=2)
        await server.wait_until(lambda: server.held[POST_MESSAGE] >= 1, what="the round's post to be on its way")
        stopped = (await final_answer(await server.slash(env.alice, env.channel, "stop")))["content"]
        server.release(POST_MESSAGE)
        cancelled = await server.wait_for_message(env.channel, lambda m: m["content"].startswith("**Round 1"))
        await server.wait_until(lambda: "cancelled" in server.message(cancelled["id"])["content"], what="the post marked cancelled")
        await eventually(lambda: runner_idle(bot), "the session's rounds to end")
        status = (await final_answer(await server.slash(env.bob, env.channel, "status")))["content"]
    assert stopped == (
        "Session stopped after 0 rounds; what the agent learned is kept.\n"
        "Round 1 was being prepared: it is cancelled, and nobody will vote on it."
    ), stopped
    post = server.message(cancelled["id"])
    assert post["content"].startswith("**Round 1 of 2** (cancelled): "), post["content"]  # as every ended round's post (ended_post)
    assert post["content"].endswith(" The session was stopped, so votes on it do not count."), post["content"]
    assert post["components"] == [] and not post["reactions"]  # nothing to vote with
    assert [m for m in server.messages(env.channel) if "Voting closes" in m["content"]] == []
    assert status.startswith("No session is running here"), status
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "cancelled")]


def hold_method(monkeypatch, owner, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold every call of the coroutine method `owner.name` until the second event is set; the first is set once one
    waits."""
    reached, release = asyncio.Event(), asyncio.Event()
    method = getattr(owner, name)

    async def held(*args, **kwargs):
        reached.set()
        await release.wait()
        return await method(*args, **kwargs)

    monkeypatch.setattr(owner, name, held)
    return reached, release


def hold_rendering(env, monkeypatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold every rendering until the second event is set; the first is set once one waits."""
    return hold_method(monkeypatch, env.renderer, "render_async")


async def test_a_stop_while_the_first_round_is_rendered_posts_nothing(env, monkeypatch):
    server = env.server
    rendering, release = hold_rendering(env, monkeypatch)
    async with running(env) as bot:
        await compose(env, user=env.alice, rounds=2)
        await rendering.wait()
        stopped = (await final_answer(await server.slash(env.alice, env.channel, "stop")))["content"]
        release.set()
        await eventually(lambda: runner_idle(bot), "the session's rounds to end")
    assert "Round 1 was being prepared: it is cancelled" in stopped, stopped
    assert server.request_counts[POST_MESSAGE] == 0
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "cancelled")]


async def test_a_stop_while_the_next_round_is_planned_opens_no_round(env, monkeypatch):
    """A /stop between the check that the session runs and the round's record: the store opens no round for it."""
    async with running(env) as bot:
        store = bot.conductor.store
        next_round_index = store.next_round_index
        planned, release = hold_method(monkeypatch, store, "next_round_index")
        await compose(env, user=env.alice, rounds=2)
        await planned.wait()
        monkeypatch.setattr(store, "next_round_index", next_round_index)
        await (await env.server.slash(env.alice, env.channel, "stop")).wait_response()
        release.set()
        await eventually(lambda: runner_idle(bot), "the session's rounds to end")
    assert db_rows(env, "SELECT COUNT(*) FROM rounds") == [(0,)]
    assert env.server.request_counts[POST_MESSAGE] == 0


async def voted_round(env, *voters):
    await compose(env, user=env.alice, rounds=3)
    post = await env.server.wait_for_message(env.channel, is_round(1))
    await env.server.wait_until(lambda: len(env.server.message(post["id"])["reactions"]) == 10, what="the vote reactions")
    for number, voter in enumerate(voters):
        await env.server.react(voter, post["id"], KEYCAPS[5 + number])
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == len(voters), "the votes")
    return post


def said_in_order(env, *starts: str) -> list[str]:
    """The channel's messages (public ones: `messages` leaves out the ephemeral) that start with each of `starts`,
    one each, in the order they appear."""
    contents = [m["content"] for m in env.server.messages(env.channel)]
    found = [[c for c in contents if c.startswith(start)] for start in starts]
    assert all(len(f) == 1 for f in found), (found, contents)
    assert [contents.index(f[0]) for f in found] == sorted(contents.index(f[0]) for f in found), contents
    return [f[0] for f in found]


async def test_an_acknowledged_close_is_counted_before_a_stop_right_after_it(env):
    """The trial: "Closing this round now.", then another moderator's /stop said the round's 2 votes were not counted.
    The /close is answered once the close's re-read took the votes (test_close_kill.py): the /stop comes during it."""
    server = env.server
    async with running(env):
        await voted_round(env, env.bob, env.carol)
        server.hold(REACTION_USERS)  # the close's re-read of the reactions waits: the /stop comes during the close
        close = await server.slash(env.mod, env.channel, "close")
        await server.wait_until(lambda: server.held[REACTION_USERS] >= 1, what="the close to re-read the reactions")
        stop = await server.slash(env.alice, env.channel, "stop")
        first = await stop.wait_response()
        await close.wait_response()
        assert close.deferred and not server.missed_deadlines  # "thinking..." within Discord's 3 s while the re-read waits
        server.release(REACTION_USERS)
        closing = (await final_answer(close))["content"]
        assert (await final_answer(stop))["content"] == STOPPED_HERE
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
    summary, stopped = said_in_order(env, "**Round 1 closed**", "Session stopped")
    assert closing == "Closing this round now."
    assert first["type"] == 5 and stop.ephemeral  # it waits for the close, acknowledged privately (Discord's 3 s)
    assert stopped == (
        "Session stopped after 1 round; what the agent learned is kept.\n"
        "Round 1 was closing: it closed first, so its votes count (its result is above)."
    ), stopped
    assert "2 voted" in summary, summary
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]
    assert not any(is_round(2)(m) for m in server.messages(env.channel))


async def test_a_stop_while_the_closed_rounds_summary_is_on_its_way_is_said_after_it(env):
    """A trial's /close and /stop at once: the round closed before the /stop looked, and "Session stopped ... (its
    result is above)" came before the round's summary. The /stop waits for the summary of a round being closed,
    then says so publicly, below it."""
    server = env.server
    async with running(env):
        await voted_round(env, env.bob)
        server.hold(POST_MESSAGE)  # the round is closed and counted; its summary waits
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await eventually(lambda: db_rows(env, "SELECT status FROM rounds") == [("closed",)], "the close")
        await server.wait_until(lambda: server.held[POST_MESSAGE] >= 1, what="the summary on its way")
        stop = await server.slash(env.alice, env.channel, "stop")
        await stop.wait_response()
        server.release(POST_MESSAGE)
        private = (await final_answer(stop))["content"]
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
    summary, stopped = said_in_order(env, "**Round 1 closed**", "Session stopped")
    assert stopped == (
        "Session stopped after 1 round; what the agent learned is kept.\n"
        "Round 1 was closing: it closed first, so its votes count (its result is above)."
    ), stopped
    assert private == STOPPED_HERE and stop.ephemeral
    assert db_rows(env, "SELECT rounds_done, status FROM sessions") == [(1, "stopped")]


async def test_a_stop_that_waited_for_a_close_at_the_same_moment_is_said_publicly(env, monkeypatch):
    """The trial's other order: the /stop came while the /close held the session (so it was acknowledged privately)
    and its "Session stopped" went to the moderator alone. Members are told as for any /stop, below the summary."""
    server = env.server
    async with running(env) as bot:
        await voted_round(env, env.bob)
        store, closing, release = bot.conductor.store, asyncio.Event(), asyncio.Event()
        set_closes_at = store.set_closes_at

        async def held_close(round_id, at):
            closing.set()
            await release.wait()
            return await set_closes_at(round_id, at)

        monkeypatch.setattr(store, "set_closes_at", held_close)
        close = await server.slash(env.mod, env.channel, "close")
        await closing.wait()
        stop = await server.slash(env.alice, env.channel, "stop")
        await stop.wait_response()  # acknowledged while the /close holds the session
        release.set()
        assert (await final_answer(close))["content"] == "Closing this round now."
        private = (await final_answer(stop))["content"]
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
    _, stopped = said_in_order(env, "**Round 1 closed**", "Session stopped")
    assert stopped.endswith("Round 1 was closing: it closed first, so its votes count (its result is above)."), stopped
    assert private == STOPPED_HERE and stop.ephemeral


async def test_a_second_stop_while_the_first_waits_for_a_close_is_acknowledged_and_told(env):
    """The first /stop waits for the round's close (its reactions re-read, held here); a second one waits for the
    first, so it is acknowledged at once (Discord's 3 s), privately, and then told the session already ended."""
    server = env.server
    async with running(env):
        await voted_round(env, env.bob)
        server.hold(REACTION_USERS)
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await server.wait_until(lambda: server.held[REACTION_USERS] >= 1, what="the close to re-read the reactions")
        first = await server.slash(env.alice, env.channel, "stop")
        await first.wait_response()
        second = await server.slash(env.mod, env.channel, "stop")
        acknowledged = await second.wait_response()
        server.release(REACTION_USERS)
        answers = [(await final_answer(i))["content"] for i in (first, second)]
    assert acknowledged["type"] == 5 and second.ephemeral
    assert answers[0] == STOPPED_HERE, answers
    assert said_in_order(env, "Session stopped")[0].startswith("Session stopped after 1 round;")
    assert answers[1] == "This session has already ended (another `/stop`, or its last round); nothing was changed.", answers


async def test_two_closes_at_once_close_the_round_once_and_say_so(env):
    server = env.server
    async with running(env):
        await voted_round(env, env.bob)
        server.hold(REACTION_USERS)  # the close's re-read of the reactions waits: both come before the round closes
        both = [await server.slash(user, env.channel, "close") for user in (env.mod, env.alice)]
        for close in both:  # acknowledged ("thinking..."): the first is answered once the re-read took the votes
            await close.wait_response()
        server.release(REACTION_USERS)
        answers = sorted([(await final_answer(i))["content"] for i in both])
        await server.wait_for_message(env.channel, lambda m: "Round 1 closed" in m["content"])
    assert answers == ["Closing this round now.", "This round is already closing; its result follows."], answers


async def test_two_stops_at_once_stop_once_and_say_so(env, monkeypatch):
    """Both /stops find the session running (a barrier in the store lets neither go on before both have looked):
    one public "Session stopped", the other told privately that it already ended."""
    server = env.server
    async with running(env) as bot:
        await voted_round(env, env.bob)
        store, looked = bot.conductor.store, []
        active_session_in, both_looked = store.active_session_in, asyncio.Event()

        async def barrier(channel_id):
            session = await active_session_in(channel_id)
            looked.append(session)
            if len(looked) == 2:
                both_looked.set()
            await both_looked.wait()
            return session

        monkeypatch.setattr(store, "active_session_in", barrier)
        both = [await server.slash(user, env.channel, "stop") for user in (env.mod, env.alice)]
        answers = [await final_answer(i) for i in both]
    assert all(session is not None for session in looked)
    public = [a["content"] for a, i in zip(answers, both) if not i.ephemeral]
    private = [a["content"] for a, i in zip(answers, both) if i.ephemeral]
    assert len(public) == 1 and public[0].startswith("Session stopped after 1 round"), answers
    assert private == ["This session has already ended (another `/stop`, or its last round); nothing was changed."], answers
    assert len([m for m in server.messages(env.channel) if "Session stopped" in m["content"]]) <= 1


async def test_a_button_pressed_on_a_stopped_round_says_it_was_cancelled(env):
    """The trial's press on a stopped round was answered "This round has closed", as for a round that counted."""
    server = env.server
    async with running(env):
        await (await server.slash(env.mod, env.channel, "config", {"vote_style": "buttons"})).wait_response()
        await compose(env, user=env.alice, rounds=2)
        post = await server.wait_for_message(env.channel, is_round(1))
        server.hold(EDIT_MESSAGE)  # a press made before the post's edit (its buttons removed) reaches Discord
        await (await server.slash(env.alice, env.channel, "stop")).wait_response()
        seven = next(c["custom_id"] for row in post["components"] for c in row["components"] if c["custom_id"].endswith(":7"))
        reply = await (await server.press_button(env.bob, post["id"], seven)).wait_response()
        server.release(EDIT_MESSAGE)
        await server.wait_until(lambda: not server.message(post["id"])["components"], what="the post's buttons removed")
    assert reply["data"]["content"] == (
        "This round was cancelled (its session was stopped, or its message deleted); votes on it do not count."
    ), reply["data"]["content"]
    assert db_rows(env, "SELECT COUNT(*) FROM votes") == [(0,)]


async def test_a_dm_session_for_someone_whose_dms_are_closed_tells_them_and_stops(env):
    """The trial: /compose answered "The first round is coming up." and nothing came; only the log said 50007."""
    server = env.server
    shy = server.add_user("shy", accepts_dms=False)
    dm = server.dm_channel(shy)
    async with running(env) as bot:
        started = await server.slash(shy, dm, "compose", {"rounds": 1})
        await started.wait_response()
        [told] = await started.wait_followups(1)
        await eventually(lambda: runner_idle(bot), "the session's rounds to end")
    assert "I can't send you direct messages" in told["content"], told["content"]
    assert "`/compose`" in told["content"]
    assert db_rows(env, "SELECT status FROM sessions") == [("stopped",)]
    assert db_rows(env, "SELECT status FROM rounds") == [("cancelled",)]


async def test_a_dm_session_whose_dms_are_closed_tells_them_after_a_restart_too(env, monkeypatch):
    """The followup that tells the starter was kept in memory only: a restart before the first post (its 15 minutes
    not over) left the session stopped without a word. It is kept in the database until the session ends."""
    server = env.server
    shy = server.add_user("shy", accepts_dms=False)
    dm = server.dm_channel(shy)
    rendering, release = hold_rendering(env, monkeypatch)
    async with running(env):
        started = await server.slash(shy, dm, "compose", {"rounds": 1})
        await started.wait_response()
        await rendering.wait()  # the bot goes down before its first post
    release.set()
    async with running(env) as bot:
        [told] = await started.wait_followups(1)
        await eventually(lambda: runner_idle(bot), "the session's rounds to end")
    assert "I can't send you direct messages" in told["content"], told["content"]
    assert db_rows(env, "SELECT status FROM sessions") == [("stopped",)]
    assert db_rows(env, "SELECT COUNT(*) FROM deployment WHERE key LIKE 'followup:%'") == [(0,)]  # not kept past its session


async def test_a_stop_whose_round_closed_and_stopped_before_it_looked_is_told_it_stopped(env, monkeypatch):
    """Seen once on PostgreSQL: the /stop waiting for an acknowledged close read the open round only after the runner had
    closed it and stopped the session for that /stop, found none, stopped again and answered "already ended"."""
    server = env.server
    async with running(env) as bot:
        await voted_round(env, env.bob)
        store = bot.conductor.store
        open_round_of, stops = store.open_round_of, []

        async def late(session_id):  # the /stop's read, once it waits for the close (acknowledged): after the runner stopped it
            if stops and stops[0].response and not asyncio.current_task().get_name().startswith("session-"):
                await eventually(lambda: db_rows(env, "SELECT status FROM sessions") == [("stopped",)], "the runner's stop")
            return await open_round_of(session_id)

        monkeypatch.setattr(store, "open_round_of", late)
        server.hold(REACTION_USERS)  # the close waits until the /stop is in
        close = await server.slash(env.mod, env.channel, "close")
        await server.wait_until(lambda: server.held[REACTION_USERS] >= 1, what="the close to re-read the reactions")
        stop = await server.slash(env.alice, env.channel, "stop")
        stops.append(stop)
        await stop.wait_response()
        server.release(REACTION_USERS)
        closing = (await final_answer(close))["content"]
        assert (await final_answer(stop))["content"] == STOPPED_HERE
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
    assert closing == "Closing this round now."
    assert said_in_order(env, "Session stopped")[0].startswith("Session stopped after 1 round")
    assert db_rows(env, "SELECT idx, status FROM rounds") == [(0, "closed")]


async def test_a_close_at_the_same_moment_as_a_stop_that_won_is_told_the_session_ended(env, monkeypatch):
    """Trial 24 (s2): a /close sent with another moderator's /stop, the /stop first, was answered "No round is open
    right now." though the round was open when it was sent: it is told the session already ended (the /close is let
    on only once the /stop has stopped the session: a gate, not timing)."""
    server = env.server
    async with running(env) as bot:
        await voted_round(env, env.bob)
        cog, conductor, stopped = bot.get_cog("Sessions"), bot.conductor, asyncio.Event()
        may_steer, stop = cog._may_steer, conductor.stop

        async def stop_then_say(*args, **kwargs):
            result = await stop(*args, **kwargs)
            stopped.set()
            return result

        async def close_after_the_stop(interaction, session):
            allowed = await may_steer(interaction, session)
            if interaction.user.id == env.alice.id:  # the /close: it found the session running, and goes on after the stop
                await stopped.wait()
            return allowed

        monkeypatch.setattr(conductor, "stop", stop_then_say)
        monkeypatch.setattr(cog, "_may_steer", close_after_the_stop)
        close = await server.slash(env.alice, env.channel, "close")
        stop_answer = await final_answer(await server.slash(env.mod, env.channel, "stop"))
        close_answer = await final_answer(close)
    assert stop_answer["content"].startswith("Session stopped after"), stop_answer
    assert close_answer["content"] == "This session has already ended (another `/stop`, or its last round); nothing was changed.", close_answer
    assert db_rows(env, "SELECT status FROM rounds") == [("cancelled",)]


async def test_a_stop_says_the_votes_its_own_transaction_cancelled_also_when_one_is_struck_before_it_reports(env, monkeypatch):
    """A /strike of a voter commits after the /stop cancelled the round and before its report counted the round's votes
    (a strike voids their votes in rounds already over too). Before, the report counted after the stop, so it said 1 vote
    where the stop cancelled 2. It says what the stop's own transaction cancelled."""
    server = env.server
    async with running(env) as bot:
        await voted_round(env, env.bob, env.carol)
        counting, release = hold_method(monkeypatch, bot.runner.ballot_box, "count")
        stop = await server.slash(env.alice, env.channel, "stop")
        await counting.wait()  # the round is cancelled: its report is about to count its votes
        monkeypatch.undo()
        struck = (await final_answer(await server.slash(env.mod, env.channel, "strike", {"user": env.bob})))["content"]
        release.set()
        stopped = (await final_answer(stop))["content"]
    assert struck.startswith("Voided 1 vote"), struck
    assert db_rows(env, "SELECT COUNT(*) FROM votes WHERE voided = 0") == [(1,)]
    assert "Round 1 was still open: it is cancelled, and its 2 votes are not counted" in stopped, stopped


async def test_a_round_posted_after_a_stop_was_sent_is_said_to_be_so_and_not_counted_as_played(env, monkeypatch):
    """Found by a trial: a /stop 2 s after a /close read "Session stopped after 6 rounds (1 cancelled)... Round 6 was still
    open", of a round posted after the /stop was sent, which nobody could see when they asked to stop. As a /close does
    (Steering.seen_when_asked), a /stop takes a round posted after it was sent for one being prepared: cancelled, not
    counted as played, and said to have been posted after the /stop."""
    server = env.server
    async with running(env) as bot:
        await voted_round(env, env.bob)
        session_id = db_rows(env, "SELECT id FROM sessions")[0][0]
        rendering, release = hold_rendering(env, monkeypatch)  # round 2's track, once round 1 is closed
        await (await server.slash(env.mod, env.channel, "close")).wait_response()
        await rendering.wait()
        lock = bot.runner.steering.lock(session_id)
        await lock.acquire()  # the /stop is sent now, and handled once round 2 is posted
        stop = await server.slash(env.alice, env.channel, "stop")
        await stop.wait_response()
        release.set()
        round_two = await server.wait_for_message(env.channel, is_round(2))
        await eventually(lambda: db_rows(env, "SELECT message_ids FROM rounds WHERE idx = 1") == [(f'["{round_two["id"]}"]',)], "round 2's post recorded")
        assert int(round_two["id"]) > stop.id
        lock.release()
        await server.wait_until(lambda: any(m["content"].startswith("Session stopped") for m in server.messages(env.channel)))
    stopped = next(m["content"] for m in server.messages(env.channel) if m["content"].startswith("Session stopped"))
    assert stopped == (
        "Session stopped after 1 round; what the agent learned is kept.\n"
        "Round 2 was posted after the /stop was sent: it is cancelled, and it had no votes."
    ), stopped
    assert db_rows(env, "SELECT idx, status FROM rounds ORDER BY idx") == [(0, "closed"), (1, "cancelled")]
