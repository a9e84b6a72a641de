"""The Discord bot: start-up checks, the cogs, events routed to the round runner, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.conductor import Conductor
from bot.errors import StartupError
from bot.rounds import RoundRunner
from bot.settings import Settings
from bot.views import VoteButton

log = logging.getLogger("crowdtune.bot")


def bot_intents() -> discord.Intents:
    # No privileged intents: reactions and interactions carry everything the bot needs.
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    intents.dm_reactions = True
    intents.guild_messages = True  # message deletions cancel rounds
    intents.dm_messages = True
    return intents


class CrowdtuneBot(commands.Bot):
    def __init__(self, settings: Settings, conductor: Conductor, renderer, **options) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=bot_intents(), help_command=None, **options)
        self.settings = settings
        self.conductor = conductor
        self.renderer = renderer
        self.runner = RoundRunner(self, conductor, renderer)

    async def setup_hook(self) -> None:
        from bot.cogs import moderation, sessions

        self.add_dynamic_items(VoteButton)
        await sessions.setup(self)
        await moderation.setup(self)
        self.tree.on_error = self.on_app_command_error
        if self.settings.dev_guild_id:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def on_ready(self) -> None:
        resumed = await self.runner.resume_all()
        log.info("ready as %s; %d session(s) running", self.user, resumed)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.runner.on_reaction(payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        self.runner.on_reaction(payload, added=False)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.runner.on_message_deleted(payload.message_id)

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works only in a server."
        elif isinstance(error, app_commands.CheckFailure):
            text = "You can't use this command here."
        elif isinstance(error, app_commands.TransformerError):
            text = f"Sorry, '{error.value}' is not a valid value for that option."
        else:
            log.error("command /%s failed", interaction.command.name if interaction.command else "?", exc_info=error)
            text = "Sorry, something went wrong on my side. Nothing was changed; please try again."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            pass

    async def close(self) -> None:
        await self.runner.shutdown()
        await super().close()


def point_at(settings: Settings) -> None:
    """Send discord.py to a Discord-compatible server (self-hosted, or the tests' local one)."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base.rstrip("/")
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


async def run_bot(settings: Settings, db: str) -> int:
    """Check everything, then run until SIGINT/SIGTERM. Open rounds stay open in the database."""
    from bot.render import Renderer
    from storage import SqliteStore

    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if not token or any(c.isspace() for c in token):
        raise StartupError("DISCORD_TOKEN is empty or malformed: paste the bot token from the Developer Portal")
    renderer = Renderer.open(settings.soundfont)
    store = await SqliteStore.open(settings.db or db)
    discord.utils.setup_logging(level=logging.INFO)
    point_at(settings)
    bot = CrowdtuneBot(settings, Conductor(store), renderer)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    try:
        await bot.start(token)
    except discord.LoginFailure:
        raise StartupError("Discord refused the token: check DISCORD_TOKEN (it is never printed)") from None
    except discord.PrivilegedIntentsRequired:
        raise StartupError("Discord refused the intents: this bot needs no privileged intent; check the application") from None
    finally:
        if not bot.is_closed():
            await bot.close()
        await store.close()
        renderer.close()
    return 0
