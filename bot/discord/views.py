"""The bot's buttons and menus: votes and Confirm questions. Their custom ids carry what they are for (the round, the
question), so a press is understood after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import discord

from bot.discord.anti_brigade import rule_text
from bot.discord.edge import context_problem
from bot.discord.in_flight import AnsweredAtStop
from bot.discord.replies import UNKNOWN_INTERACTION, quiet_when_late
from bot.discord.votes import VOTING_STOPPED, voter_id
from core.crowd import ASPECTS, aspects_text, check_rating, compound_rating, rating_text
from storage import ConfirmedRequest, DatabaseGone, VoteResult

log = logging.getLogger("crowdtune.bot")

_WITHDRAW = "x"
_AB_LABELS = {"a": "A", "b": "B", "both": "Both", "neither": "Neither"}


class VoteButton(AnsweredAtStop, discord.ui.DynamicItem[discord.ui.Button], template=r"ct:(?P<round>\d+):(?P<value>10|[1-9]|a|b|both|neither|x)"):
    def __init__(self, round_id: int, value: str, row: int | None = None) -> None:
        label = "Withdraw" if value == _WITHDRAW else _AB_LABELS.get(value, value)
        style = discord.ButtonStyle.secondary if value == _WITHDRAW else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"ct:{round_id}:{value}", row=row))
        self.round_id = round_id
        self.value = value

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> VoteButton:
        return cls(int(match["round"]), match["value"])

    @quiet_when_late
    async def callback(self, interaction: discord.Interaction) -> None:
        runner = interaction.client.runner
        retract = self.value == _WITHDRAW
        if await context_problem(interaction) is not None:
            await interaction.response.send_message(_refusal(VoteResult("blocked")), ephemeral=True)
            return
        value: float | str | None = None if retract else float(self.value) if self.value.isdigit() else self.value
        try:
            result = await runner.button_vote(interaction, self.round_id, value, retract)
        except DatabaseGone:
            await interaction.response.send_message(VOTING_STOPPED, ephemeral=True)
            return
        except Exception:  # the database failed (the vote writer logged it): say so, do not leave the press unanswered
            await interaction.response.send_message(NOT_SAVED, ephemeral=True)
            return
        if result.status == "too_fast":
            text = await too_fast(runner.store, self.round_id, interaction.user.id, retract)
        elif retract:
            text = {"retracted": "Your vote is withdrawn.", "unchanged": NO_VOTE_TO_WITHDRAW}.get(result.status)
        else:
            shown = f"{value:g}" if isinstance(value, float) else _AB_LABELS[value]
            kind = "rating" if isinstance(value, float) else "vote"
            text = f"Your {kind}: {shown}. Change it any time before the round closes." if result.counted else None
        await interaction.response.send_message(text or _refusal(result), ephemeral=True)


class AspectSelect(AnsweredAtStop, discord.ui.DynamicItem[discord.ui.Select], template=r"ct:(?P<round>\d+):(?P<aspect>musicality|novelty|coherence)"):
    """One aspect's rating, 1-10, in a select menu: a voter answers any of the three, each when they like."""

    def __init__(self, round_id: int, aspect: str, row: int | None = None) -> None:
        options = [discord.SelectOption(label=f"{aspect.capitalize()}: {n}", value=str(n)) for n in range(1, 11)]
        select = discord.ui.Select(custom_id=f"ct:{round_id}:{aspect}", placeholder=f"{aspect.capitalize()}, 1-10", options=options, row=row)
        super().__init__(select)
        self.round_id = round_id
        self.aspect = aspect

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select, match) -> AspectSelect:
        return cls(int(match["round"]), match["aspect"])

    @quiet_when_late
    async def callback(self, interaction: discord.Interaction) -> None:
        if await context_problem(interaction) is not None:  # as VoteButton: where the vote may not count
            await interaction.response.send_message(_refusal(VoteResult("blocked")), ephemeral=True)
            return
        try:
            rating = check_rating(float(self.item.values[0]))
            result = await interaction.client.runner.button_vote(interaction, self.round_id, {self.aspect: rating}, False)
        except ValueError:  # a value the menu does not offer: a forged request
            await interaction.response.send_message("Sorry, that is not a rating from 1 to 10.", ephemeral=True)
            return
        except DatabaseGone:
            await interaction.response.send_message(VOTING_STOPPED, ephemeral=True)
            return
        except Exception:  # the database failed (the vote writer logged it)
            await interaction.response.send_message(NOT_SAVED, ephemeral=True)
            return
        if result.status == "too_fast":
            text = await too_fast(interaction.client.runner.store, self.round_id, interaction.user.id, False)
        elif result.counted and result.aspects:
            counts = rating_text(compound_rating(result.aspects))
            text = f"Your {self.aspect}: {rating_text(rating)}. Your vote counts {counts} ({aspects_text(result.aspects)})."
        else:
            text = _refusal(result)
        await interaction.response.send_message(text, ephemeral=True)


NOT_SAVED = "Sorry, your vote could not be saved just now; nothing was changed. Please press again in a moment."
NO_VOTE_TO_WITHDRAW = "You had no vote to withdraw."


async def too_fast(store, round_id: int, user_id: int, retract: bool) -> str:
    """The answer to a press refused over the person's vote rate (their bucket is shared by every round), in the words
    of what it would have done: a first vote, a change of their standing vote, its withdrawal, or nothing."""
    voted = any(ballot.voter == voter_id(user_id) for ballot in await store.ballots(round_id))
    wait = "wait a few seconds, then press"
    if not voted:
        return NO_VOTE_TO_WITHDRAW if retract else f"You are voting very fast, so this vote was not saved; {wait} again."
    if retract:
        return f"You are changing your vote very fast, so your vote is not withdrawn yet; {wait} Withdraw again."
    return f"You are changing your vote very fast, so your vote stays as it was; {wait} again."


def _refusal(result: VoteResult) -> str:
    if result.status == "set_aside":
        return (
            f"Your vote is kept but set aside: in this server {rule_text(True, result.member_days)}. "
            "It counts if that is lowered before the round closes."
        )
    return {
        "closed": "This round has closed; your vote was not counted.",
        "cancelled": "This round was cancelled (its session was stopped, or its message deleted); votes on it do not count.",
        "unknown_round": "This round is no longer open.",
        "blocked": "Your vote cannot be counted here.",
    }.get(result.status, "Your vote was not counted.")


def vote_view(round_id: int, mode: str, aspects: bool = False) -> discord.ui.View:
    """Buttons for a rating or an A/B choice, or (`aspects`) a select menu per aspect; and Withdraw."""
    view = discord.ui.View(timeout=None)
    if aspects:
        for row, aspect in enumerate(ASPECTS):
            view.add_item(AspectSelect(round_id, aspect, row=row))
        view.add_item(VoteButton(round_id, _WITHDRAW, row=len(ASPECTS)))
    elif mode == "ab":
        for value in _AB_LABELS:
            view.add_item(VoteButton(round_id, value, row=0))
        view.add_item(VoteButton(round_id, _WITHDRAW, row=1))
    else:
        for n in range(1, 11):
            view.add_item(VoteButton(round_id, str(n), row=0 if n <= 5 else 1))
        view.add_item(VoteButton(round_id, _WITHDRAW, row=2))
    return view


# How long a Confirm press waits for its record in the database before it is acknowledged anyway, in seconds: well
# inside the 3 s Discord gives an answer, with room for the acknowledgement's own trip.
RECORD_SECONDS = 1.0
QUESTION_SECONDS = 120.0  # how long a Confirm question waits for its answer (CrowdtuneBot.question_seconds)
# How long a clean shutdown waits, in all, for the edits that mark its open questions expired (`expire_at_shutdown`):
# bounded, as Discord may be what is down.
SHUTDOWN_EDIT_SECONDS = 5.0


ALREADY_BEING_DONE = "Your answer is already being carried out, so this press changes nothing; the question shows the outcome when it is done."


def expired(command: str) -> str:
    """The answer to a press on a question the bot no longer waits for: it expired, or the bot restarted since."""
    return f"This question has expired, so nothing was changed. Run /{command} to be asked again."


class Answer(AnsweredAtStop, discord.ui.DynamicItem[discord.ui.Button], template=r"ct-ask:(?P<command>[\w-]{1,32}):(?P<key>\d+):(?P<answer>yes|no)"):
    """A Confirm button. Its custom id names the command and the question (the command's interaction id), so a
    press the bot no longer waits for (the question expired, or was asked before a restart) is still understood:
    answered with `expired` in place of the question, instead of Discord's "This interaction failed"; a press while
    its Confirm is carried out with ALREADY_BEING_DONE."""

    def __init__(self, command: str, key: str, answer: str, label: str) -> None:
        style = discord.ButtonStyle.danger if answer == "yes" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"ct-ask:{command}:{key}:{answer}"))
        self.command, self.key, self.answer = command, key, answer

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> Answer:
        return cls(match["command"], match["key"], match["answer"], item.label or "")

    @quiet_when_late
    async def callback(self, interaction: discord.Interaction) -> None:
        question = interaction.client.questions.get(self.key)
        if question is None and await _recorded(interaction.client, self.key):  # confirmed before a restart, to be carried out
            await interaction.response.send_message(ALREADY_BEING_DONE, ephemeral=True)
        elif question is None or question.answered.cancelled():  # cancelled: its time ran out, the question leaving
            # The question becomes the answer: its buttons go, so nothing left looks as if it still worked.
            await interaction.response.edit_message(content=expired(self.command), view=None, attachments=[])
        elif interaction.user.id != question.owner_id:
            await interaction.response.send_message("This question is for the person who asked; nothing was changed.", ephemeral=True)
        elif question.answered.done():  # answered: the first answer's work is under way, and edits the question when done
            await interaction.response.send_message(ALREADY_BEING_DONE, ephemeral=True)
        else:
            question.answered.set_result((self.answer == "yes", interaction))
            interaction.client.in_flight.hand_over(question.command, interaction)  # its command's task carries it on


async def _recorded(bot, key: str) -> bool:
    """Whether the question `key` was confirmed and its work is recorded as not done yet (a restart carries it out)."""
    return any(request.key == key for request in await bot.conductor.store.confirmed_requests())


class Confirm(discord.ui.View):
    """An ephemeral yes/no to the person who ran `command`, which only they can answer, for the bot's
    `question_seconds` (QUESTION_SECONDS). The bot keeps it in `questions` while it waits, and once confirmed while
    the command carries it out (`carrying_out`): a press that finds it gone (expired, or asked before a restart) is
    answered by Answer and changes nothing. A clean shutdown ends it as expired (`expire_at_shutdown`)."""

    def __init__(self, command: discord.Interaction, confirm_label: str) -> None:
        super().__init__(timeout=None)  # the wait is confirm()'s own: discord.py's would leave a late press unanswered
        self.command = command
        self.owner_id = command.user.id
        self.key = str(command.id)
        self.name = command.command.name
        self.add_item(Answer(self.name, self.key, "yes", confirm_label))
        self.add_item(Answer(self.name, self.key, "no", "Cancel"))
        self.answered: asyncio.Future[tuple[bool, discord.Interaction]] = asyncio.get_running_loop().create_future()
        self.questions: dict[str, Confirm] = command.client.questions
        self.questions[self.key] = self
        self.shut_down = False  # ended by a shutdown rather than by its time running out
        self.request: dict = {}  # once confirmed: what its work needs (confirmed.WORK's data), as recorded
        # Done once confirm() has answered the press or tried the edit that says the question expired (or was cancelled).
        self.settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def confirm(self, cancelled: str, request: Callable[[], dict], **cleared) -> bool:
        """Wait for the answer; whether it was Confirm. Confirm is recorded with `request()` (what the command's work,
        confirmed.WORK, needs, as it stands at the press; kept with the press's other data in `self.request`) in the
        database, so that a crash from then on leaves it to be carried out at the next start, and acknowledged (a deferred update, which shows nothing: the work that follows may outlast the 3 s
        Discord gives an answer) once recorded, or after RECORD_SECONDS if the database is slow
        (`_record_and_acknowledge`); the caller then edits the question's message (the command's original response)
        with the outcome.
        Cancel turns the question into `cancelled`, without its buttons and `cleared` (attachments=[]); so does
        the end of the wait (or a shutdown), saying it expired and how to be asked again. Confirmed, the caller carries
        it out within `carrying_out`."""
        yes = False
        try:
            yes, press = await asyncio.wait_for(self.answered, self.command.client.question_seconds)
        except asyncio.TimeoutError:
            press = None
        finally:
            if not yes:
                self.questions.pop(self.key, None)  # from now on a press is answered by Answer: expired
        try:
            if press is None:
                await self._expire(cancelled, cleared)
            elif yes:
                yes = await self._record_and_acknowledge(press, request, cancelled, cleared)
            else:
                await press.response.edit_message(content=cancelled, view=None, **cleared)
        except BaseException:
            self.questions.pop(self.key, None)  # not to be carried out: no press may be told it is under way
            raise
        finally:
            if not self.settled.done():
                self.settled.set_result(None)
        return bool(yes)

    async def _record_and_acknowledge(self, press: discord.Interaction, request: Callable[[], dict], cancelled: str, cleared: dict) -> bool:
        """Record the Confirm press, then acknowledge it (a deferred update), so that a crash once the member saw it
        taken finds it recorded; whether it is to be carried out. Only a database slower than RECORD_SECONDS gets the
        press acknowledged first (Discord's 3 s; a slow database must not fail it) and recorded right after."""
        recording = asyncio.ensure_future(self._record(request))
        await asyncio.wait({recording}, timeout=RECORD_SECONDS)
        try:
            await press.response.defer()
        except Exception as problem:
            # Not acknowledged, so the member is told it failed: not carried out, not after a restart either.
            with contextlib.suppress(Exception):
                await recording
                await self.command.client.conductor.store.drop_confirmed(self.key)
            if not (isinstance(problem, discord.NotFound) and problem.code == UNKNOWN_INTERACTION):
                raise
            # Replayed after an outage, past its 3 s.
            self.questions.pop(self.key, None)
            log.warning("a Confirm press on /%s came too late for Discord to take its answer: not carried out", self.name)
            await self._expire(cancelled, cleared, why="because your answer reached the bot too late")
            return False
        await recording
        return True

    async def _record(self, request: Callable[[], dict]) -> None:
        command = self.command
        data = {"user": self.owner_id, "application_id": command.application_id, "token": command.token, **request()}
        self.request = data
        guild = None if command.guild_id is None else str(command.guild_id)
        await command.client.conductor.store.record_confirmed(ConfirmedRequest(self.key, self.name, guild, data, time.time()))

    @contextlib.asynccontextmanager
    async def carrying_out(self):
        """Around the work of a confirmed question, ending with its outcome edited in: a press meanwhile is told it is
        under way (ALREADY_BEING_DONE); after it, with the buttons gone, any press is answered as expired. Work that
        fails (the member is told nothing was done) is not carried out after a restart either; one cut short by a
        crash or a shutdown (no Exception) is."""
        try:
            yield
        except Exception:
            with contextlib.suppress(Exception):  # the database failing too: the restart carries it out, and says so
                await self.command.client.conductor.store.drop_confirmed(self.key)
            raise
        finally:
            self.questions.pop(self.key, None)

    async def _expire(self, cancelled: str, cleared: dict, why: str | None = None) -> None:
        why = why or ("as the bot shut down" if self.shut_down else "unanswered")
        text = f"This question expired {why}. {cancelled} Run /{self.name} to be asked again."
        try:  # the command's token lasts 15 minutes, far longer than the wait
            await self.command.edit_original_response(content=text, view=None, **cleared)
        except discord.HTTPException as problem:  # its buttons stay; a press on them is answered by Answer
            log.info("could not mark an unanswered /%s question as expired: %s", self.name, problem)


async def expire_at_shutdown(questions: dict[str, Confirm]) -> None:
    """At a clean shutdown, end each question still waiting for its answer as if its time ran out: its command's
    confirm() edits it to say it expired (after the edit that asked it, in order) and returns False. Waits for those
    edits at most SHUTDOWN_EDIT_SECONDS in all; one that fails or is cut short leaves the buttons, and a press on them
    after the restart is answered by Answer. A confirmed question being carried out is left to finish."""
    waiting = [question for question in questions.values() if not question.answered.done()]
    for question in waiting:
        question.shut_down = True
        questions.pop(question.key, None)  # a press from now on is answered: expired
        question.answered.set_result((False, None))
    if waiting:
        await asyncio.wait([question.settled for question in waiting], timeout=SHUTDOWN_EDIT_SECONDS)


# Every component the bot posts: each a DynamicItem, whose custom id is understood after a restart.
COMPONENTS = (VoteButton, AspectSelect, Answer)
UNKNOWN_COMPONENT = "These buttons no longer work (the bot has been updated since), so nothing was changed. Please run the command again."


async def answer_unknown_press(interaction: discord.Interaction) -> None:
    """Answer a press on a component that none of COMPONENTS is, privately: one posted by an earlier version of the
    bot (its Confirm buttons had random ids), which would otherwise fail with Discord's "This interaction failed"."""
    custom_id = (interaction.data or {}).get("custom_id", "")
    if interaction.type is discord.InteractionType.component and not any(
        item.__discord_ui_compiled_template__.fullmatch(custom_id) for item in COMPONENTS
    ) and await interaction.client.in_flight.admit(interaction):  # in flight as the bot's own presses are
        await interaction.response.send_message(UNKNOWN_COMPONENT, ephemeral=True)
