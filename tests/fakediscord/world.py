"""In-memory Discord state (users, guilds, channels, messages) and its rendering into API payloads.

Ids are ints inside the fake and strings in every payload, as on Discord.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
import threading
import time
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any, Iterable

import emoji as emoji_lib

DISCORD_EPOCH_MS = 1_420_070_400_000
MAX_REACTIONS = 20  # distinct emojis per message (error 30010 beyond)
# Colours of a super reaction's animation ("#rrggbb"), as the gateway sends them.
BURST_COLORS = ["#ffd700", "#ff8c00"]


class _Snowflakes:
    """Ids for the whole process: time-based like Discord's (ms since 2015 << 22) and strictly
    increasing across every World, so a second server in the same process never reuses one."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        with self._lock:
            self._last = max(self._last + 1, candidate)
            return self._last


SNOWFLAKES = _Snowflakes()


def snowflake_time_ms(snowflake: int) -> int:
    """Unix time in ms at which an id was made."""
    return (snowflake >> 22) + DISCORD_EPOCH_MS


class Permission(IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38


# discord.Permissions.all().value in discord.py 2.7.1.
ALL_PERMISSIONS = 8866461766385663
# The bot's managed role: everything except ADMINISTRATOR, so channel overwrites still bite.
BOT_ROLE_PERMISSIONS = ALL_PERMISSIONS & ~int(Permission.ADMINISTRATOR)  # int: ~ on an IntFlag drops unknown bits
EVERYONE_PERMISSIONS = int(
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.SEND_MESSAGES_IN_THREADS
)

TEXT_CHANNEL, DM_CHANNEL = 0, 1
ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD, FORUM_CHANNEL = 10, 11, 12, 15
THREAD_TYPES = frozenset({ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD})
ROLE_OVERWRITE, MEMBER_OVERWRITE = 0, 1
MESSAGE_FLAG_EPHEMERAL = 1 << 6
MESSAGE_FLAG_LOADING = 1 << 7

_CUSTOM_EMOJI = re.compile(r"^(a:)?([^:]+):(\d+)$")
_USER_MENTION = re.compile(r"<@!?(\d+)>")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def emoji_payload(key: str) -> dict[str, Any]:
    """Reaction key as sent in URLs ("👍" or "name:id") -> partial emoji object."""
    match = _CUSTOM_EMOJI.match(key)
    if match is None:
        return {"id": None, "name": key}
    return {"id": match.group(3), "name": match.group(2), "animated": bool(match.group(1))}


def emoji_key(emoji: Any) -> str:
    """Accepts a unicode string, "name:id", or a discord.py emoji object."""
    if isinstance(emoji, str):
        return emoji
    emoji_id = getattr(emoji, "id", None)
    return f"{emoji.name}:{emoji_id}" if emoji_id else emoji.name


@dataclass(eq=False)
class User:
    id: int
    name: str
    bot: bool = False
    # False makes the bot's DMs to this user fail with 50007, like a user who closed DMs.
    accepts_dms: bool = True
    _payload: dict[str, Any] | None = field(default=None, repr=False)

    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            self._payload = {
                "id": str(self.id),
                "username": self.name,
                "discriminator": "0",
                "global_name": None if self.bot else self.name,
                "avatar": None,
                "bot": self.bot,
                "public_flags": 0,
                "banner": None,
                "accent_color": None,
                "avatar_decoration_data": None,
            }
        return self._payload


@dataclass(eq=False)
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    bot_id: int | None = None

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(int(self.permissions)),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "managed": self.bot_id is not None,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            payload["tags"] = {"bot_id": str(self.bot_id)}
        return payload


@dataclass(eq=False)
class Member:
    user: User
    guild_id: int
    roles: list[int]
    joined_at: str
    nick: str | None = None
    _payload: dict[str, Any] | None = field(default=None, repr=False)

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        if self._payload is None:
            self._payload = {
                "user": self.user.payload(),
                "roles": [str(r) for r in self.roles],
                "joined_at": self.joined_at,
                "nick": self.nick,
                "avatar": None,
                "banner": None,
                "premium_since": None,
                "deaf": False,
                "mute": False,
                "pending": False,
                "flags": 0,
                "communication_disabled_until": None,
            }
        if with_user:
            return self._payload
        return {k: v for k, v in self._payload.items() if k != "user"}


@dataclass(eq=False)
class Channel:
    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    recipient: User | None = None  # DM channels only
    parent_id: int | None = None  # threads: the text or forum channel they are in
    owner_id: int | None = None  # threads: who started it
    created_at: str = ""
    # target id -> (overwrite type, allow, deny)
    overwrites: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    # id -> message dict, in creation order; ephemeral and deleted messages are not here
    messages: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def last_message_id(self) -> int | None:
        return next(reversed(self.messages), None)

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def payload(self) -> dict[str, Any]:
        last = self.last_message_id
        if self.type == DM_CHANNEL:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": DM_CHANNEL,
                "last_message_id": None if last is None else str(last),
                "recipients": [self.recipient.payload()],
                "flags": 0,
            }
        if self.is_thread:
            metadata: dict[str, Any] = {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": self.created_at,
                "locked": False,
                "create_timestamp": self.created_at,
            }
            if self.type == PRIVATE_THREAD:
                metadata["invitable"] = True
            return {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild_id),
                "parent_id": str(self.parent_id),
                "owner_id": str(self.owner_id),
                "name": self.name,
                "last_message_id": None if last is None else str(last),
                "message_count": len(self.messages),
                "total_message_sent": len(self.messages),
                "member_count": 1,
                "rate_limit_per_user": 0,
                "flags": 0,
                "applied_tags": [],
                "thread_metadata": metadata,
            }
        forum: dict[str, Any] = {}
        if self.type == FORUM_CHANNEL:
            forum = {
                "available_tags": [],
                "default_reaction_emoji": None,
                "default_thread_rate_limit_per_user": 0,
                "default_sort_order": None,
                "default_forum_layout": 0,
                "default_auto_archive_duration": 1440,
            }
        return {
            **forum,
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": None,
            "topic": self.topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None if last is None else str(last),
            "flags": 0,
            "permission_overwrites": [
                {"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}
                for target, (kind, allow, deny) in self.overwrites.items()
            ],
        }


@dataclass(eq=False)
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    threads: dict[int, Channel] = field(default_factory=dict)  # active threads
    emojis: dict[int, str] = field(default_factory=dict)  # custom emoji id -> name
    members: dict[int, Member] = field(default_factory=dict, repr=False)

    def permissions_for(self, user_id: int, channel: Channel | None = None) -> int:
        """Discord's permission algorithm: roles, then @everyone/role/member overwrites."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = self.roles[self.id].permissions
        for role_id in member.roles:
            perms |= self.roles[role_id].permissions
        if perms & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is None:
            return perms
        overwrites = channel.overwrites  # a thread's are its parent's (World.permissions_for passes the parent)
        if self.id in overwrites:
            _, allow, deny = overwrites[self.id]
            perms = (perms & ~deny) | allow
        allow = deny = 0
        for role_id in member.roles:
            if role_id in overwrites:
                allow |= overwrites[role_id][1]
                deny |= overwrites[role_id][2]
        perms = (perms & ~deny) | allow
        if user_id in overwrites:
            _, allow, deny = overwrites[user_id]
            perms = (perms & ~deny) | allow
        if not perms & Permission.VIEW_CHANNEL:
            return 0
        return perms

    def emojis_payload(self) -> list[dict[str, Any]]:
        return [
            {"id": str(i), "name": name, "roles": [], "require_colons": True, "managed": False, "animated": False, "available": True}
            for i, name in self.emojis.items()
        ]

    def payload(self, *, members: Iterable[Member], joined_at: str) -> dict[str, Any]:
        """Full GUILD_CREATE shape."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "features": [],
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": self.emojis_payload(),
            "stickers": [],
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [t.payload() for t in self.threads.values()],
            "members": [m.payload() for m in members],
            "member_count": len(self.members),
            "large": len(self.members) > 250,
            "joined_at": joined_at,
            "unavailable": False,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "afk_timeout": 300,
            "afk_channel_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "application_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_progress_bar_enabled": False,
        }


class World:
    """All state of the fake Discord; pure data, no I/O."""

    def __init__(self, bot_name: str) -> None:
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, dict[str, Any]] = {}  # every live message, ephemeral ones included
        self.attachment_data: dict[int, bytes] = {}
        self.dm_channels: dict[int, Channel] = {}  # by recipient user id
        self.http_base = ""  # set once the server listens; attachment URLs need it
        self.bot = self.add_user(bot_name, bot=True)
        self.developer = self.add_user(f"{bot_name}-developer")  # the application's owner
        self.bot_joined_at: dict[int, str] = {}

    def new_id(self) -> int:
        # Time-based like real snowflakes, strictly increasing so id order is creation order.
        return SNOWFLAKES.next()

    # -- world building -------------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> User:
        user = User(self.new_id(), name, bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner: User, *, with_bot: bool = True) -> Guild:
        """With the bot as a member (its managed role) unless with_bot=False: a server where only a
        user-installed app can be used."""
        guild = Guild(self.new_id(), name, owner.id)
        self.guilds[guild.id] = guild
        guild.roles[guild.id] = Role(guild.id, guild.id, "@everyone", EVERYONE_PERMISSIONS)
        self.add_member(guild, owner)
        if with_bot:
            bot_role = self.add_role(guild, self.bot.name, BOT_ROLE_PERMISSIONS, bot_id=self.bot.id)
            self.add_member(guild, self.bot, roles=[bot_role.id])
            self.bot_joined_at[guild.id] = now_iso()
        return guild

    def bot_sees(self, guild_id: int | None) -> bool:
        """DMs, and guilds the bot is a member of: the only places whose events reach the bot."""
        return guild_id is None or guild_id in self.bot_joined_at

    def add_role(self, guild: Guild, name: str, permissions: int, *, bot_id: int | None = None) -> Role:
        role = Role(self.new_id(), guild.id, name, int(permissions), len(guild.roles), bot_id)
        guild.roles[role.id] = role
        return role

    def add_member(
        self,
        guild: Guild,
        user: User,
        *,
        roles: Iterable[Role | int] = (),
        joined_at: dt.datetime | str | None = None,
        nick: str | None = None,
    ) -> Member:
        if isinstance(joined_at, dt.datetime):
            joined_at = joined_at.isoformat()
        role_ids = [r if isinstance(r, int) else r.id for r in roles]
        for role_id in role_ids:
            if role_id not in guild.roles:
                raise ValueError(f"role {role_id} is not in guild {guild.name!r}")
        member = Member(user, guild.id, role_ids, joined_at or now_iso(), nick)
        guild.members[user.id] = member
        return member

    def add_channel(self, guild: Guild, name: str, *, topic: str | None = None, type: int = TEXT_CHANNEL) -> Channel:
        channel = Channel(self.new_id(), type, name, guild.id, len(guild.channels), topic)
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def add_thread(self, parent: Channel, name: str, owner: User, *, type: int = PUBLIC_THREAD, id: int | None = None) -> Channel:
        """A thread in a text channel, or (type PUBLIC_THREAD) a post in a forum channel."""
        if parent.type not in (TEXT_CHANNEL, FORUM_CHANNEL) or type not in THREAD_TYPES:
            raise ValueError(f"no thread of type {type} in a channel of type {parent.type}")
        if parent.type == FORUM_CHANNEL and type != PUBLIC_THREAD:
            raise ValueError("forum posts are public threads")
        assert parent.guild_id is not None
        thread = Channel(id or self.new_id(), type, name, parent.guild_id, parent_id=parent.id, owner_id=owner.id, created_at=now_iso())
        self.guilds[parent.guild_id].threads[thread.id] = thread
        self.channels[thread.id] = thread
        return thread

    def dm_channel(self, user: User) -> Channel:
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = Channel(self.new_id(), DM_CHANNEL, recipient=user)
            self.dm_channels[user.id] = channel
            self.channels[channel.id] = channel
        return channel

    def knows_emoji(self, key: str) -> bool:
        """A reaction key Discord accepts: a Unicode emoji, or "name:id" of a custom emoji of a guild
        the bot is in (anything else is 10014 Unknown Emoji)."""
        match = _CUSTOM_EMOJI.match(key)
        if match is None:
            return emoji_lib.is_emoji(key)
        return any(int(match.group(3)) in guild.emojis for guild in self.guilds.values())

    def app_permissions(self, channel: Channel) -> int:
        """An interaction's app_permissions: the bot's in the channel; where the bot is not a member
        (a user-installed command), what @everyone has there (an approximation: Discord's docs do not
        say)."""
        if self.bot_sees(channel.guild_id):
            return self.permissions_for(channel, self.bot.id)
        assert channel.guild_id is not None
        guild = self.guilds[channel.guild_id]
        parent = self.channels[channel.parent_id] if channel.is_thread and channel.parent_id else channel
        perms = guild.roles[guild.id].permissions
        if guild.id in parent.overwrites:
            _, allow, deny = parent.overwrites[guild.id]
            perms = (perms & ~deny) | allow
        return perms

    def permissions_for(self, channel: Channel, user_id: int) -> int:
        if channel.guild_id is None:
            return BOT_ROLE_PERMISSIONS & ~int(Permission.MANAGE_MESSAGES)
        if channel.is_thread:  # a thread has no overwrites of its own: its parent's apply
            assert channel.parent_id is not None
            channel = self.channels[channel.parent_id]
        return self.guilds[channel.guild_id].permissions_for(user_id, channel)

    # -- messages -------------------------------------------------------------------------------

    def add_attachment(
        self, channel_id: int, filename: str, data: bytes, *, content_type: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        attachment_id = self.new_id()
        self.attachment_data[attachment_id] = data
        url = f"{self.http_base}/attachments/{channel_id}/{attachment_id}/{filename}"
        attachment = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "content_type": content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream",
            "url": url,
            "proxy_url": url,
        }
        if description is not None:
            attachment["description"] = description
        return attachment

    def new_message(
        self,
        channel: Channel,
        author: User,
        *,
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        flags: int = 0,
        type: int = 0,
        reference: dict[str, Any] | None = None,
        interaction: dict[str, Any] | None = None,
        nonce: str | None = None,
        tts: bool = False,
        id: int | None = None,
    ) -> dict[str, Any]:
        """Stores a message. `interaction` is the interaction_metadata of a response/followup; `id`
        is given for a forum post's first message, whose id is the post's (as on Discord)."""
        message: dict[str, Any] = {
            "id": id or self.new_id(),
            "channel_id": channel.id,
            "guild_id": channel.guild_id,
            "author_id": author.id,
            "content": content,
            "embeds": embeds or [],
            "components": number_components(components or []),
            "attachments": attachments or [],
            "flags": flags,
            "type": type,
            "tts": tts,
            "nonce": nonce,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "mentions": [int(m) for m in _USER_MENTION.findall(content) if int(m) in self.users],
            # emoji key -> ordered set (dict) of user ids, in reaction order: normal reactions, then
            # super (burst) reactions; a user may have both on one emoji, as on Discord
            "reactions": {},
            "burst_reactions": {},
            "message_reference": reference,
            "interaction": interaction,
            "deleted": False,
        }
        self.messages[message["id"]] = message
        if not flags & MESSAGE_FLAG_EPHEMERAL:
            channel.messages[message["id"]] = message
        return message

    def delete_message(self, message: dict[str, Any]) -> None:
        message["deleted"] = True
        self.messages.pop(message["id"], None)
        self.channels[message["channel_id"]].messages.pop(message["id"], None)

    def message_payload(self, message: dict[str, Any], *, gateway: bool = False, referenced: bool = True) -> dict[str, Any]:
        author = self.users[message["author_id"]]
        payload: dict[str, Any] = {
            "id": str(message["id"]),
            "channel_id": str(message["channel_id"]),
            "author": author.payload(),
            "content": message["content"],
            "timestamp": message["timestamp"],
            "edited_timestamp": message["edited_timestamp"],
            "tts": message["tts"],
            "mention_everyone": False,
            "mentions": [self.users[u].payload() for u in message["mentions"]],
            "mention_roles": [],
            "attachments": [{**a, "id": str(a["id"])} for a in message["attachments"]],
            "embeds": message["embeds"],
            "components": message["components"],
            "pinned": False,
            "type": message["type"],
            "flags": message["flags"],
        }
        if message["reactions"] or message["burst_reactions"]:
            payload["reactions"] = self.reactions_payload(message)
        if message["nonce"] is not None:
            payload["nonce"] = message["nonce"]
        guild_id = message["guild_id"]
        interaction = message["interaction"]
        if interaction is not None:
            payload["webhook_id"] = str(self.bot.id)
            payload["application_id"] = str(self.bot.id)
            payload["interaction_metadata"] = interaction
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            member = self.guilds[guild_id].members.get(author.id)
            if gateway and interaction is None and member is not None:
                payload["member"] = member.payload(with_user=False)
        reference = message["message_reference"]
        if reference is not None:
            payload["message_reference"] = reference
            if referenced:
                target = self.messages.get(int(reference["message_id"]))
                payload["referenced_message"] = (
                    None if target is None else self.message_payload(target, referenced=False)
                )
        return payload

    def reactions_payload(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Discord's reaction objects: `count` includes super reactions, `count_details` splits them."""
        bot_id = self.bot.id
        payload = []
        for key in reaction_keys(message):
            normal = message["reactions"].get(key, {})
            burst = message["burst_reactions"].get(key, {})
            payload.append(
                {
                    "emoji": emoji_payload(key),
                    "count": len(normal) + len(burst),
                    "count_details": {"burst": len(burst), "normal": len(normal)},
                    "burst_colors": BURST_COLORS if burst else [],
                    "me": bot_id in normal,
                    "me_burst": bot_id in burst,
                }
            )
        return payload


def reaction_keys(message: dict[str, Any]) -> list[str]:
    """The distinct emojis on a message (normal or super), in first-reaction order."""
    return list(dict.fromkeys([*message["reactions"], *message["burst_reactions"]]))


def number_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Discord gives every component a numeric id, depth-first, when the sender leaves it out."""
    counter = 0

    def walk(items: list[dict[str, Any]]) -> None:
        nonlocal counter
        for item in items:
            counter += 1
            item.setdefault("id", counter)
            walk(_children(item))

    walk(components)
    return components


def iter_components(components: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for item in components:
        yield item
        yield from iter_components(_children(item))


def _children(item: dict[str, Any]) -> list[dict[str, Any]]:
    # Action rows and containers hold "components"; a v2 section also has an "accessory".
    children = list(item.get("components", []))
    if "accessory" in item:
        children.append(item["accessory"])
    return children
