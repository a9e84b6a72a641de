"""Interactions a fake user starts (slash commands, button presses) and what the bot answered."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

from .world import MESSAGE_FLAG_EPHEMERAL, MESSAGE_FLAG_LOADING, Channel, User, World

# How long a test's wait for the bot (a response, a message, a session) lasts by default: a bound only a hang reaches,
# not a loaded 2-core machine (at load 10, FluidSynth's first render alone took over 10 s).
HANG_SECONDS = 60.0
# How long a whole program a test starts (a CLI command, a benchmark) may run before the test calls it hung.
PROCESS_HANG_SECONDS = 600

if TYPE_CHECKING:
    from .server import FakeDiscord

APPLICATION_COMMAND, MESSAGE_COMPONENT, APPLICATION_COMMAND_AUTOCOMPLETE = 2, 3, 4
AUTOCOMPLETE_CHOICES_MAX = 25
GUILD_INSTALL, USER_INSTALL = 0, 1  # application integration types
GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT = 0, 1, 2  # interaction context types
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11
# Discord's attachment_size_limit for an unboosted guild.
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class Interaction:
    """One interaction. `callbacks` are the bot's POST .../callback bodies ({"type", "data"}),
    `original` the response message (for a component interaction answered with type 6/7 that is
    the message holding the component, as on Discord), `followups` the followup messages.
    Messages are the server's live message dicts.
    """

    def __init__(
        self,
        server: FakeDiscord,
        *,
        id: int,
        token: str,
        type: int,
        user: User,
        channel: Channel,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
        context: int | None = None,
        owners: dict[str, str] | None = None,
    ) -> None:
        self.server = server
        guild_id = channel.guild_id
        self.context = context if context is not None else (GUILD_CONTEXT if guild_id is not None else BOT_DM_CONTEXT)
        # authorizing_integration_owners; a component interaction is authorized like the bot's install
        self.owners = owners if owners is not None else {str(GUILD_INSTALL): str(guild_id or 0)}
        self.id = id
        self.token = token
        self.type = type
        self.user = user
        self.channel = channel
        self.data = data
        self.message = message
        self.created_at: float | None = None  # server loop time of the INTERACTION_CREATE dispatch
        self.missed_deadline = False  # no initial response within the server's interaction_ack_timeout
        self.callbacks: list[dict[str, Any]] = []
        self.original: dict[str, Any] | None = None
        self.followups: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"<Interaction id={self.id} type={self.type} user={self.user.name!r} callbacks={self.callbacks!r}>"

    def age(self) -> float:
        """Seconds since INTERACTION_CREATE by the server's clock (call on the server's thread)."""
        return asyncio.get_running_loop().time() - (self.created_at or 0.0)

    @property
    def response(self) -> dict[str, Any] | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def ephemeral(self) -> bool:
        response = self.response
        return bool(response and ((response.get("data") or {}).get("flags", 0) & MESSAGE_FLAG_EPHEMERAL))

    @property
    def deferred(self) -> bool:
        response = self.response
        return bool(response and response["type"] in (5, 6))

    async def wait_response(self, timeout: float = HANG_SECONDS) -> dict[str, Any]:
        """The first callback, {"type": 4, "data": {...}} etc."""
        return await self.server.wait_until(lambda: self.response, timeout, f"a response to {self!r}")

    async def wait_followups(self, count: int = 1, timeout: float = HANG_SECONDS) -> list[dict[str, Any]]:
        return await self.server.wait_until(
            lambda: self.followups if len(self.followups) >= count else None, timeout, f"{count} followups to {self!r}"
        )

    async def wait_original(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = HANG_SECONDS
    ) -> dict[str, Any]:
        """The original response message once it matches (by default: once it is no longer "thinking")."""

        def check() -> dict[str, Any] | None:
            message = self.original
            if message is None:
                return None
            if predicate is None:
                return None if message["flags"] & MESSAGE_FLAG_LOADING else message
            return message if predicate(message) else None

        return await self.server.wait_until(check, timeout, f"the original response of {self!r}")

    def metadata(self) -> dict[str, Any]:
        """interaction_metadata of the messages this interaction created."""
        guild_id = self.channel.guild_id
        metadata: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": self.user.payload(),
            "authorizing_integration_owners": self.owners,
        }
        if self.type == APPLICATION_COMMAND:
            metadata["name"] = self.data["name"]
            metadata["command_type"] = self.data.get("type", 1)
        if self.message is not None:
            metadata["interacted_message_id"] = str(self.message["id"])
        if self.original is not None and self.original is not self.message:
            metadata["original_response_message_id"] = str(self.original["id"])
        return metadata

    def payload(self, world: World) -> dict[str, Any]:
        """The INTERACTION_CREATE body."""
        channel, user, bot = self.channel, self.user, world.bot
        guild_id = channel.guild_id
        payload: dict[str, Any] = {
            "id": str(self.id),
            "application_id": str(bot.id),
            "type": self.type,
            "data": self.data,
            "token": self.token,
            "version": 1,
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "app_permissions": str(world.app_permissions(channel)),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "authorizing_integration_owners": self.owners,
            "context": self.context,
        }
        if guild_id is not None:
            member = world.guilds[guild_id].members[user.id]
            permissions = str(world.permissions_for(channel, user.id))
            payload["channel"]["permissions"] = permissions
            payload["guild_id"] = str(guild_id)
            payload["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {**member.payload(), "permissions": permissions}
        else:
            payload["user"] = user.payload()
        if self.message is not None:
            payload["message"] = world.message_payload(self.message)
        return payload


def find_command(
    commands: dict[int | None, list[dict[str, Any]]], world: World, channel: Channel, user: User, name: str
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The synced chat-input command `user` would see under `name` in `channel`, the interaction
    context there (GUILD 0, BOT_DM 1) and the authorizing_integration_owners, as Discord decides them:
    guild commands only where the bot is; a global command only in its `contexts` (all of them when
    null, less BOT_DM with dm_permission false) and where one of its `integration_types` is installed:
    GUILD_INSTALL where the bot is a member (or its DM), USER_INSTALL anywhere."""
    guild_id = channel.guild_id
    bot_there = world.bot_sees(guild_id)
    context = GUILD_CONTEXT if guild_id is not None else BOT_DM_CONTEXT
    scopes = [guild_id, None] if guild_id is not None and bot_there else [None]
    for scope in scopes:
        for command in commands.get(scope, []):
            if command["name"] != name or command.get("type", 1) != 1:
                continue
            if scope is not None:
                return command, context, {str(GUILD_INSTALL): str(scope)}
            contexts = command.get("contexts")
            if contexts is None:
                contexts = [GUILD_CONTEXT, PRIVATE_CHANNEL_CONTEXT] + ([] if command.get("dm_permission") is False else [BOT_DM_CONTEXT])
            if context not in contexts:
                raise PermissionError(f"/{name} is not available in {'DMs' if guild_id is None else 'servers'} (contexts {contexts})")
            owners: dict[str, str] = {}
            types = command.get("integration_types") or [GUILD_INSTALL]
            if GUILD_INSTALL in types and bot_there:
                owners[str(GUILD_INSTALL)] = str(guild_id or 0)
            if USER_INSTALL in types:
                owners[str(USER_INSTALL)] = str(user.id)
            if not owners:
                raise PermissionError(f"/{name} is not installed here: the bot is not in this server and the command is not user-installable")
            return command, context, owners
    synced = {scope: [c["name"] for c in cmds] for scope, cmds in commands.items()}
    raise LookupError(f"no synced command /{name} usable in channel {channel.id}; synced: {synced}")


def command_options(
    world: World, command: dict[str, Any], channel: Channel, options: dict[str, Any], subcommand: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Typed interaction options (nested under the subcommand path) and the `resolved` block.

    Validates like the Discord client does: unknown or missing required options, choices, bounds.
    """
    schema = command.get("options") or []
    path: list[dict[str, Any]] = []
    for part in (subcommand or "").split():
        spec = _option_spec(schema, part, f"/{command['name']}")
        if spec["type"] not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            raise ValueError(f"{part!r} is not a subcommand of /{command['name']}")
        path.append(spec)
        schema = spec.get("options") or []
    if any(s["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for s in schema):
        raise ValueError(f"/{command['name']} needs a subcommand: {[s['name'] for s in schema]}")

    resolved: dict[str, dict[str, Any]] = {}
    values = [
        {"name": name, "type": spec["type"], "value": _option_value(world, channel, spec, value, resolved)}
        for name, value in options.items()
        for spec in [_option_spec(schema, name, f"/{command['name']}")]
    ]
    missing = [s["name"] for s in schema if s.get("required") and s["name"] not in options]
    if missing:
        raise ValueError(f"/{command['name']} is missing required options {missing}")
    for spec in reversed(path):
        values = [{"name": spec["name"], "type": spec["type"], "options": values}]
    return values, resolved


def _option_spec(schema: list[dict[str, Any]], name: str, where: str) -> dict[str, Any]:
    for spec in schema:
        if spec["name"] == name:
            return spec
    raise ValueError(f"{where} has no option {name!r}; it has {[s['name'] for s in schema]}")


def _option_value(world: World, channel: Channel, spec: dict[str, Any], value: Any, resolved: dict[str, Any]) -> Any:
    kind, name = spec["type"], spec["name"]
    expected = {STRING: str, INTEGER: int, BOOLEAN: bool, NUMBER: (int, float)}.get(kind)
    if expected is not None:
        if not isinstance(value, expected) or (kind in (INTEGER, NUMBER) and isinstance(value, bool)):
            raise TypeError(f"option {name!r} needs {expected}, got {value!r}")
        choices = spec.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(f"option {name!r}: {value!r} is not one of {[c['value'] for c in choices]}")
        low, high = spec.get("min_value"), spec.get("max_value")
        if kind == STRING:
            low, high, value_size = spec.get("min_length"), spec.get("max_length"), len(value)
        else:
            value_size = value
        if (low is not None and value_size < low) or (high is not None and value_size > high):
            raise ValueError(f"option {name!r}: {value!r} is out of bounds [{low}, {high}]")
        return value

    if kind == ATTACHMENT:
        # A file the user uploads with the command: (filename, bytes), stored and served like any attachment.
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bytes)):
            raise TypeError(f"option {name!r} needs (filename, bytes), got {value!r}")
        attachment = world.add_attachment(channel.id, value[0], value[1])
        resolved.setdefault("attachments", {})[str(attachment["id"])] = {**attachment, "id": str(attachment["id"])}
        return str(attachment["id"])

    target_id = value if isinstance(value, int) else value.id
    guild = world.guilds.get(channel.guild_id) if channel.guild_id is not None else None
    if kind in (USER, MENTIONABLE) and target_id in world.users:
        resolved.setdefault("users", {})[str(target_id)] = world.users[target_id].payload()
        member = guild.members.get(target_id) if guild is not None else None
        if member is not None:
            permissions = str(world.permissions_for(channel, target_id))
            resolved.setdefault("members", {})[str(target_id)] = {
                **member.payload(with_user=False),
                "permissions": permissions,
            }
    elif kind in (ROLE, MENTIONABLE) and guild is not None and target_id in guild.roles:
        resolved.setdefault("roles", {})[str(target_id)] = guild.roles[target_id].payload()
    elif kind == CHANNEL and target_id in world.channels:
        target = world.channels[target_id]
        resolved.setdefault("channels", {})[str(target_id)] = {
            **target.payload(),
            "permissions": str(world.permissions_for(target, world.bot.id)),
        }
    else:
        raise ValueError(f"option {name!r} (type {kind}) cannot take {value!r}")
    return str(target_id)
