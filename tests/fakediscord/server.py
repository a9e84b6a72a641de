"""FakeDiscord: a local Discord (REST + gateway) that an unmodified discord.py client talks to."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import secrets
import threading
from collections import Counter
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, TypeVar

from aiohttp import web

from .faults import Fault, Faults
from .gateway import Gateway, Session
from .interactions import (
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    GUILD_INSTALL,
    HANG_SECONDS,
    MESSAGE_COMPONENT,
    Interaction,
    command_options,
    find_command,
)
from .ratelimits import GLOBAL_LIMIT, RateLimits, is_interaction_route, most_in_one_second
from .rest import ApiError, RestApi
from .world import (
    BURST_COLORS,
    FORUM_CHANNEL,
    MAX_REACTIONS,
    MEMBER_OVERWRITE,
    MESSAGE_FLAG_EPHEMERAL,
    MESSAGE_FLAG_LOADING,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    ROLE_OVERWRITE,
    Channel,
    Guild,
    Member,
    Permission,
    Role,
    User,
    World,
    emoji_key,
    emoji_payload,
    iter_components,
    now_iso,
    number_components,
    reaction_keys,
)

T = TypeVar("T")
DAILY_COMMAND_CREATES = 200  # per scope (Discord: "200 application command creates per day, per guild")
MessageRef = Any  # a message dict, an id, or anything with .id (a discord.Message)
ChannelRef = Any  # a Channel, an id, anything with .id, or a User (meaning the bot's DM with them)
# (user, message, emoji, add?) or (user, message, emoji, add?, burst?) for react_many
ReactionAction = tuple[Any, ...]


F = TypeVar("F", bound=Callable[..., Any])


def on_server(method: F) -> F:
    """Runs a synchronous method on the server's thread (waiting for its result) unless already there,
    so that tests on their own loop and the server's handlers never touch the state at the same time."""

    @functools.wraps(method)
    def wrapper(self: FakeDiscord, *args: Any, **kwargs: Any) -> Any:
        if self._on_server_thread():
            return method(self, *args, **kwargs)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(method(self, *args, **kwargs))
            except BaseException as error:  # re-raised in the caller's thread
                done.set_exception(error)

        assert self._loop is not None
        self._loop.call_soon_threadsafe(run)
        return done.result()

    return wrapper  # type: ignore[return-value]


def on_server_async(method: F) -> F:
    """Runs a coroutine method on the server's loop, awaited from the caller's loop."""

    @functools.wraps(method)
    async def wrapper(self: FakeDiscord, *args: Any, **kwargs: Any) -> Any:
        if self._on_server_thread():
            return await method(self, *args, **kwargs)
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), self._loop))

    return wrapper  # type: ignore[return-value]


class _Waiters:
    """Futures (each on its waiter's loop) waiting for a predicate over server state.

    Predicates run on the server's thread, whenever state changes; a satisfied waiter gets its value
    through its own loop's call_soon_threadsafe.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    def add(self, entry: tuple[Callable[[], Any], asyncio.Future[Any]]) -> None:
        """Server thread: resolves at once when the predicate already holds, else keeps the entry."""
        if not self._check(entry):
            self._pending.append(entry)

    def remove(self, entry: tuple[Callable[[], Any], asyncio.Future[Any]]) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(entry)

    def fail_all(self, error: BaseException) -> None:
        for _, future in self._pending:
            _resolve(future, error=error)

    def notify(self) -> None:
        self._pending = [entry for entry in self._pending if not self._check(entry)]

    @staticmethod
    def _check(entry: tuple[Callable[[], Any], asyncio.Future[Any]]) -> bool:
        predicate, future = entry
        if future.done():
            return True
        try:
            value = predicate()
        except Exception as exc:  # a broken predicate should fail its test, not the server
            _resolve(future, error=exc)
            return True
        if value:
            _resolve(future, value)
            return True
        return False


def _message_id(message: MessageRef) -> int:
    if isinstance(message, dict):
        return int(message["id"])
    return int(message if isinstance(message, int) else message.id)


def _resolve(future: asyncio.Future[Any], value: Any = None, *, error: BaseException | None = None) -> None:
    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    future.get_loop().call_soon_threadsafe(settle)


class FakeDiscord:
    """`async with FakeDiscord() as server:` listens on a free 127.0.0.1 port.

    Build the world (users, guilds, channels), connect a client with `server.connect(client)`,
    act as users (react, press buttons, run slash commands, send messages) and observe what the
    bot did (`messages`, `wait_for_message`, interaction records, request counters).
    """

    def __init__(
        self,
        *,
        bot_name: str = "crowdtune",
        bot_token: str | None = None,
        host: str = "127.0.0.1",
        interaction_ack_timeout: float | None = 3.0,
        interaction_token_lifetime: float = 15 * 60.0,
        history_size: int = 200_000,
        shard_count: int = 1,
        route_limits: dict[str, tuple[int, float]] | None = None,
        nonce_window: float = 5 * 60.0,
        privileged_intents: int = 0,
        installation_types: Iterable[int] = (GUILD_INSTALL,),
        heartbeat_interval: float = 41.25,
        global_rate_limit: int | None = GLOBAL_LIMIT,
    ) -> None:
        self.world = World(bot_name)
        self.bot_token = bot_token or f"ZmFrZQ.{secrets.token_urlsafe(6)}.{secrets.token_urlsafe(27)}"  # three parts, as Discord's
        self.host = host
        self.port: int | None = None
        # Discord forgets an interaction that is not acknowledged within 3 s; None disables that.
        self.interaction_ack_timeout = interaction_ack_timeout
        # Followups and edits of the original response work for 15 min, then 401 Invalid Webhook Token.
        self.interaction_token_lifetime = interaction_token_lifetime
        # Interactions left unanswered past the deadline, recorded when it passes (by the server's clock).
        self.missed_deadlines: list[Interaction] = []
        self.shard_count = shard_count  # what GET /gateway/bot recommends
        self.commands: dict[int | None, list[dict[str, Any]]] = {None: []}  # synced, by guild id (None: global)
        self.interactions: dict[int, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.request_counts: Counter[str] = Counter()  # "METHOD /template" -> requests (faulted ones too)
        # (monotonic s, "METHOD /template") of every API request as it arrived (faulted, refused and limited ones too).
        self.request_log: list[tuple[float, str]] = []
        self.unhandled_requests: list[str] = []  # requests no route matched: a gap in the fake
        self.faults = Faults()
        # While set (hold_downloads), attachment downloads wait for it: a slow CDN or a large file.
        self._download_gate: asyncio.Event | None = None
        self.downloads_waiting = 0  # attachment downloads waiting for release_downloads()
        # While a route has a gate (hold), its requests wait for it; `held` counts those waiting, by route.
        self._route_gates: dict[str, asyncio.Event] = {}
        self._held_answered: set[str] = set()  # held routes whose requests are carried out first, their answers held
        self.held: Counter[str] = Counter()
        self.rate_limits = RateLimits(route_limits, global_limit=global_rate_limit)
        # enforce_nonce: a nonce repeated by the same author in the same channel within this many seconds
        # ("the past few minutes" in Discord's docs) returns the earlier message instead of posting.
        self.nonce_window = nonce_window
        self._nonces: dict[tuple[int, int, str], tuple[dict[str, Any], float]] = {}
        # Privileged intents enabled for the application in the developer portal; others get 4014.
        self.privileged_intents = int(privileged_intents)
        # The application's installation contexts (developer portal): GUILD_INSTALL 0, USER_INSTALL 1.
        # A command that declares no integration_types gets these.
        self.installation_types = sorted(set(installation_types))
        # A deliberate deviation, for tests of paging loops: reaction and message listings ignore `after`
        # (always the first page), as some Discord-compatible servers do.
        self.ignore_after = False
        # Commands created (not overwritten with the same name and type) today, by scope: 200 a day
        # per scope is Discord's limit (30034).
        self.command_creates: Counter[int | None] = Counter()
        self.gateway = Gateway(self, history_size=history_size)
        self.gateway.heartbeat_interval_ms = round(heartbeat_interval * 1000)
        self.rest = RestApi(self)
        self._waiters = _Waiters()
        self._cursors: dict[int, int] = {}  # channel id -> last message wait_for_message returned
        self._runner: web.AppRunner | None = None
        self._saved_discord_globals: tuple[Any, Any] | None = None
        # The server's own thread and loop: its clock and its answers go on while a client's loop is frozen.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Starts the server's thread and loop, then listens on them."""
        started: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(started,), name="fakediscord", daemon=True)
        self._thread.start()
        self._loop = await asyncio.wrap_future(started)
        try:
            await self._listen()
        except BaseException:
            await self._stop_thread()
            raise

    def _serve(self, started: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set_result, loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _on_server_thread(self) -> bool:
        thread = self._thread
        return thread is None or thread.ident == threading.get_ident() or self._loop is None or self._loop.is_closed()

    async def _stop_thread(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        self._thread = None

    @on_server_async
    async def _listen(self, port: int = 0) -> None:
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self.gateway.handle)
        self.rest.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.world.http_base = self.http_base

    async def close(self) -> None:
        self.restore_discord_py()
        if self._thread is None:
            return
        await self._shut_down()
        await self._stop_thread()

    @on_server_async
    async def _shut_down(self) -> None:
        self.release_downloads()  # a held download would keep its handler, and so the shutdown, waiting
        for route in list(self._route_gates):
            self.release(route)
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @on_server_async
    async def go_down(self) -> None:
        """Discord unreachable, as in an outage, its state kept: every gateway socket closed (1001, going away) and the
        port no longer listened on, so each connection is refused, until come_back()."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def come_back(self) -> None:
        """The end of go_down's outage: listening again on the same port, the same world and sessions (a gateway
        session can be resumed)."""
        await self._listen(self.port or 0)

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.http_base}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    def redirect_discord_py(self) -> contextlib.AbstractContextManager[FakeDiscord]:
        """Points discord.py's REST base and default gateway here, until restore_discord_py()
        (also called by close() and on leaving the returned context manager)."""
        import yarl
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        if self._saved_discord_globals is None:
            self._saved_discord_globals = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self.api_base
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        return self._restoring()

    @contextlib.contextmanager
    def _restoring(self) -> Iterator[FakeDiscord]:
        try:
            yield self
        finally:
            self.restore_discord_py()

    def restore_discord_py(self) -> None:
        if self._saved_discord_globals is None:
            return
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_discord_globals
        self._saved_discord_globals = None

    @contextlib.asynccontextmanager
    async def connect(self, client: Any, *, timeout: float = HANG_SECONDS) -> AsyncIterator[Any]:
        """Logs `client` in, runs it until ready, and closes it on exit.

        Readiness waits for discord.py's guild_ready_timeout (2 s by default) after the last
        GUILD_CREATE; build clients with a small one (e.g. guild_ready_timeout=0.05) in tests.
        """
        with self.redirect_discord_py():
            await client.login(self.bot_token)
            runner = asyncio.create_task(client.connect(), name="fakediscord-client")
            runner.add_done_callback(self._client_stopped)
            try:
                ready = asyncio.ensure_future(client.wait_until_ready())
                done, _ = await asyncio.wait({runner, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if ready not in done:
                    ready.cancel()
                    if runner.done():
                        runner.result()  # the client's own error
                    raise TimeoutError(f"client not ready after {timeout}s")
                yield client
            finally:
                await client.close()
                await asyncio.wait({runner}, timeout=5)
                runner.cancel()
            error = None if runner.cancelled() else runner.exception()
            if error is not None:
                raise error

    def _client_stopped(self, runner: asyncio.Task[None]) -> None:
        # A payload discord.py cannot parse kills its client: fail the waits now, not at their timeout.
        if not runner.cancelled() and runner.exception() is not None and self._loop is not None:
            error = RuntimeError(f"the discord.py client died: {runner.exception()!r}")
            self._loop.call_soon_threadsafe(self._waiters.fail_all, error)

    # -- waiting --------------------------------------------------------------------------------

    @on_server
    def notify(self) -> None:
        """Re-checks everything waiting on server state; call after any change."""
        self._waiters.notify()

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = HANG_SECONDS, what: str = "a condition") -> T:
        """Returns predicate()'s first truthy value, re-checking on every server state change.

        The predicate runs on the server's thread (so it sees a consistent state); the wait is on
        the caller's loop."""
        entry = (predicate, asyncio.get_running_loop().create_future())
        self._call_on_server(self._waiters.add, entry)
        try:
            return await asyncio.wait_for(entry[1], timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from None
        finally:
            self._call_on_server(self._waiters.remove, entry)

    @on_server
    def _call_on_server(self, function: Callable[..., T], *args: Any) -> T:
        return function(*args)

    async def wait_for_message(
        self,
        channel: ChannelRef,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = HANG_SECONDS,
        after: int | None = None,
    ) -> dict[str, Any]:
        """The next bot message in `channel` (matching `predicate`) after the one the previous call
        returned for this channel (or after message id `after`). Messages posted before the call
        count, so there is no race with the action that makes the bot post."""
        target = self._channel(channel)
        start = self._cursors.get(target.id, 0) if after is None else after
        bot_id = self.world.bot.id

        def find() -> dict[str, Any] | None:
            for message in target.messages.values():
                if message["id"] > start and message["author_id"] == bot_id and (predicate is None or predicate(message)):
                    return message
            return None

        message = await self.wait_until(find, timeout, f"a bot message in channel {target.id}")
        self._cursors[target.id] = message["id"]
        return message

    async def wait_for_session(self, *, resumed: int | None = None, timeout: float = HANG_SECONDS) -> Session:
        """A connected gateway session (after at least `resumed` RESUMEs in total, when given)."""

        def connected() -> Session | None:
            if resumed is not None and self.gateway.received["RESUME"] < resumed:
                return None
            return next((s for s in self.gateway.sessions.values() if s.connected), None)

        return await self.wait_until(connected, timeout, "a connected gateway session")

    @on_server_async
    async def flush(self) -> None:
        """Waits until every dispatch so far is written to the connected sockets."""
        await self.gateway.flush()

    # -- observing ------------------------------------------------------------------------------

    @property
    def bot_user(self) -> User:
        return self.world.bot

    @property
    def application_id(self) -> int:
        return self.world.bot.id

    def most_in_one_second(self, since: float = 0.0) -> int:
        """The most requests bound by the global limit (all but the interaction endpoints: ratelimits.is_interaction_route)
        that arrived within any one second, by this server's clock, as Discord counts them for its global limit; only
        those that arrived at or after `since` (time.monotonic() s)."""
        return most_in_one_second([at for at, route in self.request_log if at >= since and not is_interaction_route(route)])

    @property
    def events_sent(self) -> Counter[str]:
        return self.gateway.sent

    @property
    def events_received(self) -> Counter[str]:
        return self.gateway.received

    @property
    def sessions(self) -> list[Session]:
        return list(self.gateway.sessions.values())

    @on_server
    def messages(self, channel: ChannelRef) -> list[dict[str, Any]]:
        """Live message dicts of a channel, oldest first (not ephemeral, not deleted)."""
        return list(self._channel(channel).messages.values())

    @on_server
    def message(self, message: MessageRef) -> dict[str, Any]:
        return self._message(message)

    def attachment_bytes(self, attachment: dict[str, Any] | int) -> bytes:
        attachment_id = attachment if isinstance(attachment, int) else int(attachment["id"])
        return self.world.attachment_data[attachment_id]

    @on_server
    def command(self, name: str, guild: Guild | None = None) -> dict[str, Any]:
        scope = None if guild is None else guild.id
        for command in self.commands.get(scope, []):
            if command["name"] == name:
                return command
        raise LookupError(f"/{name} is not synced {'globally' if guild is None else f'in {guild.name}'}")

    # -- world building (dispatches the matching events to connected sessions) ------------------

    @on_server
    def add_user(self, name: str, *, bot: bool = False, accepts_dms: bool = True) -> User:
        user = self.world.add_user(name, bot=bot)
        user.accepts_dms = accepts_dms
        return user

    @on_server
    def add_users(self, count: int, *, guild: Guild | None = None, prefix: str = "user") -> list[User]:
        """Bulk users, made members of `guild` when given."""
        users = [self.world.add_user(f"{prefix}{i}") for i in range(count)]
        if guild is not None:
            for user in users:
                self.add_member(guild, user)
        return users

    @on_server
    def add_guild(self, name: str, *, owner: User | None = None, with_bot: bool = True) -> Guild:
        """A guild with @everyone, the bot's managed role (all permissions but ADMINISTRATOR),
        the owner (a new user by default) and the bot as members. with_bot=False: a guild the bot
        is not in (no events reach it, REST there is 50001); only user-installed commands work there."""
        guild = self.world.add_guild(name, owner or self.world.add_user(f"{name}-owner"), with_bot=with_bot)
        self.gateway.send_guild_create(guild)
        return guild

    @on_server
    def add_text_channel(self, guild: Guild, name: str, *, topic: str | None = None) -> Channel:
        channel = self.world.add_channel(guild, name, topic=topic)
        self.gateway.dispatch("CHANNEL_CREATE", channel.payload())
        return channel

    @on_server
    def add_forum_channel(self, guild: Guild, name: str, *, topic: str | None = None) -> Channel:
        """A forum channel (type 15): people post threads in it; nobody posts in it directly."""
        channel = self.world.add_channel(guild, name, topic=topic, type=FORUM_CHANNEL)
        self.gateway.dispatch("CHANNEL_CREATE", channel.payload())
        return channel

    @on_server
    def add_thread(self, parent: Channel, name: str, *, owner: User | None = None, private: bool = False) -> Channel:
        """A thread (type 11, or 12 with private=True) in a text channel, started by `owner` (a member;
        the guild's owner by default). THREAD_CREATE. Its permissions are its parent's overwrites, and
        posting in it needs SEND_MESSAGES_IN_THREADS instead of SEND_MESSAGES, as on Discord."""
        assert parent.guild_id is not None
        starter = owner or self.world.users[self.world.guilds[parent.guild_id].owner_id]
        thread = self.world.add_thread(parent, name, starter, type=PRIVATE_THREAD if private else PUBLIC_THREAD)
        self.gateway.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True})
        return thread

    @on_server
    def add_forum_post(self, forum: Channel, name: str, author: User, content: str) -> Channel:
        """A post in a forum channel: a public thread whose first message (same id as the thread) is
        `content` by `author`. THREAD_CREATE, then MESSAGE_CREATE."""
        if forum.type != FORUM_CHANNEL:
            raise ValueError(f"channel {forum.id} is not a forum channel")
        thread = self.world.add_thread(forum, name, author)
        self.gateway.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True})
        self._create_message(thread, author, {"content": content}, [], id=thread.id)
        return thread

    @on_server
    def add_emoji(self, guild: Guild, name: str) -> str:
        """A custom emoji of `guild`; returns its reaction key "name:id" (GUILD_EMOJIS_UPDATE)."""
        emoji_id = self.world.new_id()
        guild.emojis[emoji_id] = name
        self.gateway.dispatch("GUILD_EMOJIS_UPDATE", {"guild_id": str(guild.id), "emojis": guild.emojis_payload()})
        return f"{name}:{emoji_id}"

    @on_server
    def add_role(self, guild: Guild, name: str, *, permissions: int = 0) -> Role:
        role = self.world.add_role(guild, name, permissions)
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.payload()})
        return role

    @on_server
    def add_member(
        self, guild: Guild, user: User, *, roles: Iterable[Role | int] = (), joined_at: Any = None, nick: str | None = None
    ) -> Member:
        member = self.world.add_member(guild, user, roles=roles, joined_at=joined_at, nick=nick)
        self.gateway.dispatch("GUILD_MEMBER_ADD", {**member.payload(), "guild_id": str(guild.id)})
        return member

    @on_server
    def remove_member(self, guild: Guild, user: User) -> None:
        """The member leaves (or is kicked): as on Discord, GUILD_MEMBER_REMOVE ({guild_id, user}) goes only to
        sessions with the privileged GUILD_MEMBERS intent, Get Guild Member answers 404 Unknown Member, and their
        messages and reactions stay."""
        del guild.members[user.id]
        self.gateway.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(guild.id), "user": user.payload()})

    @on_server
    def set_permissions(self, channel: Channel, target: User | Role | Guild, *, allow: int = 0, deny: int = 0) -> None:
        """Channel permission overwrite for a member, a role, or @everyone (pass the guild);
        allow=deny=0 removes it."""
        kind = MEMBER_OVERWRITE if isinstance(target, User) else ROLE_OVERWRITE
        if allow or deny:
            channel.overwrites[target.id] = (kind, int(allow), int(deny))
        else:
            channel.overwrites.pop(target.id, None)
        self.gateway.dispatch("CHANNEL_UPDATE", channel.payload())

    @on_server
    def dm_channel(self, user: User) -> Channel:
        return self.world.dm_channel(user)

    # -- acting as users ------------------------------------------------------------------------

    @on_server_async
    async def send_message(
        self, user: User, channel: ChannelRef, content: str, *, reply_to: MessageRef | None = None
    ) -> dict[str, Any]:
        target = self._channel(channel)
        self._check_can_see(user, target)
        reference = None
        if reply_to is not None:
            replied = self._message(reply_to)
            reference = {"type": 0, "message_id": str(replied["id"]), "channel_id": str(target.id)}
            if target.guild_id is not None:
                reference["guild_id"] = str(target.guild_id)
        message = self._create_message(target, user, {"content": content}, [], reference=reference)
        await self.flush()
        return message

    @on_server_async
    async def react(self, user: User, message: MessageRef, emoji: Any, *, burst: bool = False) -> bool:
        """Adds a reaction (a super reaction with burst=True); False (and no event) if the user already
        had it, as on Discord. ApiError 30010 when it would be the message's 21st distinct emoji."""
        return await self.react_many([(user, message, emoji, True, burst)]) == 1

    @on_server_async
    async def unreact(self, user: User, message: MessageRef, emoji: Any, *, burst: bool = False) -> bool:
        return await self.react_many([(user, message, emoji, False, burst)]) == 1

    @on_server_async
    async def replay_reaction(
        self, user: User, message: MessageRef, emoji: Any, *, add: bool = True, burst: bool = False
    ) -> None:
        """Dispatches a reaction event again without changing any state: a stale or duplicate
        delivery (e.g. MESSAGE_REACTION_ADD for a reaction already removed), as Discord's gateway
        may send after a RESUME. Pass the message's dict to replay one about a deleted message."""
        target = message if isinstance(message, dict) else self._message(message)
        self.gateway.dispatch(*self._reaction_event(user, target, emoji_key(emoji), add, burst))
        await self.flush()

    @on_server_async
    async def clear_reactions(self, message: MessageRef, emoji: Any = None) -> None:
        """A moderator's "remove all reactions" (MESSAGE_REACTION_REMOVE_ALL) or, with `emoji`, the
        removal of every reaction with that emoji (MESSAGE_REACTION_REMOVE_EMOJI)."""
        target = self._message(message)
        self._clear_reactions(target, None if emoji is None else emoji_key(emoji))
        await self.flush()

    @on_server_async
    async def purge(self, messages: Iterable[MessageRef]) -> None:
        """A moderator's purge (or a ban that deletes messages): one MESSAGE_DELETE_BULK per channel."""
        by_channel: dict[int, list[dict[str, Any]]] = {}
        for message in messages:
            target = self._message(message)
            by_channel.setdefault(target["channel_id"], []).append(target)
        for channel_id, targets in by_channel.items():
            self._bulk_delete(self.world.channels[channel_id], targets)
        await self.flush()

    @on_server_async
    async def react_many(self, actions: Iterable[ReactionAction]) -> int:
        """Applies (user, message, emoji, add) actions in order as one burst of events;
        returns how many changed something (and so were dispatched)."""
        resolved = []
        for user, message, emoji, add, *burst in actions:
            target = self._message(message)
            self._check_can_see(user, self.world.channels[target["channel_id"]])
            key = emoji_key(emoji)
            if not self.world.knows_emoji(key):
                raise ApiError(400, 10014, "Unknown Emoji")
            resolved.append((user, target, key, add, bool(burst and burst[0])))
        count = self._apply_reactions(resolved)
        await self.flush()
        return count

    @on_server_async
    async def press_button(self, user: User, message: MessageRef, custom_id: str) -> Interaction:
        target = self._message(message)
        component = self._component(target, custom_id, kind=2)
        if component.get("style") in (5, 6):
            raise ValueError(f"button {custom_id!r} is a link/premium button; it sends no interaction")
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(user, self.world.channels[target["channel_id"]], MESSAGE_COMPONENT, data, target)

    @on_server_async
    async def select(self, user: User, message: MessageRef, custom_id: str, values: list[str]) -> Interaction:
        """Picks `values` in a string select menu."""
        target = self._message(message)
        component = self._component(target, custom_id, kind=3)
        offered = [o["value"] for o in component.get("options", [])]
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        if not set(values) <= set(offered) or not low <= len(values) <= high:
            raise ValueError(f"select {custom_id!r} takes {low}..{high} of {offered}, got {values}")
        data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
        return await self._interact(user, self.world.channels[target["channel_id"]], MESSAGE_COMPONENT, data, target)

    @on_server_async
    async def slash(
        self,
        user: User,
        channel: ChannelRef,
        name: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        *,
        check_permissions: bool = True,
    ) -> Interaction:
        """Runs a synced slash command: guild commands first, then global ones, as Discord shows
        them. `subcommand` is "sub" or "group sub". Options are typed and validated against the
        synced definition (users/channels/roles may be given as objects or ids)."""
        target = self._channel(channel)
        command, context, owners = find_command(self.commands, self.world, target, user, name)
        required = command.get("default_member_permissions")
        if check_permissions and required is not None and target.guild_id is not None:
            have = self.world.permissions_for(target, user.id)
            if have & int(required) != int(required):
                raise PermissionError(f"{user.name} lacks default_member_permissions {required} for /{name}")
        values, resolved = command_options(self.world, command, target, options or {}, subcommand)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": values}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(user, target, APPLICATION_COMMAND, data, context=context, owners=owners)

    @on_server_async
    async def autocomplete(self, user: User, channel: ChannelRef, name: str, options: dict[str, Any], focused: str) -> Interaction:
        """A user typing into option `focused` of a slash command (the others already filled): the bot
        answers with at most 25 choices (callback type 8, `interaction.response["data"]["choices"]`)."""
        target = self._channel(channel)
        command, context, owners = find_command(self.commands, self.world, target, user, name)
        others = {k: v for k, v in options.items() if k != focused}
        values, _ = command_options(self.world, command, target, others, None)
        spec = next((s for s in command.get("options") or [] if s["name"] == focused), None)
        if spec is None or not spec.get("autocomplete"):
            raise ValueError(f"/{name} option {focused!r} does not autocomplete")
        values.append({"name": focused, "type": spec["type"], "value": options.get(focused, ""), "focused": True})
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": values}
        return await self._interact(user, target, APPLICATION_COMMAND_AUTOCOMPLETE, data, context=context, owners=owners)

    @on_server_async
    async def delete_message(self, message: MessageRef) -> None:
        """Deletes a message as a moderator would (MESSAGE_DELETE)."""
        self._delete_message(self._message(message))
        await self.flush()

    # -- raw gateway control --------------------------------------------------------------------

    @on_server_async
    async def dispatch(self, event: str, payload: dict[str, Any]) -> None:
        self.gateway.dispatch(event, payload)
        await self.flush()

    @on_server_async
    async def dispatch_many(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Raw dispatches (routed by payload["guild_id"]), each serialised once, sent as one burst."""
        for event, payload in events:
            self.gateway.dispatch(event, payload)
        await self.flush()

    @on_server_async
    async def replay_last(self, count: int) -> None:
        """Sends the last `count` dispatches again with new sequence numbers (duplicate delivery)."""
        self.gateway.replay(count)
        await self.flush()

    @on_server_async
    async def drop_connections(self, *, code: int | None = None, resumable: bool = True, shard_id: int | None = None) -> None:
        """Cuts every gateway socket (TCP abort, or a close frame with `code`), or only those of shard `shard_id`. The
        client reconnects and RESUMEs, and gets what it missed replayed; with resumable=False the
        sessions are forgotten, so it is told to IDENTIFY again and the missed events are lost."""
        await self.gateway.drop(code=code, resumable=resumable, shard_id=shard_id)
        self.notify()

    @on_server_async
    async def request_reconnect(self) -> None:
        """Sends op 7 RECONNECT, as Discord does before moving a session."""
        await self.gateway.request_reconnect()

    # -- REST faults ----------------------------------------------------------------------------

    @on_server
    def rate_limit(self, route: str, count: int = 1, *, retry_after: float = 0.05, is_global: bool = False) -> None:
        """The next `count` requests to `route` ("POST /channels/{channel_id}/messages", templates
        as in discord.py) answer 429 with Discord's headers and body."""
        self.faults.add(Fault(self._route(route), count, 429, retry_after, is_global))

    @on_server
    def fail(self, route: str, count: int = 1, *, status: int = 500, code: int = 0, message: str | None = None) -> None:
        """The next `count` requests to `route` answer `status` (discord.py retries 5xx after 1 s, 3 s...)."""
        self.faults.add(Fault(self._route(route), count, status, code=code, message=message))

    @on_server
    def hold_downloads(self) -> None:
        """Attachment downloads (GET on an attachment's url) wait from now until release_downloads(), as
        they would from a slow CDN or for a large file; `downloads_waiting` counts those waiting. A
        test-only knob, so a test decides when a download ends instead of guessing how long it takes."""
        if self._download_gate is None:
            self._download_gate = asyncio.Event()

    @on_server
    def release_downloads(self) -> None:
        """Lets every held attachment download finish; later ones are served at once."""
        gate, self._download_gate = self._download_gate, None
        if gate is not None:
            gate.set()

    @on_server
    def hold(self, route: str, *, answered: bool = False) -> None:
        """Requests to `route` ("GET /channels/{channel_id}/messages/{message_id}/reactions/{emoji}") wait
        from now until release(route), as on a slow connection; `held[route]` counts those waiting. With
        `answered`, each is carried out first and only its answer waits (it reached Discord; the reply is
        slow). A test-only knob, so a test decides when a request ends instead of guessing how long it takes."""
        self._route_gates.setdefault(self._route(route), asyncio.Event())
        if answered:
            self._held_answered.add(self._route(route))

    @on_server
    def release(self, route: str) -> None:
        """Lets every held request to `route` go on; later ones are served at once."""
        gate = self._route_gates.pop(self._route(route), None)
        self._held_answered.discard(self._route(route))
        if gate is not None:
            gate.set()

    async def wait_at_gate(self, route: str, *, answered: bool = False) -> None:
        """Server thread: wait while `route` is held (hold), before its request is carried out or (`answered`) after."""
        gate = self._route_gates.get(route)
        if gate is None or (route in self._held_answered) != answered:
            return
        self.held[route] += 1
        self.notify()
        try:
            await gate.wait()
        finally:
            self.held[route] -= 1

    @on_server
    def set_route_limit(self, route: str, limit: int, per: float) -> None:
        """Per-route bucket: `limit` requests per `per` seconds for each top-level resource (channel,
        guild, webhook); the next one is a 429 with Discord's headers and body."""
        self.rate_limits.route_limits[self._route(route)] = (limit, per)

    def _route(self, route: str) -> str:
        method, _, template = route.partition(" ")
        key = f"{method.upper()} {template}"
        if key not in self.rest.route_keys:
            raise ValueError(f"unknown route {route!r}; known: {sorted(self.rest.route_keys)}")
        return key

    # -- internals shared by REST handlers and user actions -------------------------------------

    def _channel(self, channel: ChannelRef) -> Channel:
        if isinstance(channel, Channel):
            return channel
        if isinstance(channel, User):
            return self.world.dm_channel(channel)
        channel_id = channel if isinstance(channel, int) else channel.id
        return self.world.channels[channel_id]

    def _message(self, message: MessageRef) -> dict[str, Any]:
        message_id = _message_id(message)
        found = self.world.messages.get(message_id)
        if found is None:
            raise LookupError(f"no live message {message_id}")
        return found

    def _check_can_see(self, user: User, channel: Channel) -> None:
        if channel.guild_id is not None:
            if not self.world.permissions_for(channel, user.id) & Permission.VIEW_CHANNEL:
                raise PermissionError(f"{user.name} cannot see channel {channel.id} (not a member, or no VIEW_CHANNEL)")
        elif channel.recipient is not user and user is not self.world.bot:
            raise PermissionError(f"{user.name} is not in DM channel {channel.id}")

    def _component(self, message: dict[str, Any], custom_id: str, *, kind: int) -> dict[str, Any]:
        for component in iter_components(message["components"]):
            if component.get("custom_id") == custom_id and component.get("type") == kind:
                if component.get("disabled"):
                    raise ValueError(f"component {custom_id!r} is disabled")
                return component
        raise LookupError(f"message {message['id']} has no component type {kind} with custom_id {custom_id!r}")

    @on_server_async
    async def _interact(
        self,
        user: User,
        channel: Channel,
        kind: int,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
        *,
        context: int | None = None,
        owners: dict[str, str] | None = None,
    ) -> Interaction:
        self._check_can_see(user, channel)
        interaction = Interaction(
            self,
            id=self.world.new_id(),
            token=secrets.token_urlsafe(48),
            type=kind,
            user=user,
            channel=channel,
            data=data,
            message=message,
            context=context,
            owners=owners,
        )
        self.interactions[interaction.id] = interaction
        self.interactions_by_token[interaction.token] = interaction
        loop = asyncio.get_running_loop()
        interaction.created_at = loop.time()
        if self.interaction_ack_timeout is not None:
            loop.call_later(self.interaction_ack_timeout, self._deadline_passed, interaction)
        self.gateway.dispatch("INTERACTION_CREATE", interaction.payload(self.world))
        await self.flush()
        return interaction

    def _nonce_message(self, channel: Channel, author: User, nonce: str) -> dict[str, Any] | None:
        """The message `author` posted in `channel` with `nonce` within the nonce window. Deleted since, Discord does not
        post again: it answers Unknown Message (its staff in discord/discord-api-docs#6647: "intentional")."""
        found = self._nonces.get((channel.id, author.id, nonce))
        if found is None:
            return None
        message, at = found
        if asyncio.get_running_loop().time() - at > self.nonce_window:
            return None
        if message["deleted"]:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    def _deadline_passed(self, interaction: Interaction) -> None:
        if not interaction.callbacks and not interaction.missed_deadline:
            interaction.missed_deadline = True
            self.missed_deadlines.append(interaction)
            self.notify()

    def _create_message(
        self,
        channel: Channel,
        author: User,
        body: dict[str, Any],
        attachments: list[dict[str, Any]],
        *,
        reference: dict[str, Any] | None = None,
        interaction: Interaction | None = None,
        id: int | None = None,
    ) -> dict[str, Any]:
        message = self.world.new_message(
            channel,
            author,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            attachments=attachments,
            flags=int(body.get("flags") or 0),
            type=20 if interaction is not None and interaction.type == APPLICATION_COMMAND else 0,
            reference=reference,
            interaction=None if interaction is None else interaction.metadata(),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts")),
            id=id,
        )
        if message["nonce"] is not None:
            self._nonces[(channel.id, author.id, str(message["nonce"]))] = (message, asyncio.get_running_loop().time())
        if not message["flags"] & MESSAGE_FLAG_EPHEMERAL:
            self._dispatch_message("MESSAGE_CREATE", message)
        self.notify()
        return message

    def _respond_message(
        self, interaction: Interaction, body: dict[str, Any], attachments: list[dict[str, Any]], *, loading: bool = False
    ) -> dict[str, Any]:
        """An interaction response or followup message (no channel permissions needed)."""
        flags = int(body.get("flags") or 0) | (MESSAGE_FLAG_LOADING if loading else 0)
        bot = self.world.bot
        return self._create_message(interaction.channel, bot, {**body, "flags": flags}, attachments, interaction=interaction)

    def _edit_message(self, message: dict[str, Any], body: dict[str, Any], attachments: list[dict[str, Any]] | None) -> None:
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        if "components" in body:
            message["components"] = number_components(body["components"] or [])
        if "flags" in body:
            # Ephemerality is fixed at creation; edits only toggle flags like SUPPRESS_EMBEDS.
            kept = message["flags"] & MESSAGE_FLAG_EPHEMERAL
            message["flags"] = kept | (int(body["flags"] or 0) & ~(MESSAGE_FLAG_EPHEMERAL | MESSAGE_FLAG_LOADING))
        message["flags"] &= ~MESSAGE_FLAG_LOADING
        if attachments is not None:
            message["attachments"] = attachments
        message["edited_timestamp"] = now_iso()
        if not message["flags"] & MESSAGE_FLAG_EPHEMERAL:
            self._dispatch_message("MESSAGE_UPDATE", message)
        self.notify()

    def _delete_message(self, message: dict[str, Any]) -> None:
        self.world.delete_message(message)
        if not message["flags"] & MESSAGE_FLAG_EPHEMERAL:
            payload = {"id": str(message["id"]), "channel_id": str(message["channel_id"])}
            if message["guild_id"] is not None:
                payload["guild_id"] = str(message["guild_id"])
            self.gateway.dispatch("MESSAGE_DELETE", payload)
        self.notify()

    def _dispatch_message(self, event: str, message: dict[str, Any]) -> None:
        payload = self.world.message_payload(message, gateway=True)
        redacted = None
        bot_id = self.world.bot.id
        # Without MESSAGE_CONTENT a bot sees no content of others' guild messages unless mentioned.
        if message["guild_id"] is not None and message["author_id"] != bot_id and bot_id not in message["mentions"]:
            redacted = {**payload, "content": "", "embeds": [], "attachments": [], "components": []}
        self.gateway.dispatch(event, payload, redacted=redacted)

    def _apply_reactions(self, actions: Iterable[tuple[User, dict[str, Any], str, bool, bool]]) -> int:
        """Updates reaction state and dispatches one event per effective change.

        Actions are (user, message, emoji key, add?, burst?). A new emoji beyond the message's 20th
        raises ApiError 30010 (changes before it stand, as separate requests would)."""
        count = 0
        dispatch = self.gateway.dispatch
        try:
            for user, message, key, add, burst in actions:
                table = message["burst_reactions" if burst else "reactions"]
                users = table.get(key)
                if add:
                    if users is None:
                        if key not in message["reactions"] and key not in message["burst_reactions"]:
                            if len(reaction_keys(message)) >= MAX_REACTIONS:
                                raise ApiError(400, 30010, "Maximum number of reactions reached (20)")
                        users = table[key] = {}
                    elif user.id in users:
                        continue
                    users[user.id] = None
                else:
                    if users is None or user.id not in users:
                        continue
                    del users[user.id]
                    if not users:
                        del table[key]
                dispatch(*self._reaction_event(user, message, key, add, burst))
                count += 1
        finally:
            self.notify()
        return count

    def _reaction_event(
        self, user: User, message: dict[str, Any], key: str, add: bool, burst: bool
    ) -> tuple[str, dict[str, Any]]:
        """MESSAGE_REACTION_ADD/REMOVE as Discord sends them (`type` 1 and `burst` for super reactions)."""
        payload: dict[str, Any] = {
            "user_id": str(user.id),
            "type": 1 if burst else 0,
            "message_id": str(message["id"]),
            "channel_id": str(message["channel_id"]),
            "emoji": emoji_payload(key),
            "burst": burst,
        }
        guild_id = message["guild_id"]
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
        if add:
            payload["burst_colors"] = BURST_COLORS if burst else []
            payload["message_author_id"] = str(message["author_id"])
            member = None if guild_id is None else self.world.guilds[guild_id].members.get(user.id)
            if member is not None:
                payload["member"] = member.payload()
        return ("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE"), payload

    def _clear_reactions(self, message: dict[str, Any], emoji: str | None) -> None:
        """Removes every reaction (emoji None) or every reaction with one emoji, normal and super;
        dispatches MESSAGE_REACTION_REMOVE_ALL / _EMOJI when anything was there."""
        payload: dict[str, Any] = {"channel_id": str(message["channel_id"]), "message_id": str(message["id"])}
        if message["guild_id"] is not None:
            payload["guild_id"] = str(message["guild_id"])
        if emoji is None:
            had = bool(message["reactions"] or message["burst_reactions"])
            message["reactions"], message["burst_reactions"] = {}, {}
            if had:
                self.gateway.dispatch("MESSAGE_REACTION_REMOVE_ALL", payload)
        else:
            normal = message["reactions"].pop(emoji, None)
            burst = message["burst_reactions"].pop(emoji, None)
            if normal is not None or burst is not None:
                self.gateway.dispatch("MESSAGE_REACTION_REMOVE_EMOJI", {**payload, "emoji": emoji_payload(emoji)})
        self.notify()

    def _bulk_delete(self, channel: Channel, messages: list[dict[str, Any]]) -> None:
        """Deletes messages of one channel with a single MESSAGE_DELETE_BULK."""
        for message in messages:
            self.world.delete_message(message)
        payload: dict[str, Any] = {"ids": [str(m["id"]) for m in messages], "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
        if messages:
            self.gateway.dispatch("MESSAGE_DELETE_BULK", payload)
        self.notify()

    def _count_command_creates(self, guild_id: int | None, commands: list[dict[str, Any]]) -> bool:
        """Counts commands new to the scope; False (and nothing counted) past 200 in the fake's day,
        which lasts as long as the server."""
        existing = {(c["name"], c["type"]) for c in self.commands.get(guild_id, [])}
        created = sum(1 for c in commands if (c["name"], c.get("type", 1)) not in existing)
        if self.command_creates[guild_id] + created > DAILY_COMMAND_CREATES:
            return False
        self.command_creates[guild_id] += created
        return True

    def _set_commands(self, guild_id: int | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Bulk overwrite; a command keeps its id when one with its name and type existed."""
        existing = {(c["name"], c["type"]): c for c in self.commands.get(guild_id, [])}
        bot_id = str(self.world.bot.id)
        result = []
        for command in commands:
            kind = command.get("type", 1)
            previous = existing.get((command["name"], kind))
            permissions = command.get("default_member_permissions")
            stored = {
                "id": previous["id"] if previous else str(self.world.new_id()),
                "application_id": bot_id,
                "version": str(self.world.new_id()),
                "type": kind,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "options": command.get("options") or [],
                "default_member_permissions": None if permissions is None else str(permissions),
                "dm_permission": command.get("dm_permission", True),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or self.installation_types,
                "nsfw": command.get("nsfw", False),
            }
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            result.append(stored)
        self.commands[guild_id] = result
        return result

