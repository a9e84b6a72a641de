"""What the bot posts with a nonce (Discord's enforce_nonce: a nonce the bot used in the past few minutes returns that
earlier message and posts nothing) is posted even when another database, or the same database restored from a backup,
used that nonce for something else a moment before: the real bot against the local Discord-compatible server."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import pytest
from bot.conductor import Conductor
from bot.discord.nonces import Nonces
from core.engine import SessionSpec
from storage import open_store
from storage.copy import copy_database
from test_discord_bot import KEYCAPS, compose, db_rows, env, eventually, is_round, renderer, drawer, round_recorded, running  # noqa: F401

pytestmark = pytest.mark.asyncio

CLI = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"


def is_summary(m) -> bool:
    return m["content"].startswith("**Round 1 closed**")


def another_db(env, request, name: str) -> str:
    """A second, fresh database on the same backend as env's."""
    if env.db.startswith("postgresql"):
        return request.getfixturevalue("postgres_server").new_database()
    return str(env.folder / name)


async def one_round(env, rating: int) -> None:
    """/compose rounds:1, alice rates it `rating`, /close: the round's summary and the session's end are posted."""
    before = len([m for m in env.server.messages(env.channel) if is_summary(m)])
    earlier = {m["id"] for m in env.server.messages(env.channel) if is_round(1)(m)}  # an earlier session's, database's
    votes = db_rows(env, "SELECT COUNT(*) FROM votes")[0][0]
    notes = db_rows(env, "SELECT COUNT(*) FROM announcements")[0][0]
    await compose(env, rounds=1)
    post = await env.server.wait_for_message(env.channel, lambda m: is_round(1)(m) and m["id"] not in earlier)
    await round_recorded(env, 1)
    await env.server.react(env.alice, post["id"], KEYCAPS[rating - 1])
    await eventually(lambda: db_rows(env, "SELECT COUNT(*) FROM votes")[0][0] == votes + 1, "the vote")
    await (await env.server.slash(env.mod, env.channel, "close")).wait_response()
    # The summary and the session's end are stored with the close, then posted (marked sent).
    stored = "SELECT COUNT(*), COUNT(sent_at) FROM announcements"
    await eventually(lambda: (n := db_rows(env, stored)[0])[0] > notes and n[0] == n[1], "the outbox posted")
    summaries = [m for m in env.server.messages(env.channel) if is_summary(m)]
    assert len(summaries) == before + 1, [m["content"] for m in env.server.messages(env.channel)]
    assert int(summaries[-1]["id"]) > int(post["id"])


async def test_a_new_database_in_the_same_channel_still_posts_its_summary(env, request):
    """Found by a fresh-user trial: the outbox's nonce was its row's number only ("ct-note-2"), which a new database
    numbers from 1 again: Discord handed back the earlier database's summary, posted nothing, and the bot marked
    its own summary sent. Each database's nonces are its own."""
    async with running(env):
        await one_round(env, 4)
    second = dataclasses.replace(env, db=another_db(env, request, "second.db"))
    async with running(second):
        await one_round(second, 9)
    assert len([m for m in env.server.messages(env.channel) if m["content"].startswith("Session finished")]) == 2


async def test_a_database_restored_from_a_backup_still_posts_what_it_says_anew(env, request):
    """A backup keeps the database's own nonces: restored, it numbers its rows again from where the backup was, and
    Discord hands back the message the database posted after the backup. What is handed back is not what the bot meant
    to say: it posts it anew; what says the very same words ("Session finished after 1 round.") is posted too."""
    async with running(env):
        await one_round(env, 3)
    backup = dataclasses.replace(env, db=another_db(env, request, "backup.db"))
    copy = await asyncio.create_subprocess_exec(sys.executable, "-c", CLI, "copy-db", "--from", env.db, "--to", backup.db)
    assert await copy.wait() == 0  # the operator's copy-db, as a backup is made
    async with running(env):
        await one_round(env, 5)
    async with running(backup):
        await one_round(backup, 8)  # its round post and summary are its own, though their nonces are the last session's
    assert len([m for m in env.server.messages(env.channel) if is_summary(m)]) == 3
    # Found by a trial: the copy's session's end says the very words the original's said after the copy, with the
    # same nonce (its row numbered as the original's); taken for its own, it was never posted. A nonce is its row's
    # as written (when), not only its number.
    ends = [m["content"] for m in env.server.messages(env.channel) if m["content"].startswith("Session finished")]
    assert len(ends) == 3 and len(set(ends)) == 1, ends


async def test_a_copys_later_rows_at_the_original_ids_get_nonces_of_their_own(db_location, tmp_path, request):
    """A copy keeps the database's id and numbers its later rows from where it was copied: its round and outbox entry
    at the ids of the original's later ones get other nonces. For a round post too: its check (heading, files' names
    and sizes) tells another round's post only by its content, and taken for its own, the original's votes would count
    in it. The same row gets the same nonce at every try, after a restart too."""
    copy_at = str(tmp_path / "copy.db") if db_location.endswith(".db") else request.getfixturevalue("postgres_server").new_database()
    original = await open_store(db_location)
    copy = None
    try:
        first = await Conductor(original).start("guild:1", "guild", "c1", SessionSpec(rounds=1), actor="mod")
        posted = (await Conductor(original).open_round(first.id)).row
        await Nonces(original).nonce("", posted.id, posted.opened_at)  # posted before the copy: the database's id made
        copy = await open_store(copy_at)
        await copy_database(original, copy)

        async def later_rows(store) -> tuple[tuple[int, str], tuple[int, str]]:
            session = await Conductor(store).start("guild:2", "guild", "c2", SessionSpec(rounds=1), actor="mod")
            row = (await Conductor(store).open_round(session.id)).row
            await store.queue_announcement("c2", "Session finished after 1 round. Use `/top` to hear the best.")
            note = (await store.pending_announcements("c2"))[-1]
            nonces = Nonces(store)
            return (row.id, await nonces.nonce("", row.id, row.opened_at)), (note.id, await nonces.nonce("n", note.id, note.created_at))

        theirs, ours = await later_rows(original), await later_rows(copy)
        assert [i for i, _ in theirs] == [i for i, _ in ours]  # the same ids, as the copy numbers on from the copy
        assert all(a != b and len(a) <= 25 and len(b) <= 25 for (_, a), (_, b) in zip(theirs, ours)), (theirs, ours)
        (round_id, round_nonce), (note_id, note_nonce) = ours
        again, row = Nonces(copy), await copy.round(round_id)  # as after a restart: read back from the database
        note = next(n for n in await copy.pending_announcements("c2") if n.id == note_id)
        assert await again.nonce("", round_id, row.opened_at) == round_nonce
        assert await again.nonce("n", note_id, note.created_at) == note_nonce
    finally:
        await original.close()
        if copy is not None:
            await copy.close()
