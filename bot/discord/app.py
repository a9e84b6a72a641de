"""The Discord bot: start-up checks, the cogs, events routed to the round runner, clean shutdown."""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import logging
import os
import socket
import sys
import time

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.conductor import Conductor
from bot.media.drawing import Drawer
from bot.progress import plural
from bot.errors import ExitCode, StartupError
from bot.discord.ballot_box import VoteLimiter
from bot.discord.confirmed import carry_out_confirmed
from bot.discord.edge import context_problem, request_problem
from bot.discord.in_flight import CommandsInFlight, reply_instead
from bot.discord.interactions_seen import handle_each_interaction_once
from bot.discord.logs import setup_logging
from bot.discord.outage import OPERATORS_PROBLEMS, OUTAGE_ERRORS, is_outage, reason, say_failure, say_not_done
from bot.discord.followups import database_refuses
from bot.discord.pace import Pace, paced_requests
from bot.discord.reach import reach_discord
from bot.discord.replies import UNKNOWN_INTERACTION, acknowledging, nothing_done, too_late
from bot.discord.runner import RoundRunner
from bot.discord.shards import ClosedShardsStayClosed, ShardPlan
from bot.discord.stray_reactions import StrayReactions
from bot.settings import Settings, bot_token, open_renderer
from bot.stopping import bot_stopped, close_on_signals, say_stopped
from storage import LOCK_WAITING, DatabaseGone, NewDatabase, StorageError, database_errors
from bot.discord.votes import DATABASE_GONE
from bot.discord.views import COMPONENTS, QUESTION_SECONDS, Confirm, answer_unknown_press, expire_at_shutdown

log = logging.getLogger("crowdtune.bot")
COMMAND_SYNC_RETRY_SECONDS = 5.0  # the first pause after a failed command sync; it doubles up to the max
COMMAND_SYNC_RETRY_MAX_SECONDS = 600.0


def bot_intents() -> discord.Intents:
    # No privileged intents: reactions and interactions carry everything the bot needs.
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    intents.dm_reactions = True
    intents.guild_messages = True  # message deletions cancel rounds
    intents.dm_messages = True
    return intents


# How the commands may be installed (sent with each command at sync): to a server, not to a person's
# account. Without it Discord follows the application's settings in the Developer Portal, and with user
# install enabled there /compose would run where the bot cannot post. Where each command may be used
# (a server, a DM with the bot) each declares itself (cogs: EVERYWHERE, or guild_only): a tree-wide
# default would be merged into guild_only's and open /strike to DMs.
INSTALLS = app_commands.AppInstallationType(guild=True, user=False)


class CheckedTree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.type is discord.InteractionType.autocomplete:
            # Suggestions while someone types: the text is unfinished (often empty, under an option's minimum
            # length), nothing is changed, and only a list of choices is a valid answer; the command itself
            # is checked when it is sent.
            return True
        if await too_late(interaction):  # replayed after a reconnect: nobody can be told what it did
            return False
        if not await self.client.in_flight.admit(interaction):  # at a stop, it finishes or is answered (CommandsInFlight)
            return False
        problem = request_problem(interaction) or await context_problem(interaction)
        if problem is None:
            LOCK_WAITING.set(acknowledging(interaction))  # in the command's task (discord.py runs it after this check)
            return True
        await interaction.response.send_message(f"Sorry, {problem}. {nothing_done(interaction)}.", ephemeral=True)
        return False


class CrowdtuneBot(commands.Bot):
    def __init__(
        self, settings: Settings, conductor: Conductor, renderer, drawer: Drawer | None = None, shards: ShardPlan | None = None,
        pace: Pace | None = None, **options
    ) -> None:
        options.setdefault("guild_ready_timeout", settings.guild_ready_timeout)
        self.shard_plan = shards or ShardPlan()
        # Every REST request under Discord's global rate limit (bot/discord/pace.py), the bot's own reactions too, at
        # this process's share (bot/discord/shards.py). `pace`: run_bot's, whose turns its start's requests took already.
        self.request_pace = pace or Pace(self.shard_plan.requests_per_second())
        options.setdefault("http_trace", paced_requests(self.request_pace))
        # discord.py warns at every start that voice needs PyNaCl and davey: the bot has no voice.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        if self.shard_plan.sharded:
            options.update(shard_count=self.shard_plan.count, shard_ids=list(self.shard_plan.ids))
        super().__init__(
            command_prefix=commands.when_mentioned, intents=bot_intents(), help_command=None, tree_cls=CheckedTree,
            allowed_installs=INSTALLS, **options
        )
        self.settings = settings
        self.conductor = conductor
        self.renderer = renderer
        self._owns_drawer = drawer is None
        self.drawer = drawer or Drawer()
        self._command_sync: asyncio.Task | None = None
        self._confirmed: asyncio.Task | None = None
        self.connection: asyncio.Task | None = None  # discord.py's login and connection (run_bot)
        self._closing: asyncio.Future | None = None
        self.command_sync_retry_seconds = COMMAND_SYNC_RETRY_SECONDS
        self.in_flight = CommandsInFlight()
        self.questions: dict[str, Confirm] = {}  # the Confirm questions waiting for a press, by key (views.Answer)
        self.question_seconds = QUESTION_SECONDS
        self.runner = RoundRunner(self, conductor, renderer, self.drawer, VoteLimiter(settings.vote_burst, settings.vote_refill_seconds))
        self.database: NewDatabase | None = None  # whether run_bot's start made its database, kept once connected
        self.stray_reactions = StrayReactions(self, self.runner.ballot_box)
        handle_each_interaction_once(self._connection.parsers)

    async def setup_hook(self) -> None:
        from bot.discord.cogs import moderation, sessions

        self.add_dynamic_items(*COMPONENTS)
        await sessions.setup(self)
        await moderation.setup(self)
        self.tree.on_error = self.on_app_command_error
        if self.settings.dev_guild_id:
            self.tree.copy_global_to(guild=discord.Object(id=self.settings.dev_guild_id))
        await self.runner.store.listen_forgotten(self.forgotten)
        # Read once listening: a deletion committed in between is heard, or read here (none is missed).
        self.heard_forget(await self.runner.store.last_forget())

    def forget_in_memory(self, user_id: int) -> None:
        """Drop the person's reactions held over the vote rate and those seen (they deleted their data): made before
        the deletion, none may come back as a vote."""
        self.runner.ballot_box.held.forget_person(user_id)
        self.runner.ballot_box.seen.forget_person(user_id)

    def heard_forget(self, forget: int) -> None:
        """A person's data was deleted (`forget`: Store.forget_user's number): a vote of theirs that came before is refused
        when it reaches the database, one that comes from now on is a new vote (VoteOp.forgets_seen)."""
        box = self.runner.ballot_box
        box.forgets_heard = max(box.forgets_heard, forget)

    def forgotten(self, voter: str, forget: int) -> None:
        """A person's data was deleted, by /forget-me here or in another shard's process, or by `crowdtune forget-user`
        (the store tells: listen_forgotten): what this process holds of them in memory goes too, and a vote of theirs
        still on its way to the database is refused there (heard_forget)."""
        self.heard_forget(forget)
        kind, _, ident = voter.partition(":")
        if kind == "user" and ident.isdigit():
            self.forget_in_memory(int(ident))
        self.runner.scope_deleted(voter)  # their personal scope's settings
        log.info("%s's data was deleted: what this process held of it in memory is dropped", voter)

    async def on_connect(self) -> None:  # discord.py: each READY, a new gateway session (a RESUME is none)
        if not self.shard_plan.sharded:
            await self.on_shard_connect(0)

    async def on_shard_connect(self, shard_id: int) -> None:  # the same, per shard of a sharded client
        self.runner.reconciler.connected(shard_id)  # first, before any event of the session is taken
        # Commands come in from now on: a new database stays, and is said (a refused start is one line, and leaves none).
        if self.database is not None and (line := self.database.keep()) is not None:
            log.warning(line)
        await self.runner.recounts.new_gateway_session(shard_id)  # the reactions whose events it missed

    async def on_resumed(self) -> None:  # Discord is back after an outage: what it kept in the outbox is posted now
        await self.runner.post_queued()

    async def on_ready(self) -> None:
        resumed = await self.runner.resume_all()
        log.info("ready as %s (%s); %s running", self.user, self.shard_plan.describe(), plural(resumed, "session"))
        if self._command_sync is None:  # on_ready comes again after a reconnect: sync once a process
            self._command_sync = asyncio.create_task(self.sync_commands(), name="command-sync")
            # What members confirmed before a crash cut it short: carried out once a process (confirmed.py).
            self._confirmed = asyncio.create_task(carry_out_confirmed(self), name="confirmed-requests")
            for task in (self._command_sync, self._confirmed):  # a failure (a full disk) said as it ends
                task.add_done_callback(functools.partial(say_failure, log))

    async def wait_until_commands_synced(self) -> bool:
        """Wait for the command sync that follows the first on_ready (see sync_commands); its result."""
        await self.wait_until_ready()
        while self._command_sync is None:
            await asyncio.sleep(0.01)
        return await asyncio.shield(self._command_sync)

    async def sync_commands(self) -> bool:
        """Register the commands with Discord if they differ from what this application last synced
        (a digest kept in the database): restarts, even a crash loop, cost no request and no rate
        limit. Runs after open rounds have resumed; a failure is logged and retried with a growing
        pause, never fatal. True once synced (or unchanged); False if the bot closed first."""
        guild = discord.Object(id=self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        declared = sorted((c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)), key=lambda c: (c["name"], c.get("type", 1)))
        digest = hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()
        key = f"commands:{self.application_id}:{guild.id if guild else 'global'}"
        if await self.conductor.store.deployment_value(key) == digest:
            log.info("commands unchanged since the last sync: not synced")
            return True
        pause = self.command_sync_retry_seconds
        while not self.is_closed():
            try:
                await self.tree.sync(guild=guild)
            except (discord.HTTPException, aiohttp.ClientError, OSError) as problem:
                log.warning("could not sync the commands (%s); retrying in %.0f s", reason(problem), pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, COMMAND_SYNC_RETRY_MAX_SECONDS)
                continue
            await self.conductor.store.set_deployment_value(key, digest)
            log.info("synced %s%s", plural(len(declared), "command"), f" to server {guild.id}" if guild else "")
            return True
        return False

    async def on_error(self, event_method: str, /, *args, **kwargs) -> None:
        """An event's handler failed (discord.py runs each as a task of its own, and logs a traceback): said as every
        background step's failure is (a full disk in one line, a bug with its traceback)."""
        say_not_done(log, event_method, sys.exc_info()[1])

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await answer_unknown_press(interaction)  # the bot's own components are answered by their DynamicItem

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.runner.on_reaction(payload, added=True)
        await self.stray_reactions.added(payload)  # a vote-looking one on a buttons or menu round: said to be none

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        self.runner.on_reaction(payload, added=False)

    async def on_raw_reaction_clear(self, payload: discord.RawReactionClearEvent) -> None:
        self.runner.reconciler.on_reactions_cleared(payload.channel_id, payload.message_id)

    async def on_raw_reaction_clear_emoji(self, payload: discord.RawReactionClearEmojiEvent) -> None:
        self.runner.reconciler.on_reactions_cleared(payload.channel_id, payload.message_id, str(payload.emoji))

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.runner.on_message_deleted(payload.message_id)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in sorted(payload.message_ids):
            await self.runner.on_message_deleted(message_id)

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works only in a server."
        elif isinstance(error, app_commands.CheckFailure):
            text = "You can't use this command here."
        elif isinstance(error, app_commands.TransformerError):
            text = f"Sorry, one of the options is not a valid value (an unknown user, role or channel?). {nothing_done(interaction)}."
        elif isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
            text = "That command is out of date here; Discord updates it within a minute. Please try again then."
        elif isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, DatabaseGone):
            # Not a bug and not for trying again: nothing can be saved until the operator restarts the bot (one line).
            log.warning("command /%s: %s", interaction.command.name if interaction.command else "?", error.original)
            self.runner.database_gone(error.original)  # voting stops everywhere, each session's channel told once
            text = f"Sorry, {DATABASE_GONE}. {nothing_done(interaction)}."
        elif isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, OPERATORS_PROBLEMS):
            # The operator's to fix (a full disk, its server unreachable), not a bug: one line naming it and why.
            log.warning("command /%s: %s", interaction.command.name if interaction.command else "?", error.original)
            text = f"Sorry, my database {database_refuses(error.original)} right now. {nothing_done(interaction)}; please try again later."
        elif isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, database_errors()):
            log.error("command /%s: the database failed: %s", interaction.command.name if interaction.command else "?", error.original)
            text = f"Sorry, I cannot save anything right now (my database failed). {nothing_done(interaction)}; please try again later."
        elif isinstance(error, app_commands.CommandInvokeError) and getattr(error.original, "code", None) == UNKNOWN_INTERACTION:
            log.warning("command /%s: its answer came too late for Discord (over 3 s: %s)", interaction.command.name if interaction.command else "?", error.original)
            return  # nothing can reach its user any more
        elif isinstance(error, app_commands.CommandInvokeError) and is_outage(error.original):  # expected: no traceback
            log.warning("command /%s: cannot reach Discord (%s)", interaction.command.name if interaction.command else "?", reason(error.original))
            text = f"Sorry, Discord did not answer me. {nothing_done(interaction)}; please try again."
        else:
            log.error("command /%s failed", interaction.command.name if interaction.command else "?", exc_info=error)
            text = f"Sorry, something went wrong on my side. {nothing_done(interaction)}; please try again."
        try:
            await reply_instead(interaction, text)
        except (discord.HTTPException, *OUTAGE_ERRORS):  # the answer could not be sent: what failed is logged above
            pass

    async def close(self) -> None:
        """End the connection at once (discord.py's outlives a close wherever it waits: its reconnect back-off of up to
        minutes, a request retried after a 429, a gateway that never answers), then stop the rounds, their queued votes
        stored, and close discord.py's client. Every call joins the first: a signal's, a lost claim's, run_bot's own."""
        if self._closing is None:
            if self.connection is not None and self.connection is not asyncio.current_task():
                self.connection.cancel()  # (discord.py's own close from inside it keeps the error it then raises)
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for task in (self._command_sync, self._confirmed):
            if task is not None:
                task.cancel()  # a confirmed request cut short stays recorded: the next start carries it out
        await expire_at_shutdown(self.questions)  # over HTTP, which works till discord.py's close below
        await self.in_flight.finish()  # each running command answered too, before the rounds and the HTTP session stop
        await self.runner.shutdown()
        await super().close()
        if self._owns_drawer:
            await asyncio.to_thread(self.drawer.close)


class ShardedCrowdtuneBot(ClosedShardsStayClosed, CrowdtuneBot, commands.AutoShardedBot):
    """The same bot running several shards in one process (discord.py's AutoShardedClient: one gateway
    connection per shard); made by `run_bot` when a shard count is set."""


def point_at(settings: Settings) -> None:
    """Send discord.py to a Discord-compatible server (self-hosted, or the tests' local one)."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base.rstrip("/")
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def freeze_start_up_objects() -> None:
    """Take what start-up made out of the garbage collector: a full collection walks every object (some
    120,000 after importing discord.py and numpy, 60 ms on a small machine) while the event loop waits,
    and these live as long as the process anyway."""
    gc.collect()
    gc.freeze()


async def run_bot(settings: Settings, db: str) -> int:
    """Check everything, then run until SIGINT/SIGTERM. Open rounds stay open in the database.
    Each start-up problem is a StartupError (or StorageError, RenderSetupError) with its exit code."""
    from storage import ClaimLost, open_to_write

    token = bot_token(settings)
    shards = ShardPlan.make(settings.shard_count, settings.shard_ids)
    pace = Pace(shards.requests_per_second())  # every request of the process's, from its first (reach_discord)
    renderer = open_renderer(settings)
    store, new = None, NewDatabase(db)  # a start that fails or is stopped before it connects leaves no new database
    try:
        # The command line's --db, else CROWDTUNE_DB (bot.cli._database); a read-only file or a full disk said now.
        store = await open_to_write(db)
        # One bot per database: a second one would race the first for every close (issue 11, case 9).
        await store.claim_instance(f"process {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        await store.claim_shards(shards.count, shards.ids)  # one process per shard, never two
        point_at(settings)
        await reach_discord(settings.connect_retry_seconds, pace)
    except BaseException:
        if store is not None:
            await store.close()
        new.end()
        renderer.close()
        raise
    bot = (ShardedCrowdtuneBot if shards.sharded else CrowdtuneBot)(settings, Conductor(store), renderer, shards=shards, pace=pace)
    bot.database = new
    from bot.discord.cogs import moderation, sessions  # noqa: F401  (imported now, to be frozen with the rest)

    freeze_start_up_objects()
    stopped_by = close_on_signals(bot.close)
    lost: list[StorageError] = []

    async def stop_if_shards_lost() -> None:
        # Its shards' lock dropped (PostgreSQL restarted) and another process took one before this one took it back:
        # this one ends (code 8, as when refused at start), so that never two run the same sessions (storage.leases).
        lost.append(await store.claim_lost())
        await bot.close()

    async def log_in_and_connect() -> None:
        await bot.login(token)
        setup_logging()  # after the login: a refused token is one line
        await bot.connect()

    watch = asyncio.create_task(stop_if_shards_lost())
    bot.connection = asyncio.create_task(log_in_and_connect())
    try:
        await bot.connection
    except asyncio.CancelledError:
        if asyncio.current_task().cancelling():
            raise  # else the bot's close ended its connection (CrowdtuneBot.close): that close's end follows
    except discord.LoginFailure:
        raise StartupError("Discord refused the token: check DISCORD_TOKEN (it is never printed)", ExitCode.TOKEN_REFUSED) from None
    except discord.PrivilegedIntentsRequired:
        # Discord refuses (4014) only privileged intents, which bot_intents() never asks for: this is for an
        # application or Discord-compatible server that refuses anyway (tests/bot/test_startup.py).
        raise StartupError(
            "Discord refused the intents: this bot needs no privileged intent; check the application", ExitCode.INTENTS_REFUSED
        ) from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError, discord.DiscordServerError) as problem:
        # Reachable a moment ago (reach_discord), gone at the login: the same problem.
        raise StartupError(f"cannot reach Discord ({problem}): check the network", ExitCode.DISCORD_UNREACHABLE) from None
    finally:
        if not lost:
            watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)  # a loss's close of the bot finishes first
        await bot.close()  # joins one under way: the store stays open till its queued votes are in
        await store.close()
        new.end()
        renderer.close()
    if lost:
        raise lost[0]
    if stopped_by:  # every end is one line (README "Exit codes"), after the cleanup it waited for
        gone = bot.runner.stopped_by
        say_stopped(bot_stopped(stopped_by[0], None if isinstance(gone, ClaimLost) else gone))
    return 0
