"""REST API under /api/v10, as used by discord.py's HTTPClient and its interaction webhooks.

Route templates (and their parameter names) are discord.py's, so that fault specs and request
counters read "POST /channels/{channel_id}/messages" exactly as in discord/http.py.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from aiohttp import web

from .interactions import APPLICATION_COMMAND_AUTOCOMPLETE, ATTACHMENT_SIZE_LIMIT, AUTOCOMPLETE_CHOICES_MAX, MESSAGE_COMPONENT, Interaction
from .ratelimits import headers, too_many
from .wire import json_response
from .world import (
    DM_CHANNEL,
    FORUM_CHANNEL,
    MESSAGE_FLAG_EPHEMERAL,
    MESSAGE_FLAG_LOADING,
    Channel,
    Permission,
    emoji_payload,
    snowflake_time_ms,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

API_PREFIX = "/api/v10"
# Attachment downloads (Discord's CDN serves them outside the API); a key of request_counts and faults.
CDN_ROUTE = "GET /attachments/{channel_id}/{attachment_id}/{filename}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Discord's `^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$`, as near as Python's re gets.
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, self.status)


def invalid_form(field: str, code: str, message: str) -> ApiError:
    return ApiError(400, 50035, "Invalid Form Body", {field: {"_errors": [{"code": code, "message": message}]}})


NO_CONTENT = 204
DAY_SECONDS = 24 * 3600.0
REQUEST_SIZE_LIMIT = 25 * 1024 * 1024  # all files of one request
NONCE_MAX_LENGTH = 25
BULK_DELETE_MAX_AGE_MS = 14 * 24 * 3600 * 1000


class RestApi:
    def __init__(self, server: FakeDiscord) -> None:
        self.server = server
        self.world = server.world
        # (method, template, handler, needs the bot token)
        self.routes: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/gateway", self.get_gateway, False),
            ("GET", "/gateway/bot", self.get_gateway_bot, True),
            ("GET", "/users/@me", self.get_me, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id}", self.get_user, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/channels/{channel_id}", self.get_channel, True),
            ("POST", "/channels/{channel_id}/typing", self.typing, True),
            ("GET", "/channels/{channel_id}/messages", self.get_messages, True),
            ("POST", "/channels/{channel_id}/messages", self.post_message, True),
            ("POST", "/channels/{channel_id}/messages/bulk-delete", self.bulk_delete, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", self.clear_reactions, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", self.get_reaction_users, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", self.clear_emoji, True),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_own_reaction, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.remove_own_reaction, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{member_id}", self.remove_reaction, True),
            ("GET", "/guilds/{guild_id}", self.get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles, True),
            ("GET", "/guilds/{guild_id}/members", self.get_members, True),
            ("GET", "/guilds/{guild_id}/members/{member_id}", self.get_member, True),
            ("GET", "/applications/{application_id}/commands", self.get_commands, True),
            ("PUT", "/applications/{application_id}/commands", self.put_commands, True),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.get_commands, True),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self.put_commands, True),
            ("POST", "/interactions/{webhook_id}/{webhook_token}/callback", self.interaction_callback, False),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self.followup, False),
            ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", self.get_webhook_message, False),
            ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", self.edit_webhook_message, False),
            ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", self.delete_webhook_message, False),
        ]
        self._auth_free = {f"{m} {t}" for m, t, _, auth in self.routes if not auth}
        self.route_keys = {f"{m} {t}" for m, t, _, _ in self.routes} | {CDN_ROUTE}

    def add_routes(self, app: web.Application) -> None:
        for method, template, handler, _ in self.routes:
            app.router.add_route(method, API_PREFIX + template, handler)
        app.router.add_get(CDN_ROUTE.partition(" ")[2], self.get_attachment)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        server = self.server
        if request.match_info.http_exception is not None:
            server.unhandled_requests.append(f"{request.method} {request.path}")
            error = request.match_info.http_exception
            return ApiError(error.status, 0, f"{error.status}: {error.reason}").response()
        canonical = request.match_info.route.resource.canonical
        if not canonical.startswith(API_PREFIX):
            return await handler(request)  # the gateway websocket and attachment downloads
        key = f"{request.method} {canonical[len(API_PREFIX):]}"
        server.request_log.append((time.monotonic(), key))  # as it arrived, before any answer (a 401, a 429 too)
        _count(server, key)
        fault = server.faults.take(key)
        if fault is not None:
            return fault.response()
        if key not in self._auth_free and request.headers.get("Authorization") != f"Bot {server.bot_token}":
            return ApiError(401, 0, "401: Unauthorized").response()
        caller = request.headers.get("Authorization") or f"address {request.remote}"  # whom the global limit counts
        limit_headers, limited = server.rate_limits.admit(key, request.match_info, caller)
        if limited is not None:
            return limited
        await server.wait_at_gate(key)
        try:
            response = await handler(request)
        except ApiError as error:
            response = error.response()
        finally:
            server.notify()
        await server.wait_at_gate(key, answered=True)
        response.headers.update(limit_headers)
        return response

    # -- helpers --------------------------------------------------------------------------------

    def _channel(self, request: web.Request) -> Channel:
        channel = self.world.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def _message(self, channel: Channel, message_id: str) -> dict[str, Any]:
        message = channel.messages.get(int(message_id))
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    def _require(self, channel: Channel, permissions: int) -> None:
        """The bot's permissions in a guild channel; DMs have none to check."""
        if channel.guild_id is None:
            return
        have = self.world.permissions_for(channel, self.world.bot.id)
        if not have & Permission.VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if have & permissions != permissions:
            raise ApiError(403, 50013, "Missing Permissions")

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], dict[int, tuple[str, bytes]]]:
        """JSON body, or multipart payload_json plus files[n] -> (filename, bytes)."""
        if request.content_type.startswith("multipart/"):
            body: dict[str, Any] = {}
            files: dict[int, tuple[str, bytes]] = {}
            async for part in await request.multipart():
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.name and part.name.startswith("files["):
                    files[int(part.name[6:-1])] = (part.filename or "file", bytes(await part.read()))
            return body, files
        if request.body_exists:
            return await request.json(), {}
        return {}, {}

    def _attachments(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: dict[int, tuple[str, bytes]],
        existing: Iterable[dict[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """New uploads get ids; entries naming an existing attachment keep it (message edits).

        A file over the per-file limit (10 MiB, Discord's attachment_size_limit without boosts), or
        files over 25 MiB together, is 413 with code 40005."""
        sizes = [len(data) for _, data in files.values()]
        if any(size > ATTACHMENT_SIZE_LIMIT for size in sizes) or sum(sizes) > REQUEST_SIZE_LIMIT:
            raise ApiError(413, 40005, "Request entity too large")
        kept = {a["id"]: a for a in existing}
        entries = body.get("attachments")
        if entries is None:
            entries = [{"id": index, "filename": filename} for index, (filename, _) in sorted(files.items())]
        result = []
        for entry in entries:
            entry_id = int(entry["id"])
            if entry_id in kept:
                result.append(kept[entry_id])
            elif entry_id in files:
                filename, data = files[entry_id]
                result.append(
                    self.world.add_attachment(
                        channel_id, entry.get("filename") or filename, data, description=entry.get("description")
                    )
                )
            else:
                raise invalid_form("attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {entry_id}")
        return result

    def _validate_message(self, body: dict[str, Any], attachments: int, *, creating: bool) -> None:
        content = body.get("content") or ""
        if len(content) > 2000:
            raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if len(body.get("embeds") or []) > 10:
            raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if attachments > 10:
            raise invalid_form("attachments", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        components = body.get("components") or []
        if len(components) > 5 and not int(body.get("flags") or 0) & (1 << 15):
            raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        custom_ids: list[str] = []
        for row in components:
            children = row.get("components", [])
            if row.get("type") == 1 and len(children) > 5:
                raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
            for item in children:
                custom_id = item.get("custom_id")
                if custom_id is None:
                    if item.get("type") == 2 and item.get("style") not in (5, 6):
                        raise invalid_form("components", "BASE_TYPE_REQUIRED", "This field is required")
                    continue
                if not 1 <= len(custom_id) <= 100:
                    raise invalid_form("components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
                custom_ids.append(custom_id)
        if len(custom_ids) != len(set(custom_ids)):
            raise invalid_form("components", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
        has_body = content or body.get("embeds") or attachments or components or body.get("sticker_ids") or body.get("poll")
        if creating and not has_body:
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _reference(self, channel: Channel, body: dict[str, Any]) -> dict[str, Any] | None:
        reference = body.get("message_reference")
        if not reference:
            return None
        target_id = int(reference["message_id"])
        target = self.world.messages.get(target_id)
        if target is None and reference.get("fail_if_not_exists", True):
            raise invalid_form("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        result = {"type": 0, "message_id": str(target_id), "channel_id": str(reference.get("channel_id", channel.id))}
        if channel.guild_id is not None:
            result["guild_id"] = str(channel.guild_id)
        return result

    def _interaction(self, request: web.Request) -> Interaction:
        """The callback route names the interaction by id."""
        interaction = self.server.interactions.get(int(request.match_info["webhook_id"]))
        if interaction is None or interaction.token != request.match_info["webhook_token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        return interaction

    def _interaction_webhook(self, request: web.Request) -> Interaction:
        """Followup routes are the application's webhook, named by the interaction token."""
        interaction = self.server.interactions_by_token.get(request.match_info["webhook_token"])
        if interaction is None or int(request.match_info["webhook_id"]) != self.world.bot.id:
            raise ApiError(404, 10015, "Unknown Webhook")
        if interaction.age() > self.server.interaction_token_lifetime:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return interaction

    # -- gateway, users, application ------------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.server.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.server.gateway_url, "shards": self.server.shard_count, "session_start_limit": limit})

    async def get_me(self, request: web.Request) -> web.Response:
        me = {**self.world.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US", "email": None}
        return json_response(me)

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        body, _ = await self._body(request)
        user = self.world.users.get(int(body["recipient_id"]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(self.world.dm_channel(user).payload())

    async def get_application(self, request: web.Request) -> web.Response:
        bot = self.world.bot
        return json_response(
            {
                "id": str(bot.id),
                "name": bot.name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": bot.payload(),
                "owner": self.world.developer.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.world.guilds),
            }
        )

    # -- channels and messages ------------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(channel, Permission.VIEW_CHANNEL)
        return json_response(channel.payload())

    async def typing(self, request: web.Request) -> web.Response:
        self._require(self._channel(request), Permission.SEND_MESSAGES)
        return web.Response(status=NO_CONTENT)

    async def get_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        query = request.query
        limit = max(1, min(100, int(query.get("limit", 50))))
        ids = list(channel.messages)
        if "around" in query:
            around = int(query["around"])
            older = [i for i in ids if i < around][-(limit // 2) :] if limit > 1 else []
            picked = (older + [i for i in ids if i >= around])[:limit]
        elif "after" in query and not self.server.ignore_after:
            picked = [i for i in ids if i > int(query["after"])][:limit]
        elif "before" in query:
            picked = [i for i in ids if i < int(query["before"])][-limit:]
        else:
            picked = ids[-limit:]
        # Discord always answers newest first.
        return json_response([self.world.message_payload(channel.messages[i]) for i in reversed(picked)])

    async def post_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body, files = await self._body(request)
        if channel.type == DM_CHANNEL:
            assert channel.recipient is not None
            if not channel.recipient.accepts_dms:
                raise ApiError(403, 50007, "Cannot send messages to this user")
        elif channel.type == FORUM_CHANNEL:
            raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
        else:
            # In threads and forum posts Discord checks Send Messages in Threads, not Send Messages.
            send = Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES
            self._require(channel, send | (Permission.ATTACH_FILES if files else 0))
            if body.get("embeds") and not self.world.permissions_for(channel, self.world.bot.id) & Permission.EMBED_LINKS:
                body["embeds"] = []  # Discord drops embeds silently without EMBED_LINKS
        self._validate_message(body, len(body.get("attachments") or files), creating=True)
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > NONCE_MAX_LENGTH:
            raise invalid_form("nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {NONCE_MAX_LENGTH} or fewer in length.")
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self.server._nonce_message(channel, self.world.bot, str(nonce))
            if earlier is not None:
                return json_response(self.world.message_payload(earlier))
        attachments = self._attachments(channel.id, body, files)
        reference = self._reference(channel, body)
        # Only interaction responses can be ephemeral or loading.
        body["flags"] = int(body.get("flags") or 0) & ~(MESSAGE_FLAG_EPHEMERAL | MESSAGE_FLAG_LOADING)
        message = self.server._create_message(channel, self.world.bot, body, attachments, reference=reference)
        return json_response(self.world.message_payload(message))

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        return json_response(self.world.message_payload(self._message(channel, request.match_info["message_id"])))

    async def edit_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message_id"])
        if message["author_id"] != self.world.bot.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        return json_response(await self._edit(request, message))

    async def _edit(self, request: web.Request, message: dict[str, Any]) -> dict[str, Any]:
        body, files = await self._body(request)
        attachments = None
        if "attachments" in body or files:
            attachments = self._attachments(message["channel_id"], body, files, message["attachments"])
        self._validate_message(body, len(attachments or ()), creating=False)
        self.server._edit_message(message, body, attachments)
        return self.world.message_payload(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message_id"])
        if message["author_id"] != self.world.bot.id:
            self._require(channel, Permission.MANAGE_MESSAGES)
        self.server._delete_message(message)
        return web.Response(status=NO_CONTENT)

    async def bulk_delete(self, request: web.Request) -> web.Response:
        """2-100 ids, guild channels only, MANAGE_MESSAGES, none older than 14 days, no duplicates;
        unknown ids count towards the limits and are skipped (Discord's documented rules)."""
        channel = self._channel(request)
        if channel.guild_id is None:
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        self._require(channel, Permission.MANAGE_MESSAGES)
        body, _ = await self._body(request)
        ids = [int(i) for i in body.get("messages") or []]
        if len(ids) < 2:
            raise invalid_form("messages", "BASE_TYPE_MIN_LENGTH", "Must be 2 or more in length.")
        if len(ids) > 100:
            raise invalid_form("messages", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        if len(set(ids)) != len(ids):
            raise invalid_form("messages", "BASE_TYPE_DUPLICATES", "Duplicate message ids are not allowed.")
        oldest_ms = int(time.time() * 1000) - BULK_DELETE_MAX_AGE_MS
        if any(snowflake_time_ms(i) < oldest_ms for i in ids):
            raise ApiError(400, 50034, "A message provided was too old to bulk delete")
        self.server._bulk_delete(channel, [channel.messages[i] for i in ids if i in channel.messages])
        return web.Response(status=NO_CONTENT)

    # -- reactions ------------------------------------------------------------------------------

    def _reaction_target(self, request: web.Request) -> tuple[Channel, dict[str, Any], str]:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message_id"])
        emoji = request.match_info["emoji"]
        if not self.world.knows_emoji(emoji):
            raise ApiError(400, 10014, "Unknown Emoji")
        return channel, message, emoji

    async def add_own_reaction(self, request: web.Request) -> web.Response:
        channel, message, emoji = self._reaction_target(request)
        # Adding to an existing reaction needs no ADD_REACTIONS, as on Discord.
        new = emoji not in message["reactions"]
        self._require(channel, Permission.READ_MESSAGE_HISTORY | (Permission.ADD_REACTIONS if new else 0))
        self.server._apply_reactions([(self.world.bot, message, emoji, True, False)])
        return web.Response(status=NO_CONTENT)

    async def remove_own_reaction(self, request: web.Request) -> web.Response:
        _, message, emoji = self._reaction_target(request)
        self.server._apply_reactions([(self.world.bot, message, emoji, False, False)])
        return web.Response(status=NO_CONTENT)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        channel, message, emoji = self._reaction_target(request)
        user = self.world.users.get(int(request.match_info["member_id"]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        if user is not self.world.bot:
            self._require(channel, Permission.MANAGE_MESSAGES)
        # The user's reaction with that emoji goes, normal and super alike.
        self.server._apply_reactions([(user, message, emoji, False, False), (user, message, emoji, False, True)])
        return web.Response(status=NO_CONTENT)

    async def get_reaction_users(self, request: web.Request) -> web.Response:
        channel, message, emoji = self._reaction_target(request)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        kind = request.query.get("type", "0")
        if kind not in ("0", "1"):
            raise invalid_form("type", "NUMBER_TYPE_COERCE", f"Value \"{kind}\" is not a valid enum value.")
        # Normal reactors only, unless type=1 asks for the super (burst) ones.
        reactors = message["burst_reactions" if kind == "1" else "reactions"].get(emoji, ())
        limit = max(1, min(100, int(request.query.get("limit", 25))))
        after = 0 if self.server.ignore_after else int(request.query.get("after", 0))
        # Discord pages reaction users by ascending user id.
        user_ids = sorted(u for u in reactors if u > after)[:limit]
        return json_response([self.world.users[u].payload() for u in user_ids])

    async def clear_reactions(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message_id"])
        self._require(channel, Permission.MANAGE_MESSAGES)
        self.server._clear_reactions(message, None)
        return web.Response(status=NO_CONTENT)

    async def clear_emoji(self, request: web.Request) -> web.Response:
        channel, message, emoji = self._reaction_target(request)
        self._require(channel, Permission.MANAGE_MESSAGES)
        self.server._clear_reactions(message, emoji)
        return web.Response(status=NO_CONTENT)

    # -- guilds ---------------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> Any:
        guild = self.world.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        if not self.world.bot_sees(guild.id):
            raise ApiError(403, 50001, "Missing Access")
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        payload = guild.payload(members=(), joined_at=self.world.bot_joined_at[guild.id])
        for key in ("channels", "members", "threads", "presences", "voice_states", "joined_at", "large"):
            payload.pop(key)
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response([c.payload() for c in self._guild(request).channels.values()])

    async def get_roles(self, request: web.Request) -> web.Response:
        return json_response([r.payload() for r in self._guild(request).roles.values()])

    async def get_members(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        limit = max(1, min(1000, int(request.query.get("limit", 1))))
        after = int(request.query.get("after", 0))
        user_ids = sorted(u for u in guild.members if u > after)[:limit]
        return json_response([guild.members[u].payload() for u in user_ids])

    async def get_member(self, request: web.Request) -> web.Response:
        member = self._guild(request).members.get(int(request.match_info["member_id"]))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    # -- application commands -------------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.world.bot.id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return None
        guild = self._guild(request)
        return guild.id

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.server.commands.get(self._command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body, _ = await self._body(request)
        if not isinstance(body, list):
            raise invalid_form("_", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        _validate_commands(body, self.server.installation_types)
        if not self.server._count_command_creates(scope, body):
            route = f"{request.method} {request.match_info.route.resource.canonical[len(API_PREFIX):]}"
            return too_many(
                DAY_SECONDS, headers(route, 1, 0, DAY_SECONDS), scope="user", code=30034,
                message="Max number of daily application command creates has been reached (200)",
            )
        return json_response(self.server._set_commands(scope, body))

    # -- interactions ---------------------------------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        server = self.server
        if interaction.callbacks:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        timeout = server.interaction_ack_timeout
        if timeout is not None and interaction.age() > timeout:
            server._deadline_passed(interaction)
            raise ApiError(404, 10062, "Unknown interaction")
        body, files = await self._body(request)
        kind, data = body.get("type"), body.get("data") or {}
        if interaction.type == APPLICATION_COMMAND_AUTOCOMPLETE:
            choices = data.get("choices")
            if kind != 8 or not isinstance(choices, list) or len(choices) > AUTOCOMPLETE_CHOICES_MAX:
                raise invalid_form("data.choices", "BASE_TYPE_MAX_LENGTH", "An autocomplete answers with type 8 and at most 25 choices")
            if any(not 1 <= len(str(c.get("name", ""))) <= 100 or "value" not in c for c in choices):
                raise invalid_form("data.choices", "BASE_TYPE_BAD_LENGTH", "A choice needs a name of 1-100 characters and a value")
            interaction.callbacks.append({"type": kind, "data": data})
            return web.Response(status=NO_CONTENT)
        allowed = {4, 5, 9} | ({6, 7} if interaction.type == MESSAGE_COMPONENT else set())
        if kind not in allowed:
            raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Response type {kind} is not valid here")
        message = None
        if kind in (4, 5):
            if kind == 4:
                self._validate_message(data, len(data.get("attachments") or files), creating=True)
            attachments = self._attachments(interaction.channel.id, data, files)
            message = server._respond_message(interaction, data, attachments, loading=kind == 5)
        elif kind in (6, 7):
            message = interaction.message
            assert message is not None
            if kind == 7:
                attachments = None
                if "attachments" in data or files:
                    attachments = self._attachments(interaction.channel.id, data, files, message["attachments"])
                self._validate_message(data, len(attachments or ()), creating=False)
                server._edit_message(message, data, attachments)
        interaction.original = message
        interaction.callbacks.append({"type": kind, "data": data})
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=NO_CONTENT)
        callback: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message["flags"] & MESSAGE_FLAG_EPHEMERAL),
            },
            "resource": {"type": kind},
        }
        if message is not None and kind != 6:
            callback["interaction"]["response_message_id"] = str(message["id"])
            callback["resource"]["message"] = self.world.message_payload(message)
        return json_response(callback)

    async def followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction_webhook(request)
        if not interaction.callbacks:
            raise ApiError(404, 10015, "Unknown Webhook")
        body, files = await self._body(request)
        self._validate_message(body, len(body.get("attachments") or files), creating=True)
        attachments = self._attachments(interaction.channel.id, body, files)
        original = interaction.original
        if original is not None and original["flags"] & MESSAGE_FLAG_LOADING and not interaction.followups:
            # On Discord the first followup after a "thinking" defer fills in that message,
            # keeping its ephemerality.
            body = {**body, "flags": original["flags"] & MESSAGE_FLAG_EPHEMERAL}
            self.server._edit_message(original, body, attachments)
            message = original
        else:
            message = self.server._respond_message(interaction, body, attachments)
        interaction.followups.append(message)
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(self.world.message_payload(message))
        return web.Response(status=NO_CONTENT)

    def _webhook_message(self, request: web.Request) -> dict[str, Any]:
        interaction = self._interaction_webhook(request)
        message_id = request.match_info["message_id"]
        candidates = [interaction.original, *interaction.followups]
        if message_id == "@original":
            message = interaction.original
        else:
            message = next((m for m in candidates if m is not None and m["id"] == int(message_id)), None)
        if message is None or message["deleted"]:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        return json_response(self.world.message_payload(self._webhook_message(request)))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        return json_response(await self._edit(request, self._webhook_message(request)))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        self.server._delete_message(self._webhook_message(request))
        return web.Response(status=NO_CONTENT)

    # -- attachments (the "CDN") ----------------------------------------------------------------

    async def get_attachment(self, request: web.Request) -> web.StreamResponse:
        """An attachment's bytes. Counted in request_counts and faulted (server.fail) like a REST route;
        waits while downloads are held (server.hold_downloads), as a slow CDN or a large file would."""
        server = self.server
        _count(server, CDN_ROUTE)
        fault = server.faults.take(CDN_ROUTE)
        if fault is not None:
            return fault.response()
        gate = server._download_gate
        if gate is not None:
            server.downloads_waiting += 1
            server.notify()
            try:
                await gate.wait()
            finally:
                server.downloads_waiting -= 1
        data = self.world.attachment_data.get(int(request.match_info["attachment_id"]))
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="application/octet-stream")


# Per scope and type (Discord's "Registering a Command" limits).
MAX_COMMANDS = {1: 100, 2: 15, 3: 15}
# Combined name, description and value characters of one chat-input command, its options and choices.
MAX_COMMAND_SIZE = 8000


def _validate_commands(commands: list[dict[str, Any]], installation_types: list[int]) -> None:
    """Discord's documented command limits: names and descriptions, options, choices, counts, size;
    integration_types only among the application's installation contexts."""
    seen: set[tuple[str, int]] = set()
    for index, command in enumerate(commands):
        declared = command.get("integration_types") or []
        if not set(declared) <= set(installation_types):
            raise invalid_form(
                f"{index}.integration_types", "APPLICATION_COMMAND_INTEGRATION_TYPES_INVALID",
                f"Integration types {declared} are not all supported by the application ({installation_types})",
            )
        kind = command.get("type", 1)
        key = (command.get("name", ""), kind)
        if key in seen:
            raise invalid_form(str(index), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
        seen.add(key)
        if kind == 1:
            _validate_option(command, str(index))
            size = _command_size(command)
            if size > MAX_COMMAND_SIZE:
                raise invalid_form(
                    str(index), "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({MAX_COMMAND_SIZE}): {size}"
                )
        else:
            if not 1 <= len(key[0]) <= 32:
                raise invalid_form(f"{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
            if command.get("description"):
                raise invalid_form(f"{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be empty for user and message commands.")
    for kind, most in MAX_COMMANDS.items():
        if sum(1 for _, k in seen if k == kind) > most:
            raise ApiError(400, 30032, "Maximum number of application commands reached")


def _longest(item: dict[str, Any], field: str) -> int:
    """A field's size: with localizations, the longest of the default and its localizations."""
    value = item.get(field)
    sizes = [len(str(value)) if value is not None else 0]
    sizes += [len(v) for v in (item.get(f"{field}_localizations") or {}).values() if v]
    return max(sizes)


def _command_size(item: dict[str, Any]) -> int:
    size = _longest(item, "name") + _longest(item, "description")
    for choice in item.get("choices") or []:
        size += _longest(choice, "name") + len(str(choice.get("value", "")))
    return size + sum(_command_size(child) for child in item.get("options") or [])


def _validate_option(option: dict[str, Any], where: str) -> None:
    """Chat-input command or option: lowercase names, described, <= 25 children, required first."""
    name, description = option.get("name", ""), option.get("description", "")
    if not _COMMAND_NAME.match(name) or name != name.lower():
        raise invalid_form(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    if not 1 <= len(description) <= 100:
        raise invalid_form(f"{where}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    children = option.get("options") or []
    choices = option.get("choices") or []
    if len(children) > 25 or len(choices) > 25:
        raise invalid_form(f"{where}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for i, choice in enumerate(choices):
        if not 1 <= len(choice.get("name", "")) <= 100:
            raise invalid_form(f"{where}.choices.{i}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if isinstance(choice.get("value"), str) and len(choice["value"]) > 100:
            raise invalid_form(f"{where}.choices.{i}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    for bound, low in (("min_length", 0), ("max_length", 1)):
        if bound in option and not low <= int(option[bound]) <= 6000:
            raise invalid_form(f"{where}.{bound}", "NUMBER_TYPE_MAX", f"{bound} must be between {low} and 6000.")
    names = [c.get("name") for c in children]
    if len(names) != len(set(names)):
        raise invalid_form(f"{where}.options", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
    required = [bool(c.get("required")) for c in children]
    if required != sorted(required, reverse=True):
        raise invalid_form(f"{where}.options", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", "Required options must be placed before non-required options")
    for i, child in enumerate(children):
        _validate_option(child, f"{where}.options.{i}")


def _count(server: FakeDiscord, key: str) -> None:
    """Counts a request (request_counts) and wakes the waits on the count: a request answered before its
    handler (an injected fault, a 401, a 429) changes no other state, so nothing else would wake them."""
    server.request_counts[key] += 1
    server.notify()
