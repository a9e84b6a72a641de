"""The nonces the bot posts with, and what it does when Discord hands back another message for one.

Discord's enforce_nonce (which discord.py sends) returns the message the bot posted with the same nonce in the past few
minutes instead of posting: a retried request (a lost answer, a crash before the post was recorded) does not post twice.
A nonce is therefore this database's own (`Nonces`), and what Discord hands back is checked to be the message meant
(`send_once`): a database restored from a backup numbers its rows again, and its nonces repeat."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

import discord

log = logging.getLogger("crowdtune.rounds")

DEPLOYMENT_ID = "deployment_id"  # the deployment value holding the database's random id
UNKNOWN_MESSAGE = 10008  # Discord's JSON error code for a message that does not exist (deleted)
NONCE_MAX_LENGTH = 25  # Discord's


class Nonces:
    """Nonces that no other database repeats: this database's random id (made once, kept in it) before the row's."""

    def __init__(self, store) -> None:
        self.store = store
        self._deployment_id: str | None = None

    async def nonce(self, kind: str, row_id: int) -> str:
        """"ct", the database's id (10 hex digits), "-", `kind` (a letter, or "" for a round post) and the row's id:
        within Discord's 25 characters up to a row id of 11 digits (12 for a round post)."""
        if self._deployment_id is None:
            self._deployment_id = await self.store.set_deployment_value(DEPLOYMENT_ID, secrets.token_hex(5), replace=False)
        return f"ct{self._deployment_id}-{kind}{row_id}"


async def send_once(
    channel, nonce: str, send: Callable[[str], Awaitable[discord.Message]], meant: Callable[[discord.Message], bool]
) -> discord.Message:
    """`send(nonce)` (a post in `channel`), and the message Discord answers with. When that is not the message meant
    (`meant`, or another channel's), Discord handed back an earlier one with this nonce that says something else: a
    database restored from a backup repeats its nonces. Then, and when that earlier message was deleted (Discord answers
    Unknown Message and posts nothing), it is posted with a nonce of its own. An earlier message saying the very same
    (the same round post's heading and files, the same words) is taken for it: that is what a retry gets back."""
    try:
        message = await send(nonce)
        if message.channel.id == channel.id and meant(message):
            return message
        log.warning("nonce %s: Discord returned message %s, which says something else; posting anew", nonce, message.id)
    except discord.NotFound as problem:
        if problem.code != UNKNOWN_MESSAGE:
            raise
        log.warning("nonce %s: Discord's earlier message with it was deleted; posting anew", nonce)
    return await send(secrets.token_hex(NONCE_MAX_LENGTH // 2))
