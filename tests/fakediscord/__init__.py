"""A local fake of Discord's REST API and gateway for end-to-end tests of discord.py bots.

    async with FakeDiscord() as server:
        guild = server.add_guild("Lab")
        channel = server.add_text_channel(guild, "music")
        alice = server.add_user("alice"); server.add_member(guild, alice)
        async with server.connect(bot):           # an unmodified discord.py Client/Bot
            interaction = await server.slash(alice, channel, "compose", {"bars": 4})
            response = await interaction.wait_response()
"""

from .faults import Fault
from .gateway import Intent, Session
from .interactions import Interaction
from .rest import ApiError
from .server import FakeDiscord
from .world import ALL_PERMISSIONS, Channel, Guild, Member, Permission, Role, User, emoji_payload

__all__ = [
    "ALL_PERMISSIONS",
    "ApiError",
    "Channel",
    "FakeDiscord",
    "Fault",
    "Guild",
    "Intent",
    "Interaction",
    "Member",
    "Permission",
    "Role",
    "Session",
    "User",
    "emoji_payload",
]
