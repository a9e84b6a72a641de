"""The tests' Discord-compatible server in a process of its own, driven by the benchmarks, and the real
bot connected to it.

The server gets its own process (and core) so that its work (serialising events, answering requests)
does not run on the bot's event loop: what a benchmark measures in its own process is the bot, as with
Discord at the other end of a network. Every gateway event a user causes is stamped with the
monotonic clock at dispatch, which the bot's process reads too (CLOCK_MONOTONIC is system-wide).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sys
import time
from collections import defaultdict
from pathlib import Path

from bot.bench.common import LoggedErrors

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the server is the tests' own
for path in (str(ROOT), str(ROOT / "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

RATING_KEYCAPS = tuple(f"{n}\ufe0f\u20e3" for n in range(1, 10)) + ("\U0001f51f",)
AB_REACTIONS = ("\U0001f170\ufe0f", "\U0001f171\ufe0f", "\U0001f44d", "\U0001f44e")
SEND_INTERVAL = 0.02  # a paced crowd sends a slice of its events this often
STOP_SECONDS = 30.0  # a server process that has not ended by then is killed


def serve(connection) -> None:
    """The server process: one command at a time from the benchmark, each answered with its result."""
    asyncio.run(_serve(connection))


async def _serve(connection) -> None:
    from fakediscord import FakeDiscord

    loop = asyncio.get_running_loop()
    # No 3 s deadline on answering an interaction: under a burst, late answers would only add noise. No
    # global limit of 50 requests/s either: the benchmarks measure the bot's loop, and four sessions opening
    # rounds at once (a post and ten reactions each, then the close's reaction reads) exceed it, so the
    # bot would spend the measured seconds waiting out 429s.
    async with FakeDiscord(interaction_ack_timeout=None, global_rate_limit=None) as server:
        stage = Stage(server)
        while True:
            method, arguments = await loop.run_in_executor(None, connection.recv)
            if method == "stop":
                connection.send(None)
                return
            connection.send(await getattr(stage, method)(**arguments))


def is_round_post(message: dict) -> bool:
    return message["content"].startswith("**Round") and bool(message["attachments"])


class Stage:
    """The server side: builds the world, acts as the users and stamps every vote event it sends."""

    def __init__(self, server) -> None:
        self.server = server
        self.users: list = []
        self.guilds: dict[str, tuple] = {}  # name -> (guild, channels)
        self.stamps: dict[tuple[int, int], list[float]] = defaultdict(list)  # (message, user) -> dispatch times
        dispatch = server.gateway.dispatch

        def stamped(event: str, payload: dict, **options) -> None:
            if event in ("MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE"):
                self.stamps[(int(payload["message_id"]), int(payload["user_id"]))].append(time.perf_counter())
            elif event == "INTERACTION_CREATE" and payload.get("message"):
                user = payload.get("member", {}).get("user") or payload["user"]
                self.stamps[(int(payload["message"]["id"]), int(user["id"]))].append(time.perf_counter())
            dispatch(event, payload, **options)

        server.gateway.dispatch = stamped

    async def world(self, users: int, guilds: dict[str, int]) -> dict:
        """`users` members in every guild; guilds: name -> number of text channels."""
        server = self.server
        self.mod = server.add_user("mod")
        self.users = server.add_users(users)
        for name, channels in guilds.items():
            guild = server.add_guild(name, owner=self.mod)
            for user in self.users:
                server.add_member(guild, user)
            self.guilds[name] = (guild, [server.add_text_channel(guild, f"{name}-{i}") for i in range(channels)])
        return {"token": server.bot_token, "api_base": server.api_base, "gateway_url": server.gateway_url}

    async def slash(self, guild: str, command: str, options: dict, channel: int = 0) -> dict:
        interaction = await self.server.slash(self.mod, self.guilds[guild][1][channel], command, options)
        return await interaction.wait_response(timeout=60)

    async def compose_everywhere(self, guild: str, options: dict) -> list[dict]:
        """/compose in every channel of the guild; the first round message of each, once ready to vote on."""
        server = self.server
        channels = self.guilds[guild][1]
        for index in range(len(channels)):
            await self.slash(guild, "compose", options, channel=index)
        rounds = []
        for channel in channels:
            message = await server.wait_for_message(channel, is_round_post, timeout=120)
            if not message["components"]:  # reactions: the bot's own, before any user's
                own = len(AB_REACTIONS) if "🅰" in message["content"] else len(RATING_KEYCAPS)
                await server.wait_until(lambda m=message: len(server.message(m["id"])["reactions"]) == own, timeout=60, what="vote reactions")
            buttons = {c["custom_id"].rsplit(":", 1)[1]: c["custom_id"] for row in message["components"] for c in row["components"]}
            rounds.append({"message_id": message["id"], "buttons": buttons})
        return rounds

    async def storm(self, style: str, rounds: list[dict], first: int, second: int, votes_per_second: float | None) -> dict:
        """Every user votes `first`, withdraws, votes `second` on every round message, all messages at
        once, user after user; as fast as possible when votes_per_second is None."""
        actions = [(user, r) for user in self.users for r in rounds]
        self.stamps.clear()
        cpu, start = time.process_time(), time.perf_counter()
        slice_size = len(actions) if votes_per_second is None else max(1, round(votes_per_second * SEND_INTERVAL / 3))
        for number, offset in enumerate(range(0, len(actions), slice_size)):
            part = actions[offset : offset + slice_size]
            if style == "reactions":
                await self.server.react_many(
                    step for user, r in part for step in (
                        (user, r["message_id"], RATING_KEYCAPS[first - 1], True),
                        (user, r["message_id"], RATING_KEYCAPS[first - 1], False),
                        (user, r["message_id"], RATING_KEYCAPS[second - 1], True),
                    )
                )  # fmt: skip
            else:
                for value in (str(first), "x", str(second)):
                    await asyncio.gather(*(self.server.press_button(user, r["message_id"], r["buttons"][value]) for user, r in part))
            if votes_per_second is not None:
                await asyncio.sleep(max(0.0, start + (number + 1) * SEND_INTERVAL - time.perf_counter()))
        return {
            "stamps": dict(self.stamps),
            "sent_seconds": time.perf_counter() - start,
            "server_cpu": time.process_time() - cpu,
            "users": [user.id for user in self.users],
        }

    async def crowd(self, guild: str, votes_per_second: float, seconds: float, per_round: int) -> dict:
        """For `seconds`, `per_round` users react once each to the latest round post in each channel of
        the guild, at up to the given total rate: rounds close at their quorum, the next ones arrive."""
        server = self.server
        channels = self.guilds[guild][1]
        voted: dict[int, int] = defaultdict(int)  # round message -> users who reacted so far
        per_slice = max(1, round(votes_per_second * SEND_INTERVAL))
        start, sent, number = time.perf_counter(), 0, 0
        while time.perf_counter() - start < seconds:
            posts = [post for channel in channels if (post := self._latest_round_post(channel)) is not None]
            actions = []
            for share, post in enumerate(posts):  # the slice shared evenly among the channels
                choices = AB_REACTIONS if "🅰" in post["content"] else RATING_KEYCAPS
                for _ in range(per_slice // len(posts) + (share < per_slice % len(posts))):
                    if voted[post["id"]] == min(per_round, len(self.users)):
                        break
                    user = self.users[voted[post["id"]]]
                    actions.append((user, post["id"], choices[(user.id + post["id"]) % len(choices)], True))
                    voted[post["id"]] += 1
            if actions:
                sent += await server.react_many(actions)
            number += 1
            await asyncio.sleep(max(0.0, start + number * SEND_INTERVAL - time.perf_counter()))
        return {"sent": sent}

    def _latest_round_post(self, channel) -> dict | None:
        return next((m for m in reversed(self.server.messages(channel)) if is_round_post(m)), None)

    async def unanswered(self) -> int:
        """Interactions the bot has not answered yet."""
        return sum(1 for interaction in self.server.interactions.values() if not interaction.callbacks)


class ServerProcess:
    """The benchmark's handle on the server process: one command at a time, without blocking its loop."""

    def __init__(self) -> None:
        from bot.stopping import unheard_by_children

        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child,), daemon=True)
        with unheard_by_children():  # Ctrl-C reaches it too, and its traceback would be noise: stop() ends it
            self._process.start()
        self._lock = asyncio.Lock()
        self._cut_short = False  # a call was cancelled: its thread still waits for the reply

    async def call(self, method: str, /, **arguments):
        async with self._lock:
            self._connection.send((method, arguments))
            self._cut_short = True
            reply = await asyncio.get_running_loop().run_in_executor(None, self._connection.recv)
            self._cut_short = False
            return reply

    async def stop(self) -> None:
        """Ask the server process to end, and end it if it has not: it never gets SIGINT or SIGTERM itself. After
        a call cut short (a signal ended the benchmark) it is ended at once: asking would mix the two replies; its
        end also ends the thread still waiting for the first."""
        if not self._cut_short:
            with contextlib.suppress(asyncio.TimeoutError, EOFError, OSError):
                await asyncio.wait_for(self.call("stop"), STOP_SECONDS)
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


@contextlib.asynccontextmanager
async def running_bot(world: dict, store, renderer, errors: LoggedErrors | None = None):
    """The real CrowdtuneBot, logged in to the server process and ready. An error it logs meanwhile (a round
    that failed) is BenchmarkFailed when it has closed: `errors` collects them (a benchmark may check it sooner)."""
    from bot.conductor import Conductor
    from bot.discord.app import CrowdtuneBot, freeze_start_up_objects, point_at
    from bot.settings import Settings

    # A person's vote changes are rate-limited (a few at once, then one every few seconds); these scripted
    # crowds change their votes faster than people do, so the limit is lifted to measure the vote path.
    settings = Settings(
        _env_file=None, api_base=world["api_base"], gateway_url=world["gateway_url"], vote_burst=1000, vote_refill_seconds=0.001
    )
    point_at(settings)
    with errors or LoggedErrors("the bot"):
        bot = CrowdtuneBot(settings, Conductor(store), renderer, guild_ready_timeout=0.05)
        await bot.login(world["token"])
        connection = asyncio.create_task(bot.connect())
        try:
            await asyncio.wait_for(bot.wait_until_commands_synced(), 60)
            freeze_start_up_objects()  # as `crowdtune run` does
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection, 10)
