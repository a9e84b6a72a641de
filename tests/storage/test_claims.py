"""A process's claim on PostgreSQL (claim_shards, claim_scope) is an advisory lock that lives as long as its
connection: when that connection ends (pg_terminate_backend, the server restarted), the server frees the lock
without a word. It is taken again before the process writes anything more; and if another process took it
meanwhile, every write of the first is refused and claim_lost says why, so two processes never run the same
shard or scope (votes counted twice, rewards applied twice)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from storage import StorageError, open_store


def _terminate(server, url: str, holder: str) -> int:
    """End the backends named `holder` (its application_name) as an operator's pg_terminate_backend does; how many."""
    out = server.psql(url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{holder}'")
    return out.split().count("t")


async def test_a_shard_lock_whose_connection_ended_is_taken_again_before_the_next_write(postgres_server):
    url = postgres_server.new_database()
    first, second = await open_store(url), await open_store(url)
    try:
        await first.claim_instance("bot one")
        await first.claim_shards(2, [0])
        assert _terminate(postgres_server, url, "bot one") == 1
        await first.ensure_scope("guild:1", "guild")  # the first writes on: its lock is held again first
        with pytest.raises(StorageError, match="shard 0 of 2 is already run"):
            await second.claim_shards(2, [0])
        await second.claim_shards(2, [1])  # the other shard is free
    finally:
        await first.close()
        await second.close()


def _claim_in_another_process(url: str, claims, claimed: threading.Event, release: threading.Event, outcome: list) -> None:
    """A second process: a store on its own event loop and thread, claiming with `claims(store)` until `release`."""

    async def run() -> None:
        store = await open_store(url)
        try:
            await store.claim_instance("bot two")
            try:
                await claims(store)
                outcome.append("claimed")
            except StorageError as refused:
                outcome.append(str(refused))
            claimed.set()
            await asyncio.to_thread(release.wait)
        finally:
            await store.close()

    try:
        asyncio.run(run())
    finally:
        claimed.set()


@pytest.mark.parametrize("kind", ["shard", "scope"])
async def test_a_claim_another_process_took_while_its_connection_was_down_is_lost_and_every_write_refused(postgres_server, kind):
    url = postgres_server.new_database()
    first = await open_store(url)
    claims = (lambda s: s.claim_shards(2, [0])) if kind == "shard" else (lambda s: s.claim_scope("local:alice"))
    claimed, release, outcome = threading.Event(), threading.Event(), []
    other = threading.Thread(target=_claim_in_another_process, args=(url, claims, claimed, release, outcome))
    try:
        await first.claim_instance("bot one")
        await claims(first)
        await first.ensure_scope("guild:1", "guild")
        assert _terminate(postgres_server, url, "bot one") == 1
        # The second process claims while the first's event loop waits (here, blocked on purpose): the first
        # has not noticed yet, and the server gave the lock away.
        other.start()
        claimed.wait()
        assert outcome == ["claimed"]
        with pytest.raises(StorageError, match="another process took it meanwhile") as refused:
            await first.ensure_scope("guild:2", "guild")
        with pytest.raises(StorageError, match="another process took it meanwhile"):
            await first.set_deployment_value("k", "v")
        lost = await asyncio.wait_for(first.claim_lost(), 30)
        assert lost is refused.value
        assert not await first.has_scope("guild:2")  # nothing written after the loss
    finally:
        release.set()
        if other.is_alive():
            await asyncio.to_thread(other.join)
        await first.close()


async def test_claims_are_taken_again_after_the_server_restarted(own_postgres_server):
    server = own_postgres_server
    url = server.new_database()
    first, second = await open_store(url), await open_store(url)
    try:
        await first.claim_instance("bot one")
        await first.claim_shards(2, [0])
        await first.claim_scope("local:alice")
        server.halt()
        server.resume()
        for _ in range(2):  # a pooled connection that went away with the server may fail the first write
            try:
                await first.ensure_scope("guild:1", "guild")
                break
            except StorageError:
                pass
        assert await first.has_scope("guild:1")
        with pytest.raises(StorageError, match="shard 0 of 2 is already run"):
            await second.claim_shards(2, [0])
        with pytest.raises(StorageError, match="already running the sessions of local:alice"):
            await second.claim_scope("local:alice")
    finally:
        await first.close()
        await second.close()
