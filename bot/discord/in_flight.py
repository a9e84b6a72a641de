"""The interactions in flight as the bot stops, slash commands and presses on its buttons and menus alike: each gets
its answer before Discord's HTTP session closes. A trial's SIGTERM during /stats or /export left the members' deferred
answers "thinking..." for good, the command failing after the close with tracebacks ("Session is closed", "cannot
schedule new futures after shutdown"); a later one found a press (a vote, a Confirm) cut off the same way."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord

from bot.discord.outage import OUTAGE_ERRORS
from bot.discord.replies import nothing_done
from bot.progress import plural

log = logging.getLogger("crowdtune.bot")

# How long (seconds) the commands running at a stop may take to finish before they are cut short: enough for most
# (an /export's zip, a /stats chart), well within the 10 s a container's stop (docker stop) waits before killing.
SHUTDOWN_GRACE = 5.0


# Commands that only read: cut short, they changed nothing. Another may have committed its change before the cut.
READING_COMMANDS = frozenset({"export", "stats", "status", "top"})


def restarting(interaction: discord.Interaction, started: bool = True) -> str:
    """The one line a command cut short by a stop (`started`), or refused as the stop began, is answered: a command cut
    short is sure to have changed nothing only if it only reads."""
    name = interaction.command.name if interaction.command else (interaction.data or {}).get("name")
    if not started or name in READING_COMMANDS:
        return f"Sorry, I am restarting and could not finish this. {nothing_done(interaction)}; please try again in a minute."
    return "Sorry, I am restarting and could not finish answering this; in a minute, /status shows whether it took effect."


async def reply_instead(interaction: discord.Interaction, text: str) -> None:
    """`text` as the command's answer in place of the one it would have given, however far it got: the "thinking..."
    message filled in (a follow-up would leave it thinking), a private follow-up after an answer, or the answer.
    Raises discord.HTTPException, or OUTAGE_ERRORS when Discord cannot be reached."""
    if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(content=text, attachments=[], view=None)
    elif interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


class CommandsInFlight:
    """The interactions being handled now, each in its own task (discord.py's CommandTree-invoker for a command, its
    dynamic item dispatch for a press), and whether the bot stops."""

    def __init__(self) -> None:
        self._running: dict[asyncio.Task, discord.Interaction] = {}  # each task and the interaction it is to answer
        self.stopping = False  # set as the stop begins: an interaction that comes in then is answered at once

    async def admit(self, interaction: discord.Interaction) -> bool:
        """Whether the running task may handle `interaction` (called in that task, before it acts): as the bot stops it
        is answered at once that nothing was changed (False); else it is added, to finish or be answered at the stop.
        Raises what the answer raises (discord.HTTPException, OUTAGE_ERRORS)."""
        if self.stopping:
            await reply_instead(interaction, restarting(interaction, started=False))
            return False
        task = asyncio.current_task()
        self._running[task] = interaction
        task.add_done_callback(self._running.pop)
        return True

    def hand_over(self, command: discord.Interaction, press: discord.Interaction) -> None:
        """`press` (a Confirm button's) is carried on by the task running `command`, its own task ending at once: if a
        stop cuts that task short, the press is what is answered (it may not be acknowledged yet; the command was)."""
        for task, interaction in self._running.items():
            if interaction is command:
                self._running[task] = press

    async def finish(self) -> int:
        """Let the running commands and presses finish for up to SHUTDOWN_GRACE seconds; cancel the rest and answer
        each that the bot is restarting (one line in the log for them all). Returns how many were cut short."""
        self.stopping = True
        running = [task for task in self._running if task is not asyncio.current_task()]
        if running:
            await asyncio.wait(running, timeout=SHUTDOWN_GRACE)
        cut = {task: self._running[task] for task in running if not task.done()}
        for task in cut:
            task.cancel()
        await asyncio.gather(*cut, return_exceptions=True)
        for interaction in cut.values():
            with contextlib.suppress(discord.HTTPException, *OUTAGE_ERRORS):  # nothing more can be done for it
                await reply_instead(interaction, restarting(interaction))
        if cut:
            presses = sum(interaction.type is discord.InteractionType.component for interaction in cut.values())
            counts = [plural(n, *words) for n, words in ((len(cut) - presses, ("command",)), (presses, ("press", "presses"))) if n]
            log.info("%s cut short by the stop, after %g s; each was answered that the bot is restarting", " and ".join(counts), SHUTDOWN_GRACE)
        return len(cut)


class AnsweredAtStop:
    """For the bot's components (discord.ui.DynamicItem): a press is in flight like a command (`CommandsInFlight`), so a
    stop lets it finish or answers it; one that comes in as the bot stops is answered at once."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await interaction.client.in_flight.admit(interaction)
