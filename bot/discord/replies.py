"""A slash command's answer: at once, or after "thinking..." once it had to wait (Discord wants an answer within 3 s)."""

from __future__ import annotations

import discord


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


# Commands that start something: a refused one started nothing, which says more than "nothing was changed".
STARTING_COMMANDS = frozenset({"compose"})


def nothing_done(interaction: discord.Interaction) -> str:
    """What a refused or failed command left undone, for its one line: "Nothing was started" (/compose) or "Nothing was
    changed"."""
    name = interaction.command.name if interaction.command else (interaction.data or {}).get("name")
    return "Nothing was started" if name in STARTING_COMMANDS else "Nothing was changed"
