"""Websocket gateway: HELLO/IDENTIFY/READY, heartbeats, RESUME replay, intent and shard routing.

A dispatch is serialised once and pushed to every session that should see it. A session keeps
every frame it was given (with its sequence number) so that a RESUME can replay what the client
missed; it outlives its websocket for exactly that reason. Frames are written by one task per
connection, so pushing is synchronous and cheap and ordering is the sequence order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, deque
from enum import IntFlag
from typing import TYPE_CHECKING, Any, Iterable

from aiohttp import WSMsgType, web

from .wire import dumps

if TYPE_CHECKING:
    from .server import FakeDiscord
    from .world import Guild

HEARTBEAT, IDENTIFY, RESUME, REQUEST_MEMBERS, HELLO = 1, 2, 6, 8, 10
OP_NAMES = {
    1: "HEARTBEAT",
    2: "IDENTIFY",
    3: "PRESENCE_UPDATE",
    4: "VOICE_STATE_UPDATE",
    6: "RESUME",
    8: "REQUEST_GUILD_MEMBERS",
}
_FRAME = '{"op":0,"s":%d,"t":"%s","d":%s}'
_ACK = '{"op":11,"d":null,"s":null,"t":null}'
_NOT_RESUMABLE = '{"op":9,"d":false,"s":null,"t":null}'
_RECONNECT = '{"op":7,"d":null,"s":null,"t":null}'


class Intent(IntFlag):
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15


# Refused with close code 4014 unless enabled for the application (FakeDiscord(privileged_intents=...)).
PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT
# Discord's gateway close codes used here.
CLOSE_AUTHENTICATION_FAILED, CLOSE_INVALID_SHARD, CLOSE_SHARDING_REQUIRED, CLOSE_DISALLOWED_INTENTS = 4004, 4010, 4011, 4014
GUILDS_PER_SHARD = 2500  # more guilds on one shard: 4011 Sharding required


# event -> (intent needed in a guild, in a DM); events not listed are always sent.
_EVENT_INTENTS: dict[str, tuple[int, int]] = {
    event: (int(in_guild), int(in_dm))
    for events, in_guild, in_dm in [
        (("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE", "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE",
          "GUILD_ROLE_DELETE", "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE", "THREAD_CREATE", "THREAD_UPDATE",
          "THREAD_DELETE"), Intent.GUILDS, 0),
        (("GUILD_EMOJIS_UPDATE", "GUILD_STICKERS_UPDATE"), Intent.GUILD_EXPRESSIONS, 0),
        (("GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"), Intent.GUILD_MEMBERS, 0),
        (("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"),
         Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
        (("MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "MESSAGE_REACTION_REMOVE_ALL",
          "MESSAGE_REACTION_REMOVE_EMOJI"), Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    ]
    for event in events
}


def required_intent(event: str, guild_id: int | None) -> int:
    in_guild, in_dm = _EVENT_INTENTS.get(event, (0, 0))
    return in_guild if guild_id is not None else in_dm


class Session:
    """One identified gateway session."""

    def __init__(self, session_id: str, intents: int, shard: list[int], history_size: int) -> None:
        self.id = session_id
        self.intents = intents
        self.shard_id, self.shard_count = shard
        self.seq = 0
        self.history: deque[tuple[int, str]] = deque(maxlen=history_size)
        self.ws: web.WebSocketResponse | None = None
        self._transport: asyncio.Transport | None = None
        self._outbox: list[str] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.ws is not None

    def handles_guild(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard_id == 0  # DMs go to shard 0
        return (guild_id >> 22) % self.shard_count == self.shard_id

    def push(self, event: str, d: str) -> None:
        self.seq += 1
        frame = _FRAME % (self.seq, event, d)
        self.history.append((self.seq, frame))
        if self.ws is not None:
            self._outbox.append(frame)
            self._idle.clear()
            self._wake.set()

    def can_resume(self, seq: int) -> bool:
        return seq <= self.seq and (not self.history or self.history[0][0] <= seq + 1)

    def attach(self, ws: web.WebSocketResponse, transport: Any, *, after_seq: int | None = None) -> None:
        self.detach()
        self.ws, self._transport = ws, transport
        if after_seq is not None:
            self._outbox = [frame for seq, frame in self.history if seq > after_seq]
            if self._outbox:
                self._idle.clear()
                self._wake.set()
        self._writer = asyncio.create_task(self._write(ws), name=f"fakediscord-writer-{self.id}")

    def detach(self, ws: web.WebSocketResponse | None = None) -> tuple[web.WebSocketResponse | None, Any]:
        """Stops writing to the socket (only if it is `ws`, when given); later frames wait for RESUME."""
        if self.ws is None or (ws is not None and ws is not self.ws):
            return None, None
        old = self.ws, self._transport
        if self._writer is not None:
            self._writer.cancel()
        self.ws = self._transport = self._writer = None
        self._outbox = []
        self._idle.set()
        return old

    async def flush(self) -> None:
        await self._idle.wait()

    async def _write(self, ws: web.WebSocketResponse) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox:
                    frames, self._outbox = self._outbox, []
                    for frame in frames:
                        await ws.send_str(frame)
                self._idle.set()
        except (ConnectionError, RuntimeError):
            # The socket died under us; the frames stay in history for the RESUME.
            self.detach(ws)


class Gateway:
    def __init__(self, server: FakeDiscord, *, history_size: int) -> None:
        self.server = server
        self.world = server.world
        self.history_size = history_size
        self.heartbeat_interval_ms = 41250
        # Discord closes a connection that misses a heartbeat (then the client must RESUME); it allows some
        # tolerance over the interval, undocumented: here half an interval more.
        self.heartbeat_tolerance = 1.5
        self.heartbeat_timeouts = 0  # connections closed for a missed heartbeat
        self.sessions: dict[str, Session] = {}
        self.received: Counter[str] = Counter()  # client opcodes by name
        self.sent: Counter[str] = Counter()  # dispatches by event name (once per dispatch, not per session)
        # (event, d, d without message content, guild_id) of recent dispatches, for replay_last()
        self.log: deque[tuple[str, str, str | None, int | None]] = deque(maxlen=history_size)
        self._sockets: set[web.WebSocketResponse] = set()
        self._last_heartbeat: dict[web.WebSocketResponse, float] = {}
        self._closed_by_us: set[web.WebSocketResponse] = set()

    # -- dispatching ----------------------------------------------------------------------------

    def dispatch(self, event: str, payload: dict[str, Any], *, redacted: dict[str, Any] | None = None) -> None:
        """Sends a dispatch to every session that should see it (guild from payload["guild_id"]).

        `redacted` is the variant for sessions without the MESSAGE_CONTENT intent.
        """
        if not self.sessions:
            return  # nobody to tell; a client that connects later gets the state in READY/GUILD_CREATE
        guild_id = payload.get("guild_id")
        if event != "INTERACTION_CREATE" and not self.world.bot_sees(None if guild_id is None else int(guild_id)):
            return  # a guild the bot is not in (a user-installed command there still reaches it)
        entry = (event, dumps(payload), None if redacted is None else dumps(redacted),
                 None if guild_id is None else int(guild_id))
        self.log.append(entry)
        self._fan_out(*entry)

    def _fan_out(self, event: str, d: str, d_redacted: str | None, guild_id: int | None) -> None:
        intent = required_intent(event, guild_id)
        for session in self.sessions.values():
            if (session.intents & intent) != intent or not session.handles_guild(guild_id):
                continue
            if d_redacted is not None and not session.intents & Intent.MESSAGE_CONTENT:
                session.push(event, d_redacted)
            else:
                session.push(event, d)
        self.sent[event] += 1

    def replay(self, count: int) -> None:
        for entry in list(self.log)[-count:] if count else []:
            self._fan_out(*entry)

    def send_guild_create(self, guild: Guild) -> None:
        if not self.sessions or not self.world.bot_sees(guild.id):
            return
        for session in self.sessions.values():
            if session.handles_guild(guild.id):
                session.push("GUILD_CREATE", dumps(self._guild_create(guild, session)))
        self.sent["GUILD_CREATE"] += 1

    async def flush(self) -> None:
        for session in list(self.sessions.values()):
            await session.flush()

    # -- faults ---------------------------------------------------------------------------------

    async def drop(self, *, code: int | None = None, resumable: bool = True, shard_id: int | None = None) -> None:
        for session in [s for s in self.sessions.values() if shard_id is None or s.shard_id == shard_id]:
            ws, transport = session.detach()
            if not resumable:
                del self.sessions[session.id]
            if ws is None:
                continue
            self._closed_by_us.add(ws)
            if code is None:
                transport.abort()
            else:
                await ws.close(code=code)

    async def request_reconnect(self) -> None:
        for session in list(self.sessions.values()):
            if session.ws is not None:
                await session.ws.send_str(_RECONNECT)

    async def close(self) -> None:
        for ws in list(self._sockets):
            self._closed_by_us.add(ws)
            await ws.close(code=1001)

    # -- the websocket endpoint -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        self._sockets.add(ws)
        session: Session | None = None
        watchdog = asyncio.create_task(self._watch_heartbeats(ws, request.transport), name="fakediscord-heartbeats")
        try:
            hello = {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": []}}
            await ws.send_str(dumps(hello))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                packet = json.loads(msg.data)
                op, d = packet.get("op"), packet.get("d")
                self.received[OP_NAMES.get(op, str(op))] += 1
                if op == HEARTBEAT:
                    self._last_heartbeat[ws] = asyncio.get_running_loop().time()
                    await ws.send_str(_ACK)
                elif op == IDENTIFY:
                    session = await self._identify(ws, request.transport, d)
                elif op == RESUME:
                    session = await self._resume(ws, request.transport, d)
                elif op == REQUEST_MEMBERS and session is not None:
                    self._send_member_chunks(session, d)
                self.server.notify()
        finally:
            watchdog.cancel()
            self._last_heartbeat.pop(ws, None)
            self._sockets.discard(ws)
            if session is not None:
                session.detach(ws)
                # A client that closes cleanly ends its session, as on Discord.
                if ws not in self._closed_by_us and ws.close_code in (1000, 1001):
                    self.sessions.pop(session.id, None)
            self._closed_by_us.discard(ws)
            self.server.notify()
        return ws

    async def _watch_heartbeats(self, ws: web.WebSocketResponse, transport: Any) -> None:
        """Closes the connection when no heartbeat came within the interval (and the tolerance), the
        way a dead client's connection ends: the session stays, so the client can RESUME."""
        loop = asyncio.get_running_loop()
        self._last_heartbeat[ws] = loop.time()  # the first heartbeat is due within one interval of HELLO
        while not ws.closed:
            allowed = self.heartbeat_interval_ms / 1000 * self.heartbeat_tolerance
            late = loop.time() - self._last_heartbeat.get(ws, loop.time()) - allowed
            if late >= 0:
                self.heartbeat_timeouts += 1
                self._closed_by_us.add(ws)
                for session in self.sessions.values():
                    session.detach(ws)
                transport.abort()  # as Discord drops a zombied connection: no close frame, resumable
                self.server.notify()
                return
            await asyncio.sleep(-late)

    async def _identify(self, ws: web.WebSocketResponse, transport: Any, d: dict[str, Any]) -> Session | None:
        if d.get("token") != self.server.bot_token:
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return None
        intents = int(d.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.server.privileged_intents:
            await ws.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return None
        shard = d.get("shard") or [0, 1]
        shard_id, shard_count = int(shard[0]), int(shard[1])
        if not 0 <= shard_id < shard_count:
            await ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return None
        if len(self.world.guilds) > GUILDS_PER_SHARD * shard_count:
            await ws.close(code=CLOSE_SHARDING_REQUIRED, message=b"Sharding required.")
            return None
        session = Session(uuid.uuid4().hex, intents, [shard_id, shard_count], self.history_size)
        self.sessions[session.id] = session
        session.attach(ws, transport)
        session.push("READY", dumps(self._ready(session)))
        for guild in self.world.guilds.values():
            if session.handles_guild(guild.id) and self.world.bot_sees(guild.id):
                session.push("GUILD_CREATE", dumps(self._guild_create(guild, session)))
        return session

    async def _resume(self, ws: web.WebSocketResponse, transport: Any, d: dict[str, Any]) -> Session | None:
        session = self.sessions.get(d.get("session_id"))
        seq = d.get("seq") or 0
        if session is None or d.get("token") != self.server.bot_token or not session.can_resume(seq):
            await ws.send_str(_NOT_RESUMABLE)
            return None
        session.attach(ws, transport, after_seq=seq)
        session.push("RESUMED", '{"_trace":[]}')
        return session

    def _ready(self, session: Session) -> dict[str, Any]:
        bot = self.world.bot
        return {
            "v": 10,
            "user": {**bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0, "email": None},
            "guilds": [
                {"id": str(g), "unavailable": True}
                for g in self.world.guilds
                if session.handles_guild(g) and self.world.bot_sees(g)
            ],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.server.gateway_url,
            "shard": [session.shard_id, session.shard_count],
            "application": {"id": str(bot.id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": [],
        }

    def _guild_create(self, guild: Guild, session: Session) -> dict[str, Any]:
        # Without GUILD_MEMBERS Discord only includes the bot's own member.
        if session.intents & Intent.GUILD_MEMBERS:
            members: Iterable[Any] = guild.members.values()
        else:
            members = [guild.members[self.world.bot.id]]
        return guild.payload(members=members, joined_at=self.world.bot_joined_at[guild.id])

    def _send_member_chunks(self, session: Session, d: dict[str, Any]) -> None:
        guild = self.world.guilds.get(int(d["guild_id"]))
        if guild is None:
            return
        members = list(guild.members.values())
        user_ids = d.get("user_ids")
        if user_ids:
            wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in members if m.user.id in wanted]
        else:
            query = (d.get("query") or "").lower()
            members = [m for m in members if m.user.name.lower().startswith(query)]
            if d.get("limit"):
                members = members[: d["limit"]]
        chunks = [members[i : i + 1000] for i in range(0, len(members), 1000)] or [[]]
        for index, chunk in enumerate(chunks):
            payload = {
                "guild_id": str(guild.id),
                "members": [m.payload() for m in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
                "not_found": [],
            }
            if d.get("nonce") is not None:
                payload["nonce"] = d["nonce"]
            session.push("GUILD_MEMBERS_CHUNK", dumps(payload))
