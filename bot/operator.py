"""An operator's moderation at the command line, for whoever runs crowdtune without Discord at hand (a self-hosted
deployment, a data-erasure request from a member who has left the server): `crowdtune forget-user` does what
/forget-me does for a person, `crowdtune reset` what /reset does for a scope, through the same store methods,
audited as done by "cli". Each asks first on a terminal; elsewhere it wants --yes, so a script never deletes by
accident and never waits for an answer nobody can give."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import NamedTuple

from bot.cli import UnreadableFile, UsageError, _check_database, _database, _fresh_output, _open_to_write, _settings
from bot.discord.votes import voter_id  # small and pure: no discord.py
from bot.progress import stored
from core.words import quoted, visible

ACTOR = "cli"  # the audit log's actor for what an operator does here (a Discord command names its user)
SNOWFLAKE_MAX = 2**64 - 1  # Discord's ids are unsigned 64-bit numbers (its docs: Reference, Snowflakes)


class Person(NamedTuple):
    """Whom `forget-user` forgets: their voter as their votes are stored (and an export names them), the scope of
    their personal agent, and the name their copy's default file takes (crowdtune-NAME.json)."""

    voter: str
    personal_scope: str
    name: str


def person(text: str) -> Person:
    """An argparse type: a Discord user's id (a snowflake: 1 to 2**64-1, in decimal digits), also as an export's
    votes.jsonl names a voter ("user:123"), whose personal agent is their DMs' (user:ID); or a terminal user as the
    export names them, local:LOGIN (bot.terminal: their votes' voter and their agent's scope), any login, digits
    too. user:LOGIN, as older exports named a terminal user, names them too when LOGIN is not all digits (digits are
    a Discord id: the two never mix). ArgumentTypeError otherwise."""
    from bot.terminal import terminal_scope  # here: it imports the conductor (numpy), which --help does without
    from storage.export import safe_name

    if not text.strip():  # nothing to quote, and no login to suggest (spaces are no Discord id's, nor a bare login's)
        raise argparse.ArgumentTypeError(
            f"USER_ID is empty{' (only spaces)' if text else ''}: give a Discord user's id (a number such as "
            f"123456789012345678: Discord's Developer Mode, then Copy User ID), or local:LOGIN for a terminal user")
    kind, colon, name = text.partition(":")
    # A space pasted at either end is no Discord id's: refused with the name without it, as a bare login is. After
    # local: the name is taken as given (getpass takes LOGNAME as it is, spaces too); if nothing is stored under it,
    # the line that says so names the login without the space (_stored_as_other).
    trimmed = f"{kind.strip()}:{name.strip()}" if colon else text.strip()
    if trimmed != text and trimmed.strip(":") and kind != "local":
        person(trimmed)  # refused as it is, naming the name to use (a bare login), the space apart
        raise argparse.ArgumentTypeError(
            f"USER_ID '{visible(text)}' has a space at its start or end, which no Discord id or login has (a pasted "
            f"one?): the name without it is {trimmed}")
    if not colon:
        kind, name = "user", text
    if kind == "user" and name.isascii() and name.isdigit():
        if 0 < int(name) <= SNOWFLAKE_MAX:
            return Person(voter_id(int(name)), voter_id(int(name)), f"user-{int(name)}")
    # local:LOGIN is any login that runs sessions (getpass takes LOGNAME as it is: a space, an emoji, a /), its copy's
    # file named safely; user:LOGIN, an older export's name, only as those named it (no space, no /).
    elif colon and name and name.isprintable() and (kind == "local" or kind == "user" and not any(c.isspace() or c == "/" for c in name)):
        return Person(terminal_scope(name), terminal_scope(name), safe_name(f"local-{name}"))
    # A bare login (a trial typed one) or an older export's user:LOGIN that local: takes: the name to use, said.
    login = name if name and name.isprintable() and kind in ("user", "local") else ""
    hint = f" (a terminal login {quoted(login)} is local:{login})" if login and (not colon or kind == "user") else ""
    raise argparse.ArgumentTypeError(
        f"USER_ID must be a Discord user's id (a number such as 123456789012345678: Discord's Developer Mode, then "
        f"Copy User ID), or local:LOGIN for a terminal user, as an export names voters; not {quoted(text)}{hint}")


def add_commands(commands) -> None:
    """`forget-user`, `reset` and `upgrade`, on the `crowdtune` parser's subcommands."""
    from bot.cli import _add_db, _given, _path

    forget = commands.add_parser("forget-user", help="what /forget-me does, for a person: a copy of their data, then their votes and personal agent deleted", description=(
        "Write a copy of a person's data (the JSON file /forget-me gives: their votes, with when they joined the server "
        "as Discord said with each, and the size of their personal agent) to --out, then, once confirmed, delete their "
        "votes everywhere and their personal agent (with its sessions and compositions). Moderation records about them (any strike, the audit log) are kept, "
        "and a reaction a Discord user leaves on a round open now no longer counts. On a terminal it asks first; elsewhere add --yes. "
        "On SQLite, stop the bot first."))
    forget.add_argument("user", type=person, metavar="USER_ID", help=(
        "the person's Discord user id, or as an export names voters: user:ID, or local:LOGIN for a terminal user"))
    _add_db(forget)
    forget.add_argument("--out", type=_path("--out"), help="the copy's JSON file, readable by its owner alone (default: crowdtune-user-ID.json, crowdtune-local-LOGIN.json)")
    forget.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_yes(forget, "delete")

    reset = commands.add_parser("reset", help="what /reset does: clear a scope's agent (compositions and votes are kept)", description=(
        "Forget what a scope's agent has learned (its Q-values and learned models), as /reset does: it starts learning "
        "afresh from its next round. Compositions and votes are kept. On a terminal it asks first; elsewhere add --yes. "
        "On SQLite, stop the bot first."))
    _add_db(reset)
    reset.add_argument("--scope", type=_given("--scope"), required=True, help=(
        "the scope: guild:SERVER_ID, user:USER_ID (a personal agent) or local:NAME; crowdtune sessions lists where sessions run"))
    _add_yes(reset, "reset")

    upgrade = commands.add_parser("upgrade", help="upgrade a database of an older crowdtune to this one's schema, and nothing else", description=(
        "Upgrade the database of an older crowdtune to this one's schema (what the bot, run and simulate do as they "
        "start), changing nothing else, so that the commands that only read it (sessions, export, copy-db --from) read "
        "it. A database of this schema is left as it is. On SQLite, stop the bot first."))
    _add_db(upgrade)


def _add_yes(parser: argparse.ArgumentParser, verb: str) -> None:
    """--yes: act without asking (`_can_ask`: a must where nobody can be asked)."""
    parser.add_argument("--yes", action="store_true", help=f"{verb} without asking (needed when standard input is no terminal)")


def _can_ask(args: argparse.Namespace, doing: str) -> None:
    """UsageError when nobody can be asked (standard input is no terminal: a script, a pipe, a container without
    one) and --yes was not given. Called only once there is something to confirm: what needs no answer (a scope
    not there, nothing stored, a database that cannot be written or is held) is said first, as it is with --yes; the
    last two but for a database of an older schema, which opening it to write would upgrade (`_viewed`)."""
    if not args.yes and not sys.stdin.isatty():
        raise UsageError(f"standard input is not a terminal, so nobody can confirm: add --yes to {doing}; nothing was changed")


async def _confirmed(question: str, yes: bool, declined: str) -> bool:
    """The operator's answer to `question` (y or yes, in any case; anything else, or the input's end, is no), or True
    with --yes. Read without blocking the event loop, so Ctrl-C at the question ends the command at once. `declined`
    (that nothing was changed) is said for a no, and for a signal at the question before its own line says it."""
    if yes:
        return True
    from bot.console import LineReader

    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = await LineReader(sys.stdin).readline()
    except asyncio.CancelledError:  # a signal (bot.stopping): the ^C ended the question's line, not the command's work
        print(f"\n{declined}", flush=True)
        raise
    if answer is None or not answer.endswith("\n"):
        print()  # the input's end (Ctrl-D) echoes no newline: what follows starts a line of its own
    if (answer or "").strip().lower() in ("y", "yes"):
        return True
    print(declined)
    return False


def _database_named(args: argparse.Namespace):
    """The settings, every one checked (bot.cli._settings), with args.db set to the database the options name."""
    settings = _settings(db=args.db)
    args.db = _database(settings)
    return settings


async def _open(args: argparse.Namespace, command: str, scope: str | None):
    """The store of the database args.db (`_database_named`), to write: it must exist (UnreadableFile otherwise:
    nothing is made); refused as other writing commands refuse it (read-only, from a newer crowdtune) and, as `run`
    and `simulate` take it, held by this process alone (StorageError naming the bot that runs on it)."""
    _check_database(args.db, create=False)
    store = await _open_to_write(args.db)
    try:
        await store.claim_instance(f"crowdtune {command}, process {os.getpid()}")
        if scope is not None:
            await store.claim_scope(scope)
    except BaseException:
        await store.close()
        raise
    return store


@contextlib.asynccontextmanager
async def _viewed(args: argparse.Namespace, nothing: str):
    """storage.viewing of the database args.db: what a command finds there, read without changing it, so one that ends
    up changing nothing (nothing to do, or its question answered no) leaves its schema as it was: a SQLite file of an
    older schema is read from an upgraded private copy (View.upgraded), and the question asked from it before the
    database is opened to write; a PostgreSQL database of an older schema, which is not copied, is refused (OlderSchema,
    naming `crowdtune upgrade`). The database must exist and hold crowdtune's data (UnreadableFile, exit code FILE,
    otherwise, `nothing` saying what that means: nothing is made)."""
    from storage import NoDatabase, StorageError, viewing
    from storage.protocol import UPGRADE_IT, OlderSchema

    _check_database(args.db, create=False)
    try:
        async with viewing(args.db, refuse_older=True) as view:
            yield view
    except NoDatabase as absent:
        raise UnreadableFile(f"{absent}, so {nothing}") from None
    except OlderSchema as older:  # its own words are a reading command's ("reading changes nothing"): this one writes
        raise StorageError(
            f"{older.older}; {args.command} asks before it changes anything, and cannot read what it would change without "
            f"upgrading it: {UPGRADE_IT}"
        ) from None


async def _preset(store, settings, scope: str) -> str:
    """The preset the scope's agent learns by: the scope's setting, else the operator's."""
    from bot.settings import round_defaults

    return {**round_defaults(settings), **await store.scope_settings(scope)}["preset"]


async def _learned(store, settings, scope: str) -> str:
    """What the scope's agent has learned, in /reset's words, by its preset (`_preset`)."""
    from bot.conductor import Conductor
    from core.agent import preset

    return await Conductor(store).learned_so_far(scope, preset(await _preset(store, settings, scope)))


class _NothingStored(Exception):
    """Nothing of the person's is stored: the copy is not kept (storage.files.replacing removes it)."""


async def forget_user(args: argparse.Namespace) -> int:
    from bot.personal_copy import agent_words
    from bot.errors import check_writable

    voter, personal, name = args.user
    settings = _database_named(args)
    out = args.out or f"crowdtune-{name}.json"
    check_writable(out, "the file ", example="user.json")
    _fresh_output(out, args.db, args.force)
    # Nothing stored is said before the database is opened to write, which would upgrade an older one; so is the
    # question of an older one, answered from its upgraded copy (a held or read-only one is then named after it).
    async with _viewed(args, "nothing is stored for anyone") as view:
        if not ((await view.store.user_data(voter))["votes"] or await view.store.has_scope(personal)):
            print(visible(await _nothing_stored(view.store, view.name, voter)))
            return 0
        if view.upgraded and not (confirmed := await _copied_and_confirmed(args, view.store, settings, out))[0]:
            return 0
    store = await _open(args, "forget-user", personal)
    try:
        if not view.upgraded and not (confirmed := await _copied_and_confirmed(args, store, settings, out))[0]:
            return 0
        result = await store.forget_user(voter, personal_scope=personal, actor=ACTOR)
    finally:
        await store.close()
    # A reaction is Discord's: a terminal user (local:LOGIN) has none to speak of.
    reactions = "" if voter.startswith("local:") else ", and a reaction they leave on a round open now no longer counts"
    # Its sessions and compositions go with it (they are its scope's): said, as a trial found them gone unannounced.
    # As the deletion found it (a session started since the copy went too), not as the copy counted it.
    agent = agent_words(confirmed[1], "their", learned=False, sessions=result["sessions"]) if result["personal_agent"] else None
    print(f"deleted {stored(result['votes'], agent)} of {voter}; "
          f"moderation records about them (any strike, the audit log) are kept{reactions}")
    return 0


async def _copied_and_confirmed(args: argparse.Namespace, store, settings, out: str) -> tuple[bool, object]:
    """forget-user's copy of the person's data in the database `store` reads, written to `out`, then the question:
    whether it is confirmed (no is said, and so is nothing stored), and their personal agent as copied (bot.personal_copy)."""
    from bot.conductor import Conductor
    from bot.personal_copy import agent_words, personal_agent
    from storage.export import write_person_copy
    from storage.files import replacing

    voter, personal, _ = args.user
    copied = await personal_agent(Conductor(store), personal, await _preset(store, settings, personal))
    agent = agent_words(copied, "their")
    try:
        with replacing(out, private=True) as temporary:  # people's votes: readable by its owner alone, as exports
            votes = await asyncio.to_thread(write_person_copy, store.path, voter, temporary, copied)
            if not votes and agent is None:
                raise _NothingStored
            _can_ask(args, f"delete {voter}'s data")  # a refusal leaves no copy
    except _NothingStored:  # emptied since `_viewed` read it
        print(visible(await _nothing_stored(store, store.path, voter)))
        return False, copied
    print(visible(f"wrote {out}: a copy of {voter}'s data, {stored(votes, agent)}"))
    question = "Delete it all? This cannot be undone. Moderation records (any strike, the audit log) are kept."
    if not await _confirmed(question, args.yes, visible(f"nothing was deleted (the copy stays in {out})")):
        return False, copied
    return True, copied


async def _nothing_stored(store, name: str, voter: str) -> str:
    """The line that says nothing of `voter` is stored in the database `name` (read by `store`), naming the other name
    that holds the same digits' data, if one does (`_stored_as_other`)."""
    return (f"nothing of {voter} is stored in {name} (no votes, no personal agent): nothing to delete, no copy written"
            + await _stored_as_other(store, voter))


async def _stored_as_other(store, voter: str) -> str:
    """Where nothing is stored under `voter`, the words naming the other name the person's data may be stored under,
    so an erasure request is not taken as done: a terminal login of digits (local:1234, as storage migration 13
    renamed terminal voters from user:) asked for as user:1234 or 1234, a Discord user (user:ID) asked for as
    local:ID, or a login given with a space pasted at an end (local:a ). "" when that name holds nothing either (no
    votes, no scope: a personal agent, a login's sessions)."""
    kind, _, name = voter.partition(":")
    if name.strip() != name and name.strip():
        other, who = f"{kind}:{name.strip()}", f"the login {quoted(name.strip())} (without the space)"
    elif name.isascii() and name.isdigit():
        other, who = (f"local:{name}", f"a terminal login {name}") if kind == "user" else (f"user:{name}", f"a Discord user {name}")
    else:
        return ""
    if not (await store.user_data(other))["votes"] and other not in {scope for scope, _, _ in await store.scopes()}:
        return ""
    return f"; {who} is stored as {other}: run crowdtune forget-user {other}"


async def _to_reset(store, name: str, settings, scope: str) -> str | None:
    """What the agent of `scope` has learned, in /reset's words, when there is something to reset in the database
    `name` (read by `store`); None, said, when it has learned nothing. UsageError when the scope is not there."""
    from bot.conductor import Conductor

    if scope not in {known for known, _, _ in await store.scopes()}:
        raise UsageError(f"no scope {quoted(scope)} in {name}: crowdtune sessions lists where its sessions run "
                         "(guild:SERVER_ID, user:USER_ID, local:NAME); nothing was changed")
    learned = await _learned(store, settings, scope)
    if await Conductor(store).nothing_to_reset(scope, learned):
        print(f"the agent of {scope} {learned}: nothing to reset")
        return None
    return learned


async def _reset_confirmed(args: argparse.Namespace, learned: str) -> bool:
    """Whether the operator confirms the reset of args.scope, whose agent `learned` (in /reset's words); the answer no said."""
    from bot.conductor import NOTHING_LEARNED

    _can_ask(args, f"reset {args.scope}")
    forgets = "" if learned == NOTHING_LEARNED else "; a reset forgets it all"
    question = f"Reset the agent of {args.scope}? It {learned}{forgets}. Compositions and votes are kept."
    if not await _confirmed(question, args.yes, "nothing was reset"):
        return False
    return True


async def reset(args: argparse.Namespace) -> int:
    from bot.conductor import reset_words
    from core.agent import preset as agent_preset

    settings = _database_named(args)
    # Nothing to reset is said before the database is opened to write, which would upgrade an older one; so is the
    # question of an older one, answered from its upgraded copy (a held or read-only one is then named after it).
    async with _viewed(args, "there is nothing to reset") as view:
        if (learned := await _to_reset(view.store, view.name, settings, args.scope)) is None:
            return 0
        if view.upgraded and not await _reset_confirmed(args, learned):
            return 0
    store = await _open(args, "reset", None)
    try:
        await store.claim_scope(args.scope)  # a terminal session or simulation driving it is running: refused
        if not view.upgraded:
            if (learned := await _to_reset(store, store.path, settings, args.scope)) is None:
                return 0
            if not await _reset_confirmed(args, learned):
                return 0
        done = await store.reset_scope(args.scope, actor=ACTOR)
        preset = await _preset(store, settings, args.scope)
    finally:
        await store.close()
    # What was deleted, in the units its preset learns in, as the question said it (a count of Q-values read "0
    # Q-values deleted" to a preset that learns a model), as the reset's own transaction counted it: a round a bot
    # beside it (PostgreSQL) closed after the question is deleted too, and said.
    if done.nothing:  # emptied after the question (another reset): the audit says it was asked for
        print(f"the agent of {args.scope} is reset: it had learned nothing by then (reset meanwhile), so nothing was "
              "deleted; it starts learning afresh from its next round")
        return 0
    deleted = reset_words(agent_preset(preset), done)
    print(f"the agent of {args.scope} is reset: what it had learned is deleted (it {deleted}); it starts learning afresh "
          "from its next round")
    return 0


async def upgrade(args: argparse.Namespace) -> int:
    """`crowdtune upgrade`: the database's migrations, run as a writing command's start runs them, and nothing else."""
    from storage import NoDatabase, open_store
    from storage.protocol import OlderSchema

    _database_named(args)
    _check_database(args.db, create=False)
    # Each line names the database as its store does (`store.path`: a URL without its password), never args.db.
    try:
        await (store := await open_store(args.db, read_only=True)).close()
    except OlderSchema:
        pass
    except NoDatabase as absent:
        raise UnreadableFile(f"{absent}, so there is nothing to upgrade") from None
    else:
        print(visible(f"the database {store.path} is already of this crowdtune's schema: nothing to upgrade"))
        return 0
    from bot.stopping import settle
    from storage.protocol import MIGRATION_COMMITTING

    MIGRATION_COMMITTING.set(settle)  # a stop once its commit is under way changes nothing: the file is upgraded
    store = await _open(args, "upgrade", None)
    try:
        version = await store.schema_version()
    finally:
        await store.close()
    print(visible(f"upgraded the database {store.path} to this crowdtune's schema ({version}); nothing else was changed"))
    return 0
