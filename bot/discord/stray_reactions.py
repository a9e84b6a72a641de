"""Reactions that look like votes on a round that takes its votes from buttons or menus: no vote, and said so.

A reaction cannot be answered privately, and removing someone else's needs Manage Messages, which the bot does
not ask for; so the channel is told once a round, also across restarts (a reaction that is no vote would otherwise sit there as if it
counted). Reactions on a round that votes by reaction are the ballot box's; other emoji are just reactions."""

from __future__ import annotations

import logging
from collections import OrderedDict

import discord

from bot.discord.ballot_box import BallotBox
from bot.discord.outage import OUTAGE_ERRORS, reason
from bot.discord.votes import ASPECTS_STYLE, vote_from_emoji

log = logging.getLogger("crowdtune.votes")

TOLD_KEPT = 1024  # rounds remembered as told (the newest): an open round is among them


class StrayReactions:
    def __init__(self, bot: discord.Client, box: BallotBox) -> None:
        self.bot = bot
        self.box = box
        self._told: OrderedDict[int, None] = OrderedDict()  # round ids whose channel was told: the store not asked again

    async def added(self, payload: discord.RawReactionActionEvent) -> None:
        """MESSAGE_REACTION_ADD: a vote-looking emoji by a person on the post of an open round that votes with
        buttons or menus gets the channel told, the first time in that round (`Store.tell_reactions_are_no_votes`)."""
        emoji = str(payload.emoji)
        if vote_from_emoji("rating", emoji) is None and vote_from_emoji("ab", emoji) is None:
            return
        if self.box.is_bot(payload.user_id, payload.member):
            return
        ref = self.box.cached_ref(payload.message_id) or await self.box.ref_for(payload.message_id)
        if ref is None and self.box.recorded_in is not None:  # a post just out, its round not recorded yet (as votes wait)
            await self.box.recorded_in(payload.channel_id, payload.message_id)
            ref = await self.box.ref_for(payload.message_id)
        if ref is None or ref.style == "reactions" or ref.round_id in self._told:
            return
        # Marked before any await: reactions arriving together are told once.
        self._told[ref.round_id] = None
        while len(self._told) > TOLD_KEPT:
            self._told.popitem(last=False)
        row = await self.box.store.round(ref.round_id)
        if row is None:
            return
        controls = "menus" if ref.style == ASPECTS_STYLE else "buttons"
        notice = f"Reactions are not votes in round {row.index + 1}: vote with the {controls} on its post."
        # Stored with its notice queued in the outbox, so a restart (or another process) does not say it again and an
        # outage does not lose it: what this post does not deliver, the outbox posts while the round takes votes, and
        # gives up after (it would ask people to vote in a closed round: bot/discord/outbox.py's is_stale).
        if not await self.box.store.tell_reactions_are_no_votes(ref.round_id, notice):
            return
        try:
            await self.bot.runner.announce(row.channel_id)
        except OUTAGE_ERRORS as problem:  # still queued
            log.info("the notice that reactions are not votes in round %d waits for Discord: %s", row.index + 1, reason(problem))
        except discord.HTTPException as problem:  # a permission taken away: the runner stops the session and says why
            log.warning("could not say that reactions are not votes in round %d: %s", row.index + 1, problem)
