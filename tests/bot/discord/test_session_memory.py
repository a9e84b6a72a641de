"""What the round runner holds in memory for a session (its task, the event that wakes it, its recount and /status's
wait for it) goes when the session ends, however it ends: its last round closed, a /stop, its runner stopping it when
Discord refuses its channel, a session resumed at a restart and then stopped; and a session resumed at a restart runs
its rounds as before. Found by a review: none of it was ever freed, so it grew with every session the process ever ran
(on the old code: 9 entries for the three sessions of the first run here, 4 for the resumed one)."""

from __future__ import annotations

import pytest
from test_discord_bot import compose, db_rows, drawer, env, eventually, final_answer, renderer, running  # noqa: F401 - fixtures

pytestmark = pytest.mark.asyncio


def held(bot) -> int:
    """How many entries the runner holds for sessions: their tasks, wake events, recounts, /status's recount waits."""
    runner = bot.runner
    return len(runner._tasks) + len(runner.sessions._wake) + len(runner.recounts._pending) + len(runner.recounts._wait_ends)


def status_of(env, channel) -> str | None:
    rows = db_rows(env, "SELECT status FROM sessions WHERE channel_id = ?", (str(channel.id),))
    return rows[-1][0] if rows else None


async def posted(env, channel) -> None:
    """The open round of the channel's session is posted and recorded (so a /close or /stop acts on it)."""
    await eventually(
        lambda: db_rows(
            env, "SELECT COUNT(*) FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE s.channel_id = ? AND r.status = 'open' AND r.message_ids != '[]'",
            (str(channel.id),),
        )[0][0] == 1, f"a round recorded in {channel.name}",
    )


async def ended(env, bot, channel, status: str) -> None:
    await eventually(lambda: status_of(env, channel) == status, f"the session in {channel.name} {status}")
    await eventually(lambda: all(task.done() for task in bot.runner._tasks.values()), "its runner to end")


async def test_every_way_a_session_ends_frees_what_the_runner_held_for_it(env):
    from fakediscord.world import Permission

    server = env.server
    stopped_here, refused = (server.add_text_channel(env.guild, name) for name in ("stopped", "refused"))
    async with running(env) as bot:
        # Its one round closed: the session finished.
        await compose(env, rounds=1)
        await posted(env, env.channel)
        await final_answer(await server.slash(env.mod, env.channel, "close"))
        await ended(env, bot, env.channel, "finished")
        # Stopped by a /stop.
        await compose(env, channel=stopped_here, rounds=3)
        await posted(env, stopped_here)
        await final_answer(await server.slash(env.mod, stopped_here, "stop"))
        await ended(env, bot, stopped_here, "stopped")
        # Discord refuses its channel (Send Messages denied): its runner stops it after the close.
        await compose(env, channel=refused, rounds=3)
        await posted(env, refused)
        server.set_permissions(refused, server.bot_user, deny=int(Permission.SEND_MESSAGES))
        await final_answer(await server.slash(env.mod, refused, "close"))
        await ended(env, bot, refused, "stopped")
        # /status asking for an ended session's recount: done, nothing waited for, nothing held for it.
        sessions = [i for (i,) in db_rows(env, "SELECT id FROM sessions")]
        assert [await bot.runner.recounts.recounted(i) for i in sessions] == [True, True, True]
        assert not any(bot.runner.recounts.recounting(i) for i in sessions)
        assert held(bot) == 0
        # A session still running when the bot stops.
        await compose(env, rounds=3)
        await posted(env, env.channel)
    async with running(env) as bot:
        # Resumed at the restart: its round recounted, closed by a /close, its next round posted; then stopped.
        [(resumed,)] = db_rows(env, "SELECT id FROM sessions WHERE status = 'active'")
        assert await bot.runner.recounts.recounted(resumed)
        assert bot.runner.sessions.running(resumed)
        await final_answer(await server.slash(env.mod, env.channel, "close"))
        await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM rounds WHERE session_id = ? AND idx = 1 AND message_ids != '[]'", (resumed,))[0][0] == 1, "round 2 recorded")
        await final_answer(await server.slash(env.mod, env.channel, "stop"))
        await ended(env, bot, env.channel, "stopped")
        assert await bot.runner.recounts.recounted(resumed)
        assert held(bot) == 0
    assert db_rows(env, "SELECT session_id, idx, status FROM rounds ORDER BY session_id, idx") == [
        (sessions[0], 0, "closed"), (sessions[1], 0, "cancelled"), (sessions[2], 0, "closed"),
        (resumed, 0, "closed"), (resumed, 1, "cancelled"),
    ]
