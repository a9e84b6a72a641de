"""The fake Discord server against a real, unmodified discord.py 2.7 commands.Bot."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Literal

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands
import fakediscord
from fakediscord import Channel, FakeDiscord, Guild, Intent, Permission, User

pytestmark = pytest.mark.asyncio

OGG = b"OggS\x00\x02" + bytes(range(64))
KEYCAPS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟"]
AB = ["🅰️", "🅱️"]
MESSAGES_ROUTE = "POST /channels/{channel_id}/messages"


@dataclass
class World:
    server: FakeDiscord
    guild: Guild
    channel: Channel
    alice: User
    bob: User


@pytest_asyncio.fixture
async def world():
    async with FakeDiscord(privileged_intents=Intent.GUILD_MEMBERS) as server:  # make_bot asks for members
        guild = server.add_guild("Listening Lab")
        channel = server.add_text_channel(guild, "music")
        alice, bob = server.add_user("alice"), server.add_user("bob")
        server.add_member(guild, alice)
        server.add_member(guild, bob)
        yield World(server, guild, channel, alice, bob)


def make_bot(cls: type[commands.Bot] = commands.Bot) -> commands.Bot:
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = intents.dm_messages = True
    intents.guild_reactions = intents.dm_reactions = intents.members = True
    # A short guild_ready_timeout: discord.py otherwise waits 2 s after the last GUILD_CREATE.
    return cls(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.05)


class Recorder:
    """Queues of a bot's events, to await them instead of sleeping."""

    def __init__(self, bot: discord.Client, *events: str) -> None:
        self.queues: dict[str, asyncio.Queue[Any]] = {}
        for event in events:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self.queues[event] = queue

            async def listener(*args: Any, _queue: asyncio.Queue[Any] = queue) -> None:
                _queue.put_nowait(args[0] if len(args) == 1 else args)

            bot.add_listener(listener, f"on_{event}")

    async def next(self, event: str, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.queues[event].get(), timeout)


@contextlib.asynccontextmanager
async def posted(world: World, *events: str) -> AsyncIterator[tuple[commands.Bot, Recorder, discord.Message]]:
    """A connected bot recording `events`, and a message it posted in world.channel."""
    bot = make_bot()
    recorder = Recorder(bot, *events)
    async with world.server.connect(bot):
        yield bot, recorder, await bot.get_channel(world.channel.id).send("vote")


async def test_connects_and_sees_guild_channels_and_members(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "guild_channel_create", "member_join")
    async with world.server.connect(bot):
        guild = bot.get_guild(world.guild.id)
        assert guild is not None and guild.name == "Listening Lab"
        channel = guild.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel) and channel.name == "music"
        assert guild.get_member(world.alice.id).name == "alice"
        assert guild.me.id == bot.user.id == world.server.bot_user.id
        assert channel.permissions_for(guild.me).send_messages

        # World changes while connected arrive as gateway events.
        late = world.server.add_text_channel(world.guild, "late")
        carol = world.server.add_user("carol")
        world.server.add_member(world.guild, carol)
        assert (await events.next("guild_channel_create")).id == late.id
        assert (await events.next("member_join")).id == carol.id
    assert world.server.events_received["IDENTIFY"] == 1
    assert world.server.unhandled_requests == []


async def test_slash_commands_sync_and_run_with_typed_options(world: World) -> None:
    bot = make_bot()
    calls: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    @bot.tree.command(name="compose", description="Compose a piece")
    @app_commands.choices(mood=[app_commands.Choice(name="Calm", value="calm"), app_commands.Choice(name="Wild", value="wild")])
    async def compose(interaction: discord.Interaction, bars: app_commands.Range[int, 1, 16], mood: str, title: str = "untitled"):
        await interaction.response.send_message(f"composing {title}", ephemeral=True)
        calls.put_nowait((interaction.user.id, bars, mood, title))

    session = app_commands.Group(name="session", description="Rating sessions")

    @session.command(name="start", description="Start a session")
    async def start(interaction: discord.Interaction, rounds: int, style: Literal["ab", "stars"]):
        await interaction.response.send_message(f"{rounds} rounds of {style}")

    guild_object = discord.Object(world.guild.id)
    bot.tree.add_command(session, guild=guild_object)

    async with world.server.connect(bot):
        synced = await bot.tree.sync()
        assert [c.name for c in synced] == ["compose"] and synced[0].id
        await bot.tree.sync(guild=guild_object)
        assert world.server.command("session", world.guild)["guild_id"] == str(world.guild.id)

        interaction = await world.server.slash(world.alice, world.channel, "compose", {"bars": 8, "mood": "wild"})
        response = await interaction.wait_response()
        assert response["type"] == 4 and response["data"]["content"] == "composing untitled"
        assert interaction.ephemeral
        assert interaction.original is not None and interaction.original not in world.server.messages(world.channel)
        assert await asyncio.wait_for(calls.get(), 5) == (world.alice.id, 8, "wild", "untitled")

        interaction = await world.server.slash(world.bob, world.channel, "session", {"rounds": 3, "style": "ab"}, "start")
        await interaction.wait_response()
        assert not interaction.ephemeral
        shown = await world.server.wait_for_message(world.channel)
        assert shown["content"] == "3 rounds of ab" and shown["type"] == 20

        # The fake validates like the Discord client: choices, bounds, required options.
        with pytest.raises(ValueError):
            await world.server.slash(world.alice, world.channel, "compose", {"bars": 8, "mood": "sad"})
        with pytest.raises(ValueError):
            await world.server.slash(world.alice, world.channel, "compose", {"bars": 99, "mood": "calm"})
        with pytest.raises(ValueError):
            await world.server.slash(world.alice, world.channel, "compose", {"mood": "calm"})


async def test_file_attachment_is_stored_and_downloadable(world: World) -> None:
    bot = make_bot()
    async with world.server.connect(bot):
        channel = bot.get_channel(world.channel.id)
        sent = await channel.send("take 1", file=discord.File(io.BytesIO(OGG), "take1.ogg"))
        stored = world.server.message(sent.id)
        (attachment,) = stored["attachments"]
        assert attachment["filename"] == "take1.ogg" and attachment["content_type"] == "audio/ogg"
        assert world.server.attachment_bytes(attachment) == OGG
        assert await sent.attachments[0].read() == OGG  # through discord.py's CDN download
        async with aiohttp.ClientSession() as http:
            async with http.get(attachment["url"]) as response:
                assert await response.read() == OGG


async def test_attachment_downloads_can_be_held_and_failed(world: World) -> None:
    bot = make_bot()
    server = world.server
    async with server.connect(bot):
        sent = await bot.get_channel(world.channel.id).send("take 1", file=discord.File(io.BytesIO(OGG), "take1.ogg"))
        server.hold_downloads()
        download = asyncio.ensure_future(sent.attachments[0].read())
        await server.wait_until(lambda: server.downloads_waiting == 1, what="the download held")
        assert not download.done()
        server.release_downloads()
        assert await download == OGG and server.downloads_waiting == 0
        assert await sent.attachments[0].read() == OGG  # no longer held
        server.fail(fakediscord.rest.CDN_ROUTE, status=404, code=0, message="404: Not Found")
        with pytest.raises(discord.NotFound):
            await sent.attachments[0].read()
        assert server.request_counts[fakediscord.rest.CDN_ROUTE] == 3
        server.hold_downloads()
        held = asyncio.ensure_future(sent.attachments[0].read())
        await server.wait_until(lambda: server.downloads_waiting == 1, what="the download held")
        held.cancel()  # the client gives up; the server's handler still waits, until the shutdown releases it
        await asyncio.gather(held, return_exceptions=True)


async def test_bot_edits_and_deletes_its_messages(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "raw_message_edit", "raw_message_delete")
    async with world.server.connect(bot):
        sent = await bot.get_channel(world.channel.id).send("draft", file=discord.File(io.BytesIO(OGG), "a.ogg"))
        edited = await sent.edit(content="final", attachments=[*sent.attachments, discord.File(io.BytesIO(b"MThd"), "b.mid")])
        assert edited.content == "final" and [a.filename for a in edited.attachments] == ["a.ogg", "b.mid"]
        assert (await events.next("raw_message_edit")).data["content"] == "final"
        stored = world.server.message(sent.id)
        assert stored["edited_timestamp"] and world.server.attachment_bytes(stored["attachments"][1]) == b"MThd"

        await sent.delete()
        assert (await events.next("raw_message_delete")).message_id == sent.id
        assert stored["deleted"] and world.server.messages(world.channel) == []


async def test_reactions_both_ways(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "raw_reaction_add", "raw_reaction_remove")
    async with world.server.connect(bot):
        message = await bot.get_channel(world.channel.id).send("rate this")
        for emoji in KEYCAPS + AB:
            await message.add_reaction(emoji)
        for emoji in KEYCAPS + AB:  # the bot hears its own reactions, as on Discord
            assert (await events.next("raw_reaction_add")).user_id == bot.user.id
        assert list(world.server.message(message.id)["reactions"]) == KEYCAPS + AB

        await world.server.react(world.alice, message.id, "7️⃣")
        await world.server.react(world.bob, message.id, "🅱️")
        first, second = await events.next("raw_reaction_add"), await events.next("raw_reaction_add")
        assert (first.user_id, str(first.emoji)) == (world.alice.id, "7️⃣")
        assert (second.user_id, str(second.emoji), second.member.name) == (world.bob.id, "🅱️", "bob")
        assert not await world.server.react(world.alice, message.id, "7️⃣")  # already there: no event

        assert await world.server.unreact(world.alice, message.id, "7️⃣")
        removed = await events.next("raw_reaction_remove")
        assert (removed.user_id, str(removed.emoji), removed.guild_id) == (world.alice.id, "7️⃣", world.guild.id)
        assert list(world.server.message(message.id)["reactions"]["🅱️"]) == [bot.user.id, world.bob.id]


async def test_fetch_message_reactions_and_paginated_users(world: World) -> None:
    crowd = world.server.add_users(130, guild=world.guild)
    async with posted(world) as (bot, _, message):
        await message.add_reaction("🅰️")
        await world.server.react_many([(user, message.id, "🅰️", True) for user in crowd])
        await world.server.react(world.alice, message.id, "🅱️")

        fetched = await bot.get_channel(world.channel.id).fetch_message(message.id)
        counts = {str(r.emoji): (r.count, r.me) for r in fetched.reactions}
        assert counts == {"🅰️": (131, True), "🅱️": (1, False)}
        voters = [user.id async for user in fetched.reactions[0].users()]  # two pages of 100
        assert sorted(voters) == sorted([bot.user.id] + [u.id for u in crowd])


async def test_button_presses_reach_the_view(world: World) -> None:
    bot = make_bot()
    pressed: asyncio.Queue[int] = asyncio.Queue()

    class VoteView(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Like", custom_id="vote:like", style=discord.ButtonStyle.success)
        async def like(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.send_message(f"thanks {interaction.user.name}", ephemeral=True)
            pressed.put_nowait(interaction.user.id)

        @discord.ui.button(label="Close", custom_id="vote:close")
        async def close(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.edit_message(content="voting closed", view=None)

    async with world.server.connect(bot):
        message = await bot.get_channel(world.channel.id).send("Rate it", view=VoteView())
        interaction = await world.server.press_button(world.alice, message.id, "vote:like")
        response = await interaction.wait_response()
        assert response["type"] == 4 and response["data"]["content"] == "thanks alice"
        assert interaction.ephemeral
        assert await asyncio.wait_for(pressed.get(), 5) == world.alice.id

        interaction = await world.server.press_button(world.bob, message.id, "vote:close")
        assert (await interaction.wait_response())["type"] == 7
        stored = world.server.message(message.id)
        assert stored["content"] == "voting closed" and stored["components"] == []
        with pytest.raises(LookupError):
            await world.server.press_button(world.alice, message.id, "vote:like")


async def test_deferred_response_followup_and_edit(world: World) -> None:
    bot = make_bot()

    @bot.tree.command(name="render", description="Render audio")
    async def render(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("rendered", file=discord.File(io.BytesIO(OGG), "take.ogg"), ephemeral=True)
        await interaction.edit_original_response(content="rendered (edited)")
        await interaction.followup.send("public note")

    async with world.server.connect(bot):
        await bot.tree.sync()
        interaction = await world.server.slash(world.alice, world.channel, "render")
        assert (await interaction.wait_response())["type"] == 5 and interaction.deferred and interaction.ephemeral
        first, second = await interaction.wait_followups(2)
        # The first followup after a "thinking" defer fills in that message (ephemeral stays).
        assert first is interaction.original and first["flags"] & 64
        assert world.server.attachment_bytes(first["attachments"][0]) == OGG
        await interaction.wait_original(lambda m: m["content"] == "rendered (edited)")
        assert second["content"] == "public note" and second in world.server.messages(world.channel)


@pytest.mark.parametrize("frozen", [False, True], ids=["awaiting", "frozen-loop"])
async def test_late_interaction_response_is_unknown_interaction(world: World, frozen: bool) -> None:
    """The server keeps its own clock on its own thread and loop: whether the bot awaits something or its
    loop is blocked outright, the deadline passes, is recorded, and the late answer gets 10062."""
    bot = make_bot()
    errors: asyncio.Queue[BaseException] = asyncio.Queue()
    world.server.interaction_ack_timeout = 0.2  # Discord's is 3 s (the default)
    recorded_before_answering: list[bool] = []

    @bot.tree.command(name="slow", description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        # Waits until the server records the missed deadline. Frozen: blocks this loop (no await), so a
        # server sharing the loop could never record it.
        seen = world.server.interactions[interaction.id]
        deadline = time.monotonic() + 10
        while not seen.missed_deadline and time.monotonic() < deadline:
            time.sleep(0.01) if frozen else await asyncio.sleep(0.01)
        recorded_before_answering.append(seen.missed_deadline)
        await interaction.response.send_message("too late")

    @bot.tree.error
    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        errors.put_nowait(error.__cause__ or error)

    async with world.server.connect(bot):
        await bot.tree.sync()
        interaction = await world.server.slash(world.alice, world.channel, "slow")
        error = await asyncio.wait_for(errors.get(), 15)
        assert recorded_before_answering == [True]
        assert isinstance(error, discord.NotFound) and error.code == 10062
        assert world.server.missed_deadlines == [interaction] and interaction.response is None


async def test_the_deadlines_are_discords_by_default() -> None:
    server = FakeDiscord()
    assert server.interaction_ack_timeout == 3.0 and server.interaction_token_lifetime == 15 * 60


async def test_dm_slash_command_and_dm_reply(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "message")

    @bot.tree.command(name="hello", description="Say hello")
    async def hello(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"hi {interaction.user.name}")
        await interaction.user.send("a private note")

    @bot.tree.command(name="admin", description="Guild only")
    @app_commands.guild_only()
    async def admin(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("no")

    async with world.server.connect(bot):
        await bot.tree.sync()
        dm = world.server.dm_channel(world.alice)
        interaction = await world.server.slash(world.alice, dm, "hello")
        assert (await interaction.wait_response())["data"]["content"] == "hi alice"
        note = await world.server.wait_for_message(dm, lambda m: m["content"] == "a private note")
        assert note["channel_id"] == dm.id and note["guild_id"] is None
        with pytest.raises(PermissionError):
            await world.server.slash(world.alice, dm, "admin")

        await world.server.send_message(world.alice, dm, "thanks!")
        await world.server.send_message(world.alice, world.channel, "guild chatter")
        received = [await events.next("message") for _ in range(4)]
        by_content = {m.content: m for m in received}
        assert isinstance(by_content["thanks!"].channel, discord.DMChannel)
        # Without the message content intent, others' guild messages arrive empty.
        assert "" in by_content and "guild chatter" not in by_content


async def test_rate_limits_and_server_errors_are_retried(world: World) -> None:
    bot = make_bot()

    @bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    async with world.server.connect(bot):
        await bot.tree.sync()
        channel = bot.get_channel(world.channel.id)
        world.server.rate_limit(MESSAGES_ROUTE, count=2, retry_after=0.05)
        message = await channel.send("after two 429s")
        assert world.server.request_counts[MESSAGES_ROUTE] == 3
        assert [m["content"] for m in world.server.messages(world.channel)] == ["after two 429s"]

        world.server.rate_limit("POST /interactions/{webhook_id}/{webhook_token}/callback", retry_after=0.05)
        interaction = await world.server.slash(world.alice, world.channel, "ping")
        assert (await interaction.wait_response())["data"]["content"] == "pong"

        world.server.fail("PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", status=502)
        await message.add_reaction("1️⃣")  # discord.py retries a 502 after 1 s
        assert bot.user.id in world.server.message(message.id)["reactions"]["1️⃣"]


class QuickReidentifyBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # discord.py sleeps 5 s before every re-IDENTIFY by default


async def test_websocket_drop_resumes_and_replays_missed_events(world: World) -> None:
    bot = make_bot(QuickReidentifyBot)
    events = Recorder(bot, "resumed", "raw_reaction_add", "ready")
    async with world.server.connect(bot):
        await events.next("ready")
        message = await bot.get_channel(world.channel.id).send("vote")
        await world.server.drop_connections()
        # Dispatched while the bot is disconnected: only the RESUME replay can deliver them.
        await world.server.react(world.alice, message.id, "🅰️")
        await world.server.react(world.bob, message.id, "🅱️")
        await world.server.wait_for_session(resumed=1)
        got = [await events.next("raw_reaction_add") for _ in range(2)]
        assert [(e.user_id, str(e.emoji)) for e in got] == [(world.alice.id, "🅰️"), (world.bob.id, "🅱️")]
        await events.next("resumed")
        assert world.server.events_received["RESUME"] == 1 and world.server.events_received["IDENTIFY"] == 1

        # An unresumable drop makes the client IDENTIFY again.
        await world.server.drop_connections(code=4000, resumable=False)
        await events.next("ready")
        assert world.server.events_received["IDENTIFY"] == 2


async def test_replay_last_duplicates_dispatches(world: World) -> None:
    async with posted(world, "raw_reaction_add", "raw_message_delete") as (bot, events, message):
        await world.server.react(world.alice, message.id, "1️⃣")
        await world.server.replay_last(1)
        first, again = await events.next("raw_reaction_add"), await events.next("raw_reaction_add")
        assert (first.user_id, first.message_id) == (again.user_id, again.message_id) == (world.alice.id, message.id)

        await world.server.delete_message(message.id)
        assert (await events.next("raw_message_delete")).message_id == message.id
        with pytest.raises(discord.NotFound):
            await bot.get_channel(world.channel.id).fetch_message(message.id)


async def test_missing_permissions_raise_forbidden(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "guild_channel_update")
    async with world.server.connect(bot):
        channel = bot.get_channel(world.channel.id)
        message = await channel.send("ok")
        server = world.server
        server.set_permissions(world.channel, server.bot_user, deny=Permission.ADD_REACTIONS | Permission.ATTACH_FILES)
        with pytest.raises(discord.Forbidden) as denied:
            await message.add_reaction("1️⃣")
        assert denied.value.code == 50013
        with pytest.raises(discord.Forbidden):
            await channel.send(file=discord.File(io.BytesIO(OGG), "x.ogg"))

        server.set_permissions(world.channel, world.guild, deny=Permission.SEND_MESSAGES)  # @everyone
        with pytest.raises(discord.Forbidden):
            await channel.send("nope")
        await events.next("guild_channel_update")
        _, updated = await events.next("guild_channel_update")
        assert not updated.permissions_for(updated.guild.me).send_messages


async def test_bad_token_is_a_login_failure(world: World) -> None:
    bot = make_bot()
    with world.server.redirect_discord_py():
        with pytest.raises(discord.LoginFailure):
            await bot.login("not-the-token")
        await bot.close()
    assert world.server.request_counts["GET /users/@me"] == 1


async def test_bulk_reactions_reach_the_bot_quickly(world: World) -> None:
    crowd = world.server.add_users(1000, guild=world.guild)
    bot = make_bot()
    total = 2 * len(crowd)
    seen = 0
    all_seen = asyncio.Event()

    async def count(_: discord.RawReactionActionEvent) -> None:
        nonlocal seen
        seen += 1
        if seen == total:
            all_seen.set()

    bot.add_listener(count, "on_raw_reaction_add")
    bot.add_listener(count, "on_raw_reaction_remove")
    async with world.server.connect(bot):
        assert len(bot.get_guild(world.guild.id).members) == 1004
        message = await bot.get_channel(world.channel.id).send("rate")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await world.server.react_many(
            [(user, message.id, KEYCAPS[i % 10], True) for i, user in enumerate(crowd)]
            + [(user, message.id, KEYCAPS[i % 10], False) for i, user in enumerate(crowd)]
        )
        await asyncio.wait_for(all_seen.wait(), 10)
        elapsed = loop.time() - started
        assert world.server.message(message.id)["reactions"] == {}
        print(f"{total} reaction events in {elapsed:.2f}s = {total / elapsed:.0f}/s")


async def test_super_reactions_count_but_list_apart(world: World) -> None:
    async with posted(world, "raw_reaction_add", "raw_reaction_remove") as (bot, events, message):
        await world.server.react(world.alice, message.id, "7️⃣")
        await world.server.react(world.bob, message.id, "7️⃣", burst=True)
        normal, burst = await events.next("raw_reaction_add"), await events.next("raw_reaction_add")
        assert (normal.burst, normal.type) == (False, discord.ReactionType.normal)
        assert (burst.user_id, burst.burst, burst.type) == (world.bob.id, True, discord.ReactionType.burst)

        (reaction,) = (await message.channel.fetch_message(message.id)).reactions
        assert (reaction.count, reaction.normal_count, reaction.burst_count) == (2, 1, 1)
        assert not reaction.me and not reaction.me_burst
        # Discord lists only normal reactors unless asked for the super ones (type=1).
        assert [u.id async for u in reaction.users()] == [world.alice.id]
        assert [u.id async for u in reaction.users(type=discord.ReactionType.burst)] == [world.bob.id]

        assert await world.server.unreact(world.bob, message.id, "7️⃣", burst=True)
        removed = await events.next("raw_reaction_remove")
        assert (removed.user_id, removed.burst, removed.type) == (world.bob.id, True, discord.ReactionType.burst)
        assert world.server.message(message.id)["burst_reactions"] == {}


async def test_reaction_clears_dispatch_remove_all_and_remove_emoji(world: World) -> None:
    async with posted(world, "raw_reaction_clear", "raw_reaction_clear_emoji") as (bot, events, message):
        await world.server.react(world.alice, message.id, "1️⃣")
        await world.server.react(world.bob, message.id, "2️⃣", burst=True)
        await world.server.react(world.bob, message.id, "3️⃣")

        await message.clear_reaction("2️⃣")  # DELETE .../reactions/{emoji}
        cleared = await events.next("raw_reaction_clear_emoji")
        assert (cleared.message_id, str(cleared.emoji)) == (message.id, "2️⃣")
        assert list(world.server.message(message.id)["reactions"]) == ["1️⃣", "3️⃣"]

        await message.clear_reactions()  # DELETE .../reactions
        assert (await events.next("raw_reaction_clear")).message_id == message.id
        stored = world.server.message(message.id)
        assert stored["reactions"] == stored["burst_reactions"] == {}

        # As a moderator in the client would.
        await world.server.react(world.alice, message.id, "4️⃣")
        await world.server.clear_reactions(message.id, "4️⃣")
        assert str((await events.next("raw_reaction_clear_emoji")).emoji) == "4️⃣"
        await world.server.react(world.alice, message.id, "5️⃣")
        await world.server.clear_reactions(message.id)
        assert (await events.next("raw_reaction_clear")).message_id == message.id
        assert world.server.events_sent["MESSAGE_REACTION_REMOVE_ALL"] == 2


async def test_bulk_delete_dispatches_message_delete_bulk(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "raw_bulk_message_delete")
    async with world.server.connect(bot):
        channel = bot.get_channel(world.channel.id)
        sent = [await channel.send(f"m{i}") for i in range(4)]
        await channel.delete_messages(sent[:2])  # POST .../messages/bulk-delete
        purged = await events.next("raw_bulk_message_delete")
        assert purged.message_ids == {sent[0].id, sent[1].id} and purged.channel_id == channel.id
        assert [m["id"] for m in world.server.messages(world.channel)] == [sent[2].id, sent[3].id]
        assert world.server.request_counts["POST /channels/{channel_id}/messages/bulk-delete"] == 1

        # Discord's documented limits: 2 to 100 ids, no duplicates.
        for ids in ([sent[2].id], [sent[2].id, sent[2].id], list(range(1, 102))):
            with pytest.raises(discord.HTTPException) as refused:
                await bot.http.delete_messages(channel.id, ids)
            assert refused.value.status == 400 and refused.value.code == 50035
        with pytest.raises(discord.HTTPException) as too_old:
            await bot.http.delete_messages(channel.id, [sent[2].id, 1 << 22])
        assert too_old.value.code == 50034

        await world.server.purge([sent[2].id, sent[3].id])  # a moderator's purge
        purged = await events.next("raw_bulk_message_delete")
        assert purged.message_ids == {sent[2].id, sent[3].id} and world.server.messages(world.channel) == []


async def test_a_stale_reaction_add_can_be_replayed(world: World) -> None:
    async with posted(world, "raw_reaction_add", "raw_reaction_remove") as (bot, events, message):
        await world.server.react(world.alice, message.id, "1️⃣")
        await world.server.unreact(world.alice, message.id, "1️⃣")
        await world.server.replay_reaction(world.alice, message.id, "1️⃣")
        first, removed, stale = (
            await events.next("raw_reaction_add"), await events.next("raw_reaction_remove"), await events.next("raw_reaction_add"),
        )
        assert first.user_id == removed.user_id == stale.user_id == world.alice.id
        assert world.server.message(message.id)["reactions"] == {}  # the replay changed nothing


async def test_twenty_distinct_reactions_per_message(world: World) -> None:
    bot = make_bot()
    emojis = [chr(0x1F600 + i) for i in range(21)]
    async with world.server.connect(bot):
        message = await bot.get_channel(world.channel.id).send("vote")
        for emoji in emojis[:19]:
            await message.add_reaction(emoji)
        await world.server.react(world.alice, message.id, emojis[19], burst=True)  # super ones count too
        with pytest.raises(discord.HTTPException) as refused:
            await message.add_reaction(emojis[20])
        assert (refused.value.status, refused.value.code) == (400, 30010)
        await message.add_reaction(emojis[0])  # an emoji already there is no new one
        with pytest.raises(fakediscord.ApiError) as also:
            await world.server.react(world.bob, message.id, emojis[20])
        assert also.value.code == 30010
        assert len((await message.channel.fetch_message(message.id)).reactions) == 20


async def test_snowflakes_keep_growing_across_servers() -> None:
    ids = []
    for _ in range(2):
        async with FakeDiscord() as server:
            guild = server.add_guild("g")
            ids += [guild.id, server.add_text_channel(guild, "c").id, server.add_user("u").id]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket")


@pytest.mark.parametrize("answer", ["rate limited", "failed", "unauthorized"])
async def test_a_request_answered_early_still_wakes_those_waiting_on_its_count(world: World, answer: str) -> None:
    """request_counts is server state: a wait on it must see a request answered by a 429, an injected fault
    or a 401 as much as one handled. Those returned before the handler and woke nobody, so a test waiting
    for "the summary held" by a rate limit timed out when the request came after its wait began."""
    server = world.server
    if answer == "rate limited":
        server.rate_limit(MESSAGES_ROUTE, retry_after=60)
    elif answer == "failed":
        server.fail(MESSAGES_ROUTE, status=502)
    token = "wrong" if answer == "unauthorized" else server.bot_token
    before = server.request_counts[MESSAGES_ROUTE]
    waiting = asyncio.ensure_future(server.wait_until(lambda: server.request_counts[MESSAGES_ROUTE] > before, what="the count"))
    await asyncio.sleep(0.05)  # the wait is registered first: the case that woke nobody
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {token}"}) as http:
        async with http.post(f"{server.api_base}/channels/{world.channel.id}/messages", json={"content": "hi"}) as response:
            assert response.status in (429, 502, 401)
    assert await waiting


async def test_rate_limit_headers_buckets_and_429s(world: World) -> None:
    server = world.server
    auth = {"Authorization": f"Bot {server.bot_token}"}
    url = f"{server.api_base}/channels/{world.channel.id}/messages"
    server.set_route_limit(MESSAGES_ROUTE, 2, 30.0)
    async with aiohttp.ClientSession(headers=auth) as http:
        statuses = []
        for _ in range(3):
            async with http.post(url, json={"content": "hi"}) as response:
                statuses.append(response.status)
                assert all(name in response.headers for name in RATE_LIMIT_HEADERS), response.headers
                last = response, await response.json()
        response, body = last
        assert statuses == [200, 200, 429]
        assert body["global"] is False and 0 < body["retry_after"] <= 30
        assert response.headers["X-RateLimit-Scope"] == "user" and response.headers["X-RateLimit-Remaining"] == "0"
        # A bucket is per top-level resource: another channel's is untouched.
        other = server.add_text_channel(world.guild, "other")
        async with http.post(f"{server.api_base}/channels/{other.id}/messages", json={"content": "hi"}) as response:
            assert response.status == 200 and response.headers["X-RateLimit-Remaining"] == "1"
        # Errors carry the headers too.
        async with http.get(f"{server.api_base}/channels/{world.channel.id}/messages/1") as response:
            assert response.status == 404 and all(name in response.headers for name in RATE_LIMIT_HEADERS)
    assert len(server.messages(world.channel)) == 2
    assert server.rate_limits.limited == [(MESSAGES_ROUTE, "user")]


async def test_discord_py_waits_on_an_exhausted_bucket_instead_of_hitting_429(world: World) -> None:
    world.server.set_route_limit(MESSAGES_ROUTE, 1, 0.3)
    bot = make_bot()
    async with world.server.connect(bot):
        channel = bot.get_channel(world.channel.id)
        for i in range(3):
            await channel.send(f"m{i}")
    assert [m["content"] for m in world.server.messages(world.channel)] == ["m0", "m1", "m2"]
    assert world.server.rate_limits.limited == []


async def test_global_rate_limit_spares_interaction_endpoints() -> None:
    async with FakeDiscord(global_rate_limit=3, privileged_intents=Intent.GUILD_MEMBERS) as server:
        guild = server.add_guild("g")
        channel = server.add_text_channel(guild, "c")
        alice = server.add_user("alice")
        server.add_member(guild, alice)
        bot = make_bot()

        @bot.tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

        async with server.connect(bot):
            auth = {"Authorization": f"Bot {server.bot_token}"}
            async with aiohttp.ClientSession(headers=auth) as http:
                codes = []
                for _ in range(4):
                    async with http.get(f"{server.api_base}/users/@me") as response:
                        codes.append(response.status)
                        body = await response.json()
                assert codes[-1] == 429 and body["global"] is True
                assert response.headers["X-RateLimit-Global"] == "true" and response.headers["X-RateLimit-Scope"] == "global"
            await bot.tree.sync()  # discord.py waits out the global limit and retries
            interactions = [await server.slash(alice, channel, "ping") for _ in range(5)]
            for interaction in interactions:
                assert (await interaction.wait_response())["data"]["content"] == "pong"
            assert not [route for route, _ in server.rate_limits.limited if "interactions" in route]


async def test_the_global_rate_limit_is_the_bot_tokens_and_without_one_the_addresss() -> None:
    """Discord's "Rate Limits": 50 a second per bot; a request without an Authorization header counts against its IP
    address instead. Every request is recorded as it arrived, a 429 too (request_log, most_in_one_second)."""
    async with FakeDiscord(global_rate_limit=3) as server:
        async with aiohttp.ClientSession() as http:
            codes = []
            for _ in range(4):
                async with http.get(f"{server.api_base}/gateway") as response:
                    codes.append(response.status)
            async with http.get(f"{server.api_base}/users/@me", headers={"Authorization": f"Bot {server.bot_token}"}) as response:
                codes.append(response.status)
    assert codes == [200, 200, 200, 429, 200]
    assert server.rate_limits.limited == [("GET /gateway", "global")]
    assert len(server.request_log) == 5 and server.most_in_one_second() >= 4  # the 429 counted: 4 /gateway within a second


async def test_upload_limit_is_10_mib_per_file(world: World) -> None:
    bot = make_bot()
    limit = 10 * 1024 * 1024
    async with world.server.connect(bot):
        channel = bot.get_channel(world.channel.id)
        await channel.send(file=discord.File(io.BytesIO(bytes(limit)), "exact.ogg"))
        with pytest.raises(discord.HTTPException) as refused:
            await channel.send(file=discord.File(io.BytesIO(bytes(limit + 1)), "over.ogg"))
        assert (refused.value.status, refused.value.code) == (413, 40005)
        assert [m["attachments"][0]["filename"] for m in world.server.messages(world.channel)] == ["exact.ogg"]


async def test_enforce_nonce_returns_the_earlier_message(world: World) -> None:
    bot = make_bot()
    events = Recorder(bot, "message")
    async with world.server.connect(bot):
        channel = bot.get_channel(world.channel.id)
        first = await channel.send("round 1", nonce="ct-round-1")  # discord.py sends enforce_nonce: true
        again = await channel.send("round 1, again", nonce="ct-round-1")
        assert again.id == first.id and again.content == "round 1"
        assert [m["content"] for m in world.server.messages(world.channel)] == ["round 1"]
        assert (await events.next("message")).id == first.id and events.queues["message"].empty()
        assert world.server.events_sent["MESSAGE_CREATE"] == 1

        other = await channel.send("round 2", nonce="ct-round-2")
        assert other.id != first.id
        # Without enforce_nonce a nonce is only echoed back.
        raw = await bot.http.request(
            discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id),
            json={"content": "raw", "nonce": "ct-round-1"},
        )
        assert int(raw["id"]) not in (first.id, other.id)
        await other.delete()  # Discord does not post it again: the nonce's message is gone (Unknown Message)
        with pytest.raises(discord.NotFound) as gone:
            await channel.send("round 2", nonce="ct-round-2")
        assert gone.value.code == 10008 and len(world.server.messages(world.channel)) == 2
        with pytest.raises(discord.HTTPException) as long_nonce:
            await channel.send("x", nonce="n" * 26)
        assert long_nonce.value.code == 50035


async def test_command_payload_limits(world: World) -> None:
    server = world.server
    auth = {"Authorization": f"Bot {server.bot_token}"}
    url = f"{server.api_base}/applications/{server.application_id}/commands"

    def command(name: str = "compose", description: str = "Compose", **extra: Any) -> dict[str, Any]:
        return {"name": name, "description": description, "type": 1, **extra}

    def choices(count: int, size: int = 10) -> list[dict[str, Any]]:
        return [{"name": f"{i:03d}".ljust(size, "n"), "value": f"{i:03d}".ljust(size, "v")} for i in range(count)]

    def option(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "description": "d" * 100, "type": 3, **extra}

    too_big = command(options=[option(f"o{i}", choices=choices(25, 100)) for i in range(2)])  # 10,224 characters
    refused = {
        "name too long": [command(name="n" * 33)],
        "uppercase name": [command(name="Compose")],
        "empty description": [command(description="")],
        "description too long": [command(description="d" * 101)],
        "26 options": [command(options=[option(f"o{i}") for i in range(26)])],
        "26 choices": [command(options=[option("o", choices=choices(26))])],
        "choice value too long": [command(options=[option("o", choices=[{"name": "a", "value": "v" * 101}])])],
        "over 8000 characters": [too_big],
        "duplicate names": [command(), command()],
        "101 commands": [command(name=f"c{i}") for i in range(101)],
    }
    async with aiohttp.ClientSession(headers=auth) as http:
        for why, body in refused.items():
            async with http.put(url, json=body) as response:
                assert response.status == 400, why
                assert (await response.json())["code"] in (50035, 30032), why
        fits = command(options=[option(f"o{i}", choices=choices(25, 60)) for i in range(2)])  # 6,224 characters
        async with http.put(url, json=[fits]) as response:
            assert response.status == 200
    assert [c["name"] for c in server.commands[None]] == ["compose"]


async def test_acknowledging_twice_is_40060_and_the_token_lasts_15_minutes(world: World) -> None:
    bot = make_bot()
    errors: asyncio.Queue[BaseException] = asyncio.Queue()
    proceed = asyncio.Event()

    @bot.tree.command(name="later", description="Answers, then follows up late")
    async def later(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("once")
        await proceed.wait()
        try:
            await interaction.followup.send("late")
        except discord.HTTPException as error:
            errors.put_nowait(error)

    async with world.server.connect(bot):
        await bot.tree.sync()
        interaction = await world.server.slash(world.alice, world.channel, "later")
        await interaction.wait_response()
        url = f"{world.server.api_base}/interactions/{interaction.id}/{interaction.token}/callback"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"type": 4, "data": {"content": "twice"}}) as response:
                assert response.status == 400
                assert await response.json() == {"message": "Interaction has already been acknowledged.", "code": 40060}
        world.server.interaction_token_lifetime = 0.0  # as if 15 minutes had passed
        proceed.set()
        late = await asyncio.wait_for(errors.get(), 5)
        assert (late.status, late.code) == (401, 50027)
        assert [c["data"]["content"] for c in interaction.callbacks] == ["once"] and interaction.followups == []


async def test_privileged_intents_are_refused_unless_granted() -> None:
    async with FakeDiscord() as server:  # a new application: no privileged intent enabled
        server.add_guild("g")
        for privileged in ("members", "message_content", "presences"):
            intents = discord.Intents.none()
            intents.guilds = True
            setattr(intents, privileged, True)
            bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
            with pytest.raises(discord.PrivilegedIntentsRequired) as refused:
                async with server.connect(bot):
                    pass
            assert refused.value.shard_id is None, privileged  # raised for close code 4014 only
        plain = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)  # no privileged one
        async with server.connect(plain):
            assert len(plain.guilds) == 1
    async with FakeDiscord(privileged_intents=Intent.MESSAGE_CONTENT) as server:
        intents = discord.Intents.none()
        intents.message_content = True
        async with server.connect(commands.Bot(command_prefix="!", intents=intents)):
            assert server.events_received["IDENTIFY"] == 1


async def test_a_client_that_stops_heartbeating_is_dropped_and_resumes_with_replay() -> None:
    async with FakeDiscord(heartbeat_interval=0.2, privileged_intents=Intent.GUILD_MEMBERS) as server:
        guild = server.add_guild("g")
        bot = make_bot(QuickReidentifyBot)
        events = Recorder(bot, "guild_channel_create", "resumed")
        async with server.connect(bot):
            # Freeze the bot's loop (no await): its heartbeats stop. The server, on its own thread, drops
            # the connection; a channel made meanwhile can only reach the bot through the RESUME replay.
            deadline = time.monotonic() + 10
            while server.gateway.heartbeat_timeouts == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.gateway.heartbeat_timeouts == 1
            missed = server.add_text_channel(guild, "made-while-frozen")
            await server.wait_for_session(resumed=1)
            await events.next("resumed")
            assert (await events.next("guild_channel_create")).id == missed.id
            assert server.events_received["IDENTIFY"] == 1 and server.events_received["RESUME"] >= 1


async def test_threads_and_forum_posts_need_send_messages_in_threads(world: World) -> None:
    server = world.server
    forum = server.add_forum_channel(world.guild, "tracks")
    bot = make_bot()
    seen: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    @bot.tree.command(name="where", description="Where am I")
    async def where(interaction: discord.Interaction) -> None:
        seen.put_nowait(interaction)
        await interaction.response.send_message("here")

    events = Recorder(bot, "thread_create")
    async with server.connect(bot):
        await bot.tree.sync()
        thread = server.add_thread(world.channel, "ideas", owner=world.alice)
        assert (await events.next("thread_create")).id == thread.id
        post = server.add_forum_post(forum, "my track", world.alice, "rate my track")
        assert (await events.next("thread_create")).id == post.id
        assert isinstance(bot.get_channel(forum.id), discord.ForumChannel)
        assert server.message(post.id)["content"] == "rate my track"  # the post's first message has its id

        # Without Send Messages but with Send Messages in Threads, the bot posts in threads only.
        server.set_permissions(world.channel, server.bot_user, deny=Permission.SEND_MESSAGES)
        server.set_permissions(forum, server.bot_user, deny=Permission.SEND_MESSAGES)
        with pytest.raises(discord.Forbidden):
            await bot.get_channel(world.channel.id).send("in the channel")
        for where_ in (thread, post):
            await bot.get_channel(where_.id).send("in the thread")
            assert server.messages(where_)[-1]["content"] == "in the thread"

        # Without Send Messages in Threads (and with Send Messages), threads refuse with 50013.
        deny = {"deny": Permission.SEND_MESSAGES_IN_THREADS}
        server.set_permissions(world.channel, server.bot_user, **deny)
        server.set_permissions(forum, server.bot_user, **deny)
        for where_ in (thread, post):
            with pytest.raises(discord.Forbidden) as refused:
                await bot.get_channel(where_.id).send("refused")
            assert refused.value.code == 50013

        # Nobody posts in a forum channel itself.
        with pytest.raises(discord.HTTPException) as not_text:
            await bot.http.send_message(forum.id, params=discord.http.MultipartParameters({"content": "x"}, None, None))
        assert not_text.value.code == 50008

        # An interaction in a thread says so, with the thread's permissions.
        interaction = await server.slash(world.alice, thread, "where")
        assert (await interaction.wait_response())["data"]["content"] == "here"
        got = await asyncio.wait_for(seen.get(), 5)
        assert isinstance(got.channel, discord.Thread) and got.channel.parent_id == world.channel.id
        assert not got.app_permissions.send_messages_in_threads and got.app_permissions.send_messages


async def test_sharded_identify_routes_guild_events_by_shard_and_dms_to_shard_0() -> None:
    async with FakeDiscord(shard_count=2, privileged_intents=Intent.GUILD_MEMBERS) as server:
        guilds = []
        while {(g.id >> 22) % 2 for g in guilds} != {0, 1}:  # ids are time-based: one more ms, maybe another shard
            guilds.append(server.add_guild(f"g{len(guilds)}"))
            time.sleep(0.002)
        alice = server.add_user("alice")
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.dm_messages = True
        bot = commands.AutoShardedBot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        async with server.connect(bot):
            assert server.request_counts["GET /gateway/bot"] >= 1 and bot.shard_count == 2
            assert sorted(s.shard_id for s in server.sessions) == [0, 1]
            for guild in guilds:
                assert bot.get_guild(guild.id).shard_id == (guild.id >> 22) % 2
            later = server.add_text_channel(guilds[-1], "later")
            await server.send_message(alice, alice, "hello bot")  # a DM
            await server.flush()
            frames = {s.shard_id: [frame for _, frame in s.history] for s in server.sessions}
            owner = (guilds[-1].id >> 22) % 2
            assert [f for f in frames[owner] if str(later.id) in f and "CHANNEL_CREATE" in f]
            assert not [f for f in frames[1 - owner] if str(later.id) in f]
            assert [f for f in frames[0] if "hello bot" in f] and not [f for f in frames[1] if "hello bot" in f]


async def test_identify_with_an_invalid_shard_is_closed_4010(world: World) -> None:
    identify = {"op": 2, "d": {"token": world.server.bot_token, "intents": 1, "shard": [2, 2], "properties": {}}}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(world.server.gateway_url) as ws:
            assert (await ws.receive_json())["op"] == 10
            await ws.send_json(identify)
            await ws.receive()
            assert ws.close_code == 4010


async def test_unknown_emoji_is_10014(world: World) -> None:
    async with posted(world) as (bot, _, message):
        for unknown in ("x", "é", "notanemoji:123"):
            with pytest.raises(discord.HTTPException) as refused:
                await message.add_reaction(unknown)
            assert (refused.value.status, refused.value.code) == (400, 10014), unknown
        custom = world.server.add_emoji(world.guild, "crowd")
        await message.add_reaction(custom)
        await message.add_reaction("🅰️")
        assert list(world.server.message(message.id)["reactions"]) == [custom, "🅰️"]
        with pytest.raises(fakediscord.ApiError):
            await world.server.react(world.alice, message.id, "thumbsup")


async def test_installation_contexts_decide_where_a_command_runs() -> None:
    # The operator enabled user install: commands that declare nothing become user-installable too.
    async with FakeDiscord(installation_types=(0, 1), privileged_intents=Intent.GUILD_MEMBERS) as server:
        home = server.add_guild("home")
        home_channel = server.add_text_channel(home, "music")
        elsewhere = server.add_guild("elsewhere", with_bot=False)
        elsewhere_channel = server.add_text_channel(elsewhere, "chat")
        alice = server.add_user("alice")
        server.add_member(home, alice)
        server.add_member(elsewhere, alice)
        bot = make_bot()
        errors: asyncio.Queue[BaseException] = asyncio.Queue()
        seen: asyncio.Queue[discord.Interaction] = asyncio.Queue()

        @bot.tree.command(name="undeclared", description="Declares no installation context")
        async def undeclared(interaction: discord.Interaction) -> None:
            seen.put_nowait(interaction)
            await interaction.response.send_message("Composing...")
            try:
                await interaction.channel.send("round 1")
            except discord.HTTPException as error:
                errors.put_nowait(error)

        @bot.tree.command(name="servers", description="Server install only, not in DMs")
        @app_commands.allowed_installs(guilds=True, users=False)
        @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
        async def servers(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        async with server.connect(bot):
            await bot.tree.sync()
            assert server.command("undeclared")["integration_types"] == [0, 1]
            assert bot.get_guild(elsewhere.id) is None  # no events from a guild the bot is not in

            # Where the bot is: both commands, authorized by the guild install (and alice's install).
            interaction = await server.slash(alice, home_channel, "servers")
            assert (await interaction.wait_response())["data"]["content"] == "ok"
            assert interaction.owners == {"0": str(home.id)}

            # Where it is not: the undeclared command runs as alice's user install, answers, then cannot post.
            interaction = await server.slash(alice, elsewhere_channel, "undeclared")
            assert (await interaction.wait_response())["data"]["content"] == "Composing..."
            got = await asyncio.wait_for(seen.get(), 5)
            assert got.context.guild and got.is_user_integration() and not got.is_guild_integration()
            error = await asyncio.wait_for(errors.get(), 5)
            assert (error.status, error.code) == (403, 50001)
            with pytest.raises(PermissionError):
                await server.slash(alice, elsewhere_channel, "servers")
            with pytest.raises(PermissionError):
                await server.slash(alice, alice, "servers")  # a DM with the bot: not among its contexts

    # An application without user install cannot declare a user-installable command.
    async with FakeDiscord(privileged_intents=Intent.GUILD_MEMBERS) as server:
        bot = make_bot()

        @bot.tree.command(name="mine", description="User install")
        @app_commands.allowed_installs(guilds=True, users=True)
        async def mine(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        async with server.connect(bot):
            with pytest.raises(discord.HTTPException) as refused:
                await bot.tree.sync()
            assert refused.value.code == 50035


async def test_daily_command_creates_are_limited_and_overwrites_are_not_creates(world: World) -> None:
    server = world.server
    auth = {"Authorization": f"Bot {server.bot_token}"}
    url = f"{server.api_base}/applications/{server.application_id}/commands"
    batch = [{"name": f"c{i}", "description": "d", "type": 1} for i in range(100)]
    async with aiohttp.ClientSession(headers=auth) as http:
        for _ in range(3):  # the same 100 commands again: overwrites, not creates
            async with http.put(url, json=batch) as response:
                assert response.status == 200
        renamed = [{**c, "name": f"{c['name']}x"} for c in batch]
        async with http.put(url, json=renamed) as response:
            assert response.status == 200
        async with http.put(url, json=[{**c, "name": f"{c['name']}y"} for c in batch]) as response:
            body = await response.json()
            assert response.status == 429 and body["code"] == 30034 and body["retry_after"] > 0
    assert server.command_creates[None] == 200


async def test_ignore_after_makes_a_paging_loop_see_the_first_page_forever(world: World) -> None:
    crowd = world.server.add_users(30, guild=world.guild)
    async with posted(world) as (bot, _, message):
        await world.server.react_many([(user, message.id, "1️⃣", True) for user in crowd])
        world.server.ignore_after = True
        (reaction,) = (await message.channel.fetch_message(message.id)).reactions
        pages = []
        after = None
        for _ in range(3):  # a loop that trusted `after` would never end
            page = [u async for u in reaction.users(limit=25, after=after)]
            pages.append(sorted(u.id for u in page))
            after = discord.Object(pages[-1][-1])
        assert pages[0] == pages[1] == pages[2] == sorted(u.id for u in crowd)[:25]
