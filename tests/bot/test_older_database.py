"""A database of an older crowdtune at the command line, on a real SQLite file and the tests' real PostgreSQL: what
the commands that only read say to do (and that doing it upgrades it), and that a command ending up changing nothing
leaves its schema as it was, while one that changes something upgrades it first."""

import asyncio
import gc
import os
from pathlib import Path

import pexpect

from bot.conductor import Conductor
from bot.errors import ExitCode
from core.engine import SessionSpec
from dbrows import as_of_schema, query
from storage import is_postgres_url, open_store
from storage.postgres import public_url
from test_cli import crowdtune
from test_operator import GUILD, PERSON, _counts, _fill, _fill_terminal, _spawn

OLDER = 12  # the last schema before terminal voters had their own kind (local:LOGIN, migration 13)
UPGRADE = "run crowdtune upgrade on it (or start the bot on it, which upgrades it as it starts)"


def _make_older(db: str) -> None:
    """Take `db` back to schema OLDER: its migrations after it run again as it is opened to write."""
    as_of_schema(db, OLDER)


def _version(db: str) -> int:
    if is_postgres_url(db):
        return query(db, "SELECT version FROM crowdtune_schema")[0][0]
    return query(db, "PRAGMA user_version")[0][0]


async def _idle_scope(db: str, scope: str) -> None:
    """A terminal login's scope whose agent has learned nothing: a session started, never rated."""
    store = await open_store(db)
    try:
        await Conductor(store).start(scope, "local", scope, SessionSpec(), actor=scope)
    finally:
        await store.close()


def test_what_changes_nothing_leaves_an_older_schema_as_it_was_and_what_changes_something_upgrades_it(db_location, tmp_path):
    """Found by a trial: forget-user with nothing stored for the name given upgraded the database's schema, though it
    changed nothing else; so did reset of a scope not there or with nothing learned, run refusing a new session's
    --out and copy-db refusing a target that holds data. Each now reads the database as
    this crowdtune reads it without changing it (an older SQLite file upgraded in a private copy), and upgrades it
    only when it has something to change; an older PostgreSQL database, not copied, is refused by those that cannot
    tell without upgrading it (a later trial: they upgraded it, then changed nothing)."""
    db = db_location
    asyncio.run(_fill(db))
    asyncio.run(_fill_terminal(db, "root", voter="user:root"))  # as an older crowdtune stored a terminal's votes
    asyncio.run(_idle_scope(db, "local:idle"))
    _make_older(db)
    before = _counts(db)
    nobody = crowdtune("forget-user", "42", "--db", db, "--yes", cwd=tmp_path, check=False)
    unknown = crowdtune("reset", "--scope", "guild:1", "--db", db, "--yes", cwd=tmp_path, check=False)
    idle = crowdtune("reset", "--scope", "local:idle", "--db", db, "--yes", cwd=tmp_path, check=False)
    if is_postgres_url(db):  # not copied, it cannot tell what they would change without upgrading it: they say so
        for refused in (nobody, unknown, idle):
            assert refused.returncode == ExitCode.DATABASE and UPGRADE in refused.stderr, refused.stderr
    else:
        assert "nothing of user:42 is stored in" in nobody.stdout and nobody.stderr == "", nobody
        assert unknown.returncode == ExitCode.USAGE and "no scope 'guild:1'" in unknown.stderr, unknown.stderr
        assert "the agent of local:idle has not learned anything yet: nothing to reset" in idle.stdout, idle.stdout
    # A new session refused the --out it would write into (its folder's folder does not exist).
    refused = crowdtune("run", "--no-audio", "--db", db, "--out", "typo/x", stdin="5\n", cwd=tmp_path, check=False)
    assert refused.returncode == ExitCode.FILE and "typo" in refused.stderr, refused.stderr
    # A copy into it is refused (it holds data), before it is opened to write.
    source = str(tmp_path / "source.db")
    asyncio.run(_fill(source))
    copy = crowdtune("copy-db", "--from", source, "--to", db, cwd=tmp_path, check=False)
    # An older PostgreSQL database, not copied to be read, is refused as one: what it holds is told only once upgraded.
    holds = f"is from an older crowdtune (schema {OLDER}); copy into" if is_postgres_url(db) else "already holds data"
    assert copy.returncode == ExitCode.USAGE and holds in copy.stderr, copy.stderr
    assert _counts(db) == before and list(tmp_path.glob("*.json")) == [] and _version(db) == OLDER
    if is_postgres_url(db):  # what forget-user and reset said to do
        crowdtune("upgrade", "--db", db, cwd=tmp_path)
    else:
        gc.collect()  # the test's own connections (dbrows.query) closed: they keep a -wal and -shm beside it
        assert sorted(os.listdir(tmp_path)) == ["source.db", "t.db"], os.listdir(tmp_path)
    # What is stored only under the name the upgrade gives it (user:root becomes local:root) is found, and deleted.
    root = crowdtune("forget-user", "local:root", "--db", db, "--yes", cwd=tmp_path)
    assert "deleted 2 votes and their personal agent with its 1 session and its compositions of local:root" in root.stdout, root.stdout
    assert _version(db) > OLDER and _counts(db)["votes"] == before["votes"] - 2


def test_every_command_that_only_reads_an_older_database_names_what_upgrades_it_and_that_does(db_location, tmp_path):
    """Found by trials: export of an older database said to run a command that writes to it first (the bot, crowdtune
    run or simulate), and `crowdtune run < /dev/null` (its input ended: it starts nothing) upgraded nothing; then the
    line named a terminal session, which left a stray session in a bot's database. Each command that only reads now
    names `crowdtune upgrade`, which upgrades it and changes nothing else."""
    db = db_location
    asyncio.run(_fill(db))
    _make_older(db)
    before = _counts(db)
    for command in (["sessions"], ["export", "--out", "e.zip"], ["copy-db", "--from", db, "--to", str(tmp_path / "c.db")]):
        refused = crowdtune(*command, *(["--db", db] if command[0] != "copy-db" else []), cwd=tmp_path, check=False)
        assert refused.returncode == ExitCode.DATABASE and refused.stderr.count("\n") == 1, refused.stderr
        assert f"is from an older crowdtune (schema {OLDER}" in refused.stderr and UPGRADE in refused.stderr, refused.stderr
    ended = crowdtune("run", "--db", db, cwd=tmp_path, check=False)  # its input ended: it starts nothing, and says so
    assert ended.returncode == ExitCode.NO_TOKEN and _version(db) == OLDER
    upgraded = crowdtune("upgrade", "--db", db, cwd=tmp_path)
    shown = public_url(db) if is_postgres_url(db) else db  # a URL without its password (test_secrets_unprinted)
    assert upgraded.stdout.startswith(f"upgraded the database {shown} to this crowdtune's schema") and _version(db) > OLDER
    assert _counts(db) == before  # nothing else: no session started
    again = crowdtune("upgrade", "--db", db, cwd=tmp_path)
    assert again.stdout == f"the database {shown} is already of this crowdtune's schema: nothing to upgrade\n", again.stdout
    listed = crowdtune("sessions", "--db", db, cwd=tmp_path)
    assert "2 sessions in" in listed.stdout, listed.stdout


def test_a_declined_forget_user_or_reset_leaves_an_older_database_as_it_was_and_yes_upgrades_it(db_location, tmp_path):
    """Found by a trial: forget-user or reset answered no at its question had opened the database to write first, which
    upgraded an older one, though nothing was changed. On SQLite the question is now asked from an upgraded private copy
    and the file is left byte for byte; an older PostgreSQL database, which is not copied, cannot tell what they would
    change without upgrading it: they say to run crowdtune upgrade, changing nothing."""
    db = db_location
    asyncio.run(_fill(db))
    _make_older(db)
    gc.collect()  # the test's own connections closed: the file as it is kept
    file = None if is_postgres_url(db) else Path(db).read_bytes()
    for command, question in ((["forget-user", str(PERSON)], r"Delete it all\? "), (["reset", "--scope", GUILD], r"Reset the agent of ")):
        gc.collect()  # the last _version's connection closed: it keeps a -wal beside the file
        child = _spawn([*command, "--db", db], tmp_path)
        if is_postgres_url(db):
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == ExitCode.DATABASE and UPGRADE in child.before, child.before
            # Found by a newcomer's trial: they said "reading changes nothing", as a command that only reads does.
            assert "reading changes nothing" not in child.before, child.before
            assert f"is from an older crowdtune (schema {OLDER}); {command[0]} asks before it changes anything, and cannot read " \
                   "what it would change without upgrading it: " in child.before, child.before
        else:
            child.expect(question)
            child.sendline("n")
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 0 and "nothing was" in child.before, child.before
            assert Path(db).read_bytes() == file and not Path(f"{db}-wal").exists()
        assert _version(db) == OLDER
    if not is_postgres_url(db):
        child = _spawn(["reset", "--scope", GUILD, "--db", db], tmp_path)
        child.expect(r"Reset the agent of ")
        child.sendline("y")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0 and f"the agent of {GUILD} is reset" in child.before, child.before
        assert _version(db) > OLDER and _counts(db)["guild models"] == 0
