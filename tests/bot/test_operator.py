"""`crowdtune forget-user` and `crowdtune reset` end to end, as an operator without Discord runs them: on a real
SQLite file and the tests' real PostgreSQL, counting rows before and after, the copy's content, exit codes,
and nothing changed on every refusal."""

import asyncio
import fcntl
import json
import os
import re
from pathlib import Path

import pexpect
import pytest

from bot.conductor import Conductor
from bot.errors import ExitCode
from bot.progress import plural
from core.engine import SessionSpec
from dbrows import as_of_schema, query
from storage import open_store
from test_bad_input_start import read_only  # noqa: F401 (a fixture)
from test_cli import CROWDTUNE, crowdtune

PERSON, OTHER = 123456789012345678, 223456789012345678
GUILD = "guild:900000000000000001"


async def _fill(db: str) -> None:
    """A server's session where PERSON and OTHER rated a round, and PERSON's personal agent with one rated round."""
    store = await open_store(db)
    try:
        conductor = Conductor(store)
        for scope, kind, channel, voters in ((GUILD, "guild", "c1", (PERSON, OTHER)), (f"user:{PERSON}", "user", f"dm{PERSON}", (PERSON,))):
            session = await conductor.start(scope, kind, channel, SessionSpec(), actor=f"user:{OTHER}")
            for _ in range(2):
                r = await conductor.open_round(session.id)
                for n, voter in enumerate(voters):
                    await conductor.vote(r.id, f"user:{voter}", 6 + n)
                await conductor.close(r.id)
    finally:
        await store.close()


@pytest.fixture
def filled(db_location):
    asyncio.run(_fill(db_location))
    return db_location


def _counts(db: str) -> dict[str, int]:
    """Rows that a forget or a reset may touch, per table."""
    counts = {table: query(db, f"SELECT COUNT(*) FROM {table}")[0][0] for table in ("votes", "vote_events", "scopes", "qvalues", "models", "audit")}
    counts["person's votes"] = query(db, "SELECT COUNT(*) FROM votes WHERE voter = ?", (f"user:{PERSON}",))[0][0]
    counts["guild models"] = query(db, "SELECT COUNT(*) FROM models WHERE scope_id = ?", (GUILD,))[0][0]
    return counts


def _last_audit(db: str) -> tuple:
    return query(db, "SELECT actor, action, scope_id, detail FROM audit ORDER BY id DESC LIMIT 1")[0]


def test_forget_user_writes_the_copy_then_deletes_with_yes(filled, tmp_path):
    before = _counts(filled)
    assert before["person's votes"] == 4 and before["scopes"] == 2
    result = crowdtune("forget-user", str(PERSON), "--db", filled, "--out", "copy.json", "--yes", cwd=tmp_path)
    copy = tmp_path / "copy.json"
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
    data = json.loads(copy.read_text())
    assert data["voter"] == f"user:{PERSON}" and len(data["votes"]) == 4  # /forget-me's copy: write_person_copy
    agent = data["personal_agent"]  # what it has learned, in the units its preset learns in, and in words
    assert set(agent) == {"scope", "preset", "learned", "judged_edits", "lessons", "sessions"} and "personal_agent_q_values" not in data
    assert (agent["scope"], agent["preset"]) == (f"user:{PERSON}", "default") and agent["judged_edits"] >= 1
    assert agent["learned"] == f"has learned from {plural(agent['judged_edits'], 'judged edit')}"
    assert isinstance(agent["lessons"], list) and all(isinstance(lesson, str) for lesson in agent["lessons"])
    assert (f"wrote copy.json: a copy of user:123456789012345678's data, 4 votes and their personal agent, which "
            f"{agent['learned']}") in result.stdout
    assert "deleted 4 votes and their personal agent" in result.stdout
    assert "a reaction they leave on a round open now no longer counts" in result.stdout, result.stdout
    after = _counts(filled)
    assert after["person's votes"] == 0 and after["votes"] == before["votes"] - 4
    assert after["scopes"] == before["scopes"] - 1 and after["guild models"] == before["guild models"]
    assert after["audit"] == before["audit"] + 1
    actor, action, scope, detail = _last_audit(filled)
    assert (actor, action, scope) == ("cli", "forget_me", None) and json.loads(detail) == {"votes": 4, "personal_agent": True}
    again = crowdtune("forget-user", f"user:{PERSON}", "--db", filled, "--out", "again.json", "--yes", cwd=tmp_path)
    assert "nothing of user:123456789012345678 is stored" in again.stdout  # and so no copy of nothing is left
    assert not (tmp_path / "again.json").exists() and _counts(filled) == after


def test_forget_user_without_a_terminal_or_yes_is_one_line_and_changes_nothing(filled, tmp_path):
    before = _counts(filled)
    result = crowdtune("forget-user", str(PERSON), "--db", filled, cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "add --yes" in result.stderr and "nothing was changed" in result.stderr
    assert _counts(filled) == before and list(tmp_path.glob("*.json")) == []  # no copy either


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "12.5", str(2**64), "user:", "١٢٣"])
def test_forget_user_refuses_what_is_no_discord_id(filled, tmp_path, bad):
    before = _counts(filled)
    result = crowdtune("forget-user", bad, "--db", filled, "--yes", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and result.stderr.count("\n") == 1
    assert "USER_ID must be a Discord user's id" in result.stderr
    assert _counts(filled) == before


def _spawn(args: list[str], cwd: Path) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "CROWDTUNE_DB")}
    return pexpect.spawn(CROWDTUNE, args, cwd=str(cwd), env=env, encoding="utf-8", timeout=120)


def test_on_a_terminal_each_asks_and_no_changes_nothing_yes_acts(filled, tmp_path):
    before = _counts(filled)
    child = _spawn(["forget-user", str(PERSON), "--db", filled], tmp_path)
    child.expect(r"Delete it all\? This cannot be undone\. Moderation records \(any strike, the audit log\) are kept\. \[y/N\] ")
    child.sendline("n")
    child.expect("nothing was deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and _counts(filled) == before
    assert json.loads((tmp_path / f"crowdtune-user-{PERSON}.json").read_text())["voter"] == f"user:{PERSON}"

    child = _spawn(["reset", "--scope", GUILD, "--db", filled], tmp_path)
    child.expect(r"Reset the agent of guild:900000000000000001\? It has learned from \d+ judged edits?; a reset forgets it all\. "
                 r"Compositions and votes are kept\. \[y/N\] ")
    child.sendline("yes")
    child.expect("the agent of guild:900000000000000001 is reset")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    after = _counts(filled)
    assert after["guild models"] == 0 and after["votes"] == before["votes"] and after["models"] == before["models"] - before["guild models"]
    actor, action, scope, _ = _last_audit(filled)
    assert (actor, action, scope) == ("cli", "reset", GUILD)


def test_reset_with_yes_clears_the_scope_and_an_unknown_scope_is_refused(filled, tmp_path):
    before = _counts(filled)
    assert before["guild models"] > 0
    unknown = crowdtune("reset", "--scope", "guild:1", "--db", filled, "--yes", cwd=tmp_path, check=False)
    assert unknown.returncode == ExitCode.USAGE and unknown.stderr.count("\n") == 1
    assert "no scope 'guild:1'" in unknown.stderr and "crowdtune sessions" in unknown.stderr
    assert _counts(filled) == before
    refused = crowdtune("reset", "--scope", GUILD, "--db", filled, cwd=tmp_path, check=False)  # no terminal, no --yes
    assert refused.returncode == ExitCode.USAGE and "add --yes" in refused.stderr and _counts(filled) == before
    done = crowdtune("reset", "--scope", GUILD, "--db", filled, "--yes", cwd=tmp_path)
    # Found by a fresh-user trial: the default preset, which learns a model, was told "0 Q-values deleted": what is
    # deleted is said in the units its preset learns in, as the question said it (Conductor.learned_so_far).
    assert re.fullmatch(rf"the agent of {GUILD} is reset: what it had learned is deleted \(it has learned from \d+ judged edits?\); "
                        r"it starts learning afresh from its next round", done.stdout.strip()), done.stdout
    after = _counts(filled)
    assert after["guild models"] == 0 and after["votes"] == before["votes"] and after["audit"] == before["audit"] + 1
    assert _last_audit(filled)[:3] == ("cli", "reset", GUILD)


def test_a_running_bot_holding_the_sqlite_lock_is_named_and_nothing_changes(tmp_path):
    db = str(tmp_path / "t.db")
    asyncio.run(_fill(db))
    before = _counts(db)
    with open(f"{db}.lock", "w") as held:  # as the bot holds it (storage.sqlite claim_instance)
        held.write("crowdtune bot, process 4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for args in (["forget-user", str(PERSON), "--out", "c.json"], ["reset", "--scope", GUILD]):
            result = crowdtune(*args, "--db", db, "--yes", cwd=tmp_path, check=False)
            assert result.returncode == ExitCode.DATABASE and result.stderr.count("\n") == 1
            assert "already running on" in result.stderr and "process 4242" in result.stderr and "stop it first" in result.stderr
    assert _counts(db) == before and not (tmp_path / "c.json").exists()


def test_a_read_only_database_is_refused_as_other_writing_commands_refuse_it(tmp_path, read_only):
    db = tmp_path / "t.db"
    asyncio.run(_fill(str(db)))
    before = _counts(str(db))
    read_only(db)
    for args in (["forget-user", str(PERSON), "--out", "c.json"], ["reset", "--scope", GUILD]):
        result = crowdtune(*args, "--db", str(db), "--yes", cwd=tmp_path, check=False)
        assert result.returncode == ExitCode.DATABASE and result.stderr.count("\n") == 1
        assert "cannot be written" in result.stderr
    assert _counts(str(db)) == before


def test_a_database_that_is_not_there_is_not_made(tmp_path):
    for args in (["forget-user", str(PERSON)], ["reset", "--scope", GUILD]):
        result = crowdtune(*args, "--db", "none.db", "--yes", cwd=tmp_path, check=False)
        assert result.returncode == ExitCode.FILE and "none.db" in result.stderr
    assert list(tmp_path.iterdir()) == []



def test_the_copy_never_replaces_the_database_nor_a_file_without_force(tmp_path):
    db = tmp_path / "t.db"
    asyncio.run(_fill(str(db)))
    before = _counts(str(db))
    onto_db = crowdtune("forget-user", str(PERSON), "--db", str(db), "--out", str(db), "--yes", "--force", cwd=tmp_path, check=False)
    assert onto_db.returncode == ExitCode.USAGE and "is the database" in onto_db.stderr
    (tmp_path / "kept.json").write_text("mine")
    kept = crowdtune("forget-user", str(PERSON), "--db", str(db), "--out", "kept.json", "--yes", cwd=tmp_path, check=False)
    assert kept.returncode == ExitCode.USAGE and "kept.json exists; add --force" in kept.stderr
    assert (tmp_path / "kept.json").read_text() == "mine" and _counts(str(db)) == before
    crowdtune("forget-user", str(PERSON), "--db", str(db), "--out", "kept.json", "--yes", "--force", cwd=tmp_path)
    assert len(json.loads((tmp_path / "kept.json").read_text())["votes"]) == 4 and _counts(str(db))["person's votes"] == 0


async def _fill_terminal(db: str, login: str, voter: str | None = None) -> None:
    """What `crowdtune run` stores for the login `login` (bot.terminal): its voter and scope local:LOGIN (`voter`: as
    an older crowdtune stored it, user:LOGIN, in the channel "terminal" that every login shared)."""
    channel = "terminal" if voter else f"local:{login}"
    voter = voter or f"local:{login}"
    store = await open_store(db)
    try:
        conductor = Conductor(store)
        session = await conductor.start(f"local:{login}", "local", channel, SessionSpec(), actor=voter)
        for _ in range(2):
            r = await conductor.open_round(session.id)
            await conductor.vote(r.id, voter, 7)
            await conductor.close(r.id, actor=voter)
        await store.end_session(session.id, "stopped", voter)  # as q leaves it: another login's session may follow
    finally:
        await store.close()


@pytest.mark.parametrize("named", ["local:root", "user:root"])
def test_a_terminal_user_is_forgotten_by_the_name_an_export_gives_them(filled, tmp_path, named):
    """Found by a fresh-user trial: an export names the terminal's voter (bot.terminal), and the help says USER_ID may
    be given as an export names voters, yet user:root was refused as no Discord id. It now deletes their votes and
    their terminal agent (local:LOGIN), as /forget-me deletes a Discord user's; user:LOGIN, as older exports named
    a terminal user, names them too."""
    asyncio.run(_fill_terminal(filled, "root"))
    before = _counts(filled)
    assert query(filled, "SELECT COUNT(*) FROM scopes WHERE id = 'local:root'")[0][0] == 1
    result = crowdtune("forget-user", named, "--db", filled, "--yes", cwd=tmp_path)
    assert "wrote crowdtune-local-root.json: a copy of local:root's data, 2 votes and their personal agent" in result.stdout
    # Its sessions go with it, said (a trial found them gone unannounced).
    assert "deleted 2 votes and their personal agent with its 1 session and its compositions of local:root" in result.stdout
    # Found by a fresh-user trial: a terminal user was told of "a reaction they leave on a round open now".
    assert "reaction" not in result.stdout and result.stdout.rstrip().endswith("(any strike, the audit log) are kept"), result.stdout
    data = json.loads((tmp_path / "crowdtune-local-root.json").read_text())
    assert data["voter"] == "local:root" and len(data["votes"]) == 2
    after = _counts(filled)
    assert after["votes"] == before["votes"] - 2 and after["scopes"] == before["scopes"] - 1
    assert query(filled, "SELECT COUNT(*) FROM scopes WHERE id = 'local:root'")[0][0] == 0
    assert after["person's votes"] == before["person's votes"]  # the Discord user's are untouched


def test_a_terminal_login_of_digits_is_never_taken_for_the_discord_user_of_that_id(filled, tmp_path):
    """Found by review: a terminal session's votes were user:LOGIN, as a Discord user's are user:ID, so the login
    123456789012345678 voted as that Discord user: forget-user 123456789012345678 deleted the terminal user's votes
    too, and nothing could name the terminal user alone. Terminal voters are local:LOGIN, named so for every login,
    digits included; each forget-user deletes its own person's votes only."""
    env = {"LOGNAME": str(PERSON), "USER": str(PERSON)}  # who getpass says runs crowdtune
    crowdtune("run", "--rounds", "2", "--no-audio", "--db", filled, stdin="5\n6\n", cwd=tmp_path, env_extra=env)
    terminal = f"local:{PERSON}"
    assert query(filled, "SELECT COUNT(*) FROM votes WHERE voter = ?", (terminal,))[0][0] == 2
    discord_votes = _counts(filled)["person's votes"]
    forgot = crowdtune("forget-user", terminal, "--db", filled, "--yes", cwd=tmp_path)
    assert f"deleted 2 votes and their personal agent with its 1 session and its compositions of {terminal}" in forgot.stdout, forgot.stdout
    assert (tmp_path / f"crowdtune-local-{PERSON}.json").is_file()  # not the Discord user's crowdtune-user-ID.json
    assert _counts(filled)["person's votes"] == discord_votes == 4
    crowdtune("run", "--rounds", "1", "--no-audio", "--db", filled, stdin="5\n", cwd=tmp_path, env_extra=env)
    crowdtune("forget-user", str(PERSON), "--db", filled, "--yes", cwd=tmp_path)
    assert _counts(filled)["person's votes"] == 0
    assert query(filled, "SELECT COUNT(*) FROM votes WHERE voter = ?", (terminal,))[0][0] == 1  # the terminal's stays


def test_an_older_database_s_terminal_votes_become_local_voters_and_discord_ones_stay(tmp_path):
    """A database of an older crowdtune stored terminal votes as user:LOGIN: upgraded, those cast in a terminal's
    scope (local:) are local:LOGIN, digits or not, and a Discord user's (in a server's or their own scope) stay."""
    db = str(tmp_path / "old.db")
    asyncio.run(_fill(db))
    asyncio.run(_fill_terminal(db, str(PERSON), voter=f"user:{PERSON}"))
    asyncio.run(_fill_terminal(db, "root", voter="user:root"))
    as_of_schema(db, 12)  # the last schema before terminal voters had their own kind
    crowdtune("reset", "--scope", GUILD, "--db", db, "--yes", cwd=tmp_path)  # a command that writes upgrades it
    voters = dict(query(db, "SELECT voter, COUNT(*) FROM votes GROUP BY voter"))
    assert voters == {f"user:{PERSON}": 4, f"user:{OTHER}": 2, f"local:{PERSON}": 2, "local:root": 2}, voters
    owners = {scope: owner for scope, owner in query(db, "SELECT scope_id, owner FROM sessions")}
    assert owners[f"local:{PERSON}"] == f"local:{PERSON}" and owners[GUILD] == f"user:{OTHER}"
    # Each terminal session's place is its login's now (migration 14), so no login finds another's.
    places = sorted(query(db, "SELECT scope_id, channel_id FROM sessions WHERE scope_id LIKE 'local:%'"))
    assert places == sorted([("local:root", "local:root"), (f"local:{PERSON}", f"local:{PERSON}")]), places


@pytest.mark.parametrize("bad", ["root", "user:a b", "user:\x1b[2J", "local:", " local:a", " 123456789012345678", "user:1 "])
def test_what_no_export_names_a_voter_is_refused_in_one_line(filled, tmp_path, bad):
    before = _counts(filled)
    result = crowdtune("forget-user", bad, "--db", filled, "--yes", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and result.stderr.count("\n") == 1, result.stderr
    assert "USER_ID" in result.stderr and ("has a space at its start or end" in result.stderr or "local:LOGIN" in result.stderr)
    assert _counts(filled) == before
    # The name a login takes is said (a trial typed a bare login, and user:LOGIN with a space, and was not told).
    hints = {"root": "(a terminal login 'root' is local:root)", "user:a b": "(a terminal login 'a b' is local:a b)",
             # A space pasted at an end is named, with the name without it (after local: a login may have one:
             # test_forget_other_name.py).
             " local:a": "' local:a' has a space at its start or end", " 123456789012345678": "the name without it is 123456789012345678",
             "user:1 ": "the name without it is user:1"}
    if bad in hints:
        assert hints[bad] in result.stderr, result.stderr
    else:
        assert "a terminal login" not in result.stderr, result.stderr


def test_without_a_terminal_what_needs_no_confirmation_answers_before_yes_is_asked_for(filled, tmp_path):
    """Found by a fresh-user trial: with standard input no terminal, an unknown scope, nobody's data and a held
    database were each answered "add --yes" first, though --yes would change nothing for them."""
    before = _counts(filled)
    unknown = crowdtune("reset", "--scope", "guild:1", "--db", filled, cwd=tmp_path, check=False)
    assert unknown.returncode == ExitCode.USAGE and "no scope 'guild:1'" in unknown.stderr and "--yes" not in unknown.stderr
    nobody = crowdtune("forget-user", "42", "--db", filled, cwd=tmp_path, check=False)
    assert nobody.returncode == 0 and "nothing of user:42 is stored" in nobody.stdout and nobody.stderr == ""
    assert _counts(filled) == before and list(tmp_path.glob("*.json")) == []


def test_without_a_terminal_a_held_or_read_only_database_is_named_before_yes_is_asked_for(tmp_path, read_only):
    db = tmp_path / "t.db"
    asyncio.run(_fill(str(db)))
    with open(f"{db}.lock", "w") as held:
        held.write("crowdtune bot, process 4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = crowdtune("reset", "--scope", GUILD, "--db", str(db), cwd=tmp_path, check=False)
        assert result.returncode == ExitCode.DATABASE and "already running on" in result.stderr
    read_only(db)
    for args in (["forget-user", str(PERSON), "--out", "c.json"], ["reset", "--scope", GUILD]):
        result = crowdtune(*args, "--db", str(db), cwd=tmp_path, check=False)
        assert result.returncode == ExitCode.DATABASE and "cannot be written" in result.stderr, result.stderr
    assert not (tmp_path / "c.json").exists()


async def _start_only(db: str, scope: str) -> None:
    """A session started in `scope` and no round rated: its agent has learned nothing."""
    store = await open_store(db)
    try:
        await Conductor(store).start(scope, "guild", "c2", SessionSpec(), actor=f"user:{OTHER}")
    finally:
        await store.close()


def test_resetting_an_agent_that_learned_nothing_says_so_asks_nothing_and_audits_nothing(filled, tmp_path):
    """Found by a fresh-user trial: it asked, wrote an audit entry and said "is reset (0 Q-values deleted...)"."""
    asyncio.run(_start_only(filled, "guild:5"))
    before = _counts(filled)
    result = crowdtune("reset", "--scope", "guild:5", "--db", filled, cwd=tmp_path, check=False)  # no terminal, no --yes
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == "the agent of guild:5 has not learned anything yet: nothing to reset\n"
    assert _counts(filled) == before


def test_the_end_of_input_at_the_question_ends_its_line_before_the_answer(filled, tmp_path):
    """Found by a fresh-user trial: Ctrl-D at "[y/N] " left "nothing was deleted" on the question's line."""
    child = _spawn(["forget-user", str(PERSON), "--db", filled], tmp_path)
    child.expect(r"\[y/N\] ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and child.before.replace("\r", "").lstrip("^D\x08") == "\nnothing was deleted (the copy stays in crowdtune-user-123456789012345678.json)\n", repr(child.before)


def _audit_of(db: str, out: Path) -> list[dict]:
    from storage.export import write_export
    import zipfile

    write_export(db, out)
    with zipfile.ZipFile(out) as archive:
        return [json.loads(line) for line in archive.read("audit.jsonl").splitlines()]


def test_the_export_never_shows_a_deleted_round_by_its_internal_id(filled, tmp_path):
    """Found by a fresh-user trial: after forget-user, the deleted personal session's round_closed entries read
    "round": 12 (the database's id) where they read "session": 4, "round": 1 before. README: rounds are numbered
    from 1 everywhere. An entry whose round is gone now says so, and the rest keep their numbers."""
    kept = [e["detail"] for e in _audit_of(filled, tmp_path / "before.zip") if e["action"] == "round_closed"]
    assert len(kept) == 4 and {(d["session"], d["round"]) for d in kept} == {(1, 1), (1, 2), (2, 1), (2, 2)}

    async def forget() -> None:
        store = await open_store(filled)
        try:
            await store.forget_user(f"user:{PERSON}", personal_scope=f"user:{PERSON}")
        finally:
            await store.close()

    asyncio.run(forget())
    closed = [(e["scope"], e["detail"]) for e in _audit_of(filled, tmp_path / "after.zip") if e["action"] == "round_closed"]
    assert len(closed) == 4
    assert [(d["session"], d["round"]) for scope, d in closed if scope == GUILD] == [(1, 1), (1, 2)]
    assert [d for scope, d in closed if scope != GUILD] == [{**d, "round": None, "round_deleted": True} for scope, d in closed if scope != GUILD]
    assert all("session" not in d for scope, d in closed if scope != GUILD)


def test_a_login_with_a_space_an_emoji_or_a_slash_is_forgotten_by_the_name_its_votes_have(filled, tmp_path):
    """Found by a fresh-user trial: a login that runs sessions (getpass takes LOGNAME as it is) was refused by
    forget-user as no voter, though its votes are local:LOGIN. It is forgotten, its copy's file named safely."""
    login = "Zoë 🎵/x"
    crowdtune("run", "--rounds", "1", "--no-audio", "--db", filled, stdin="5\n", cwd=tmp_path, env_extra={"LOGNAME": login, "USER": login})
    assert query(filled, "SELECT COUNT(*) FROM votes WHERE voter = ?", (f"local:{login}",))[0][0] == 1
    forgot = crowdtune("forget-user", f"local:{login}", "--db", filled, "--yes", cwd=tmp_path)
    assert f"deleted 1 vote and their personal agent with its 1 session and its compositions of local:{login}" in forgot.stdout, forgot.stdout
    copies = list(tmp_path.glob("crowdtune-local-*.json"))
    assert len(copies) == 1 and "/" not in copies[0].name[len("crowdtune-"):] and f"wrote {copies[0].name}" in forgot.stdout, copies
    assert query(filled, "SELECT COUNT(*) FROM votes WHERE voter = ?", (f"local:{login}",))[0][0] == 0


@pytest.mark.parametrize("args, question, said", [
    (["forget-user", str(PERSON)], r"Delete it all\?.*\[y/N\] ", f"nothing was deleted (the copy stays in crowdtune-user-{PERSON}.json)"),
    (["reset", "--scope", GUILD], r"Reset the agent of .*\[y/N\] ", "nothing was reset"),
])
def test_ctrl_c_at_the_question_says_nothing_was_changed(filled, tmp_path, args, question, said):
    """Found by a fresh-user trial: Ctrl-C at `[y/N]` printed only `interrupted`, leaving the operator to guess whether
    the deletion had started."""
    before = _counts(filled)
    child = _spawn([*args, "--db", filled], tmp_path)
    child.expect(question)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    lines = [line for line in child.before.replace("\r", "").split("\n") if line.strip() and line.strip() != "^C"]
    assert lines == [said, "interrupted"], child.before
    assert child.exitstatus == ExitCode.INTERRUPTED and _counts(filled) == before


def test_forget_user_says_the_sessions_its_deletion_deleted_also_one_started_after_the_copy(filled, tmp_path, monkeypatch, capsys):
    """The person's personal agent gets a second session (a DM /compose on a bot beside it) after the copy was written
    and before the deletion, which deletes both. Before, the last line named the one counted for the copy ("with its 1
    session"): a count said about a deletion, read outside it. It names what the deletion's own transaction found."""
    import bot.operator as operator
    from bot.cli import main

    asked = operator._confirmed

    async def a_session_starts_meanwhile(question: str, yes: bool, declined: str) -> bool:
        store = await open_store(filled)
        try:
            await Conductor(store).start(f"user:{PERSON}", "user", f"dm{PERSON}-again", SessionSpec(), actor=f"user:{PERSON}")
        finally:
            await store.close()
        return await asked(question, yes, declined)

    monkeypatch.setattr(operator, "_confirmed", a_session_starts_meanwhile)
    monkeypatch.chdir(tmp_path)
    assert main(["forget-user", str(PERSON), "--db", filled, "--out", "copy.json", "--yes"]) == 0
    wrote, *_, deleted = capsys.readouterr().out.splitlines()
    assert "with its 1 session and its compositions" in wrote, wrote  # the copy's, as it was made
    assert deleted.startswith("deleted 4 votes and their personal agent with its 2 sessions and their compositions"), deleted
    assert query(filled, "SELECT COUNT(*) FROM sessions WHERE scope_id = ?", (f"user:{PERSON}",)) == [(0,)]


@pytest.mark.parametrize("empty", ["", "  ", "\t"])
def test_an_empty_or_blank_user_id_is_said_to_be_empty(filled, tmp_path, empty):
    """Found by a trial: `forget-user '  '` quoted "not ''" and suggested a terminal login of two spaces."""
    before = _counts(filled)
    result = crowdtune("forget-user", empty, "--db", filled, "--yes", cwd=tmp_path, check=False)
    assert result.returncode == ExitCode.USAGE and result.stderr.count("\n") == 1, result.stderr
    assert f"USER_ID is empty{' (only spaces)' if empty else ''}: give a Discord user's id" in result.stderr, result.stderr
    assert "a terminal login" not in result.stderr and "not ''" not in result.stderr, result.stderr
    assert _counts(filled) == before


def test_reset_says_what_its_own_transaction_deleted_also_a_round_closed_after_the_question(filled, tmp_path, monkeypatch, capsys):
    """A round of the server closes (a bot beside it, on PostgreSQL) after the question counted the agent's judged edits
    and before the reset, which deletes them all. Before, the last line named the count the question read, one edit
    short of what was deleted: a count said about a change, read outside it. It names what the reset's own
    transaction deleted."""
    import bot.operator as operator
    from bot.cli import main
    from core.agent import preset

    asked = operator._confirmed
    judged = {}

    async def a_round_closes_meanwhile(question: str, yes: bool, declined: str) -> bool:
        store = await open_store(filled)
        try:
            conductor = Conductor(store)
            judged["asked"] = await conductor.judged_edits(GUILD, preset("default"))
            session = await store.active_session_in("c1")
            r = await conductor.open_round(session.id)
            for n, voter in enumerate((PERSON, OTHER)):
                await conductor.vote(r.id, f"user:{voter}", 3 + 5 * n)
            await conductor.close(r.id)
            judged["deleted"] = await conductor.judged_edits(GUILD, preset("default"))
        finally:
            await store.close()
        return await asked(question, yes, declined)

    monkeypatch.setattr(operator, "_confirmed", a_round_closes_meanwhile)
    monkeypatch.chdir(tmp_path)
    assert main(["reset", "--scope", GUILD, "--db", filled, "--yes"]) == 0
    assert judged["deleted"] == judged["asked"] + 1, judged
    *_, said = capsys.readouterr().out.splitlines()
    assert f"(it has learned from {plural(judged['deleted'], 'judged edit')})" in said, (said, judged)
    assert _counts(filled)["guild models"] == 0


def test_reset_of_an_agent_another_reset_emptied_after_the_question_says_nothing_was_deleted(filled, monkeypatch, capsys):
    """A /reset on a bot beside it (PostgreSQL) empties the agent after the question: this reset deletes nothing, and
    says so, rather than what the question counted."""
    import bot.operator as operator
    from bot.cli import main

    asked = operator._confirmed

    async def reset_meanwhile(question: str, yes: bool, declined: str) -> bool:
        store = await open_store(filled)
        try:
            await store.reset_scope(GUILD, actor="user:1")
        finally:
            await store.close()
        return await asked(question, yes, declined)

    monkeypatch.setattr(operator, "_confirmed", reset_meanwhile)
    assert _counts(filled)["guild models"] > 0
    assert main(["reset", "--scope", GUILD, "--db", filled, "--yes"]) == 0
    *_, said = capsys.readouterr().out.splitlines()
    assert said == (f"the agent of {GUILD} is reset: it had learned nothing by then (reset meanwhile), so nothing was deleted; "
                    "it starts learning afresh from its next round"), said
