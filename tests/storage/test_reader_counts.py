"""What the benchmarks count while a bot runs, read through storage (the only code that runs SQL), on both
backends: vote events, closed and posted rounds, standing votes; and the size of a PostgreSQL table."""

import asyncio

import pytest

from bot.conductor import Conductor
from core.engine import SessionSpec
from storage import open_reader, open_store


async def _played(location: str) -> list[int]:
    """Two rating rounds: the first closed with three votes (one changed), the second open with one."""
    store = await open_store(location)
    try:
        conductor = Conductor(store)
        session = await conductor.start("guild:1", "guild", "c", SessionSpec(rounds=3), actor="t")
        first = await conductor.open_round(session.id)
        await store.set_round_messages(first.id, ["m1"])
        for voter, rating in (("a", 7), ("b", 7), ("c", 4), ("c", 7)):
            await conductor.vote(first.id, voter, rating)
        await conductor.close(first.id)
        second = await conductor.open_round(session.id)
        await conductor.vote(second.id, "a", 3)
        return [first.id, second.id]
    finally:
        await store.close()


def test_a_reader_counts_what_a_running_bot_stored(db_location):
    first, second = asyncio.run(_played(db_location))
    with open_reader(db_location) as reader:
        activity = reader.activity()
        kinds, standing = reader.round_votes([first, second], 7)
        _, threes = reader.round_votes([second], 3)
    assert activity == {"votes": 5, "rounds": 1, "renders": 1}
    assert sum(kinds.values()) == 5 and standing == 3 and threes == 1


def test_postgresql_reports_the_size_of_its_own_tables_only(postgres_server):
    from storage.postgres import relation_bytes

    url = postgres_server.new_database()
    asyncio.run(_played(url))
    assert relation_bytes(url, "votes") > 0 and relation_bytes(url, "rounds") > 0
    with pytest.raises(ValueError):
        relation_bytes(url, "pg_authid")
