"""Copy a whole crowdtune database into an empty one, across backends (`crowdtune copy-db`): how a
community moves from its SQLite file to PostgreSQL (or back) without losing a vote.

Every table is copied row for row with its ids, in chunks, so the copy's export is identical to the
source's; the target is written in one transaction, so a failed copy leaves it empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from storage.protocol import Store
from storage.rows import TABLES


async def copy_database(source: Store, target: Store) -> dict[str, int]:
    """Copy every table of `source` into `target`, which must hold no data (ValueError otherwise).
    Both are of this crowdtune's schema (the target migrated as it was opened; the source, opened to read only by
    `crowdtune copy-db`, refused otherwise). Returns rows copied per table."""

    async def chunks() -> AsyncIterator[tuple[str, list[str], list[tuple]]]:
        for table, _ in TABLES:
            async for columns, rows in source.read_table(table):
                yield table, columns, rows

    return await target.write_tables(chunks())
