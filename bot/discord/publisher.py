"""The publisher: where a round is posted. It renders the round's audio and piano roll, posts them with
the round's text (and its vote buttons, or then adds the vote reactions), and after a crash between
posting and recording the post it finds that post and adopts it instead of posting twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Coroutine

import discord

from bot.conductor import OpenRound
from bot.discord.votes import ASPECTS_STYLE, emoji_for_mode
from bot.media.drawing import Drawer
from core.engine import SessionSpec
from core.instruments import instrument_name
from core.midi import track_to_midi
from storage import RoundRow, SessionRow

log = logging.getLogger("crowdtune.publisher")

ADOPT_WINDOW = 300.0  # a first round's lost post is looked for this far (seconds) before it was planned


class Publisher:
    def __init__(self, bot: discord.Client, store, renderer, drawer: Drawer, spawn: Callable[[Coroutine], None]) -> None:
        self.bot = bot
        self.store = store
        self.renderer = renderer
        self.drawer = drawer
        self.spawn = spawn  # runs a coroutine in the background (adding reactions)
        self._started_at = time.time()
        self._post_tried: set[int] = set()  # rounds whose post may have reached Discord without being recorded

    async def publish(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> tuple[RoundRow, bool]:
        """Post the round, or adopt its post made before a crash, and record the message. Returns
        the round and whether its post was adopted."""
        row, seconds = open_round.row, open_round.spec.round_seconds
        message = await self._find_lost_post(channel, session, open_round, style)
        adopted = message is not None
        if adopted:
            closes_at = message.created_at.timestamp() + seconds
        else:
            self._post_tried.add(row.id)
            message = await self._post(channel, open_round, style)
            closes_at = time.time() + seconds
        await self.store.set_round_messages(row.id, [str(message.id)], closes_at)
        self._post_tried.discard(row.id)
        return await self.store.round(row.id), adopted

    async def _post(self, channel, open_round: OpenRound, style: str) -> discord.Message:
        from bot.discord.views import vote_view

        plan, spec = open_round.plan, open_round.spec
        number = plan.index + 1
        files: list[discord.File] = []
        labels = ["a", "b"] if len(plan.proposals) > 1 else [""]
        for label, proposal in zip(labels, plan.proposals):
            stem = f"round-{number}{'-' + label if label else ''}"
            audio, roll = await asyncio.gather(
                self.renderer.render_async(track_to_midi(proposal.track), "ogg"),
                self.drawer.piano_roll(proposal.track, f"round {number} {label.upper()}".strip(), plan.incumbent, proposal.action),
            )
            files += [discord.File(io.BytesIO(audio), f"{stem}.ogg"), discord.File(io.BytesIO(roll), f"{stem}.png")]
        content = f"{round_heading(spec, plan, number, style)} Voting {deadline(spec, time.time() + spec.round_seconds)}."
        view = vote_view(open_round.id, spec.mode, aspects=style == ASPECTS_STYLE) if style in ("buttons", ASPECTS_STYLE) else None
        # Discord returns the message already made with this nonce rather than a second one (for a few
        # minutes), so a retried request after a lost response does not post the round twice.
        nonce = f"ct-round-{open_round.id}"
        if view:
            message = await channel.send(content, files=files, view=view, nonce=nonce)
        else:
            message = await channel.send(content, files=files, nonce=nonce)
        if style == "reactions":
            self.spawn(self.add_reactions(message, spec.mode))
        return message

    async def _find_lost_post(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> discord.Message | None:
        """The round's post when an earlier attempt (before a crash, or a request whose answer was lost)
        may have made it: a message of ours after the previous round's, starting with this round's heading."""
        row = open_round.row
        if row.id not in self._post_tried and row.opened_at >= self._started_at:
            return None
        earlier = [r for r in await self.store.rounds_of(session.id) if r.index < row.index and r.message_ids]
        if earlier:
            after = discord.Object(int(earlier[-1].message_ids[-1]))
        else:
            since = dt.datetime.fromtimestamp(row.opened_at - ADOPT_WINDOW, dt.timezone.utc)
            after = discord.Object(discord.utils.time_snowflake(since))
        heading = round_heading(open_round.spec, open_round.plan, open_round.plan.index + 1, style)
        async for message in channel.history(limit=100, after=after):
            if message.author.id == self.bot.user.id and message.attachments and message.content.startswith(heading):
                log.info("round %s: adopting message %s posted before a restart", row.id, message.id)
                return message
        return None

    async def add_reactions(self, message: discord.Message, mode: str, only: tuple[str, ...] | None = None) -> None:
        try:
            for emoji in only if only is not None else emoji_for_mode(mode):
                await message.add_reaction(emoji)
        except discord.HTTPException as problem:
            log.warning("could not add vote reactions to %s: %s", message.id, problem)


def round_heading(spec: SessionSpec, plan, number: int, style: str) -> str:
    """The start of a round's post: the same every time for a round, so a lost post can be recognised."""
    total = f" of {spec.rounds}" if spec.rounds else ""
    if spec.mode == "ab":
        edits = f"A {plan.proposals[0].description}; B {plan.proposals[1].description}"
        how = "Vote 🅰️, 🅱️, 👍 (both) or 👎 (neither)" if style == "reactions" else "Vote A, B, both or neither"
    else:
        edits = plan.proposals[0].description[0].upper() + plan.proposals[0].description[1:]
        how = {
            "reactions": "Rate it 1-10 with a reaction",
            ASPECTS_STYLE: "Rate its musicality, novelty and coherence 1-10 (any of them) with the menus",
        }.get(style, "Rate it 1-10 with a button")
    # "**Round N of M**:" opens every round post (tools read it); the instrument follows the edits.
    return f"**Round {number}{total}**: {edits} (on {instrument_name(spec.instrument)}). {how}; your latest vote counts and you can withdraw it."


def deadline(spec: SessionSpec, closes_at: float) -> str:
    return f"closes <t:{int(closes_at)}:R>" + (f" or when {spec.quorum} have voted" if spec.quorum else "")
