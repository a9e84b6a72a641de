"""What a command that changes a session's, a scope's or its votes' state waits for before it acts: right after a start,
the bot taking back its open rounds (till then no runner recounts, takes the votes of or closes a round), and, as the
command needs, their recounts and the closes under way; acknowledged first when it must wait (Discord's 3 s)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import discord

from bot.discord.replies import deferring


async def after_pickup(
    bot, interaction: discord.Interaction | None, lock: asyncio.Lock | None = None, *, scope_id: str | None = None, everywhere: bool = False,
    session_id: int | None = None,
) -> bool:
    """Before a state-changing command acts: wait until the bot, just started, has taken back its open rounds
    (`Recounts.rounds_taken_back`, at most PICKUP_WAIT seconds). With `scope_id`, then for the recount of that
    scope's sessions (the reactions made while the bot was down, at most RECOUNT_WAIT seconds) and for the close of each
    of their rounds whose voting is over (`Steering.closes`, at most STOP_WAIT seconds), so that what a round counts and
    learns is what stood when the command came (a /reset after it, not into the new agent); `everywhere`: the recount
    of every session (a person's votes, anywhere), so that none re-adds what the command deletes; `session_id`: the
    recount of that session alone (/stop: the votes it cancels and says are those the reactions give). The command is
    acknowledged privately first ("thinking...") when it must wait for any of these, or for `lock` (the session's,
    held by another /close or /stop): each may outlast Discord's 3 s. True if it was acknowledged here. Without
    `interaction` (work a restart carries out, confirmed.py), the same waits with nothing to acknowledge."""
    runner, recounts = bot.runner, bot.runner.recounts
    defer = deferring(interaction) if interaction is not None else _nothing_to_acknowledge
    already = interaction is None or interaction.response.is_done()
    if lock is not None and lock.locked() or not recounts.taken_back.is_set():
        await defer()
    await recounts.rounds_taken_back()
    if scope_id is not None or everywhere or session_id is not None:
        sessions = [session_id] if session_id is not None else [s.id for s in await bot.conductor.store.active_sessions(scope_id)]
        await recounted(bot, sessions, defer)
        if scope_id is not None:
            await runner.steering.closes(sessions, defer)
    return not already and interaction.response.is_done()


async def recounted(bot, session_ids: list[int], defer: Callable[[], Awaitable[None]] | None = None) -> bool:
    """Wait for the recount of each session's open round after a start or a new gateway session (the reactions made
    while no event came; each session's one wait, RECOUNT_WAIT seconds, shared with /status), `defer()` first if any
    will wait (None: acknowledged already). True if every one is done; False if one is still under way (its counts may
    yet change)."""
    recounts, done = bot.runner.recounts, True
    for session_id in session_ids:
        if recounts.recounting(session_id):
            if recounts.will_wait(session_id) and defer is not None:
                await defer()
            done = await recounts.recounted(session_id) and done
    return done


async def _nothing_to_acknowledge() -> None:
    pass
