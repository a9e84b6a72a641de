"""What /stats and /top show of a scope: its rated and A/B rounds apart, what its agent learned, its best
rounds named as members saw them, or, before any round closed with votes, what is going on instead; and what
/status says of held and set-aside votes and /stop of the session it stopped."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable

import discord

from bot.conductor import one_rater
from bot.discord.anti_brigade import Count
from bot.discord.followups import database_refuses
from bot.discord.pickup import recounted
from bot.discord.reactions_seen import as_counted
from bot.discord.runner import waits_for_database
from bot.discord.votes import VOTING_STOPPED, describe_ab_rounds, describe_aspects, ranked_round, rounds_played, set_aside_text, voter_id
from bot.progress import plural, plural_agreeing
from core.agent import preset as agent_preset
from core.crowd import Ballot, rating_text
from core.engine import beat_chance
from storage import RoundRow, SessionRow

NOTHING_RATED = "No rounds with votes yet. Start with `/compose`."
STILL_RECOUNTING = (
    "The votes are still being counted after my restart or reconnection (reactions made while I was offline): these counts may change."
)


async def nothing_rated(bot, scope_id: str, channel_id: str) -> str:
    """What /stats and /top say before any round closed with votes: each session of the scope that is running, the
    one where they were asked first ("here") and the others by their channel, with its open round's votes so far (not
    to start one), as /status says them: once the recount after a restart is done (or said to be under way), with no
    closing time while its round waits for the database (said why) or the database is gone (voting stopped, said);
    or how to start one."""
    store, runner = bot.conductor.store, bot.runner
    sessions = sorted(await store.active_sessions(scope_id), key=lambda s: s.channel_id != channel_id)
    if not sessions:
        return NOTHING_RATED
    notes = [] if await recounted(bot, [s.id for s in sessions]) else [STILL_RECOUNTING]
    stopped = not await runner.database.present()  # looked at now, as /status does
    lines = ["No round has closed with votes yet."]
    for session in sessions:
        where = "here" if session.channel_id == channel_id else f"in <#{session.channel_id}>"
        open_round = await store.open_round_of(session.id)
        if open_round is None:
            lines.append(f"The next round {where} is being prepared.")
            continue
        votes = plural(await store.ballot_count(open_round.id), "vote")
        paused = None if stopped else waits_for_database(runner, session.id)
        when = "" if stopped else f" (voting is paused: my database {database_refuses(paused)})" if paused else closes_text(open_round)
        lines.append(f"Round {open_round.index + 1} is open {where} with {votes}{when}.")
    return " ".join([*lines, *([VOTING_STOPPED] if stopped else []), *notes])


async def best_rounds(store, scope_id: str, limit: int = 3) -> list[tuple[str, list]]:
    """The scope's best rated rounds and, apart, the A/B rounds whose edit stayed, most surely preferred first
    (an A/B reward is the chance of beating it, not a 1-10 verdict: never ranked with ratings): (heading, rows) for each
    kind that has any. A one-voter scope's (a personal agent's) ratings are the person's, said in their terms, as its
    summaries say "You gave 9/10" (core.engine.verdict_opening)."""
    rated = "what you gave" if one_rater(scope_id) else "the crowd's verdict"
    kinds = (
        ("rating", f"Best rated ({rated}, 1-10):"),
        ("ab", "A/B edits that stayed, most preferred to the track before first (their chance of beating it, not a score):"),
    )
    found = [(heading, await store.top_rounds(scope_id, limit, mode=mode)) for mode, heading in kinds]
    return [(heading, rows) for heading, rows in found if rows]


async def sessions_of(store, best: list[tuple[str, list]]) -> dict[int, SessionRow]:
    """The sessions of `best_rounds`' rounds (a few: `limit` per kind), by id: a ranked round is named by its session."""
    ids = sorted({row.session_id for _, rows in best for row in rows})
    return {session_id: await store.session(session_id) for session_id in ids}


async def standing_votes(store, best: list[tuple[str, list]]) -> dict[int, int]:
    """The standing votes now of `best_rounds`' A/B rounds, by round id: what /stats counts of every round (its A/B
    line), so that its list agrees with it after a /forget-me deleted some (the count stored at the close does not)."""
    return {row.id: await store.ballot_count(row.id) for _, rows in best for row in rows if row.mode == "ab"}


async def learning_report(bot, scope_id: str, preset: str, channel_id: str) -> tuple[str, list[discord.File]]:
    """/stats for a scope whose agent uses `preset`, asked in `channel_id`: rated rounds (their verdicts' mean and
    learning curve) and A/B rounds (edits kept, votes that preferred an edit, each round's chance chart) apart, what
    the agent learned (or that it is sure of nothing yet), the best rounds of each kind; or `nothing_rated`."""
    store = bot.conductor.store
    history, ab_history = await store.learning_history(scope_id), await store.ab_history(scope_id)
    if not history and not ab_history:
        return await nothing_rated(bot, scope_id, channel_id), []
    lines, files = [], []
    if history:
        rewards = [reward for reward, _, _ in history]
        # Said, since a /strike or /forget-me since leaves it as it was (a trial took it for a figure not updated).
        mean = rating_text(sum(rewards) / len(rewards))
        lines.append(f"{plural(len(rewards), 'rated round')}, mean reward {mean} (each round's verdict when it closed, which stands).")
        png = await bot.drawer.learning_curve(
            rewards, "crowdtune: the kept track's score and each round's proposal",
            scores=[score for _, score, _ in history], spread=[spread for _, _, spread in history],
        )
        files.append(discord.File(io.BytesIO(png), "learning-curve.png"))
    if ab_history:
        lines.append(f"{describe_ab_rounds(ab_history)}.")
        png = await bot.drawer.ab_curve(
            [beat_chance(reward) for reward, _, _, _ in ab_history], [kept for _, kept, _, _ in ab_history],
            "crowdtune: A/B rounds, each chosen edit's chance of beating the track before",
        )
        files.append(discord.File(io.BytesIO(png), "ab-rounds.png"))
    learned = await bot.conductor.lessons(scope_id, preset)
    if learned:
        lines.append("What the agent has learned so far: " + "; ".join(learned) + ".")
    else:  # the terminal's words, from one place
        lines.append(f"The agent {await bot.conductor.nothing_sure_yet(scope_id, agent_preset(preset))}.")
    aspect_ratings = await store.aspect_ratings_of_scope(scope_id)
    if aspect_ratings:
        lines.append(f"Mean per aspect (votes): {describe_aspects(aspect_ratings)}.")
    best = await best_rounds(store, scope_id)
    sessions, votes = await sessions_of(store, best), await standing_votes(store, best)
    for heading, rows in best:
        lines += [heading] + [ranked_round(rank, row, sessions[row.session_id], votes.get(row.id)) for rank, row in enumerate(rows, 1)]
    return "\n".join(lines), files


def closes_text(row: RoundRow) -> str:
    """", closes <t:…:R>" of an open round; before it is posted only a /close gives it a close time (steering.voting_over),
    and it closes as soon as it is posted then."""
    if row.closes_at is None:
        return ""
    return f", closes <t:{int(row.closes_at)}:R>" if row.message_ids else ", closes as soon as it is posted (`/close`)"


def held_votes(box, row: RoundRow, count: Count) -> tuple[int, int]:
    """How many people have reactions held over the vote rate (bot.discord.vote_rate) on the open round `row`, by what
    they did: (first votes: none of theirs stored, vote changes: of the one stored, `count`: BallotBox.count's). Held
    removals of someone with no vote stored change nothing: not counted."""
    stored = {vote.ballot.voter for vote in (*count.counted, *count.aside)}
    first = changes = 0
    for message_id in row.message_ids:
        for user_id, held in box.held.pending(int(message_id)).items():
            if voter_id(user_id) in stored:
                changes += 1
            elif any(not retract for _, retract in held):
                first += 1
    return first, changes


def held_votes_note(first: int, changes: int) -> list[str]:
    """/status's line on the `first` votes and vote `changes` held over the vote rate (`held_votes`), which its counts
    show as they will count; none when there are none."""
    if not first and not changes:
        return []
    one = first + changes == 1
    what = " and ".join(plural(n, word) for n, word in ((first, "vote"), (changes, "vote change")) if n)
    return [
        f"{what} came faster than the vote rate allows: shown as {'it' if one else 'they'} will "
        f"count, {'it is' if one else 'they are'} counted in turn, at the latest when the round closes."
    ]


def waiting_note(box, row: RoundRow) -> list[str]:
    """/status's line on the reaction votes on the open round `row` that wait while the database refuses them
    (BallotBox.waiting: kept, and stored in their order once it works); none when there are none."""
    if not (waiting := box.waiting(row.message_ids)):
        return []
    are = "is" if waiting == 1 else "are"
    return [f"{plural(waiting, 'vote')} {are} waiting: my database {database_refuses(box.retries.database_problem)} right now. "
            f"{'It is' if waiting == 1 else 'They are'} kept, and counted as soon as it works again."]


async def shown_votes(box, row: RoundRow, count: Count) -> tuple[list[Ballot], int]:
    """What /status shows of an open round's votes (`count`: BallotBox.count's), with the reactions held over the vote
    rate applied as the ballot box (`box`) will apply them (as_counted): the votes that count, and how many stand set
    aside by the rule: a set-aside voter's held ones stay aside too, and so do those of a voter the rule covers with
    nothing stored yet (once stored, the count sets them aside); one whose held removal withdraws their vote, none."""
    holding = {user_id for m in row.message_ids for user_id in box.held.pending(int(m))}
    ref = await box.ref_for(int(row.message_ids[0])) if holding else None
    covered = count.set_aside | box.join_times.set_aside_held(ref, holding)
    shown = as_counted(row, [*count.ballots, *(vote.ballot for vote in count.aside)], box.held, box.seen)
    return [b for b in shown if b.voter not in covered], sum(b.voter in covered for b in shown)


async def stop_report(
    store, session: SessionRow, ended: int, open_round: RoundRow | None, count: Callable[[RoundRow], Awaitable[Count]], late: bool = False,
) -> str:
    """/stop's answer, once `session` is stopped: `ended` rounds had ended and `open_round` was open (both read
    before the stop). The open round is counted once posted, as members saw it; the stop cancelled it, so its votes
    stay stored but count for nothing (it never closes: nothing is learned from it), which is said, with its votes as
    its close would have counted them (`count`: BallotBox.count), set-aside ones said apart as /status and the close
    say them. It is re-read: its close (asked for by /close, or its time up) came before the stop, and then its votes
    counted; or, not posted yet, it was being prepared and is cancelled before anyone saw it (a post on its way is
    marked cancelled). `late`: it was posted after the /stop was sent (Steering.seen_when_asked), so nobody saw it when
    the stop was asked for: not counted as played, as one being prepared, and said to have been posted after."""
    after = await store.round(open_round.id) if open_round is not None else None
    # A round closed before the stop was posted, also one a /close asked for while it was on its way.
    posted = open_round is not None and bool(open_round.message_ids) and not late or (after is not None and after.status == "closed")
    played = rounds_played(ended + posted, (await store.session(session.id) or session).rounds_done)
    lines = [f"Session stopped after {played}; what the agent learned is kept."]
    if after is None:
        return "\n".join(lines)
    number = after.index + 1
    if after.status == "closed":
        lines.append(f"Round {number} was closing: it closed first, so its votes count (its result is above).")
    elif not posted and not late:
        lines.append(f"Round {number} was being prepared: it is cancelled, and nobody will vote on it.")
    elif after.status == "cancelled":
        counted = await count(after)
        votes = len(counted.counted)
        aside = f" {set_aside_text(len(counted.set_aside), counted.member_days)}" if counted.set_aside else ""
        was = f"Round {number} was {'posted after the /stop was sent' if late else 'still open'}: it is cancelled, and "
        lines.append(
            f"{was}its {plural_agreeing(votes, 'vote', ('is', 'are'))} not counted (nothing is learned from {'it' if votes == 1 else 'them'}).{aside}"
            if votes else f"{was}{'no vote counted in it' if aside else 'it had no votes'}.{aside}"
        )
    return "\n".join(lines)


async def rounds_ended(store, session, closing: Callable[[], bool] = lambda: False) -> tuple[int, object]:
    """How many of an active session's rounds have ended (closed or cancelled: all before the open one), and its
    open round (a `RoundRow`, or None between rounds). `closing()`: its runner is closing a round, or has closed it for
    a /stop (`Steering.closed_for_stop`), which, closed, is taken for the open one; asked once the round is read (the
    close may come during the read)."""
    open_round = await store.open_round_of(session.id)
    if open_round is None and closing():
        open_round = next(iter((await store.rounds_of(session.id))[-1:]), None)
    return (open_round.index if open_round is not None else await store.next_round_index(session.id)), open_round
