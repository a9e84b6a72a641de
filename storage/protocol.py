"""What every storage backend offers: the `Store` protocol, the rows it returns and its one error.

The conductor, the Discord cogs, the export and the front ends use only these operations, so a backend
is one class behind this protocol (SQLite today: storage/sqlite.py) and a setting, not an edit
everywhere. Every backend keeps the same promises: a vote is durable when `apply_votes` returns; votes
are applied in the order given; `close_round` settles and applies its Q-updates in one transaction,
exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from core.agent import QEntry, QKey
from core.crowd import Ballot
from core.engine import Outcome
from core.learner import Evidence

# Called just before a migration's commit, in the task that opens the store: `crowdtune upgrade` settles its outcome
# there (bot.stopping.settle), so a stop after it cannot end an upgrade that is whole with 143, nor one before leave it made.
MIGRATION_COMMITTING: ContextVar[Callable[[], None]] = ContextVar("migration_committing", default=lambda: None)

# Awaited once when a write of the task begins to wait for another connection's lock on the database (SQLite's
# SqliteStore._begin): a slash command sets it to acknowledge itself, as the wait may outlast Discord's 3 s.
LOCK_WAITING: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar("lock_waiting", default=None)


class StorageError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


class NoDatabase(StorageError):
    """There is nothing to read where a database was named to be read (`open_store(..., read_only=True)`):
    no file there, or a database that holds no crowdtune data yet. Reading makes none."""


class OlderSchema(StorageError):
    """A database of an older crowdtune's schema opened to read only: reading upgrades nothing (`other_schema`).
    `older` names it and its schema, for a line of a caller's own: "the database NAME is from an older crowdtune (schema 12)"."""

    def __init__(self, message: str, older: str = "") -> None:
        super().__init__(message)
        self.older = older


def other_schema(path: object, version: int, known: int) -> StorageError:
    """The refusal of a database of another crowdtune's schema `version` (this one's is `known`), for either
    backend: a newer one is never touched; an older one is upgraded only by a store that writes (its
    migrations are writes), so a store opened to read only says which command does it."""
    if version > known:
        return StorageError(
            f"the database {path} is from a newer crowdtune (schema {version}, this one knows {known}): use that crowdtune, "
            "or upgrade this one"
        )
    older = f"the database {path} is from an older crowdtune (schema {version}"
    return OlderSchema(f"{older}, this one reads {known}) and reading changes nothing: {UPGRADE_IT}", f"{older})")


# What upgrades a database of an older schema, said by every command that cannot use one as it is.
UPGRADE_IT = "run crowdtune upgrade on it (or start the bot on it, which upgrades it as it starts), then try again"


class DatabaseUnwritable(StorageError):
    """A write the database refused mid-run for want of room or resources (storage.out_of_room: SQLite's full disk
    or I/O error; PostgreSQL's SQLSTATE class 53, the server's disk full, its memory, connections or a limit such
    as temp_file_limit): the transaction rolled back, so what was stored before is all there. The message names
    the database and the reason (storage.naming_refusals)."""


class DatabaseUnreachable(StorageError):
    """The database's server cannot be reached mid-run, or went away under the work (PostgreSQL stopped, restarting,
    its connection lost): the transaction it cut short rolled back, so what was committed stays, and the store works
    again once the server is back. The message names the database and the reason (storage.postgres)."""


class DatabaseBusy(StorageError):
    """Another connection held the database's lock for longer than a write waits for it (SQLite's SQLITE_BUSY after its
    busy timeout: an operator's `sqlite3` shell in a transaction, a backup tool; PostgreSQL's lock timeout, or a deadlock
    or serialization failure that outlasted the retries): the transaction rolled back, so what was committed stays, and
    the store works again once the lock is let go. The message names the database and the reason (storage.naming_refusals)."""


class DatabaseGone(StorageError):
    """The database the store opened is no longer the one at its location (its file was removed or
    replaced while the program ran): nothing more can be saved until it is restarted."""


class ClaimLost(DatabaseGone):
    """A claim (claim_shards, claim_scope) was lost for good: the PostgreSQL connection holding its lock ended (the
    server restarted, the connection was cut) and another process took the lock before this one could take it again.
    Every write is refused from then on, so two processes never run the same shard or scope: the process must stop."""


@dataclass(frozen=True)
class SessionRow:
    id: int
    scope_id: str
    channel_id: str | None
    spec: dict
    status: str
    track: dict
    incumbent_score: float | None
    rounds_done: int
    created_at: float
    options: dict
    owner: str | None


@dataclass(frozen=True)
class RoundRow:
    id: int
    session_id: int
    scope_id: str
    channel_id: str | None
    index: int
    mode: str
    plan: dict
    message_ids: tuple[str, ...]
    opened_at: float
    closes_at: float | None
    status: str
    reward: float | None
    outcome: dict | None
    votes_taken_at: float | None = None  # when its votes were taken for its close (Store.take_votes): it takes no more

    @property
    def takes_votes(self) -> bool:
        """Open, its votes not yet taken for its close: a vote on it still counts."""
        return self.status == "open" and self.votes_taken_at is None


@dataclass(frozen=True)
class VoteOp:
    """A cast or a retraction, to be applied in order with others (see Store.apply_votes)."""

    round_id: int
    voter: str
    kind: str  # "cast" or "retract"
    rating: float | None = None
    choice: str | None = None
    only_if_standing: bool = False  # a retraction that applies only if (rating, choice) is the standing vote
    at: float | None = None
    # A cast of some of the aspects (core.crowd.ASPECTS): merged with the voter's standing ones, and the
    # vote's rating becomes their compound (core.crowd.compound_rating); `rating` is then ignored.
    aspects: tuple[tuple[str, float], ...] | None = None
    scope_id: str | None = None  # the scope the caller believes the round belongs to (a cached lookup): refused if not
    # A retraction of a vote reaction while others of the person's stay on the message: the standing vote is left
    # when it is one of `keep` ((rating, choice) pairs), else replaced by `instead` (a cast, refused if struck).
    keep: tuple[tuple[float | None, str | None], ...] = ()
    instead: tuple[float | None, str | None] | None = None
    # A cast's: when the voter joined the round's server (Unix seconds), as Discord said with it; None: not said (the
    # date stored with their vote before, if any, stays).
    joined_at: float | None = None
    # A cast read back from a round's reactions (the reconciler's re-read), not a person's own act: refused for a voter
    # who used /forget-me while the round was open (withheld_reactions), checked in the transaction that would store
    # it, so a re-read that listed the reactions before the deletion never stores the vote again after it.
    reread: bool = False
    # The newest deletion of a person's data (forget_user's "forget") the caller knew of when the vote came, None: the vote
    # is made as it is stored. A cast of a person withheld by a later deletion was made before it (it waited in a vote
    # writer while another process, or a shard, deleted their data) and is refused in the transaction that would store it.
    forgets_seen: int | None = None

    @property
    def casts(self) -> bool:
        """Whether the op may store a vote (and so must be refused for a struck voter)."""
        return self.kind == "cast" or self.instead is not None


@dataclass(frozen=True)
class Announcement:
    """A message that must reach a channel, recorded with the change it announces (the outbox)."""

    id: int
    channel_id: str
    content: str
    created_at: float  # when it was stored (Unix seconds): with its id, which entry it is (its post's nonce)
    message_id: str | None = None  # set: an edit of this message of the channel (its components removed), not a post
    # Set: the round whose voting it speaks of (a notice to vote there), given up once that round takes no votes. A
    # round's summary, cancellation or post edit has none: it says how the round ended, and is posted whenever it can be.
    round_id: int | None = None


@dataclass(frozen=True)
class ConfirmedRequest:
    """A Confirm a member pressed (/forget-me, /reset), recorded before the press was acknowledged and deleted by the
    transaction that carries it out (`forget_user`, `reset_scope` with `request`): still here after a start, a crash cut
    it short. `data` is the command's (JSON-able); `guild_id` None: asked in a DM; `confirmed_at` in Unix seconds."""

    key: str
    command: str
    guild_id: str | None
    data: dict
    confirmed_at: float


@dataclass(frozen=True)
class EndedSession:
    """A session `end_session` ended: `cancelled`, each open round it cancelled (by id) with its standing votes as
    that transaction found them (as `standing_votes` reads them), so what a /stop says it cancelled is what it did:
    no vote lands on a cancelled round, but a /strike or /forget-me after it may void or delete one of them."""

    cancelled: dict[int, list[StandingVote]]


@dataclass(frozen=True)
class ResetDone:
    """What a reset (`reset_scope`) deleted, counted in its own transaction, so what is said of it is what it did:
    `q_values`, the Q-values per state encoding (storage.rows.Q_KEY_KINDS: a table-based preset counts its own kind),
    and `judged`, per learned model's name, the judged edits its evidence held (a model-based preset counts its own)."""

    q_values: dict[str, int]
    judged: dict[str, int]

    @property
    def nothing(self) -> bool:
        """Whether it found nothing to delete (no Q-value of any kind, no model): another reset came first."""
        return not any(self.q_values.values()) and not self.judged


@dataclass(frozen=True)
class StandingVote:
    """A standing vote as a front end's count reads it (Store.standing_votes): the ballot, its aspects (a
    three-aspect vote) and when its voter joined the server (Unix seconds; None: Discord did not say with it)."""

    ballot: Ballot
    aspects: dict[str, float] | None = None
    joined_at: float | None = None


@dataclass(frozen=True)
class VoteResult:
    status: str  # "recorded", "changed", "unchanged", "retracted", "closed", "cancelled", "unknown_round", "blocked", "too_fast", "set_aside"
    aspects: dict[str, float] | None = None  # an aspects cast: the voter's aspects now standing (their compound is the vote)
    member_days: int = 0  # "set_aside" (stored, but the membership rule sets it aside): the age, in whole days, asked

    @property
    def counted(self) -> bool:
        return self.status in ("recorded", "changed", "unchanged", "retracted")


def closed_audit(round_id: int, outcome: Outcome, set_aside: list[str]) -> dict:
    """The audit entry of a round's close: its reward, how many counted and, when any, the voters set aside."""
    entry = {"round": round_id, "reward": outcome.reward, "voters": outcome.voters}
    if set_aside:
        entry["set_aside"] = set_aside
    return entry


def outcome_to_dict(outcome: Outcome) -> dict:
    return {
        "reward": outcome.reward,
        "variant_rewards": list(outcome.variant_rewards),
        "updates": [[list(k), e.value, e.visits] for k, e in outcome.updates],
        "kept_edit": outcome.kept_edit,
        "winner": outcome.winner,
        "voters": outcome.voters,
        "summary": outcome.summary,
        "incumbent_score": outcome.incumbent_score,
        "observations": [[list(x), y] for x, y in outcome.observations],
        "comparisons": [[list(x), y] for x, y in outcome.comparisons],
        "tied": outcome.tied,
    }


Settle = Callable[..., Outcome]  # (ballots, q_entries, incumbent_score, voter_history, reference) -> Outcome
"""`settle(ballots, q_entries, incumbent_score, voter_history) -> Outcome`: what `close_round` calls
inside its transaction (core/engine.py's settlement, a pure function)."""


Announce = Callable[[Outcome, list[Ballot], int, int], str | list[str]]
"""`announce(outcome, ballots, set_aside, struck) -> text` for the round's channel, or texts posted in their order (a
summary, then that its session finished: `storage.rows.finishes`), queued in the close's transaction (the outbox), with
what that transaction read, as the verdict: the ballots that counted, how many standing votes it set aside
(close_round's `set_aside` voters) and how many voters have a vote voided by /strike (a strike made meanwhile included)."""


class ClosesOnExit:
    """`async with store:` closes the store on the way out."""

    async def close(self) -> None:
        raise NotImplementedError

    def spend_reserve(self) -> None:
        """(Store.spend_reserve) Nothing kept: a PostgreSQL server's disk is its own."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Store(Protocol):
    """A crowdtune database. All methods are coroutines; a backend raises StorageError when the
    database cannot be used, ValueError for a request that breaks a rule (a second active session in
    a channel)."""

    path: str  # where the data lives: what open_store and open_reader take

    async def close(self) -> None: ...
    async def claim_instance(self, holder: str) -> None:
        """Make this process the only one running a bot on this database until the store is closed (a
        crash releases it too). StorageError naming the running one (its `holder` text: process id,
        host, start time) if another holds it."""
        ...
    async def refuse_if_held(self, remedy: str) -> None:
        """StorageError naming the process running on this database (as claim_instance, claim_shards and claim_scope
        name it), `remedy` ending the line, for a command that only reads but must not run beside a writer (copy-db:
        what is written after the copy would be lost). Writes nothing, so a store opened to read only may ask."""
        ...
    def spend_reserve(self) -> None:
        """The run ends on a disk that refused a write: the writes that end it (a simulation's stop) may use the room
        kept for them (SQLite: `<database>.lock`'s RESERVE, claim_instance). Till then, once a refused write gave that
        room back, every write first takes it again, and is refused (DatabaseUnwritable) while the disk has not room."""
        ...
    async def schema_version(self) -> int: ...

    # -- scopes (a server's agent, or a person's), their settings and the audit log --
    async def ensure_scope(self, scope_id: str, kind: str, name: str = "") -> None: ...
    async def scope_settings(self, scope_id: str) -> dict: ...
    async def update_scope_settings(self, scope_id: str, changes: dict, actor: str) -> dict: ...
    async def scopes(self) -> list[tuple[str, str, str]]:
        """(scope id, kind, name) of every scope."""
        ...
    async def has_scope(self, scope_id: str) -> bool:
        """Whether the scope exists (a person's: their personal agent, made by their first DM command)."""
        ...
    async def audit(self, scope_id: str | None, actor: str, action: str, detail: dict | None = None) -> None: ...
    async def reset_scope(self, scope_id: str, actor: str, request: str | None = None) -> ResetDone | None:
        """Forget a scope's agent (its Q-values and learned models); returns what was deleted, as its transaction found it. With
        `request` (a ConfirmedRequest's key): deleted in the same transaction, and None (nothing done) if it is gone
        already, carried out before (exactly once, also by two processes)."""
        ...

    # -- sessions --
    async def create_session(
        self, scope_id: str, channel_id: str | None, spec: dict, track: dict, actor: str, options: dict | None = None
    ) -> SessionRow:
        """Start a session; a channel runs one active session at a time (ValueError otherwise). The messages still
        queued for that channel (`pending_announcements`, not the edits of posts) are an ended session's and are
        given up in the same transaction: they are not posted into the new session."""
        ...
    async def session(self, session_id: int) -> SessionRow | None: ...
    async def set_session_options(self, session_id: int, options: dict) -> bool:
        """Replace the `options` of session `session_id` (what create_session stored: a terminal session's folder,
        kept again when it moved). False (nothing changed) when there is no such session."""
        ...
    async def active_session_in(self, channel_id: str) -> SessionRow | None: ...
    async def latest_session(self, scope_id: str, channel_id: str | None) -> SessionRow | None: ...
    async def active_sessions(self, scope_id: str | None = None) -> list[SessionRow]:
        """Every active session (of one scope, when given), oldest first."""
        ...
    async def all_sessions(self) -> list[SessionRow]: ...
    async def rate_starting_track(self, session_id: int, score: float, actor: str) -> bool:
        """Set a new session's starting-track score (a rating 1-10); False once it has one or a closed round."""
        ...
    async def end_session(self, session_id: int, status: str, actor: str) -> EndedSession | None:
        """Stop or finish a session; its open rounds are cancelled (what it cancelled: EndedSession). None if it had
        already ended."""
        ...

    # -- rounds --
    async def next_round_index(self, session_id: int) -> int: ...
    async def open_round(self, session_id: int, index: int, mode: str, plan: dict, closes_at: float | None) -> RoundRow | None:
        """Record a planned round; opening the same index twice returns the round already there. None once the
        session has ended (a /stop while the round was being planned)."""
        ...
    async def set_round_messages(
        self, round_id: int, message_ids: list[str], closes_at: float | None = None, ended_posts: dict[str, str] | None = None,
    ) -> None:
        """Record a round's posted messages and (`closes_at`, Unix seconds) when it closes, unless a close was asked for
        before it was posted (`set_closes_at`: a round's closes_at is None until then), which stands. `ended_posts`: what its
        messages become when the round ends, by the round's status ("closed", "cancelled"), queued in the outbox as
        edits by the transaction that ends it (close_round, end_session), or by this one if it ended already."""
        ...
    async def set_closes_at(self, round_id: int, closes_at: float) -> bool:
        """Bring an open round's close forward to `closes_at` (Unix seconds; a /close), also before it is posted
        (`set_round_messages` keeps it then). False if it closes at that time or before already, or is not open."""
        ...
    async def tell_reactions_are_no_votes(self, round_id: int, notice: str | None = None) -> bool:
        """Record that an open round's channel is told now that reactions are not its votes, with `notice` (its words)
        queued for that channel in the outbox in the same transaction, about this round (`Announcement.round_id`: not
        posted once the round takes no votes); True the first time, False once recorded (in any
        process, before a restart too) or when the round is not open."""
        ...
    async def take_votes(self, round_id: int) -> bool:
        """Take an open round's votes for its close, now: every vote applied from then on is refused ("closed"), so
        what is stored is what it closes with, also after a restart. False if taken already or not open."""
        ...
    async def round(self, round_id: int) -> RoundRow | None: ...
    async def round_for_message(self, message_id: str) -> RoundRow | None: ...
    async def open_rounds(self) -> list[RoundRow]: ...
    async def open_round_of(self, session_id: int) -> RoundRow | None: ...
    async def rounds_of(self, session_id: int) -> list[RoundRow]: ...
    async def last_message_before(self, session_id: int, index: int) -> str | None:
        """The last message id of the session's latest posted round before round `index`, or None."""
        ...
    async def last_closed_round_before(self, session_id: int, index: int) -> RoundRow | None:
        """The session's latest closed round before round `index` (one indexed row, however long the session), or None."""
        ...
    async def top_rounds(self, scope_id: str, limit: int = 5, mode: str = "rating") -> list[RoundRow]:
        """The scope's closed rounds of `mode` with the highest rewards: rated rounds by the crowd's verdict
        (1-10), A/B rounds whose edit stayed by its chance of beating the track before (an undone edit did not
        clearly beat it, whatever its chance); never the two mixed."""
        ...
    async def learning_history(self, scope_id: str) -> list[tuple[float, float | None, float | None]]:
        """Per closed rated round (rating mode), oldest first: (verdict, the kept track's score after it, the
        ratings' sd)."""
        ...
    async def ab_history(self, scope_id: str) -> list[tuple[float, bool, int, int]]:
        """Per closed A/B round with votes, oldest first: (the chosen edit's reward, whether an edit was kept,
        the standing votes, those that preferred an edit to the track before)."""
        ...
    async def cancel_round(self, round_id: int, actor: str, reason: str, announce: str | None = None) -> bool:
        """Cancel an open round (nothing is learned); with `announce`, that text is queued for the round's
        channel in the same transaction. False if it was not open (and nothing is queued)."""
        ...
    async def close_round(
        self, round_id: int, keys: list[QKey], settle: Settle, actor: str = "engine", announce: Announce | None = None,
        set_aside: Collection[str] = (),
    ) -> Outcome | None:
        """Settle a round with `settle(ballots, q_entries, incumbent_score, voter_history, reference)` and
        store the outcome, its Q-updates and its model observations in one transaction (`reference`: the
        `core.engine.Reference` of the session's last rating round whose edit was kept, or None); with `announce`, the text `announce(outcome,
        ballots, set_aside, struck)` (Announce: what this transaction counted) is queued for the round's channel in it. None if the round was not
        open, so a second close never rewards (nor announces) twice. The standing votes of the `set_aside` voters (a
        front end's rule, such as a membership age) are neither settled nor announced, and are voided in the same
        transaction (audited with the close), so no later reading counts them either."""
        ...

    # -- the outbox: announcements recorded with what they announce, posted once --
    async def pending_announcements(self, channel_id: str | None = None) -> list[Announcement]:
        """Announcements not yet marked sent (of one channel, or all), oldest first."""
        ...
    async def mark_announced(self, announcement_id: int) -> None:
        """Record that an announcement reached its channel."""
        ...
    async def queue_announcement(self, channel_id: str, content: str) -> None:
        """Queue a message for a channel in the outbox, posted after what is queued there already (the runner's
        `announce`); for one that announces no change of its own (else it is queued with that change)."""
        ...

    # -- votes --
    async def apply_votes(self, ops: list[VoteOp]) -> list[VoteResult]:
        """Apply casts and retractions in the order given, in one transaction; durable on return."""
        ...
    async def ballots(self, round_id: int) -> list[Ballot]: ...
    async def ballot_count(self, round_id: int) -> int: ...
    async def standing_votes(self, round_id: int) -> list[StandingVote]:
        """The round's standing votes (`ballots`, in their order) with their aspects and their voters' join dates:
        all a front end's count of an open round needs, in one read."""
        ...
    async def voided_ballots(self, round_id: int) -> list[Ballot]:
        """The round's votes a strike voided (not withdrawn since): what the re-read of the reactions leaves void
        while their reaction stays on, so a lifted strike brings back none of them (new votes count)."""
        ...
    async def aspect_ratings_of_scope(self, scope_id: str) -> list[dict[str, float]]:
        """The standing votes' per-aspect ratings over every closed round of a scope (votes without aspects left out)."""
        ...
    async def strike(self, scope_id: str, voter: str, actor: str) -> dict[str, int] | None:
        """Void a voter's standing votes in a scope (not those they withdrew) and refuse their new ones there; returns how
        many were voided, {"open": in open rounds, "over": in rounds already over} (the audit entry says the total and
        the open rounds'), or None, changing nothing, if the voter was already struck there. Audited."""
        ...
    async def unstrike(self, scope_id: str, voter: str, actor: str) -> bool:
        """Lift a strike (new votes count again; voided ones stay void); False if there was none. Audited."""
        ...
    async def recorded_votes(self, round_id: int) -> dict[str, dict[float | str, float]]:
        """{voter: {vote: when it was last recorded (Unix seconds)}} for every vote ever cast for each voter in the
        round (its vote history: casts and changes, retracted or voided since or not); a vote is the rating, or in
        A/B the choice. One query."""
        ...
    async def withheld_voters(self, round_id: int) -> set[str]:
        """Voters whose reactions on this round are not to be read back into votes: they used
        `forget_user` while it was open."""
        ...
    async def last_forget(self) -> int:
        """The newest committed deletion of a person's data (forget_user's "forget"; 0: none that withholds a round now):
        what a vote writer stamps its votes with until it hears of a later one (VoteOp.forgets_seen)."""
        ...

    # -- the agent's Q-values --
    async def q_entries(self, scope_id: str, keys: Iterable[QKey]) -> dict[QKey, QEntry]: ...
    async def q_table(self, scope_id: str) -> dict[QKey, QEntry]: ...
    async def q_size(self, scope_id: str, encoding: str | None = None) -> int:
        """How many Q-values the scope holds: of one state encoding (core.agent.STATE_ENCODINGS: a tabular
        preset's own), or of all. KeyError for an unknown encoding."""
        ...
    async def put_q_entries(self, scope_id: str, entries: Iterable[tuple[QKey, QEntry]]) -> None: ...

    # -- learned models: fixed-size evidence per scope (reading one costs the same whatever the history) --
    async def model_evidence(self, scope_id: str, name: str) -> Evidence | None: ...
    async def shared_evidence(self, name: str, exclude_scope: str) -> list[Evidence]:
        """The evidence for `name` of every other scope whose settings opt in (share_learning)."""
        ...

    # -- a person's data, exports and health --
    async def user_data(self, voter: str) -> dict: ...
    async def forget_user(self, voter: str, personal_scope: str, actor: str = "user", request: str | None = None) -> dict | None:
        """Delete a voter's votes and vote events everywhere and their personal scope; keep moderation
        records (strikes, the audit log); withhold their reactions on rounds open now (`withheld_voters`): a re-read's
        cast of them there is refused (VoteOp.reread), and a batch of votes under way, from any process, lands wholly
        before the deletion or after it. Audited as done by `actor`: "user" (the person themselves, /forget-me, unnamed) or "cli" (an operator,
        `crowdtune forget-user`). Returns {"votes": n, "vote_events": n, "personal_agent": bool, "sessions": n (the personal agent's), "forget": the deletion's
        number (its audit entry's id), which grows with each deletion (VoteOp.forgets_seen)}; with `request`, as
        `reset_scope`: None if that confirmed request was carried out before."""
        ...
    async def record_confirmed(self, request: ConfirmedRequest) -> None:
        """Record a pressed Confirm before its press is acknowledged (one recorded again under its key: kept as it was)."""
        ...
    async def confirmed_requests(self) -> list[ConfirmedRequest]:
        """The pressed Confirms not carried out yet, oldest first."""
        ...
    async def drop_confirmed(self, key: str) -> None:
        """Forget a pressed Confirm whose work failed (its member was told nothing was done); nothing if it is gone."""
        ...
    async def export_rows(self, scope_id: str | None) -> dict[str, list[dict]]: ...
    async def check_writable(self) -> None: ...

    # -- copying a whole database (storage/copy.py) --
    def read_table(self, table: str) -> AsyncIterator[tuple[list[str], list[tuple]]]:
        """Every row of one of storage.rows.TABLES, in chunks of (column names, rows)."""
        ...
    async def write_tables(self, chunks: AsyncIterable[tuple[str, list[str], list[tuple]]]) -> dict[str, int]:
        """Insert (table, column names, rows) chunks, ids included, in one transaction; returns rows per
        table. ValueError if this database already holds data."""
        ...

    # -- shards (bot/discord/shards.py) --
    async def claim_shards(self, shard_count: int, shard_ids: Iterable[int]) -> None:
        """Hold these shards for this process until `close` or its death; StorageError if another
        process holds one of them (or runs another shard count)."""
        ...

    async def claim_scope(self, scope_id: str) -> None:
        """Hold this scope for this process (a terminal session or a simulation drives its scope alone) until
        `close` or its death; StorageError naming the process that holds it."""
        ...

    async def listen_forgotten(self, callback: Callable[[str, int], None]) -> None:
        """Call `callback(voter, forget)` (in this event loop; `forget` as forget_user returns it) each time forget_user
        deletes a person's data, in this process or another: a running bot then drops what it holds of them in memory
        and stamps later votes with it (VoteOp.forgets_seen). PostgreSQL, which bots of several
        processes share and `crowdtune forget-user` writes beside them, tells with NOTIFY as the deletion commits, and
        one sent while the listening connection was cut as it is taken again (each deletion newer than those told that
        still withholds an open round: `withheld_reactions`); on SQLite only the process holding the file writes to it, so nothing is heard (its /forget-me says it)."""
        ...

    async def still_there(self) -> None:
        """DatabaseGone if the database is no longer the one opened (a SQLite file removed or replaced, or its folder;
        then its -wal and -shm are removed too, as no file may meet them later), as every write would raise from then
        on. Cheap, however much the database holds, and never blocking the event loop: a stat of the file, in a thread.
        Nothing on PostgreSQL, which is no file (a claim lost for good is claim_lost's)."""
        ...

    async def claim_lost(self) -> ClaimLost:
        """Wait until a claim of this process (claim_shards, claim_scope) is lost for good, and return why (ClaimLost,
        raised by every write from then on). A claim whose lock was dropped (PostgreSQL restarted, its connection cut)
        is taken again by itself first; only another process taking it meanwhile loses it. Never returns on SQLite,
        whose claim is a lock on a file that the process holds until it ends."""
        ...

    # -- the deployment: facts the bot keeps about itself (its id, the commands it last synced) --
    async def deployment_value(self, key: str) -> str | None: ...
    async def forget_deployment_value(self, key: str) -> None:
        """Remove `key` and its value; nothing if there is none."""
        ...
    async def set_deployment_value(self, key: str, value: str, replace: bool = True) -> str:
        """Store `value` under `key` (with replace=False only if there is none yet); returns the value stored."""
        ...


class Reader(Protocol):
    """Read-only, synchronous, streaming access for a worker thread or process (exports, a person's copy
    of their data, history scans), made by `open_reader(store.path)`: one snapshot, one row at a time,
    so neither the event loop nor memory grows with the data. A context manager."""

    def __enter__(self) -> Reader: ...
    def __exit__(self, *exc: object) -> None: ...
    def scopes(self, scope_id: str | None) -> list[str]: ...
    def rounds(self, scope_id: str | None) -> Iterator[dict]: ...
    def votes(self, scope_id: str | None) -> Iterator[dict]: ...
    def sessions(self, scope_id: str | None) -> Iterator[dict]: ...
    def audit(self, scope_id: str | None) -> Iterator[dict]: ...
    def qvalues(self, scope_id: str | None) -> Iterator[dict]: ...
    def models(self, scope_id: str | None) -> Iterator[dict]: ...
    def votes_of(self, voter: str) -> Iterator[dict]: ...
    def rewards(self, scope_id: str) -> Iterator[float]: ...
    def activity(self) -> dict[str, int]: ...
    def round_votes(self, round_ids: list[int], rating: float) -> tuple[dict[str, int], int]: ...
