"""What a member confirmed is carried out, also when a crash cuts it short. A Confirm press on /forget-me or /reset
is recorded in the database before Discord is told it was received (views.Confirm.confirm), and the transaction that
carries it out deletes that record (Store.forget_user, Store.reset_scope with `request`): exactly once. One still
recorded at a start was cut short: it is carried out then (`carry_out_confirmed`), after the bot took back its open
rounds and recounted their reactions, and the question is edited to say it was done, as without the crash. A /forget-me
records the person's reactions at the press, so that those they add later, also while the bot is down, count as votes
made after it (`added_since`)."""

from __future__ import annotations

import asyncio
import logging
import time

import discord

from bot.discord.pickup import after_pickup
from bot.discord.reactions_seen import Reaction
from bot.discord.votes import recounted_vote, vote_from_emoji, voter_id
from bot.progress import stored

log = logging.getLogger("crowdtune.bot")

# How long Discord lets the bot edit a question after its command came (the interaction token's life), in seconds.
TOKEN_SECONDS = 15 * 60
DONE_BEFORE = "Your answer was already carried out."
# Where /forget-me deletes, said wherever it is asked: all of a person's data, so a DM's deletes their server votes too.
EVERYWHERE, ANYWHERE = "on every server and in DMs", "on any server or in DMs"


def reactions_at_press(bot, user_id: int) -> dict:
    """/forget-me's request (`forget`'s data) at the Confirm press: the person's vote reactions on each round whose
    reactions the bot knows all of (ReactionsSeen.of_person), as [emoji, super] per message id."""
    seen = bot.runner.ballot_box.seen.of_person(user_id)
    return {"reactions": {str(message_id): sorted(map(list, on)) for message_id, on in seen.items()}}


def added_since(data: dict, now: dict[int, set[Reaction]]) -> dict[int, set[Reaction]]:
    """The person's reactions `now` (ReactionsSeen.of_person) that were not on when they confirmed (`data["reactions"]`,
    reactions_at_press): made after it, whatever the bot learned of them (an event, or the re-read at a restart after a
    crash). Discord gives a reaction no time, so one of the same emoji as then is taken for the one then, and a round
    whose reactions the bot did not know all of then (or posted since) gets none; a request recorded by an older
    crowdtune (no "reactions") none either."""
    then = {int(message_id): {(emoji, burst) for emoji, burst in on} for message_id, on in data.get("reactions", {}).items()}
    return {message_id: added for message_id, on in now.items() if message_id in then and (added := on - then[message_id])}


async def _cast_anew(bot, user_id: int, added: dict[int, set[Reaction]]) -> None:
    """Count the person's reactions `added` after their confirmed deletion as new votes (one per round, of its reactions
    as a re-read counts several: recounted_vote), and keep them as seen, so that removing one falls back to the rest."""
    box, pending = bot.runner.ballot_box, []
    for message_id, on in added.items():
        ref = await box.ref_for(message_id)
        values = [value for emoji, _ in on if ref is not None and (value := vote_from_emoji(ref.mode, emoji)) is not None]
        for emoji, burst in on:
            box.seen.changed(message_id, user_id, emoji, True, burst)
        if values:
            pending.append(box.submit(message_id, user_id, recounted_vote(ref.mode, values)))
    await asyncio.gather(*pending)


async def forget(bot, data: dict, request: str) -> str | None:
    """Delete the data of the person `data["user"]` (a Discord user id), as /forget-me's Delete my data: its outcome
    in words, or None if `request` was carried out before. The reactions they added after confirming (added_since)
    are new votes, counted once the deletion is done."""
    # Right after a restart: the recount of the reactions made meanwhile first, or it would re-add what is deleted.
    await after_pickup(bot, None, everywhere=True)
    added = added_since(data, bot.runner.ballot_box.seen.of_person(data["user"]))
    # Reactions held over the vote rate were made before the deletion: dropped first, so none comes back.
    bot.forget_in_memory(data["user"])
    # Votes already queued were cast before the deletion: stored first, so it deletes them (else stored after it).
    await bot.runner.ballot_box.settle_votes()
    voter = voter_id(data["user"])
    result = await bot.conductor.store.forget_user(voter, personal_scope=voter, request=request)
    if result is None:
        return None
    # A vote that came while the deletion was under way waits in the writer: refused; one from now on is a new vote.
    bot.heard_forget(result["forget"])
    bot.runner.scope_deleted(voter)
    await _cast_anew(bot, data["user"], added)
    # In the words of the vote style where it was asked (`data["buttons"]`, recorded at the press): a button vote leaves
    # nothing on the post, a reaction stays there and must not count again.
    again = "to vote again on a round open now, press its buttons again" if data.get("buttons") else "a reaction you leave on an open round no longer counts"
    return (
        f"Deleted {stored(result['votes'], 'your personal agent' if result['personal_agent'] else None)} {EVERYWHERE}; the copy of "
        f"your data stays attached here. Moderation records about you (any strike, the audit log) are kept; {again}."
    )


async def reset(bot, data: dict, request: str) -> str | None:
    """Reset the agent of the scope `data["scope"]` for the moderator `data["user"]`, as /reset's Confirm: its outcome
    in words, or None if `request` was carried out before."""
    # A round whose voting ended before the confirmation learns into the agent reset, not into the new one.
    await after_pickup(bot, None, scope_id=data["scope"])
    if await bot.conductor.store.reset_scope(data["scope"], actor=voter_id(data["user"]), request=request) is None:
        return None
    return "The agent is reset: it starts learning afresh from the next round."


WORK = {"forget-me": forget, "reset": reset}


async def carry_out_confirmed(bot) -> int:
    """At a start: carry out each recorded Confirm of this process's shards (by the server it was asked in) that a
    crash cut short, oldest first, and edit its question into the outcome (possible within TOKEN_SECONDS of its
    command; later the outcome is only logged). Returns how many were carried out here."""
    done = 0
    for request in await bot.conductor.store.confirmed_requests():
        work = WORK.get(request.command)
        if work is None or not bot.shard_plan.owns_guild(None if request.guild_id is None else int(request.guild_id)):
            continue
        try:
            text = await work(bot, request.data, request.key)
        except Exception as problem:  # the database failed: still recorded, so the next start tries again
            log.error("could not carry out a confirmed /%s (tried again at the next start): %s", request.command, problem)
            continue
        if text is None:  # carried out meanwhile by another process of the bot: it edits the question
            continue
        done += 1
        log.info("carried out a confirmed /%s that a restart had cut short", request.command)
        if time.time() - request.confirmed_at < TOKEN_SECONDS:
            await _tell(bot, request.data, text)
    return done


async def _tell(bot, data: dict, text: str) -> None:
    """Edit the question (its command's original response) into `text`, its buttons gone; its attachment (/forget-me's
    copy of the person's data) stays, the person's to keep. A request
    from a copied database has no token (`crowdtune copy-db` leaves it out: storage.rows.without_secrets): its question
    cannot be edited, and the outcome is only logged."""
    if "token" not in data:
        log.info("a confirmed question was carried out but cannot be edited: its database was copied, which keeps no token")
        return
    question = discord.Webhook.partial(int(data["application_id"]), data["token"], client=bot)
    try:
        await question.edit_message("@original", content=text, view=None)
    except (discord.HTTPException, asyncio.TimeoutError) as problem:  # the work is done; only the telling failed
        log.info("could not edit a confirmed question into its outcome: %s", problem)
