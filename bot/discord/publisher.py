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
from bot.discord.nonces import UNKNOWN_MESSAGE, Nonces, send_once
from bot.discord.outage import Outage
from bot.discord.own_reactions import OwnReactions
from bot.discord.votes import ASPECTS_STYLE, round_number
from bot.media.drawing import Drawer
from core.engine import SessionSpec, edits_text
from core.instruments import instrument_name
from core.midi import track_to_midi
from storage import RoundRow, SessionRow

log = logging.getLogger("crowdtune.publisher")

CLOCK_SKEW = 5.0  # seconds Discord's clock (in message ids) may run behind ours
ADOPT_WINDOW = 300.0  # a first round's lost post is looked for this far (seconds) before it was planned


class Publisher:
    def __init__(self, bot: discord.Client, store, renderer, drawer: Drawer, spawn: Callable[[Coroutine], None], outage: Outage) -> None:
        self.bot = bot
        self.store = store
        self.renderer = renderer
        self.drawer = drawer
        self.own_reactions = OwnReactions(bot, spawn, outage)  # adds the vote reactions, in the background
        self._started_at = time.time()
        self._post_tried: set[int] = set()  # rounds whose post may have reached Discord without being recorded
        self._posted: set[int] = set()  # rounds whose post reached Discord (its message known), until it is recorded
        # channel id -> (when its post began, set once that round is recorded with its message)
        self.nonces = Nonces(store)
        self._recording: dict[int, tuple[float, asyncio.Event]] = {}
        self._posting: dict[int, asyncio.Event] = {}  # round id -> its `recorded` event while publish runs
        # session id -> (round id, its attachments: file name, bytes) until that round's post is recorded: a post that
        # Discord refused is retried every few seconds while it lasts, and FluidSynth and the drawing need not run again.
        self._media: dict[int, tuple[int, list[tuple[str, bytes]]]] = {}
        # Told a new post's message id as soon as Discord answers (ReactionsSeen.posted), before its round is recorded:
        # a removal queued meanwhile then counts the reactions the events said were left (set by the runner).
        self.on_posted: Callable[[int], None] = lambda message_id: None

    async def recorded_in(self, channel_id: int, message_id: int) -> None:
        """Wait until the round being posted in this channel, if any, is recorded with its message, when
        `message_id` may be that post (made since the post began): a vote on a message just posted
        must find which round it is, and the post reaches people before the database has it."""
        recording = self._recording.get(channel_id)
        if recording is not None and discord.utils.snowflake_time(message_id).timestamp() >= recording[0] - CLOCK_SKEW:
            await recording[1].wait()

    async def publish(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> tuple[RoundRow | None, bool]:
        """Post the round, or adopt its post made before a crash, and record the message. Returns
        the round as it is now and whether its post was adopted: a round no longer open (None: deleted) when its
        session ended meanwhile, then not posted, or its post marked cancelled."""
        row, seconds = open_round.row, open_round.spec.round_seconds
        message = await self._find_lost_post(channel, session, open_round, style)
        adopted = message is not None
        recorded = asyncio.Event()
        self._recording[channel.id] = (time.time(), recorded)
        self._posting[row.id] = recorded
        try:
            if adopted:
                closes_at = message.created_at.timestamp() + seconds
            else:
                self._post_tried.add(row.id)
                message = await self._post(channel, session, open_round, style)
                if message is None:  # the session ended while the round was rendered: nothing is posted
                    self._post_tried.discard(row.id)
                    self.forget(session.id)
                    return await self.store.round(row.id), False
                self.on_posted(message.id)
                closes_at = time.time() + seconds
            self._posted.add(row.id)
            ended = {status: ended_post(open_round.spec, open_round.plan, session.rounds_done, status) for status in ENDED_POSTS}
            await self.store.set_round_messages(row.id, [str(message.id)], closes_at, ended)
            self.forget(session.id)
        finally:
            self._posted.discard(row.id)
            self._posting.pop(row.id, None)
            recorded.set()
            if self._recording.get(channel.id, (0, None))[1] is recorded:
                del self._recording[channel.id]
        self._post_tried.discard(row.id)
        recorded_row = await self.store.round(row.id)
        if recorded_row is None or recorded_row.status != "open":
            # The session ended (a /stop) while the post was on its way: the store queued its edit into a cancelled
            # round's (set_round_messages), which the runner's announce makes.
            return recorded_row, adopted
        if style == "reactions" and not adopted:
            # Only now: a vote on the bot's reactions must find its message recorded as this round's
            # (an adopted post gets its missing reactions from the reconciler).
            async def mode() -> str | None:  # asked again at each try (an outage's retries): none once the round ended
                current = await self.store.round(row.id)
                return open_round.spec.mode if current is not None and current.status == "open" else None

            self.own_reactions.put(message.channel.id, message.id, mode, message)
        return recorded_row, adopted

    def posting(self, round_id: int) -> asyncio.Event | None:
        """While the round's post is being made (rendered, sent, recorded): the event set once that is over; else None."""
        return self._posting.get(round_id)

    def posted(self, round_id: int) -> bool:
        """Whether the round's post reached Discord (members see it) and is being recorded (not yet in its row)."""
        return round_id in self._posted

    def forget(self, session_id: int) -> None:
        """Drop what was rendered for the session's round (its post is recorded, or the session ended)."""
        self._media.pop(session_id, None)

    async def _media_of(self, session_id: int, open_round: OpenRound) -> list[tuple[str, bytes]]:
        """The round's audio and piano rolls (file name, bytes), rendered and drawn once for all the tries of its post
        (`_media`)."""
        kept = self._media.get(session_id)
        if kept is None or kept[0] != open_round.id:
            kept = self._media[session_id] = (open_round.id, await self._render(open_round))
        return kept[1]

    async def _render(self, open_round: OpenRound) -> list[tuple[str, bytes]]:
        """Each edit's audio and piano roll, and the track before for an A/B vote: (file name, bytes) each."""
        plan = open_round.plan
        number = plan.index + 1
        media: list[tuple[str, bytes]] = []
        labels = ["a", "b"] if len(plan.proposals) > 1 else [""]
        # An A/B vote compares both edits with the track before ("neither": it is best), so it is posted too.
        before = (
            asyncio.ensure_future(self.renderer.render_async(track_to_midi(plan.incumbent), "ogg")) if len(plan.proposals) > 1 else None
        )
        try:
            for label, proposal in zip(labels, plan.proposals):
                stem = f"round-{number}{'-' + label if label else ''}"
                audio, roll = await asyncio.gather(
                    self.renderer.render_async(track_to_midi(proposal.track), "ogg"),
                    self.drawer.piano_roll(proposal.track, f"round {number} {label.upper()}".strip(), plan.incumbent, proposal.action),
                )
                media += [(f"{stem}.ogg", audio), (f"{stem}.png", roll)]
            if before is not None:
                media.append((f"round-{number}-before.ogg", await before))
        finally:
            if before is not None and not before.done():
                before.cancel()  # an edit's rendering failed: the round is retried, this one is not needed
        return media

    async def _post(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> discord.Message | None:
        """The round's post; None when its round was cancelled before it could be sent (the session ended)."""
        from bot.discord.views import vote_view

        plan, spec = open_round.plan, open_round.spec
        media = await self._media_of(session.id, open_round)
        current = await self.store.round(open_round.id)
        if current is None or current.status != "open":  # stopped (or deleted) while it was rendered
            return None
        heading = round_heading(spec, plan, style, session.rounds_done)
        content = f"{heading} Voting {deadline(spec, time.time() + spec.round_seconds)}."

        async def send(nonce: str) -> discord.Message:
            # Its files (and buttons) anew for each request: discord.py closes a message's files once it is sent.
            files = [discord.File(io.BytesIO(data), name) for name, data in media]
            if style in ("buttons", ASPECTS_STYLE):
                view = vote_view(open_round.id, spec.mode, aspects=style == ASPECTS_STYLE)
                return await channel.send(content, files=files, view=view, nonce=nonce)
            return await channel.send(content, files=files, nonce=nonce)

        def meant(message: discord.Message) -> bool:  # this round's post, its very files: not another's with its nonce
            sent = [(a.filename, a.size) for a in message.attachments]
            return is_post(message, self.bot.user.id, heading) and sent == [(name, len(data)) for name, data in media]

        # Discord returns the message already made with this nonce rather than a second one (for a few
        # minutes), so a retried request after a lost response does not post the round twice.
        return await send_once(channel, await self.nonces.nonce("", open_round.id, open_round.row.opened_at), send, meant)

    async def _find_lost_post(self, channel, session: SessionRow, open_round: OpenRound, style: str) -> discord.Message | None:
        """The round's post when an earlier attempt (before a crash, or a request whose answer was lost)
        may have made it: a message of ours after the previous round's, starting with this round's heading."""
        row = open_round.row
        if row.id not in self._post_tried and row.opened_at >= self._started_at:
            return None
        previous = await self.store.last_message_before(session.id, row.index)  # not the whole history: one row
        if previous is not None:
            after = discord.Object(int(previous))
        else:
            since = dt.datetime.fromtimestamp(row.opened_at - ADOPT_WINDOW, dt.timezone.utc)
            after = discord.Object(discord.utils.time_snowflake(since))
        heading = round_heading(open_round.spec, open_round.plan, style, session.rounds_done)
        async for message in channel.history(limit=100, after=after):
            if is_post(message, self.bot.user.id, heading):
                log.info("round %s: adopting message %s posted before a restart", row.id, message.id)
                return message
        return None


def is_post(message: discord.Message, author_id: int, heading: str) -> bool:
    """Whether `message` is a round's post as made: by `author_id` (the bot), with its media, opening with `heading`."""
    return message.author.id == author_id and bool(message.attachments) and message.content.startswith(heading)


def round_heading(spec: SessionSpec, plan, style: str, rounds_done: int) -> str:
    """The start of a round's post: the same every time for a round, so a lost post can be recognised.
    `rounds_done`: the session's closed rounds (`SessionRow.rounds_done`), all before this one; the rounds
    before it that did not close were cancelled, and each was replaced (`rounds_in_all`)."""
    if spec.mode == "ab":
        # A vote is the favourite of the three tracks (core.crowd.ab_rewards): say so, or a vote for the
        # better of two worse edits would count as beating the track before.
        how = (
            "Vote for the one you like best, the track before (attached) included: 🅰️, 🅱️, 👍 (both beat the track before) "
            "or 👎 (neither: the track before is best)"
            if style == "reactions"
            else "Vote for the one you like best, the track before (attached) included: A, B, both (both beat the track before) "
            "or neither (the track before is best)"
        )
    else:
        how = {
            "reactions": "Rate the whole track 1-10 with a reaction",
            ASPECTS_STYLE: "Rate its musicality, novelty and coherence 1-10 (any of them) with the menus",
        }.get(style, "Rate the whole track 1-10 with a button")
    return f"{round_title(spec, plan, rounds_done)} {how}; your latest vote counts and you can withdraw it."


# What a round's post becomes when the round ends, by its status: it no longer reads as a round to vote on.
ENDED_POSTS = {"closed": "Voting has closed; its summary follows.", "cancelled": "The session was stopped, so votes on it do not count."}


def ended_post(spec: SessionSpec, plan, rounds_done: int, status: str) -> str:
    """A round's post once the round ended with `status` ("closed", "cancelled": `ENDED_POSTS`): its edits without
    how to vote or its deadline, and its buttons removed with the edit (`edit_post`)."""
    return f"{round_title(spec, plan, rounds_done, status)} {ENDED_POSTS[status]}"


def round_title(spec: SessionSpec, plan, rounds_done: int, status: str = "") -> str:
    """"**Round 2 of 5**: <its edits> (melody on <instrument>)." (`round_number`: "**Round 3 of 6 (1 cancelled)**" after a
    cancellation; "**Round 2 of 5** (closed): ..." once it ended with that
    `status`: unlike the summary's "**Round 2 closed**" or a deleted round's "**Round 2 cancelled**", also in an
    endless session, so that a reader or a tool never takes one for the other), as `round_heading` explains
    `rounds_done`."""
    edits = edits_text([p.description for p in plan.proposals])
    edits = edits[0].upper() + edits[1:]
    ended = f" ({status})" if status else ""
    # "**Round N of M**" opens every round post (tools read it); the melody's instrument follows the edits,
    # named as the melody's so that after a drum edit it does not read as the drum's.
    number = round_number(plan.index + 1, spec.rounds, plan.index, rounds_done)
    return f"**{number}**{ended}: {edits} (melody on {instrument_name(spec.instrument)})."


async def edit_post(channel, message_id: int, content: str) -> None:
    """Edit a message of ours in `channel` to `content` with its components (vote buttons, menus) removed; one request.
    A message deleted meanwhile (404 Unknown Message) is passed over; other refusals raise `discord.HTTPException`."""
    try:
        await channel.get_partial_message(message_id).edit(content=content, view=None)
    except discord.NotFound as problem:
        if problem.code != UNKNOWN_MESSAGE:
            raise
        log.info("message %s was deleted before it could be edited", message_id)


def deadline(spec: SessionSpec, closes_at: float) -> str:
    """When a round closes, as its post says it: "closes <t:…:R> or when 3 people have voted" (its quorum)."""
    from bot.progress import plural_agreeing

    quorum = f" or when {plural_agreeing(spec.quorum, 'person', ('has', 'have'), 'people')} voted" if spec.quorum else ""
    return f"closes <t:{int(closes_at)}:R>{quorum}"
