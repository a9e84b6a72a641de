"""Numbered schema migrations; `PRAGMA user_version` records the last one applied.

Append a new number for every change; never edit one that has shipped.
"""

# What a terminal's scope (local:) holds under user: is a terminal user's (Discord votes only in guild: and user:
# scopes), whatever the login: renamed local:LOGIN (migration 13). Plain SQL both backends read alike (the one text).
TERMINAL_VOTERS_OF_THEIR_OWN = """
    UPDATE votes SET voter = 'local:' || substr(voter, 6)
        WHERE voter LIKE 'user:%' AND round_id IN (SELECT r.id FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE s.scope_id LIKE 'local:%');
    UPDATE vote_events SET voter = 'local:' || substr(voter, 6)
        WHERE voter LIKE 'user:%' AND round_id IN (SELECT r.id FROM rounds r JOIN sessions s ON s.id = r.session_id WHERE s.scope_id LIKE 'local:%');
    UPDATE sessions SET owner = 'local:' || substr(owner, 6) WHERE owner LIKE 'user:%' AND scope_id LIKE 'local:%';
    UPDATE audit SET actor = 'local:' || substr(actor, 6) WHERE actor LIKE 'user:%' AND scope_id LIKE 'local:%';
    """

# A terminal session's channel was "terminal" for every login, so one login resumed and ended another's open session
# on a shared database: it is its login's scope, local:LOGIN (bot.terminal), a place of its own (migration 14).
TERMINAL_SESSIONS_OF_THEIR_LOGIN = """
    UPDATE sessions SET channel_id = scope_id WHERE channel_id = 'terminal' AND scope_id LIKE 'local:%';
    """

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE scopes (
        id TEXT PRIMARY KEY,                       -- 'guild:<id>', 'user:<id>', 'local:<name>', 'sim:<name>'
        kind TEXT NOT NULL CHECK (kind IN ('guild', 'user', 'local', 'sim')),
        name TEXT NOT NULL DEFAULT '',
        settings TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        scope_id TEXT NOT NULL REFERENCES scopes(id) ON DELETE CASCADE,
        channel_id TEXT,
        spec TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',        -- how the front end presents it (vote style, hidden results)
        owner TEXT,                                -- who started it
        status TEXT NOT NULL CHECK (status IN ('active', 'stopped', 'finished')),
        track TEXT NOT NULL,                       -- the track the next round edits
        incumbent_score REAL,
        rounds_done INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX one_active_session_per_channel ON sessions(channel_id) WHERE status = 'active';
    CREATE INDEX sessions_by_scope ON sessions(scope_id);
    CREATE TABLE rounds (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('rating', 'ab')),
        plan TEXT NOT NULL,                        -- the incumbent, the actions, state keys and variant tracks
        message_ids TEXT NOT NULL DEFAULT '[]',
        opened_at REAL NOT NULL,
        closes_at REAL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'cancelled')),
        reward REAL,
        outcome TEXT,
        closed_at REAL,
        UNIQUE (session_id, idx)
    );
    CREATE INDEX open_rounds ON rounds(status) WHERE status = 'open';
    CREATE TABLE round_messages (
        message_id TEXT PRIMARY KEY,
        round_id INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE
    );
    CREATE TABLE votes (
        round_id INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
        voter TEXT NOT NULL,
        rating REAL,
        choice TEXT CHECK (choice IN ('a', 'b', 'both', 'neither')),
        cast_at REAL NOT NULL,
        retracted INTEGER NOT NULL DEFAULT 0,
        voided INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (round_id, voter)
    ) WITHOUT ROWID;
    CREATE INDEX votes_by_voter ON votes(voter);
    CREATE TABLE vote_events (                     -- every cast, change and retraction, for the record
        id INTEGER PRIMARY KEY,
        round_id INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
        voter TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('cast', 'change', 'retract')),
        rating REAL,
        choice TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX vote_events_by_voter ON vote_events(voter);
    CREATE TABLE strikes (
        scope_id TEXT NOT NULL REFERENCES scopes(id) ON DELETE CASCADE,
        voter TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (scope_id, voter)
    ) WITHOUT ROWID;
    CREATE TABLE qvalues (
        scope_id TEXT NOT NULL REFERENCES scopes(id) ON DELETE CASCADE,
        state TEXT NOT NULL,
        action TEXT NOT NULL,
        value REAL NOT NULL,
        visits INTEGER NOT NULL,
        PRIMARY KEY (scope_id, state, action)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        scope_id TEXT,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_by_scope ON audit(scope_id);
    """,
    # Ids are never reused (AUTOINCREMENT): a cached message, a button's custom id or a sleeping task
    # that names a deleted session or round must not come to name the next one (issue 11, case 1).
    # SQLite cannot add AUTOINCREMENT to a table, so each is rebuilt (sqlite.org/lang_altertable.html,
    # "Making Other Kinds Of Table Schema Changes"; foreign keys are off while migrations run).
    2: """
    CREATE TABLE sessions_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope_id TEXT NOT NULL REFERENCES scopes(id) ON DELETE CASCADE,
        channel_id TEXT,
        spec TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        owner TEXT,
        status TEXT NOT NULL CHECK (status IN ('active', 'stopped', 'finished')),
        track TEXT NOT NULL,
        incumbent_score REAL,
        rounds_done INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    INSERT INTO sessions_new SELECT id, scope_id, channel_id, spec, options, owner, status, track, incumbent_score,
        rounds_done, created_at FROM sessions;
    DROP TABLE sessions;
    ALTER TABLE sessions_new RENAME TO sessions;
    CREATE UNIQUE INDEX one_active_session_per_channel ON sessions(channel_id) WHERE status = 'active';
    CREATE INDEX sessions_by_scope ON sessions(scope_id);
    CREATE TABLE rounds_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('rating', 'ab')),
        plan TEXT NOT NULL,
        message_ids TEXT NOT NULL DEFAULT '[]',
        opened_at REAL NOT NULL,
        closes_at REAL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'cancelled')),
        reward REAL,
        outcome TEXT,
        closed_at REAL,
        UNIQUE (session_id, idx)
    );
    INSERT INTO rounds_new SELECT id, session_id, idx, mode, plan, message_ids, opened_at, closes_at, status, reward,
        outcome, closed_at FROM rounds;
    DROP TABLE rounds;
    ALTER TABLE rounds_new RENAME TO rounds;
    CREATE INDEX open_rounds ON rounds(status) WHERE status = 'open';
    """,
    # A person who used /forget-me while a round was open may still have a reaction on its message: it is
    # not read back into a vote (issue 11, case 2). Rows go when the round closes or is cancelled.
    3: """
    CREATE TABLE withheld_reactions (
        round_id INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
        voter TEXT NOT NULL,
        PRIMARY KEY (round_id, voter)
    ) WITHOUT ROWID;
    """,
    # The outbox: what must reach a channel (a round's summary, a cancellation) is recorded in the
    # transaction that closes or cancels the round, and posted (once) even after a crash (issue 11, case 8).
    4: """
    CREATE TABLE announcements (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel_id TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX unsent_announcements ON announcements(channel_id, id) WHERE sent_at IS NULL;
    """,
    # A scope's learned model (core.learner.Evidence): fixed-size statistics, updated as a round closes.
    5: """
    CREATE TABLE models (                          -- a scope's learned model: fixed-size statistics as JSON
        scope_id TEXT NOT NULL REFERENCES scopes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,                        -- which learner and feature set (core.agent.model_name)
        data TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (scope_id, name)
    ) WITHOUT ROWID;
    """,
    # Per-aspect ratings (musicality, novelty, coherence) as JSON {aspect: rating}; `rating` holds their compound.
    6: """
    ALTER TABLE votes ADD COLUMN aspects TEXT;
    ALTER TABLE vote_events ADD COLUMN aspects TEXT;
    """,
    # Facts the bot keeps about its deployment: a random id for its round-post nonces, the digest of the
    # commands it last synced (issue 12).
    7: """
    CREATE TABLE deployment (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # A round's vote history is read at each re-read of its reactions (Store.recorded_votes): by round, not a scan.
    8: """
    CREATE INDEX vote_events_by_round ON vote_events(round_id);
    """,
    # When a vote's voter joined the server (Unix seconds), as Discord said with the vote: the membership rule is
    # applied to it at each count, also after they leave (Discord no longer says then) or the bot restarts.
    9: """
    ALTER TABLE votes ADD COLUMN joined_at REAL;
    """,
    # What a round's post becomes once the round ends (JSON {"closed": text, "cancelled": text}, set as it is posted),
    # queued in the outbox by the transaction that ends the round: an outbox entry with a message id edits that
    # message (its vote buttons removed) rather than posting, so a crash loses the edit no more than a summary.
    10: """
    ALTER TABLE rounds ADD COLUMN ended_posts TEXT;
    ALTER TABLE announcements ADD COLUMN message_id TEXT;
    """,
    # A round has no close time until it is posted: one stored before is a /close asked for while it was on its way,
    # which its post keeps (set_round_messages). Rounds planned before this stored a close time at once: cleared.
    11: """
    UPDATE rounds SET closes_at = NULL WHERE status = 'open' AND message_ids = '[]';
    """,
    # When (Unix seconds) a round's votes were taken for its close (its reactions re-read and every vote before
    # stored): from then on no vote changes it, and a restart closes it from what is stored, without reading the
    # reactions again (a change made after an answered /close must not count).
    12: """
    ALTER TABLE rounds ADD COLUMN votes_taken_at REAL;
    """,
    # A terminal user's voter was user:LOGIN, a Discord user's kind, so the login 123 voted as the Discord user 123
    # (forget-user deleted both): it is local:LOGIN, as their scope.
    13: TERMINAL_VOTERS_OF_THEIR_OWN,
    # A terminal session's place is its login's (channel_id local:LOGIN, not "terminal" for all): see above.
    14: TERMINAL_SESSIONS_OF_THEIR_LOGIN,
    # When (Unix seconds) a round's channel was told that reactions are not votes (a round voting by buttons or
    # menus): once a round, also across restarts and processes (Store.tell_reactions_are_no_votes).
    15: """
    ALTER TABLE rounds ADD COLUMN reactions_notice_at REAL;
    """,
    # A Confirm a member pressed (/forget-me, /reset) is recorded before the press is acknowledged, and deleted by the
    # transaction that carries it out: one a crash cut short is carried out at the next start (bot/discord/confirmed.py).
    16: """
    CREATE TABLE confirmed_requests (
        key TEXT PRIMARY KEY,                      -- the question: its command's interaction id
        command TEXT NOT NULL,                     -- forget-me, reset
        guild_id TEXT,                             -- where it was asked (NULL: a DM): the shard that carries it out
        data TEXT NOT NULL,                        -- JSON: who confirmed what, and how to edit the question (for 15 min)
        confirmed_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # Which deletion withheld the person (its forget_me audit entry's id): a vote of theirs stamped with an older newest
    # deletion known (VoteOp.forgets_seen) was made before it and is refused, though it reaches the database after it.
    # Rows from before this had no number: 0, so no vote is refused by them but a re-read's, as before.
    17: """
    ALTER TABLE withheld_reactions ADD COLUMN forget_id INTEGER NOT NULL DEFAULT 0;
    """,
    # The round an outbox entry asks people to vote in (a notice that reactions are not votes): one still queued when
    # that round no longer takes votes (Discord out or failing until its close) is given up, not posted after the close.
    # No reference: a round deleted with its scope leaves its id, and a missing round takes no votes either.
    18: """
    ALTER TABLE announcements ADD COLUMN round_id INTEGER;
    """,
}

SCHEMA_VERSION = max(MIGRATIONS)
