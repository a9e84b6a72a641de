"""Moderator tools (/config, /reset, /export, /strike, /unstrike) and a user's own data (/forget-me)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import confirmed
from bot.discord.anti_brigade import MAX_MEMBER_DAYS, rule_text
from bot.discord.pickup import after_pickup
from bot.discord.replies import deferring
from bot.discord.cogs.sessions import EVERYWHERE, answer_privately, is_moderator, scope_of, scope_settings
from bot.discord.votes import VOTE_STYLES, voter_id
from bot.discord.views import Confirm
from bot.conductor import NOTHING_LEARNED
from bot.progress import counted, plural, stored
from core.agent import EXPLORATIONS, PRESETS
from core.engine import QUORUM_MAX, ROUND_MINUTES_MAX, ROUND_MINUTES_MIN, ROUND_MINUTES_RANGE, ROUNDS_MAX
from bot.worker import in_worker_process
from core.agent import preset as agent_preset
from bot.personal_copy import agent_words, personal_agent
from storage.export import COUNTED, write_export, write_person_copy

NOT_A_MODERATOR = "This command is for moderators (Manage Server permission, or the server's moderator role)."


def anti_brigading_text(scope_id: str, settings: dict) -> str:
    """Who votes in this scope's rounds now, in one sentence for /config, naming the options that set it."""
    if not scope_id.startswith("guild:"):
        return "anti_brigade applies in servers only: a personal agent counts its owner's votes."
    on, days = bool(settings["anti_brigade"]), int(settings["member_days"])
    if on:
        return f"anti_brigade: on, member_days: {days}, so {rule_text(True, days)} (at once, also in open rounds)."
    later = f" (member_days: {days} applies once anti_brigade is on)" if days else ""
    return f"anti_brigade: off, so {rule_text(False, days)}{later}."


def hide_results_text(settings: dict) -> str:
    """What hide_results does, in one sentence for /config: it hides an open round's votes in /status (at once, like
    anti_brigade: a moderator who turns it off expects to see them), and the post's counts only with buttons, since
    everyone sees a reaction's count on the post."""
    if not settings["hide_results"]:
        return "hide_results: off, so /status shows an open round's votes (at once, also in open rounds)."
    shown = (
        "; with vote_style: reactions members still see the counts on the post: only buttons hide them"
        if settings["vote_style"] == "reactions" else ", and the buttons show no counts"
    )
    return f"hide_results: on, so /status shows how many voted but not their votes until a round closes (at once, also in open rounds){shown}."


def on_off(value: bool) -> str:
    return "on" if value else "off"


def preset_exploration(config) -> str:
    """How a preset explores, in words: the linear model by Thompson sampling (its `exploration` field is the
    tabular presets'), a preset that learns nothing not at all."""
    if not config.learns:
        return "none: its edits are random"
    return "Thompson sampling" if config.learner == "linear" else config.exploration


# /config's options that mean something in a server only: a personal agent (a DM) has one moderator, its owner, and
# learns from their votes alone (bot.conductor.Conductor.model).
SERVER_ONLY = ("mod_role", "share_learning")


def settings_text(settings: dict, server: bool = True) -> str:
    """A scope's settings as /config takes them, each option once by its name, in its units and words:
    "preset: default, exploration: the preset's (Thompson sampling), round_minutes: 5, ..., share_learning: off"
    (hide_results, anti_brigade and member_days, which apply at once, apart: `hide_results_text`, `anti_brigading_text`);
    not `server`: a personal agent's, without SERVER_ONLY."""
    exploration = settings["exploration"] or f"the preset's ({preset_exploration(agent_preset(settings['preset']))})"
    shown = {
        "preset": settings["preset"],
        "exploration": exploration,
        "round_minutes": f"{round(settings['round_seconds'] / 60, 2):g}",
        "quorum": settings["quorum"] or "none",
        "rounds": settings["rounds"] or "endless",
        "vote_style": settings["vote_style"],
        "mod_role": f"<@&{settings['mod_role']}>" if settings["mod_role"] else "none",
        "share_learning": on_off(settings["share_learning"]),
    }
    return ", ".join(f"{option}: {value}" for option, value in shown.items() if server or option not in SERVER_ONLY)


def no_votes_of_a_bot(user: discord.abc.User, me: discord.abc.User, so: str) -> str | None:
    """Why a command about `user`'s votes has nothing to do (`so`: what follows, "there is nothing to strike"), in one
    line, or None when `user` is no bot: the bot casts no votes, and no bot's reaction is counted (BallotBox.is_bot; a
    bot cannot press a button)."""
    if user.id == me.id:
        return f"The bot casts no votes, so {so}. Nothing was changed."
    if user.bot:  # Discord's resolved user says `"bot": true`
        return f"{user.mention} is a bot, and bots' votes are not counted, so {so}. Nothing was changed."
    return None


def unstrikable(user: discord.abc.User, moderator: discord.abc.User, me: discord.abc.User) -> str | None:
    """Why /strike refuses `user`, in one line, or None: a bot's votes are never counted (`no_votes_of_a_bot`), and a
    moderator striking themself would only lock themself out (a slip of the user picker)."""
    if user.id == moderator.id:
        return "You cannot strike yourself. Nothing was changed."
    return no_votes_of_a_bot(user, me, "there is nothing to strike")


def strike_text(mention: str, voided: dict[str, int] | None) -> str:
    """/strike's answer from Store.strike's count: the open rounds' votes apart from those of rounds already over, whose
    verdicts (and what the agent learned from them) stand though the votes no longer weigh in later counts."""
    if voided is None:
        return f"{mention} is already struck here. Nothing was changed."
    total = voided["open"] + voided["over"]
    parts = []
    if voided["open"]:
        parts.append(f"{voided['open']} in the open round, which no longer counts {'it' if voided['open'] == 1 else 'them'}")
    if voided["over"]:
        parts.append(f"{voided['over']} in rounds already over, whose verdicts stand")
    where = f" ({'; '.join(parts)})" if parts else ""
    return f"Voided {plural(total, 'vote')} by {mention}{where}; their new votes here are ignored. This is in the audit log."


def file_size(size: int) -> str:
    """Bytes for people: '10 MiB', '1.5 MiB', '50 KiB'."""
    if size >= 2**20:
        return f"{round(size / 2**20, 1):g} MiB"
    return f"{round(size / 2**10, 1):g} KiB"


class Moderation(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self.store = bot.conductor.store

    async def _moderator_scope(self, interaction: discord.Interaction, *, defer: bool = False) -> str | None:
        """The scope a moderator acts on, or None after telling a non-moderator politely. `defer`: the
        command's work grows with the data, so it is acknowledged first (Discord wants an answer within
        3 s), privately as its answer will be, before even the settings are read (a read can wait for the
        database, behind a long write); its answers then fill in the original response."""
        if defer:
            await deferring(interaction)()
        scope_id, kind = scope_of(interaction)
        if not is_moderator(interaction, await scope_settings(self.bot, scope_id)):
            await answer_privately(interaction, NOT_A_MODERATOR)
            return None
        await self.store.ensure_scope(scope_id, kind)
        return scope_id

    @app_commands.command(name="config", description="Moderators: this server's defaults (no options: show them)")
    @app_commands.allowed_contexts(**EVERYWHERE)
    @app_commands.describe(
        preset="the learning preset",
        exploration="how the agent explores (overrides the preset)",
        round_minutes=f"default round length, in minutes: {ROUND_MINUTES_RANGE}",
        quorum="default quorum (0: none)",
        rounds="default rounds per session (0: endless)",
        vote_style="reactions (1-10 emoji) or buttons (anonymous)",
        hide_results="/status hides open rounds' votes, at once (reaction counts show on the post: buttons hide them)",
        mod_role="a role whose members may use moderator commands",
        anti_brigade="ignore votes from accounts that joined the server after the round began",
        member_days="only members who joined at least this many days before a round vote (1 or more: anti brigade on)",
        share_learning="learn from the servers that opted in too, and share what this one learns (off by default)",
    )
    @app_commands.choices(
        preset=[app_commands.Choice(name=p, value=p) for p in PRESETS],
        exploration=[app_commands.Choice(name=e, value=e) for e in EXPLORATIONS],
        vote_style=[app_commands.Choice(name=s, value=s) for s in VOTE_STYLES],
    )
    async def config(
        self,
        interaction: discord.Interaction,
        preset: str | None = None,
        exploration: str | None = None,
        round_minutes: app_commands.Range[float, ROUND_MINUTES_MIN, ROUND_MINUTES_MAX] | None = None,
        quorum: app_commands.Range[int, 0, QUORUM_MAX] | None = None,
        rounds: app_commands.Range[int, 0, ROUNDS_MAX] | None = None,
        vote_style: str | None = None,
        hide_results: bool | None = None,
        mod_role: discord.Role | None = None,
        anti_brigade: bool | None = None,
        member_days: app_commands.Range[int, 0, MAX_MEMBER_DAYS] | None = None,
        share_learning: bool | None = None,
    ) -> None:
        scope_id = await self._moderator_scope(interaction)
        if scope_id is None:
            return
        problems = []
        if preset is not None and preset not in PRESETS:
            problems.append(f"unknown preset '{preset}'")
        if exploration is not None and exploration not in EXPLORATIONS:
            problems.append(f"unknown exploration '{exploration}'")
        if vote_style is not None and vote_style not in VOTE_STYLES:
            problems.append(f"unknown vote style '{vote_style}'")
        server = scope_id.startswith("guild:")
        given_here = [name for name, value in zip(SERVER_ONLY, (mod_role, share_learning)) if value is not None]
        if given_here and not server:
            problems.append(f"{' and '.join(given_here)} {'apply' if len(given_here) > 1 else 'applies'} in servers only: your personal agent has one moderator, you, and learns from your votes alone")
        if problems:
            await answer_privately(interaction, f"Sorry: {'; '.join(problems)}. Nothing was changed.")
            return
        given = {
            "preset": preset,
            "exploration": exploration,
            "round_seconds": None if round_minutes is None else round_minutes * 60,
            "vote_style": vote_style,
            "hide_results": hide_results,
            "mod_role": None if mod_role is None else mod_role.id,
            "anti_brigade": anti_brigade,
            "member_days": member_days,
            "share_learning": share_learning,
        }
        changes = {key: value for key, value in given.items() if value is not None}
        if member_days and anti_brigade is None and not (await scope_settings(self.bot, scope_id))["anti_brigade"]:
            changes["anti_brigade"] = True  # a membership age is asked for to keep raids out: it turns anti-brigading on
        # 0 means "none" for these two, so it must be stored, not skipped.
        if quorum is not None:
            changes["quorum"] = quorum or None
        if rounds is not None:
            changes["rounds"] = rounds or None
        if changes:
            await after_pickup(self.bot, interaction, scope_id=scope_id)  # a round closing now counts as it stood
            await self.store.update_scope_settings(scope_id, changes, actor=voter_id(interaction.user.id))
            self.bot.runner.scope_settings_changed(scope_id)
        settings = await scope_settings(self.bot, scope_id)
        await answer_privately(
            # Session settings take effect in the next session; hide_results' and anti-brigading's own sentences say
            # they apply at once.
            interaction,
            f"{'Updated. ' if changes else ''}Sessions started from now use: {settings_text(settings, server)}. "
            f"{hide_results_text(settings)} {anti_brigading_text(scope_id, settings)}", discord.AllowedMentions.none(),
        )

    @app_commands.command(name="reset", description="Moderators: clear this server's agent (asks first)")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def reset(self, interaction: discord.Interaction) -> None:
        scope_id = await self._moderator_scope(interaction, defer=True)  # counting and clearing grow with the Q-table
        if scope_id is None:
            return
        await after_pickup(self.bot, interaction, scope_id=scope_id)  # what it forgets includes a round closing now
        learned = await self._learned(scope_id)
        if await self.bot.conductor.nothing_to_reset(scope_id, learned):  # as `crowdtune reset`: no question, no audit
            await interaction.edit_original_response(content=f"The agent {learned}: there is nothing to reset. Nothing was changed.")
            return
        view = Confirm(interaction, "Reset the agent")
        await interaction.edit_original_response(
            # "a reset forgets it all" only when there is something to forget
            content=f"Reset the agent? It {learned}{'' if learned == NOTHING_LEARNED else '; a reset forgets it all'}. "
            "Compositions and votes are kept.",
            view=view,
        )
        if not await view.confirm("Nothing was reset.", lambda: {"scope": scope_id}):
            return
        async with view.carrying_out():
            text = await confirmed.reset(self.bot, {"scope": scope_id, "user": interaction.user.id}, view.key)
            await interaction.edit_original_response(content=text or confirmed.DONE_BEFORE, view=None)

    @app_commands.command(name="export", description="Moderators: compositions (MIDI), rounds, votes, audit log and Q-table as a zip")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def export(self, interaction: discord.Interaction) -> None:
        scope_id = await self._moderator_scope(interaction, defer=True)  # the zip is made in a worker process
        if scope_id is None:
            return
        limit = interaction.filesize_limit  # what Discord says this upload may be, here (boosts, DMs)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"crowdtune-{scope_id.replace(':', '-')}.zip"
            counts = await in_worker_process(write_export, self.store.path, path, scope_id)
            size = path.stat().st_size
            summary = counted(counts, COUNTED)
            if size > limit:
                await interaction.edit_original_response(
                    content=f"The export ({file_size(size)}) is over Discord's {file_size(limit)} upload limit. "
                    "Run this where the bot runs (with Docker, in its container: the README's Docker section): "
                    f"`crowdtune export --scope {scope_id} --out export.zip`"
                )
                return
            await interaction.edit_original_response(content=f"Export: {summary}.", attachments=[discord.File(path)])
        await self.store.audit(scope_id, voter_id(interaction.user.id), "export", counts)

    @app_commands.command(name="strike", description="Moderators: void a user's votes in this server and ignore new ones")
    @app_commands.guild_only()
    @app_commands.describe(user="whose votes to void")
    async def strike(self, interaction: discord.Interaction, user: discord.User) -> None:
        scope_id = await self._moderator_scope(interaction, defer=True)  # voiding grows with the user's votes
        if scope_id is None:
            return
        refused = unstrikable(user, interaction.user, self.bot.user)
        if refused:
            await answer_privately(interaction, refused, discord.AllowedMentions.none())
            return
        await after_pickup(self.bot, interaction, scope_id=scope_id)  # a recount or a round closing counts as it stood
        voided = await self.store.strike(scope_id, voter_id(user.id), actor=voter_id(interaction.user.id))
        await answer_privately(interaction, strike_text(user.mention, voided), discord.AllowedMentions.none())

    @app_commands.command(name="unstrike", description="Moderators: lift a strike, so a user's new votes here count again")
    @app_commands.guild_only()
    @app_commands.describe(user="whose strike to lift")
    async def unstrike(self, interaction: discord.Interaction, user: discord.User) -> None:
        scope_id = await self._moderator_scope(interaction)
        if scope_id is None:
            return
        await after_pickup(self.bot, interaction, scope_id=scope_id)  # as /strike
        # A bot struck before /strike refused bots still has its strike lifted: a moderator asked for it.
        lifted = await self.store.unstrike(scope_id, voter_id(user.id), actor=voter_id(interaction.user.id))
        text = (
            f"Lifted the strike on {user.mention}: their new votes here count again (the voided ones stay void). This is in the audit log."
            if lifted
            else no_votes_of_a_bot(user, self.bot.user, "there is no strike to lift") or f"{user.mention} has no strike here; nothing was changed."
        )
        await answer_privately(interaction, text, discord.AllowedMentions.none())

    @app_commands.command(name="forget-me", description="Get a copy of your data, then delete your votes and your personal agent")
    @app_commands.allowed_contexts(**EVERYWHERE)
    async def forget_me(self, interaction: discord.Interaction) -> None:
        voter = voter_id(interaction.user.id)
        await deferring(interaction)()
        # Right after a restart: the recount of the reactions made meanwhile first, or it would re-add what is deleted.
        await after_pickup(self.bot, interaction, everywhere=True)
        copied = await personal_agent(self.bot.conductor, voter, (await scope_settings(self.bot, voter))["preset"])
        agent = agent_words(copied, "your")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "my-crowdtune-data.json"
            votes = await in_worker_process(write_person_copy, self.store.path, voter, path, copied)
            if not votes and agent is None:
                await interaction.edit_original_response(content=f"Nothing of yours is stored {confirmed.ANYWHERE} (no votes, no personal agent): there is nothing to delete.")
                return
            view = Confirm(interaction, "Delete my data")
            await interaction.edit_original_response(
                content=f"Here is your data {confirmed.EVERYWHERE}: {stored(votes, agent)}. "
                "Delete it all? This cannot be undone. Moderation records (any strike, the audit log) are kept.",
                attachments=[discord.File(path)],
                view=view,
            )
        # The reactions as they are at the press: those added later count (confirmed.forget), also after a crash; and
        # whether this server votes with buttons, for its outcome's words.
        scope_id, kind = scope_of(interaction)
        buttons = kind == "guild" and (await scope_settings(self.bot, scope_id))["vote_style"] == "buttons"
        at_press = lambda: {**confirmed.reactions_at_press(self.bot, interaction.user.id), "buttons": buttons}  # noqa: E731
        if not await view.confirm("Nothing was deleted.", at_press, attachments=[]):
            return
        async with view.carrying_out():
            text = await confirmed.forget(self.bot, view.request, view.key)
            # The copy stays attached: the person keeps it once their data is gone.
            await interaction.edit_original_response(content=text or confirmed.DONE_BEFORE, view=None)

    async def _learned(self, scope_id: str) -> str:
        """What the scope's agent has learned, in the units its preset (the scope's setting) learns in
        (conductor.learned_so_far)."""
        config = agent_preset((await scope_settings(self.bot, scope_id))["preset"])
        return await self.bot.conductor.learned_so_far(scope_id, config)


async def setup(bot) -> None:
    await bot.add_cog(Moderation(bot))
