"""`crowdtune forget-user` given one name of a person whose data is stored under the other: a terminal login that is
all digits (local:1234, as storage migration 13 renamed terminal voters) asked for as user:1234 or 1234, and the other
way round. Real processes on real SQLite, counting rows."""

import asyncio

from bot.conductor import Conductor
from core.engine import SessionSpec
from dbrows import query
from storage import open_store
from test_cli import crowdtune

LOGIN = "1234"


async def _terminal_votes(db: str, login: str = LOGIN) -> None:
    """A terminal session of the login `login` (local:LOGIN, its scope and voter) with one rated round."""
    store = await open_store(db)
    try:
        conductor = Conductor(store)
        session = await conductor.start(f"local:{login}", "local", f"local:{login}", SessionSpec(), actor=f"local:{login}")
        r = await conductor.open_round(session.id)
        await conductor.vote(r.id, f"local:{login}", 7)
        await conductor.close(r.id)
    finally:
        await store.close()


def test_forget_user_by_the_other_name_says_which_name_holds_the_data(tmp_path):
    """Found by a trial: after terminal voters became local:LOGIN, `forget-user user:1234` (or 1234) said "nothing of
    user:1234 is stored ... nothing to delete" and exited 0 while local:1234 held votes: an erasure request that
    deleted nothing "succeeded". The line names the name that holds the data and the command to run."""
    db = str(tmp_path / "ct.db")
    asyncio.run(_terminal_votes(db))
    votes = query(db, "SELECT COUNT(*) FROM votes")[0][0]
    assert votes == 1
    for given in (f"user:{LOGIN}", LOGIN):
        result = crowdtune("forget-user", given, "--db", db, "--yes", cwd=tmp_path)
        assert result.stdout.splitlines() == [
            f"nothing of user:{LOGIN} is stored in {db} (no votes, no personal agent): nothing to delete, no copy written; "
            f"a terminal login {LOGIN} is stored as local:{LOGIN}: run crowdtune forget-user local:{LOGIN}"
        ], result.stdout
    assert query(db, "SELECT COUNT(*) FROM votes")[0][0] == votes and list(tmp_path.glob("*.json")) == []
    # The other way round: a Discord user's data asked for as local:ID.
    asyncio.run(_discord_votes(db))
    asked = crowdtune("forget-user", "local:42", "--db", db, "--yes", cwd=tmp_path)
    assert asked.stdout.splitlines() == [
        f"nothing of local:42 is stored in {db} (no votes, no personal agent): nothing to delete, no copy written; "
        "a Discord user 42 is stored as user:42: run crowdtune forget-user user:42"
    ], asked.stdout
    # Found under the name given: deleted, as before.
    done = crowdtune("forget-user", f"local:{LOGIN}", "--db", db, "--yes", cwd=tmp_path)
    assert "deleted 1 vote" in done.stdout, done.stdout
    assert query(db, "SELECT COUNT(*) FROM votes WHERE voter = ?", (f"local:{LOGIN}",))[0][0] == 0


async def _discord_votes(db: str) -> None:
    """A server's session where the Discord user 42 rated a round."""
    store = await open_store(db)
    try:
        conductor = Conductor(store)
        session = await conductor.start("guild:900000000000000001", "guild", "c1", SessionSpec(), actor="user:42")
        r = await conductor.open_round(session.id)
        await conductor.vote(r.id, "user:42", 6)
        await conductor.close(r.id)
    finally:
        await store.close()


def test_a_login_with_a_space_at_its_end_is_forgotten_and_a_pasted_space_is_named(tmp_path):
    """A login may end in a space (getpass takes LOGNAME as it is): `forget-user 'local:a '` deletes its data. Given a
    pasted space where the login has none, the line that says nothing is stored names the login without it."""
    db = str(tmp_path / "ct.db")
    asyncio.run(_terminal_votes(db, "a "))
    asyncio.run(_terminal_votes(db, "b"))
    pasted = crowdtune("forget-user", "local:b ", "--db", db, "--yes", cwd=tmp_path)
    assert pasted.stdout.splitlines() == [
        f"nothing of local:b  is stored in {db} (no votes, no personal agent): nothing to delete, no copy written; "
        "the login 'b' (without the space) is stored as local:b: run crowdtune forget-user local:b"
    ], pasted.stdout
    done = crowdtune("forget-user", "local:a ", "--db", db, "--yes", cwd=tmp_path)
    assert "deleted 1 vote" in done.stdout, done.stdout
    assert query(db, "SELECT voter FROM votes") == [("local:b",)]
