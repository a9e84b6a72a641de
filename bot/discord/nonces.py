"""The nonces the bot posts with, and what it does when Discord hands back another message for one.

Discord's enforce_nonce (which discord.py sends) returns the message the bot posted with the same nonce in the past few
minutes instead of posting: a retried request (a lost answer, a crash before the post was recorded) does not post twice.
A nonce is therefore this database's row's own (`Nonces`), and what Discord hands back is checked to be the message
meant (`send_once`)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable

import discord

log = logging.getLogger("crowdtune.rounds")

DEPLOYMENT_ID = "deployment_id"  # the deployment value holding the database's random id
UNKNOWN_MESSAGE = 10008  # Discord's JSON error code for a message that does not exist (deleted)
NONCE_MAX_LENGTH = 25  # Discord's


class Nonces:
    """Nonces that no other database repeats, nor the same database's copy (a restored backup, `copy-db`), which numbers
    its rows again from where it was copied: a row's nonce is its id and a digest of the database's random id (made
    once, kept in it, copied with it) with the row's kind, id and the time it was written, which a later row at the
    same id does not share."""

    def __init__(self, store) -> None:
        self.store = store
        self._deployment_id: str | None = None

    async def nonce(self, kind: str, row_id: int, written: float) -> str:
        """"ct", `kind` (a letter, or "" for a round post), the row's id (for the log), "-" and the digest to Discord's
        25 characters: at least 40 bits of it up to a row id of 11 digits. The same row (`written`: when it was
        stored) gets the same nonce at every try."""
        if self._deployment_id is None:
            self._deployment_id = await self.store.set_deployment_value(DEPLOYMENT_ID, secrets.token_hex(5), replace=False)
        prefix = f"ct{kind}{row_id}-"
        digest = hashlib.sha256(f"{self._deployment_id}/{kind}{row_id}/{written!r}".encode()).hexdigest()
        return prefix + digest[: NONCE_MAX_LENGTH - len(prefix)]


async def send_once(
    channel, nonce: str, send: Callable[[str], Awaitable[discord.Message]], meant: Callable[[discord.Message], bool]
) -> discord.Message:
    """`send(nonce)` (a post in `channel`), and the message Discord answers with. When that is not the message meant
    (`meant`, or another channel's), Discord handed back an earlier one with this nonce that says something else (a
    nonce repeated after all: its digest is cut to Discord's 25 characters). Then, and when that earlier message was
    deleted (Discord answers Unknown Message and posts nothing), it is posted with a nonce of its own. An earlier message
    saying the very same (the same round post's heading and files, the same words) is taken for it: that is what a retry
    gets back."""
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
