"""The vocabulary of a vote on Discord: which reaction means which rating or choice, who a voter is,
whose agent a vote belongs to, and how a round's votes are described. Pure functions and values."""

from __future__ import annotations

import asyncio

import collections
from dataclasses import dataclass

from core.crowd import rating_text
from storage.rows import finishes

RATING_EMOJI = tuple(f"{n}\ufe0f\u20e3" for n in range(1, 10)) + ("\U0001f51f",)  # 1️⃣ .. 9️⃣, 🔟
AB_EMOJI = {"\U0001f170\ufe0f": "a", "\U0001f171\ufe0f": "b", "\U0001f44d": "both", "\U0001f44e": "neither"}  # 🅰️ 🅱️ 👍 👎
VOTE_STYLES = ("reactions", "buttons")
# A command's answer once the database is gone (runner.database_gone): trying again cannot help, the operator must act.
DATABASE_GONE = (
    "my database was removed or replaced while I was running, so I cannot save anything until my operator puts it back "
    "and restarts me (my log tells them)"
)
VOTING_STOPPED = (
    "Voting has stopped: my database was removed or replaced while I was running, so nothing more can be saved. "
    "Votes made from now on do not count. The operator has been told (see the log): they must put the database file "
    "(or a backup) back before restarting me, or I start with an empty database and this session is lost."
)

ASPECTS_STYLE = "aspects"  # a session asking musicality, novelty and coherence: a select menu for each


def round_style(session_options: dict) -> str:
    """How a session's rounds take votes: reactions, buttons, or (for a three-aspect session) select menus."""
    return ASPECTS_STYLE if session_options.get("aspects") else session_options.get("vote_style", "reactions")


def describe_aspects(ratings: list[dict[str, float]]) -> str:
    """Each aspect's mean over the ratings that include it, as every rating reads (`rating_text`): 'musicality 7 (3),
    novelty 5.5 (2), ...'."""
    from core.crowd import ASPECTS

    parts = []
    for aspect in ASPECTS:
        values = [r[aspect] for r in ratings if aspect in r]
        parts.append(f"{aspect} {rating_text(sum(values) / len(values))} ({len(values)})" if values else f"{aspect}: none yet")
    return ", ".join(parts)


def bare(emoji: str) -> str:
    """The emoji without its variation selector: clients send keycaps and letters with or without it."""
    return emoji.replace("\ufe0f", "")


_RATING_BY_EMOJI = {bare(e): float(i + 1) for i, e in enumerate(RATING_EMOJI)}
_CHOICE_BY_EMOJI = {bare(e): c for e, c in AB_EMOJI.items()}


def vote_from_emoji(mode: str, emoji: str) -> float | str | None:
    """The rating (1.0-10.0) or A/B choice a reaction stands for in a round of `mode`; None: not a vote."""
    table = _CHOICE_BY_EMOJI if mode == "ab" else _RATING_BY_EMOJI
    return table.get(bare(emoji))


def emoji_for_mode(mode: str) -> tuple[str, ...]:
    return tuple(AB_EMOJI) if mode == "ab" else RATING_EMOJI


def recounted_vote(mode: str, values: list[float | str]) -> float | str:
    """The vote a re-read of the reactions counts for a person with these vote reactions (at least one) when the
    vote stored for them is not among them. Discord does not say which reaction came last, so neither the place of
    an emoji in the row nor an extreme decides: ratings count their median (7 and 9 count 8; 2, 6 and 10 count 6);
    in A/B, 👎 (neither) counts only alone, since any other says an edit beat the track before, and of the others
    🅰️ and 🅱️ together (or 👍 alone) count both, else the edit named."""
    if mode != "ab":
        ratings = sorted(float(v) for v in values)
        middle = len(ratings) // 2
        return ratings[middle] if len(ratings) % 2 else (ratings[middle - 1] + ratings[middle]) / 2
    choices = set(values) - {"neither"}
    if not choices:
        return "neither"
    edits = choices & {"a", "b"}
    return next(iter(edits)) if len(edits) == 1 else "both"


def reread_vote(
    mode: str, values: list[float | str], standing: float | str | None, recorded: dict[float | str, float], watched_since: float
) -> list[float | str]:
    """What a re-read of the reactions (after a restart, before a close) casts for a person with these vote reactions
    (at least one), in order, the last being their vote; [] when the stored vote (`standing`, None: none) stands.
    `recorded`: every vote the bot recorded for them in the round, with when (`Store.recorded_votes`, Unix seconds);
    `watched_since`: when (Unix seconds) the bot's watch of the reactions began (its gateway session's start): every
    reaction added since came to it as an event.

    Discord gives a reaction no time, but one the bot never recorded was added while it was not watching (down, or
    between gateway sessions), before `watched_since`: newer than any vote it recorded before then, older than any
    recorded since. So when the stored vote was recorded before (or there is none), those reactions count
    (`recounted_vote` of several); when it was recorded since (a vote the person made after the restart), it is their
    latest and the rules below decide. Either way each is cast first, all at one time (the caller casts them together),
    so that the next re-read (after another restart) knows them as seen. The rules: the stored vote stands while its
    reaction is on (live, a newer reaction replaces the vote and leaves the older one on), or while it is what one
    re-read counted of the reactions it cast with it (7 and 10 count 8.5 though 4, recorded before, is on too); else
    `recounted_vote`."""
    unseen = [value for value in values if value not in recorded]  # a super and a normal reaction of one emoji: twice
    if unseen and (standing is None or recorded.get(standing, 0.0) < watched_since):
        return _cast_after(unseen, recounted_vote(mode, unseen))
    together = [value for value in values if standing is not None and recorded.get(value) == recorded.get(standing)]
    if standing in values or (together and recounted_vote(mode, together) == standing):
        vote = standing
    else:
        vote = recounted_vote(mode, values)
    return _cast_after(unseen, vote) if unseen or vote != standing else []


def _cast_after(first: list[float | str], vote: float | str) -> list[float | str]:
    """Each of `first` once, then `vote` (last: it is the one that stands)."""
    return [value for value in dict.fromkeys(first) if value != vote] + [vote]


def voter_id(user_id: int) -> str:
    return f"user:{user_id}"


def origin_scope(guild_id: int | None, user_id: int) -> str:
    """Whose agent an action belongs to: the server's, or in a DM with the bot the user's own."""
    return f"guild:{guild_id}" if guild_id is not None else voter_id(user_id)


def describe_votes(mode: str, ballots) -> str:
    if mode == "ab":
        counts = {c: sum(1 for b in ballots if b.choice == c) for c in ("a", "b", "both", "neither")}
        return ", ".join(f"{k.upper() if len(k) == 1 else k}: {v}" for k, v in counts.items())
    # Counted, not listed: a thousand ratings would not fit in a Discord message (2,000 characters).
    # Counted as shown, so two compounds of aspects that read alike (6.33) are one entry.
    counts = collections.Counter(rating_text(b.rating) for b in ballots)
    return ", ".join(f"{n}× {r}" if n > 1 else r for r, n in sorted(counts.items(), key=lambda item: float(item[0]))) or "none yet"


def set_aside_text(count: int, member_days: int) -> str:
    """Why `count` standing votes (at least one) do not count: the membership rule as it is now (/config member_days)."""
    from bot.progress import plural

    voters = "its voter" if count == 1 else "their voters"
    when = f"less than {plural(member_days, 'day')} before the round began" if member_days else "after the round began"
    return f"{plural(count, 'vote')} set aside: {voters} joined the server {when} (/config member_days, anti_brigade)."


def round_summary(number: int, mode: str, outcome, ballots, set_aside: int = 0, member_days: int = 0, struck: int = 0) -> str:
    """What the channel is told when round `number` closes (an Outcome, the ballots that counted), how many
    standing votes the membership rule (`member_days`) set aside, and how many votes /strike voided (storage.Announce).
    The engine's summary names who gave the verdict (a personal agent's owner is told "You gave 7/10":
    core.engine.verdict_opening)."""
    from bot.progress import plural_agreeing

    aside = f" {set_aside_text(set_aside, member_days)}" if set_aside else ""
    if struck:  # or "nobody voted" would be untrue of a round whose one vote a moderator voided
        aside += f" {plural_agreeing(struck, 'vote', ('was', 'were'))} voided by /strike."
    if not outcome.voters:  # the engine's summary says it all: "nobody voted, so nothing was learned: ..."
        summary = outcome.summary.replace("nobody voted", "no vote counted", 1) if set_aside or struck else outcome.summary
        return f"**Round {number} closed**: {summary}.{aside}"
    # An A/B reward is an edit's chance of beating the track before, not a score of the music: the engine's
    # summary gives each chance as such, so no A/B number is shown on the 1-10 scale.
    # A rating round's summary names the crowd's verdict ("the crowd gave 6.5/10"): it is not said twice.
    verdict = ", no reward" if mode != "ab" and outcome.reward is None else ""
    return (
        f"**Round {number} closed**: {outcome.voters} voted ({describe_votes(mode, ballots)}){verdict}. "
        f"{outcome.summary[0].upper()}{outcome.summary[1:]}.{aside}"
    )


def describe_ab_rounds(history: list[tuple[float, bool, int, int]]) -> str:
    """A scope's A/B rounds in words (`Store.ab_history` rows): how many kept an edit and how many votes
    preferred an edit to the track before. No 1-10 number: an A/B round gives none."""
    from bot.progress import plural

    kept = sum(1 for _, edit_kept, _, _ in history if edit_kept)
    votes, preferring = sum(h[2] for h in history), sum(h[3] for h in history)
    # Read as a person says it ("1 A/B round: an edit kept in 0" read broken, a trial).
    rounds = len(history)
    kept_text = "no edit kept" if kept == 0 else "its edit kept" if rounds == 1 else "an edit kept in each" if kept == rounds else f"an edit kept in {kept}"
    preferred = f"{preferring} of {plural(votes, 'vote')} preferred an edit to the track before" if votes else "no votes"
    return f"{plural(rounds, 'A/B round')}: {kept_text}; {preferred}"


def ranked_round(rank: int, row, session, votes: int | None = None) -> str:
    """One line of a ranking (/top, /stats) of a round (a `RoundRow` of `session`, a `SessionRow`): a rated round by the
    crowd's verdict out of 10, an A/B round by its chosen edit's chance of beating the track before, which is no
    score of the music, with `votes`, its standing votes now (`Store.ballot_count`), as /stats counts them; the chance,
    decided at the close, says how many it had then when a vote was deleted since (/forget-me). The round is named as members saw it: its number in its post, and its session by when it
    started and in which channel (a session's id appears in no message)."""
    from bot.progress import plural
    from core.engine import chance_text

    where = f"round {row.index + 1} of the session started <t:{int(session.created_at)}:f>"
    if session.channel_id and session.channel_id.isdigit() and session.scope_id.startswith("guild:"):
        where += f" in <#{session.channel_id}>"  # a personal agent's sessions are all in the DM it is read in
    if row.mode == "ab":
        closed_with = (row.outcome or {}).get("voters", 0)
        count = plural(closed_with if votes is None else votes, "vote")
        if votes is not None and votes != closed_with:
            count += f"; {closed_with} when it closed"
        return f"{rank}. beat the track before: {chance_text(row.reward)} ({count}): {where}"
    return f"{rank}. {rating_text(row.reward)}/10: {where}"


def round_cancelled(number: int, planned: int | None, closed: int) -> str:
    """What the channel is told when round `number`'s message was deleted, in a session of `planned` rounds (None or 0:
    endless) of which `closed` closed. A cancelled round is replaced, so the session still plays `planned` rounds that
    count and its total grows by one (`rounds_in_all`): said here, or the next post's "Round 2 of 4" in a session
    started with 3 rounds reads as a mistake (a trial)."""
    from bot.progress import plural

    total = rounds_in_all(planned, number, closed)
    grown = f": the session now has {plural(total, 'round')}, {planned} of which count" if total else ""
    return f"**Round {number} cancelled**: its message was deleted, so nothing was learned from it. Round {number + 1} takes its place{grown}."


def rounds_in_all(planned: int | None, ended: int, closed: int) -> int | None:
    """How many rounds a session of `planned` rounds (None or 0: endless, None returned) posts, once `ended` of its
    rounds have ended, `closed` of them closed and the others cancelled: each cancelled round is replaced, so
    the rounds that count stay `planned` and the total grows by one per cancellation ("Round 5 of 5")."""
    return planned + ended - closed if planned else None


def round_number(number: int, planned: int | None, ended: int, closed: int) -> str:
    """Round `number` as every message names it (its post, /status): "Round 3 of 5 (1 cancelled)", "Round 3 of 4",
    "Round 3" (endless), in a session of `planned` rounds (None or 0: endless) once `ended` rounds before it have ended,
    `closed` of them closed: the note says why the total grew past what the session was started with (`rounds_in_all`)."""
    total = rounds_in_all(planned, ended, closed)
    return f"Round {number}{f' of {total}' if total else ''}{cancelled_note(ended, closed)}"


def rounds_played(ended: int, closed: int) -> str:
    """Rounds ended (closed or cancelled), as every message counts them: "5 rounds (1 cancelled)", "3 rounds"."""
    from bot.progress import plural

    return plural(ended, "round") + cancelled_note(ended, closed)


def session_finished(session, number: int) -> list[str]:
    """What the close of round `number` (its index + 1: rounds ended, cancelled ones too) says after its summary: that
    the session finished, when this close finishes it (`storage.rows.finishes`: `session` as read before the close, its
    own runner the only one to change its closed rounds); else nothing."""
    if not finishes(session.spec, session.rounds_done):
        return []
    return [f"Session finished after {rounds_played(number, session.rounds_done + 1)}. Use `/top` to hear the best."]


def cancelled_note(ended: int, closed: int) -> str:
    """" (1 cancelled)" after a count of `ended` rounds of which `closed` closed; "" when none was cancelled."""
    return f" ({ended - closed} cancelled)" if ended > closed else ""


@dataclass(frozen=True)
class RoundRef:
    """What a vote on a message needs to know, cached so votes do not wait on a lookup."""

    round_id: int
    session_id: int
    mode: str
    scope_id: str
    style: str
    opened_at: float
    anti_brigade: bool
    member_days: int = 0  # with anti_brigade: whole days a voter must have been a member when the round began


def resolve(future: asyncio.Future, result: object) -> None:
    """Give a queued vote's (or barrier's) waiter its result, unless the waiter gave up (its future cancelled, when the
    command or event that awaited it was): the writer goes on with the rest of the batch, which is stored."""
    if not future.done():
        future.set_result(result)
