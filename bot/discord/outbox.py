"""The outbox as it is posted: what was stored to be said in a channel (a round's summary, a session's end, a notice),
each posted once, oldest first, after what it says was stored, so a crash or an outage in between loses nothing; what
Discord failed to take is posted again by itself (`Outbox`). A notice asking people to vote in a round is given up once
that round takes no votes (`is_stale`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator

import discord

from bot.discord.nonces import Nonces, send_once
from bot.discord.outage import OUTAGE_ERRORS, is_outage, reason
from bot.discord.publisher import ENDED_POSTS, edit_post
from storage import Announcement

log = logging.getLogger("crowdtune.rounds")

MESSAGE_LIMIT = 2000  # Discord's most characters in a message's content
# The pause (seconds) before the outbox is posted again after Discord failed to take it (unreachable, or a 5xx); each
# further pause doubles, up to OUTBOX_RETRY_MAX_SECONDS: a notice is late by at most about that once Discord is back,
# and a long outage costs a request a minute.
OUTBOX_RETRY_SECONDS = 2.0
OUTBOX_RETRY_MAX_SECONDS = 60.0


async def summary_into_post(channel, edited: tuple[int, str] | None, summary: str) -> None:
    """A round's summary that Discord refused to post (Send Messages taken away: an edit of our own message needs
    none) goes into its post in place of the promise that it follows, when `edited` (message id, words) is that post
    as just edited; else, and past Discord's 2,000 characters, the post is left as it is."""
    promise = ENDED_POSTS["closed"]
    if edited is None or not edited[1].endswith(promise):
        return
    content = f"{edited[1].removesuffix(promise)}Voting has closed: {summary}"
    if len(content) <= MESSAGE_LIMIT:
        with contextlib.suppress(discord.HTTPException):
            await edit_post(channel, edited[0], content)


async def post_outbox(bot: discord.Client, store, nonces: Nonces, channel_id: str | None) -> int:
    """Post what the outbox holds (for one channel, or all), oldest first, each once: marked sent after
    it is posted, and posted with a nonce Discord deduplicates (the database's own, `nonces`), so a crash in between
    does not post it twice within Discord's nonce window (minutes); an entry with a message id is that round post's edit
    as its round ended (`edit_post`), which a crash may only repeat. For one session's channel a refusal is raised
    (the session stops, saying why) and that entry given up; across all channels at start, a channel Discord refuses us
    (gone, or closed to us) is given up on. A refused summary goes into its round's post (`summary_into_post`).
    Returns how many entries it posted (a stale notice given up, `is_stale`, is not: Discord was not asked)."""
    edited: dict[str, tuple[int, str]] = {}  # channel id -> the round post last edited here, and its words
    taken = 0
    for note in await store.pending_announcements(channel_id):
        if await is_stale(store, note):
            log.info("announcement %s for channel %s dropped: its round %s takes no votes now", note.id, note.channel_id, note.round_id)
            await store.mark_announced(note.id)  # not counted: Discord was not asked (the runner's "works again")
            continue
        channel = bot.get_partial_messageable(int(note.channel_id))
        try:
            if note.message_id is not None:  # a round's post edited as the round ended: an edit is repeatable
                await edit_post(channel, int(note.message_id), note.content)
                edited[note.channel_id] = (int(note.message_id), note.content)
            else:
                nonce = await nonces.nonce("n", note.id, note.created_at)
                await send_once(channel, nonce, lambda n: channel.send(note.content, nonce=n), lambda m: is_note(m, bot, note.content))
        except (discord.Forbidden, discord.NotFound) as problem:
            await summary_into_post(channel, edited.pop(note.channel_id, None), note.content)
            if channel_id is not None:  # given up too: its session stops, and it must not follow in a later one
                await store.mark_announced(note.id)
                raise
            log.warning("announcement %s for channel %s dropped: %s", note.id, note.channel_id, problem)
        await store.mark_announced(note.id)
        taken += 1
    return taken


async def post_owned(bot: discord.Client, store, announce: Callable[[str | None], Awaitable[int]]) -> None:
    """Post what the outbox holds for this process's shards' channels (bot.shard_plan; all unsharded) by `announce`
    (Outbox.announce: one run at a time). A channel Discord refuses is left for its session; raises discord.HTTPException
    or OUTAGE_ERRORS otherwise (what is left stays in the outbox)."""
    plan = getattr(bot, "shard_plan", None)
    if plan is None or not plan.sharded:
        await announce(None)
    else:  # only its own servers' channels: another shard process posts the rest
        owned = {s.channel_id for s in await store.all_sessions() if s.channel_id and plan.owns_scope(s.scope_id)}
        for channel_id in sorted(owned):
            with contextlib.suppress(discord.Forbidden, discord.NotFound):
                await announce(channel_id)


async def is_stale(store, note: Announcement) -> bool:
    """Whether `note` asks people to vote in a round that takes no votes now (closed, cancelled, deleted, or its votes
    taken for its close): queued while it was open, it waited (Discord out or failing, a restart) past the close. Read
    as its turn comes, not with the list: a round may close while the entries before it are posted."""
    if note.round_id is None:  # a summary, a cancellation, a post's edit: it says how a round ended, so it is posted
        return False
    row = await store.round(note.round_id)
    return row is None or not row.takes_votes


def is_note(message: discord.Message, bot: discord.Client, content: str) -> bool:
    """Whether `message` is the bot's post of an outbox entry saying `content` (not another it made with its nonce)."""
    return message.author.id == bot.user.id and message.content.strip() == content.strip()  # Discord strips what it posts


def retry_pauses() -> Iterator[float]:
    """The pauses (seconds) between the outbox's tries while Discord fails to take it: doubling to a bound."""
    pause = OUTBOX_RETRY_SECONDS
    while True:
        yield pause
        pause = min(pause * 2, OUTBOX_RETRY_MAX_SECONDS)


class Outbox:
    """The outbox as this process posts it: one run at a time, and, once Discord failed to take it (an outage, a 5xx),
    again by itself after each of `retry_pauses` until it goes through. Found by a trial: with Discord's REST failing
    and its gateway still connected, no session resumed, and a queued notice waited for the round's close."""

    def __init__(self, bot: discord.Client, store, spawn: Callable[[Coroutine], None]) -> None:
        self.bot, self.store, self._spawn = bot, store, spawn  # `spawn`: RoundRunner's, its tasks ended at the shutdown
        self.nonces = Nonces(store)
        self._posting = asyncio.Lock()
        self._retrying = False  # one retry at a time, whoever else fails meanwhile

    async def announce(self, channel_id: str | None = None) -> int:
        """Post what the outbox holds (`post_outbox`: one channel's, or all); how many entries. Raises what it raises;
        an outage's failure also starts the retry."""
        async with self._posting:
            try:
                return await post_outbox(self.bot, self.store, self.nonces, channel_id)
            except Exception as problem:
                if is_outage(problem) and not self._retrying:
                    self._retrying = True
                    self._spawn(self._retry())
                raise

    async def post_queued(self) -> None:
        """Post what the outbox holds for this process's channels (`post_owned`): at start, and as Discord is back (a
        resumed gateway session). What Discord refuses stays for each session; an outage's is retried."""
        try:
            await post_owned(self.bot, self.store, self.announce)
        except (discord.HTTPException, *OUTAGE_ERRORS) as problem:
            log.warning("could not post the outbox: %s", reason(problem))

    async def _retry(self) -> None:
        try:
            for pause in retry_pauses():
                await asyncio.sleep(pause)
                if self.bot.is_closed():  # started as the bot stopped, after its runner's tasks were ended: the next start posts it
                    return
                try:
                    await post_owned(self.bot, self.store, self.announce)
                except (discord.HTTPException, *OUTAGE_ERRORS) as problem:
                    if is_outage(problem):
                        continue
                    log.warning("could not post the outbox: %s", reason(problem))  # each session's runner posts its own
                return
        finally:
            self._retrying = False
