"""Terminal sessions belong to their login (local:LOGIN), not to the database: found by a fresh-user trial, where on a
shared database one login resumed, voted in and ended another's open session."""

import sqlite3

import pytest

from test_cli import crowdtune, terminal_at_its_prompt


def as_login(login: str) -> dict[str, str]:
    """The environment in which getpass names `login` as who runs crowdtune."""
    return {"LOGNAME": login, "USER": login}


def query(db: str, server, sql: str) -> list[str]:
    """`sql`'s rows, each one line of its values joined by |, on the SQLite file `db` or the PostgreSQL database."""
    if server is not None:
        return server.psql(db, sql).splitlines()
    with sqlite3.connect(db) as raw:
        return ["|".join(map(str, row)) for row in raw.execute(sql).fetchall()]


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request, tmp_path):
    """(database, PostgreSQL server or None): one database that two logins use, a SQLite file or a server's."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db"), None
    server = request.getfixturevalue("postgres_server")
    return server.new_database(), server


def test_each_login_finds_resumes_and_ends_only_its_own_terminal_session(tmp_path, shared):
    db, server = shared
    run = ("run", "--rounds", "4", "--no-audio", "--db", db)
    alice = crowdtune(*run, stdin="5\nq\n", cwd=tmp_path, env_extra=as_login("alice"))
    assert "session 1:" in alice.stdout, alice.stdout
    bob = crowdtune(*run, stdin="6\nq\n", cwd=tmp_path, env_extra=as_login("bob"))
    assert "resuming" not in bob.stdout and "session 2:" in bob.stdout, bob.stdout
    renewed = crowdtune(*run, "--new", stdin="q\n", cwd=tmp_path, env_extra=as_login("bob"))
    assert "session 2 ended" in renewed.stdout and "session 1" not in renewed.stdout, renewed.stdout
    resumed = crowdtune(*run, stdin="7\nq\n", cwd=tmp_path, env_extra=as_login("alice"))
    assert "resuming session 1:" in resumed.stdout, resumed.stdout
    sessions = query(db, server, "SELECT id, scope_id, status FROM sessions ORDER BY id")
    assert sessions == ["1|local:alice|active", "2|local:bob|stopped", "3|local:bob|active"], sessions
    votes = query(db, server, "SELECT r.session_id, v.voter, v.rating FROM votes v JOIN rounds r ON r.id = v.round_id ORDER BY r.id")
    assert [v.rsplit("|", 1)[0] for v in votes] == ["1|local:alice", "1|local:alice", "2|local:bob"], votes


def test_on_postgresql_two_logins_run_at_once_each_in_its_own_session(tmp_path, postgres_server):
    """PostgreSQL, which bots share, holds a login's scope alone: another login runs beside it, in a session of its own
    (it had resumed the first's and closed its open round, so the first's rating was lost)."""
    db = postgres_server.new_database()
    with terminal_at_its_prompt(db, tmp_path, as_login("alice")) as first:
        bob = crowdtune("run", "--rounds", "1", "--no-audio", "--db", db, stdin="6\n", cwd=tmp_path, env_extra=as_login("bob"))
        assert "session 2:" in bob.stdout and "finished" in bob.stdout, bob.stdout
        again = crowdtune("run", "--rounds", "1", "--no-audio", "--db", db, stdin="6\n", cwd=tmp_path,
                          env_extra=as_login("alice"), check=False)
        # The refusal names this login's own sessions, nobody else's.
        assert again.returncode == 8 and "local:alice" in again.stderr and "bob" not in again.stderr, again.stderr
        out, err = first.communicate(b"4\n", timeout=120)
    assert first.returncode == 0 and b"rated 4/10" in out, (out, err)
    votes = postgres_server.psql(db, "SELECT r.session_id, v.voter, v.rating FROM votes v JOIN rounds r ON r.id = v.round_id ORDER BY r.session_id")
    assert votes.split() == ["1|local:alice|4", "2|local:bob|6"], votes
