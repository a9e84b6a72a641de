"""What the backends share beside their SQL: tuples to rows, the order votes apply in, the table list.

Every backend (storage/sqlite.py, storage/postgres.py) selects the same columns in the same order,
so one function per shape turns a database row into a `SessionRow` or a `RoundRow` (export rows:
storage/reader.py), and one function decides what a batch of votes does; the backends differ only in
how they read and write.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping

from core.crowd import Ballot, compound_rating
from core.learner import Evidence
from storage.protocol import ConfirmedRequest, ResetDone, RoundRow, SessionRow, StandingVote, VoteOp, VoteResult

SESSION_COLUMNS = "id, scope_id, channel_id, spec, status, track, incumbent_score, rounds_done, created_at, options, owner"
ROUND_COLUMNS = (
    "r.id, r.session_id, s.scope_id, s.channel_id, r.idx, r.mode, r.plan, r.message_ids, r.opened_at, r.closes_at, "
    "r.status, r.reward, r.outcome, r.votes_taken_at"
)
# A round's status as a vote sees it (plan_votes): an open round whose votes were taken for its close (Store.take_votes)
# takes none any more, as a closed one.
VOTING_STATUS = "CASE WHEN r.status = 'open' AND r.votes_taken_at IS NOT NULL THEN 'closed' ELSE r.status END"

# The Q-table rows each state encoding writes (core.agent._Keys), as a condition on a `qvalues` row: a scope's
# table holds the rows of every tabular preset run in it, and a preset reads only those of its own encoding.
# "context" keys the edit by its kind alone ('louder'); the others by its note too ('louder@3'), after the
# whole track: "track" starts with the base note (a number), "relative" with the scale's name.
_BASE_FIRST = "substr(state, 1, 1) IN ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')"
Q_KEY_KINDS = {
    "context": "action NOT LIKE '%@%'",
    "track": f"action LIKE '%@%' AND {_BASE_FIRST}",
    "relative": f"action LIKE '%@%' AND NOT {_BASE_FIRST}",
}

# A scope's Q-values per state encoding (in Q_KEY_KINDS' order), `{}` its id's placeholder: what a reset deletes (reset_done).
Q_KINDS_COUNTED = (
    "SELECT " + ", ".join(f"COUNT(*) FILTER (WHERE {kind})" for kind in Q_KEY_KINDS.values()) + " FROM qvalues WHERE scope_id = {}"
)


def reset_done(kinds: tuple, models: list[tuple[str, str]]) -> ResetDone:
    """What a reset deleted: `kinds`, Q_KINDS_COUNTED's row, and `models`, the (name, data) of the models it deleted."""
    return ResetDone(
        q_values=dict(zip(Q_KEY_KINDS, (count or 0 for count in kinds))),
        judged={name: Evidence.from_dict(json.loads(data)).count for name, data in models},
    )


# A voter's history in rounds of one mode (what their trust is measured on): the column their vote is in.
HISTORY_COLUMNS = {"rating": "rating", "ab": "choice"}

# Every table, parents before children (the order a copy fills them), with the identity column whose
# counter a copy moves past the copied ids. A table added by a migration is added here too (the copy
# test fails otherwise).
TABLES: tuple[tuple[str, str | None], ...] = (
    ("scopes", None),
    ("sessions", "id"),
    ("rounds", "id"),
    ("round_messages", None),
    ("withheld_reactions", None),
    ("votes", None),
    ("vote_events", "id"),
    ("strikes", None),
    ("qvalues", None),
    ("models", None),
    ("audit", "id"),
    ("announcements", "id"),
    ("deployment", None),
    ("confirmed_requests", None),
)
# What a copy (copy-db) leaves out: the interaction tokens kept while their work is under way. Each lets its holder answer
# as the bot for 15 minutes, and a copy is handed on (a backup, a move): a confirmed request keeps its work without
# its question's token (bot/discord/confirmed.py then cannot edit the question), and a session's /compose followup
# (deployment "followup:<session id>", bot/discord/followups.py) is not copied at all. No other table holds a secret.
SECRET_KEYS = {"confirmed_requests": "token"}  # table -> the key of its `data` JSON that holds a token
SECRET_DEPLOYMENT_VALUES = "followup:"  # deployment keys starting so hold a token


def without_secrets(table: str, columns: list[str], rows: list[tuple]) -> list[tuple]:
    """`rows` of `table` (its `columns`) as a copy holds them: without the tokens SECRET_KEYS and
    SECRET_DEPLOYMENT_VALUES name."""
    if table == "deployment":
        key = columns.index("key")
        return [row for row in rows if not str(row[key]).startswith(SECRET_DEPLOYMENT_VALUES)]
    secret = SECRET_KEYS.get(table)
    if secret is None:
        return rows
    at = columns.index("data")

    def blanked(row: tuple) -> tuple:
        data = json.loads(row[at])
        data.pop(secret, None)
        return (*row[:at], json.dumps(data), *row[at + 1:])

    return [blanked(row) for row in rows]


COPY_CHUNK_ROWS = 5000  # rows read and written at a time when a database is copied

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def copy_columns(table: str, columns: list[str]) -> str:
    """The column list of a copied chunk, checked: a table of TABLES and plain column names only,
    since both are put into SQL text."""
    if table not in dict(TABLES) or not columns or not all(_IDENTIFIER.fullmatch(c) for c in columns):
        raise ValueError(f"not a crowdtune table or column: {table} {columns}")
    return ", ".join(columns)


# The rounds whose posts `ended_post_edits` edits, `where` a condition on rounds `r`. A store reads them with the
# rounds locked for its transaction (PostgreSQL: FOR UPDATE OF r; SQLite: one writer at a time): a /stop and the
# round's record (its message id) racing each other must not both read the round before the other commits,
# each then finding nothing to edit (the stop: no message yet; the record: still open).
# A new session's channel: what an ended session there left unposted (Discord refused it, or was down until it ended)
# is given up (marked sent), not posted into the new session, where members would read an old round's summary as
# its own; the edits of old round posts stay queued (they edit those posts, not the new session's).
GIVE_UP_OLD_NOTES = "UPDATE announcements SET sent_at = {} WHERE channel_id = {} AND sent_at IS NULL AND message_id IS NULL"

# The channel of a round, for a notice queued about it (Store.tell_reactions_are_no_votes), `{}` its id's placeholder.
NOTICE_CHANNEL = "SELECT s.channel_id FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE r.id = {}"

ENDED_POSTS = "SELECT s.channel_id, r.status, r.message_ids, r.ended_posts FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE {where}"


def ended_post_edits(channel_id: str | None, status: str, message_ids: str, ended_posts: str | None) -> list[tuple[str, str]]:
    """(message id, what it becomes) for each message of a round that ended with `status`, from the round's
    `message_ids` and `ended_posts` columns (JSON); none for a round posted before migration 10 or with no channel."""
    content = json.loads(ended_posts).get(status) if ended_posts and channel_id is not None else None
    return [(message_id, content) for message_id in json.loads(message_ids)] if content else []


def finishes(spec: dict, rounds_done: int) -> bool:
    """Whether a round's close finishes its session: `spec` the session's (JSON-loaded), `rounds_done` its closed rounds
    before this close (its `rounds` counts closed rounds; an endless session, rounds None, never finishes)."""
    return spec.get("rounds") is not None and rounds_done + 1 >= spec["rounds"]


def announced(texts: str | list[str]) -> list[str]:
    """What an `Announce` returned, as the messages it queues in order: one text, or several."""
    return [texts] if isinstance(texts, str) else list(texts)


def session_row(row: tuple) -> SessionRow:
    return SessionRow(
        row[0], row[1], row[2], json.loads(row[3]), row[4], json.loads(row[5]), row[6], row[7], row[8], json.loads(row[9]), row[10]
    )


def round_row(row: tuple) -> RoundRow:
    return RoundRow(
        row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), tuple(json.loads(row[7])),
        row[8], row[9], row[10], row[11], json.loads(row[12]) if row[12] else None, row[13],
    )


def learning_points(rows: list[tuple]) -> list[tuple[float, float | None, float | None]]:
    """(reward, kept score, standard deviation of the ratings or None) from the backends' learning-history
    rows (reward, kept score, mean rating, mean squared rating, ratings counted): the population standard
    deviation sqrt(E[x^2] - E[x]^2), clipped at 0 against rounding."""
    return [(reward, score, max(0.0, squares - mean * mean) ** 0.5 if count else None) for reward, score, mean, squares, count in rows]


# An A/B round's standing votes that preferred an edit to the track before (every choice but "neither"), in
# SQL both backends share (for the rows of `ab_points`).
PREFERRING = "COALESCE(SUM(CASE WHEN v.choice <> 'neither' THEN 1 ELSE 0 END), 0)"


def ab_points(rows: list[tuple]) -> list[tuple[float, bool, int, int]]:
    """(reward, edit kept, votes, votes preferring an edit) from the backends' A/B-history rows; a backend's
    JSON true (SQLite: 1) becomes a bool."""
    return [(reward, bool(kept), int(votes), int(preferring)) for reward, kept, votes, preferring in rows]


def recorded_by_voter(rows: list[tuple]) -> dict[str, dict[float | str, float]]:
    """{voter: {vote: when last recorded}} from the backends' (voter, rating, choice, at) vote-history rows: an
    A/B vote is its choice, any other its rating."""
    recorded: dict[str, dict[float | str, float]] = {}
    for voter, rating, choice, at in rows:
        recorded.setdefault(voter, {})[choice if choice is not None else rating] = at
    return recorded


def plan_votes(
    ops: list[VoteOp],
    rounds: dict[int, tuple[str, str]],
    rows: dict[tuple[int, str], tuple],
    struck: set[tuple[str, str]],
    withheld: Mapping[tuple[int, str], int] | None = None,
) -> tuple[list[VoteResult], dict[tuple[int, str], tuple], list[tuple]]:
    """Decide what casts and retractions do, in the order given.

    `rounds`: round id -> (status, scope id); `rows`: (round, voter) -> (rating, choice, retracted,
    aspects dict or None, joined_at or None) as stored (changed in place as the ops go), retracted 1 for a void
    row too (a strike's): it stands for no vote, so a cast after /unstrike is a new vote (recorded, even of the
    voided rating) and its row is written counting, and there is nothing to withdraw; `struck`: (scope, voter)
    pairs: their casts are written void (and refused, "blocked"); `withheld`: (round, voter) -> the deletion (forget_user's
    "forget") that withheld them while the round was open (`withheld_reactions`): a re-read's cast (VoteOp.reread), and a
    cast made before that deletion was known (VoteOp.forgets_seen older), is refused ("blocked") and writes nothing.
    Returns each op's result, the final (rating, choice,
    cast_at, retracted, aspects JSON or None, joined_at or None, voided) of every (round, voter) written, and the vote events (round, voter, kind, rating, choice, at, aspects
    JSON or None) to append. An aspects cast is merged into what the voter rated before (one answer
    per aspect, each whenever they like); its rating is their compound (core.crowd.compound_rating)."""
    withheld = withheld or {}
    results: list[VoteResult] = []
    written: dict[tuple[int, str], tuple] = {}
    events: list[tuple] = []
    for op in ops:
        at = time.time() if op.at is None else op.at
        status, scope_id = rounds.get(op.round_id, (None, None))
        if op.scope_id is not None and scope_id is not None and op.scope_id != scope_id:
            # A cache that outlived its round (ids are never reused, but a cache is checked anyway).
            results.append(VoteResult("unknown_round"))
            continue
        if status != "open":
            results.append(VoteResult("unknown_round" if status is None else "cancelled" if status == "cancelled" else "closed"))
            continue
        key = (op.round_id, op.voter)
        if op.casts and key in withheld and (op.reread or (op.forgets_seen is not None and op.forgets_seen < withheld[key])):
            # The person deleted their data after the reactions were read, or after this vote came (it was queued).
            results.append(VoteResult("blocked"))
            continue
        current = rows.get(key)  # (rating, choice, retracted, aspects, joined_at) as the ops so far left it
        standing = current is not None and current[2] == 0
        # The join date Discord gave with this cast, else the one stored with the voter's vote (a removed reaction's
        # event, a re-read's listing, carry none).
        joined_at = op.joined_at if op.joined_at is not None else (current[4] if current is not None else None)
        rating, choice, aspects = op.rating, op.choice, None
        if op.kind == "retract":
            if not standing or (op.only_if_standing and current[:2] != (op.rating, op.choice)) or current[:2] in op.keep:
                results.append(VoteResult("unchanged"))
                continue
            if op.instead is None:
                rows[key] = (current[0], current[1], 1, current[3], current[4])
                written[key] = (current[0], current[1], at, 1, json_or_none(current[3]), current[4], 0)
                events.append((op.round_id, op.voter, "retract", None, None, at, None))
                results.append(VoteResult("retracted"))
                continue
            rating, choice = op.instead  # the person's other reactions stay on: their vote falls back to them
        if op.aspects is not None:
            aspects = {**((current[3] or {}) if standing else {}), **dict(op.aspects)}
            rating = compound_rating(aspects)
        if (scope_id, op.voter) in struck:
            # Stored void at once, as the strike voided the votes before it, and in the vote history: a re-read of the
            # reactions (the close's, a restart's) after /unstrike finds it void while its reaction is on, as the live
            # path left it, not a new vote (README, /unstrike).
            rows[key] = (rating, choice, 1, aspects, joined_at)
            written[key] = (rating, choice, at, 0, json_or_none(aspects), joined_at, 1)
            events.append((op.round_id, op.voter, "cast", rating, choice, at, json_or_none(aspects)))
            results.append(VoteResult("blocked"))
            continue
        if standing and (current[0], current[1], current[3]) == (rating, choice, aspects):  # its join date stays too
            results.append(VoteResult("unchanged", aspects))
        else:
            rows[key] = (rating, choice, 0, aspects, joined_at)
            written[key] = (rating, choice, at, 0, json_or_none(aspects), joined_at, 0)
            events.append((op.round_id, op.voter, "change" if standing else "cast", rating, choice, at, json_or_none(aspects)))
            results.append(VoteResult("changed" if standing else "recorded", aspects))
    return results, written, events


# How many voters of a round have a vote voided by /strike (a voter has one row: none of them has a vote standing); read
# in the close's transaction, before it voids the votes the membership rule set aside.
STRUCK_VOTERS = "SELECT COUNT(*) FROM votes WHERE round_id = {} AND retracted = 0 AND voided = 1"

STANDING_VOTES = "SELECT voter, rating, choice, aspects, joined_at FROM votes WHERE round_id = {} AND retracted = 0 AND voided = 0 ORDER BY cast_at, voter"


def standing_votes(rows: list[tuple]) -> list[StandingVote]:
    """`StandingVote`s from the backends' STANDING_VOTES rows."""
    return [
        StandingVote(Ballot(voter, rating, choice), json.loads(aspects) if aspects else None, joined_at)
        for voter, rating, choice, aspects, joined_at in rows
    ]


def json_or_none(value: dict | None) -> str | None:
    """An aspects dict as stored (sorted JSON text), or None."""
    return None if value is None else json.dumps(value, sort_keys=True)


def confirmed_row(request: ConfirmedRequest) -> tuple:
    """A ConfirmedRequest as its confirmed_requests columns (key, command, guild_id, data, confirmed_at)."""
    return (request.key, request.command, request.guild_id, json.dumps(request.data), request.confirmed_at)


def confirmed_request(key: str, command: str, guild_id: str | None, data: str, confirmed_at: float) -> ConfirmedRequest:
    return ConfirmedRequest(key, command, guild_id, json.loads(data), confirmed_at)
