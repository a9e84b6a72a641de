"""Telling the person who started a session why it stopped, when its channel no longer takes the bot's messages (a DM
session of someone whose direct messages are closed to the bot, or a channel closed to it): through their /compose's
followup, which Discord lets the bot use for 15 minutes. Kept in the database too, so that a restart within them
still tells them (a trial's restart before the first post left a DM session stopped without a word)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import discord

from bot.discord.outage import OUTAGE_ERRORS, reason
from bot.discord.permissions import give_back_text, missing_in_channel, missing_text
from bot.discord.votes import VOTING_STOPPED
from storage import DatabaseBusy, DatabaseUnwritable, StorageError

log = logging.getLogger("crowdtune.rounds")

CANNOT_DM_USER = 50007  # Discord's JSON error code: "Cannot send messages to this user" (their DMs are closed to us)
FOLLOWUP_SECONDS = 15 * 60  # how long an interaction's followup works (Discord: its token is valid for 15 minutes)
FOLLOWUP_KEY = "followup:{}"  # the deployment value that keeps a session's (not exported)


class Followups:
    """Each running session's /compose followup, in memory and in the database while it works. Its token is a
    credential for that followup only, for 15 minutes: kept in the deployment table (not in any export), and removed
    once its session ends."""

    def __init__(self, bot: discord.Client, store) -> None:
        self.bot = bot
        self.store = store
        self._followups: dict[int, discord.Webhook] = {}  # session id -> its /compose's followup

    def remember(self, session_id: int, followup: discord.Webhook) -> None:
        self._followups[session_id] = followup

    def drop(self, session_id: int) -> None:
        """Forget it in memory (the session's rounds ended here); what is kept stays for a restart."""
        self._followups.pop(session_id, None)

    async def keep(self, session_id: int) -> None:
        """Store the followup of a session started here, before its rounds run: a restart within FOLLOWUP_SECONDS
        finds it (`take`). A database that refuses it is logged: the rounds run all the same."""
        followup = self._followups.get(session_id)
        if followup is None or not followup.token:
            return
        kept = {"token": followup.token, "until": time.time() + FOLLOWUP_SECONDS}
        try:
            await self.store.set_deployment_value(FOLLOWUP_KEY.format(session_id), json.dumps(kept))
        except StorageError as problem:
            log.warning("session %s: its /compose followup could not be kept: %s", session_id, problem)

    async def take(self, session_id: int) -> discord.Webhook | None:
        """The session's followup, from memory or as an earlier run kept it, while it still works; else None."""
        followup = self._followups.pop(session_id, None)
        if followup is not None:
            return followup
        value = await self.store.deployment_value(FOLLOWUP_KEY.format(session_id))
        kept = json.loads(value) if value else None
        if kept is None or kept["until"] <= time.time() or self.bot.application_id is None:
            return None
        return discord.Webhook.partial(self.bot.application_id, kept["token"], client=self.bot)

    async def forget(self, session_id: int) -> None:
        """The session ended: nobody to tell any more. A database that refuses leaves it to expire unused."""
        with contextlib.suppress(StorageError):
            await self.store.forget_deployment_value(FOLLOWUP_KEY.format(session_id))


async def say_stopped(
    bot: discord.Client, channel_id: int, problem: discord.HTTPException, followup: discord.Webhook | None, vote_style: str = "reactions",
) -> None:
    """Tell the channel why its session stopped, when Discord still lets us write there; else the person who started
    it, through their /compose's followup (`followup`: `Followups.take`, None when it is gone): a DM session of someone who does
    not accept the bot's direct messages (50007) is told how to allow them, and a channel that lacks a permission
    the session (voting with `vote_style`) needs is told which one, when the bot's cache of the server knows."""
    if problem.code == CANNOT_DM_USER:
        text = (
            "I can't send you direct messages, so I stopped this session. To allow them, turn on "
            "direct messages from server members in Discord's settings (Privacy), or in the Privacy Settings of a server "
            "we share; then start again with `/compose`. What your personal agent learned is kept."
        )
    else:
        # Which permission was taken away, when the server's cache tells: a list of all five left a moderator to guess.
        missing = missing_in_channel(bot, channel_id, vote_style)
        need = (
            f"{missing_text(missing)}: {give_back_text(missing)}" if missing
            else "I need View Channel, Send Messages, Attach Files, Add Reactions and Read Message History"
        )
        text = (
            f"I stopped this session: Discord refused me here ({problem.text or problem.status}). {need}; "
            "then start again with `/compose`. What the agent learned is kept."
        )
    try:
        await bot.get_partial_messageable(channel_id).send(text)
        return
    except discord.HTTPException:
        if followup is None:
            return
    with contextlib.suppress(discord.HTTPException):  # its 15 minutes may be over
        await followup.send(text)


async def say_voting_stopped(bot: discord.Client, store, sessions) -> None:
    """Voting stopped everywhere (the database is gone): the `sessions`' tasks end and each active session's channel is told."""
    current = asyncio.current_task()
    tasks = [task for task in sessions if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for session in await store.active_sessions():  # reads still work: only writes are refused
        if session.channel_id is not None and session.channel_id.isdigit():
            try:
                await bot.get_partial_messageable(int(session.channel_id)).send(VOTING_STOPPED)
            except (discord.HTTPException, *OUTAGE_ERRORS) as problem:  # one line each: there is nothing to retry for
                log.warning("could not tell channel %s that voting stopped: %s", session.channel_id, reason(problem))


def database_refuses(problem: StorageError) -> str:
    """Why the database (DatabaseUnwritable, DatabaseUnreachable or DatabaseBusy) takes nothing now, for members."""
    if isinstance(problem, DatabaseBusy):
        return "is busy (another program holds it)"
    return "cannot save anything (its disk is full)" if isinstance(problem, DatabaseUnwritable) else "cannot be reached"


def voting_paused(problem: StorageError) -> str:
    """The first words of every answer about a round waiting for the database: "Voting here is paused: my database ..."."""
    return f"Voting here is paused: my database {database_refuses(problem)}."


def round_waits(problem: StorageError) -> str:
    """What a session's channel is told once, and /status says while it lasts, of its round waiting for the database."""
    return f"{voting_paused(problem)} The votes given so far are kept, and this round goes on as soon as my operator fixes it."


async def say_round_waits(bot: discord.Client, store, session_id: int, problem: StorageError) -> None:
    """Tell the session's channel, once as `problem` (the database full or unreachable) begins, that its votes are kept
    and its round goes on once the database works again; the operator reads why in the log (RetryLog)."""
    try:
        session = await store.session(session_id)  # a read: a full disk still allows it
        if session is not None and session.channel_id is not None and session.channel_id.isdigit():
            await bot.get_partial_messageable(int(session.channel_id)).send(round_waits(problem))
    except (StorageError, discord.HTTPException, *OUTAGE_ERRORS) as failed:  # nothing to retry for: the log says why
        log.warning("could not tell session %s's channel that its round waits for the database: %s", session_id, reason(failed))
