"""Payload checks at the edge: what an interaction says about where it comes from, and its options against the
command's declaration, are checked before anything acts on it. Discord's client never sends a command whose channel,
server and user disagree, but a forged or malformed request can (issue 11, case 10)."""

from __future__ import annotations

import math

import discord
from discord import app_commands

# SQLite stores integers as signed 64-bit values (sqlite.org/datatype3.html); a larger id cannot be bound.
INTEGER_MIN, INTEGER_MAX = -(2**63), 2**63 - 1


def fits_integer(*ids: int | None) -> bool:
    """Whether every id (None allowed) fits a signed 64-bit integer column."""
    return all(i is None or INTEGER_MIN <= i <= INTEGER_MAX for i in ids)


async def context_problem(interaction: discord.Interaction) -> str | None:
    """What is wrong with an interaction's channel, server and user taken together, or None: in a server
    the channel must be one of that server's (as the bot itself knows them); outside one it must be
    the user's own direct-message channel with the bot. Costs a request only for a channel the bot
    has not seen yet."""
    if not fits_integer(interaction.channel_id, interaction.guild_id, interaction.user.id):
        return "this request names something that cannot exist"
    client = interaction.client
    if interaction.guild_id is None:
        dm = interaction.user.dm_channel
        if dm is None:
            try:
                dm = await interaction.user.create_dm()
            except discord.HTTPException:
                return "I cannot reach you in direct messages"
        return None if dm.id == interaction.channel_id else "this is not your direct-message channel with me"
    channel = client.get_channel(interaction.channel_id) if interaction.channel_id is not None else None
    if channel is None and interaction.channel_id is not None:
        try:
            channel = await client.fetch_channel(interaction.channel_id)
        except discord.HTTPException:
            channel = None
    guild = getattr(channel, "guild", None)
    if guild is None or guild.id != interaction.guild_id:
        return "this channel is not part of this server"
    return None


_T = discord.AppCommandOptionType


def request_problem(interaction: discord.Interaction) -> str | None:
    """What is wrong with a slash command against the command's own declaration (where it may run;
    its options' types, ranges, lengths and choices; required and unknown options), or None.
    Discord's client enforces these, but a crafted request need not, and discord.py checks none
    of them when a command arrives."""
    if (problem := place_problem(interaction)) is not None:
        return problem
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return None  # unknown to us: the tree reports it
    contexts = command.allowed_contexts
    if interaction.guild_id is None and (command.guild_only or (contexts is not None and not contexts.dm_channel)):
        return f"/{command.name} works only in a server"
    declared = {parameter.display_name: parameter for parameter in command.parameters}
    given = {}
    for option in (interaction.data or {}).get("options") or []:
        if not isinstance(option, dict) or option.get("name") not in declared or "options" in option:
            return f"/{command.name} has no such option"
        given[option["name"]] = option.get("value")
    resolved = (interaction.data or {}).get("resolved") or {}
    # Discord sends every user, role, channel or attached file an option names in "resolved"; an id that
    # is not there names nothing Discord vouched for.
    known = {str(key) for part in ("users", "members", "roles", "channels", "attachments") for key in resolved.get(part) or {}}
    for name, parameter in declared.items():
        if name not in given:
            if parameter.required:
                return f"/{command.name} needs the option '{name}'"
        elif (problem := _value_problem(parameter, given[name], known)) is not None:
            return f"'{name}' {problem}"
    return None



def place_problem(interaction: discord.Interaction) -> str | None:
    """Why the bot cannot work where a command was used, or None: a group DM or another person's DM
    (the PRIVATE_CHANNEL context), or a server the bot is not installed in (a user install)."""
    if interaction.context.private_channel:
        return "I can only work in servers I'm in and in a DM with me, not in group chats or other people's DMs"
    if interaction.guild_id is not None and not interaction.is_guild_integration():
        return "I'm not in this server, so I can't post here: ask a moderator to add me, or use a DM with me"
    return None


def _value_problem(parameter: app_commands.Parameter, value, known: set[str]) -> str | None:
    kind, low, high = parameter.type, parameter.min_value, parameter.max_value
    if kind is _T.string:
        if not isinstance(value, str):
            return "must be text"
        if not (low or 0) <= len(value) <= (high or 6000):
            return f"must be {low or 0} to {high or 6000} characters long"
    elif kind in (_T.integer, _T.number):
        number_types = int if kind is _T.integer else (int, float)
        if not isinstance(value, number_types) or isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
            return "must be a whole number" if kind is _T.integer else "must be a number"
        if (low is not None and value < low) or (high is not None and value > high):
            return f"must be {_bounds(low, high)}"
    elif kind is _T.boolean:
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind in (_T.user, _T.role, _T.channel, _T.mentionable):
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) not in known:
            return "must be a user, role or channel Discord knows"
    elif kind is _T.attachment:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) not in known:
            return "must be a file attached to the command"
    if parameter.choices and value not in [choice.value for choice in parameter.choices]:
        return "must be one of: " + ", ".join(str(choice.value) for choice in parameter.choices)
    return None


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"
