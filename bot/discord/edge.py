"""Payload checks at the edge: what an interaction says about where it comes from is checked before
anything acts on it. Discord's client never sends a command whose channel, server and user disagree,
but a forged or malformed request can (issue 11, case 10)."""

from __future__ import annotations

import discord

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
