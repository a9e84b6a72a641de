"""A slash command's answer: at once, or after "thinking..." once it had to wait (Discord wants an answer within 3 s)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import discord

from bot.discord.outage import OUTAGE_ERRORS
from bot.discord.publisher import CLOCK_SKEW

log = logging.getLogger("crowdtune.bot")

ANSWER_SECONDS = 3.0  # Discord takes an interaction's first answer within 3 s of it, later none (404 10062)
UNKNOWN_INTERACTION = 10062  # Discord's JSON error code for an interaction whose first answer is too late


async def answer_privately(interaction: discord.Interaction, content: str, mentions: discord.AllowedMentions | None = None) -> None:
    """A command's answer that only the person who used it sees (`answer`)."""
    await answer(interaction, content, private=True, mentions=mentions)


async def answer(interaction: discord.Interaction, content: str, private: bool, mentions: discord.AllowedMentions | None = None) -> None:
    """A command's answer: the initial response, or, once the command was deferred (`deferring`, with the same
    `private`), the "thinking" message filled in (a deferred answer keeps the visibility of its deferral: Discord
    cannot change a message's). `mentions`: whom it may ping (discord.py's default: as the bot's settings say)."""
    extra = {} if mentions is None else {"allowed_mentions": mentions}
    if interaction.response.is_done():
        await interaction.edit_original_response(content=content, **extra)
    else:
        await interaction.response.send_message(content, ephemeral=private, **extra)


def deferring(interaction: discord.Interaction, private: bool = True):
    """Acknowledge the command ("thinking...") if it is not yet: Discord wants an answer within 3 s, and what comes
    next may ask Discord itself (join dates, for BallotBox.count's `before_asking`), so it is done only then; an
    answer that needs no slow lookup comes at once, with no "thinking..." first."""

    async def defer() -> None:
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=private, thinking=True)

    return defer


def acknowledging(interaction: discord.Interaction):
    """`deferring`'s acknowledgement for storage.LOCK_WAITING: awaited when the command's write waits for another
    program's lock on the database, which may outlast Discord's 3 s. Only in the command's own task: one it started (a
    session, the vote writer) inherits the hook but answers for nobody. Not acknowledged (Discord unreachable), the
    command goes on: its answer fails as it would have."""
    task, defer = asyncio.current_task(), deferring(interaction)

    async def hook() -> None:
        if asyncio.current_task() is task:
            with contextlib.suppress(discord.HTTPException, *OUTAGE_ERRORS):
                await defer()

    return hook


async def too_late(interaction: discord.Interaction) -> bool:
    """Whether a command came too late to be answered: Discord replays the interactions a bot missed when it resumes
    its connection (after an outage), long past their 3 s, and the person was told "The application did not respond".
    Then it is not acted on (else it would, with nobody told: a /stop would stop a session without a word), and one line
    says so. Only a command older than 3 s by its id's time (Discord's clock, up to CLOCK_SKEW behind ours) is asked,
    by acknowledging it ("thinking..." privately, which its answer then fills in, as after a wait): a fresh one costs
    nothing. Raises what the acknowledgement raises otherwise (Discord unreachable: the command's error handler)."""
    age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    if age <= ANSWER_SECONDS + CLOCK_SKEW:
        return False
    try:
        await interaction.response.defer(ephemeral=True, thinking=True)
    except discord.NotFound as problem:
        if problem.code != UNKNOWN_INTERACTION:
            raise
        name = interaction.command.name if interaction.command else (interaction.data or {}).get("name")
        log.warning(
            "command /%s came %.0f s late (sent while the bot was away or reconnecting): Discord no longer takes its answer, "
            "so it was not acted on", name, age,
        )
        return True
    return False


# Commands that start something: a refused one started nothing, which says more than "nothing was changed".
STARTING_COMMANDS = frozenset({"compose"})


def nothing_done(interaction: discord.Interaction) -> str:
    """What a refused or failed command left undone, for its one line: "Nothing was started" (/compose) or "Nothing was
    changed"."""
    name = interaction.command.name if interaction.command else (interaction.data or {}).get("name")
    return "Nothing was started" if name in STARTING_COMMANDS else "Nothing was changed"


def quiet_when_late(callback):
    """A component's callback (a vote button, an aspect menu) whose answer may come too late: a press replayed after an
    outage, long past Discord's 3 s, which the person was told failed. What the press did stands (a vote is stored, as
    one made by a reaction meanwhile is); its answer's refusal (404 10062) is one warning, not discord.py's traceback."""

    @functools.wraps(callback)
    async def answered(self, interaction: discord.Interaction) -> None:
        try:
            await callback(self, interaction)
        except discord.NotFound as problem:
            if problem.code != UNKNOWN_INTERACTION:
                raise
            log.warning("a press came too late for Discord to take its answer (sent while the bot was away or reconnecting); "
                        "what it did stands")

    return answered
