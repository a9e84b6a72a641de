"""The channel permissions a session needs, and which of them the bot lacks, named as Discord's client names them:
checked by /compose before it starts anything, and said when Discord refuses a running session (a permission taken
away mid-session), so that a moderator knows which one to give back."""

from __future__ import annotations

import discord

NEEDED_PERMISSIONS = ("view_channel", "send_messages", "attach_files", "read_message_history")
THREADS = (discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread)


def and_list(names: list[str]) -> str:
    """Names in a sentence: "A", "A and B", "A, B and C"."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def lacking(permissions: discord.Permissions, channel_type, vote_style: str) -> list[str]:
    """The permissions, of those rounds need in a channel of `channel_type` voted on with `vote_style`, that
    `permissions` lacks. In threads and forum posts Discord checks Send Messages in Threads instead of Send Messages."""
    in_thread = channel_type in THREADS
    needed = tuple("send_messages_in_threads" if in_thread and name == "send_messages" else name for name in NEEDED_PERMISSIONS)
    needed += ("add_reactions",) if vote_style == "reactions" else ()
    absent = [name for name in needed if not getattr(permissions, name)]
    # Discord's implicit permissions: without View Channel every other is denied, and without Send Messages so is
    # Attach Files; each comes back with the one it hangs on, so only that one is named.
    if "view_channel" in absent:
        absent = ["view_channel"]
    elif any(name.startswith("send_messages") for name in absent):
        absent = [name for name in absent if name != "attach_files"]
    return [permission_name(name) for name in absent]


def missing_permissions(interaction: discord.Interaction, vote_style: str) -> list[str]:
    """The permissions the bot lacks to run rounds where the command was used (app_permissions, which
    Discord computes for that channel or thread)."""
    if interaction.guild_id is None:
        return []
    return lacking(interaction.app_permissions, getattr(interaction.channel, "type", None), vote_style)


def missing_in_channel(bot: discord.Client, channel_id: int, vote_style: str) -> list[str]:
    """The permissions the bot lacks in a server channel now, as its cache of the server knows them (kept up to date
    by Discord's channel and role events); [] where that is not known (a DM, a channel not cached)."""
    channel = bot.get_channel(channel_id)
    guild = getattr(channel, "guild", None)
    if guild is None or guild.me is None:
        return []
    return lacking(channel.permissions_for(guild.me), channel.type, vote_style)


def missing_text(missing: list[str]) -> str:
    """"I am missing the Send Messages permission" (or "the A and B permissions")."""
    return f"I am missing the {and_list(missing)} {'permission' if len(missing) == 1 else 'permissions'}"


def give_back_text(missing: list[str]) -> str:
    """What a session stopped by a permission taken away asks for: "ask a moderator to give it back"."""
    return f"ask a moderator to give {'it' if len(missing) == 1 else 'them'} back"


def permission_name(flag: str) -> str:
    """A permission as Discord's client names it ("send_messages_in_threads": "Send Messages in Threads")."""
    return " ".join(word if word in ("in", "of") else word.capitalize() for word in flag.split("_"))
