"""ReplicatedRedisStore on real processes: a write returns once the replica holds it, or is unavailable.

A Sentinel setup of this module's own (tests/redis_topologies.py: primary, replica, three Sentinels)
whose replica the tests freeze with SIGSTOP, which delays its acknowledgements as DEBUG SLEEP would
(without needing `enable-debug-command`), and thaw with SIGCONT.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from gateway.domain.errors import StoreUnavailable
from gateway.store import ReplicatedRedisStore, Store, open_store
from tests.redis_topologies import SentinelSetup, running

Write = Callable[[Store], Awaitable[object]]
Check = Callable[[aioredis.Redis, str], Awaitable[bool]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A Sentinel setup for this module, whose replica its tests freeze and thaw."""
    with running(SentinelSetup(Path(tmp_path_factory.mktemp("waiting")))) as started:
        yield started


@contextmanager
def frozen_replica(setup: SentinelSetup) -> Iterator[None]:
    """SIGSTOP the replica for the block: connected, but acknowledging nothing; SIGCONT after."""
    pid = setup.processes.procs[setup.replica_port].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
async def replica(setup: SentinelSetup) -> AsyncIterator[aioredis.Redis]:
    """A direct client of the replica, to read what it holds."""
    client = aioredis.Redis(host="127.0.0.1", port=setup.replica_port, socket_timeout=2)
    yield client
    await client.aclose()


async def _open(setup: SentinelSetup, prefix: str, timeout_ms: int) -> Store:
    store = open_store(f"{setup.url}?wait_replicas=1&wait_timeout_ms={timeout_ms}", prefix=prefix)
    assert isinstance(store, ReplicatedRedisStore)
    return store


async def _acked_entry(store: Store) -> bool:
    await store.stream_add("s", {"a": "1"})
    [entry] = await store.stream_read("s", "g", "c", count=1)
    return await store.stream_ack("s", "g", entry.id)


async def _set_then(store: Store, then: Write) -> object:
    await store.set("k", b"old")
    return await then(store)


async def _indexed_then_removed(store: Store) -> None:
    await store.index_add("i", "m", 1.0)
    await store.index_remove("i", "m")


# Each write of the Store, and what the replica must hold the moment the write returns.
WRITES: dict[str, tuple[Write, Check]] = {
    "set": (lambda s: s.set("k", b"v", ttl_s=60), lambda r, p: _equals(r.get(p + "kv:k"), b"v")),
    "set_if_absent": (lambda s: s.set_if_absent("k", b"v"), lambda r, p: _equals(r.get(p + "kv:k"), b"v")),
    "set_if_equals": (
        lambda s: _set_then(s, lambda t: t.set_if_equals("k", b"old", b"new")),
        lambda r, p: _equals(r.get(p + "kv:k"), b"new"),
    ),
    "delete": (lambda s: _set_then(s, lambda t: t.delete("k")), lambda r, p: _equals(r.exists(p + "kv:k"), 0)),
    "delete_if_equals": (
        lambda s: _set_then(s, lambda t: t.delete_if_equals("k", b"old")),
        lambda r, p: _equals(r.exists(p + "kv:k"), 0),
    ),
    "index_add": (lambda s: s.index_add("i", "m", 1.5, ttl_s=60), lambda r, p: _equals(r.zscore(p + "ix:i", "m"), 1.5)),
    "index_remove": (_indexed_then_removed, lambda r, p: _equals(r.exists(p + "ix:i"), 0)),
    "stream_add": (lambda s: s.stream_add("s", {"a": "1"}), lambda r, p: _equals(r.xlen(p + "st:s"), 1)),
    "stream_ack": (_acked_entry, lambda r, p: _equals(r.xlen(p + "st:s"), 0)),
    "rate_reserve": (lambda s: s.rate_reserve("g", 1.0, 1.0, 0.0), lambda r, p: _equals(r.exists(p + "rl:g"), 1)),
}


async def _equals(read: Awaitable[object], expected: object) -> bool:
    return await read == expected


@pytest.mark.parametrize("operation", list(WRITES))
async def test_a_write_is_on_the_replica_when_it_returns(
    setup: SentinelSetup, replica: aioredis.Redis, operation: str
) -> None:
    """Every kind of write returns only once the replica holds it: read there right after, no sleep."""
    prefix = f"stapi-gw-test:{uuid4().hex}:"
    store = await _open(setup, prefix, timeout_ms=1000)
    write, check = WRITES[operation]
    try:
        await write(store)
        assert await check(replica, prefix)
    finally:
        await store.aclose()


# Those with a step before the one under test run it while the replica still answers.
LAST_STEP: dict[str, Write] = {
    "set": lambda s: s.set("k", b"v"),
    "set_if_absent": lambda s: s.set_if_absent("k", b"v"),
    "set_if_equals": lambda s: s.set_if_equals("k", b"old", b"new"),
    "delete": lambda s: s.delete("k"),
    "delete_if_equals": lambda s: s.delete_if_equals("k", b"old"),
    "index_add": lambda s: s.index_add("i", "m", 1.0),
    "index_remove": lambda s: s.index_remove("i", "m"),
    "stream_add": lambda s: s.stream_add("s", {"a": "1"}),
    "stream_ack": lambda s: s.stream_ack("s", "g", "0-1"),
    "rate_reserve": lambda s: s.rate_reserve("g", 1.0, 1.0, 0.0),
}


@pytest.mark.parametrize("operation", list(LAST_STEP))
async def test_a_write_the_replica_does_not_acknowledge_is_unavailable(setup: SentinelSetup, operation: str) -> None:
    """Replica frozen: each write answers StoreUnavailable from WAIT's own timeout; reads still answer."""
    prefix = f"stapi-gw-test:{uuid4().hex}:"
    store = await _open(setup, prefix, timeout_ms=50)
    # The step before, while the replica answers, waits as long as the store allows (a loaded machine).
    patient = await _open(setup, prefix, timeout_ms=1000)
    try:
        await patient.set("k", b"old")
        with frozen_replica(setup):
            with pytest.raises(StoreUnavailable) as info:
                await LAST_STEP[operation](store)
            # WAIT's answer, not the client's 2 s socket timeout: the caller hears within the 50 ms asked.
            assert f"{operation}: 0 of 1 replicas acknowledged the write within 50 ms" in info.value.detail
            assert await store.get("k") is not None or operation.startswith("delete")
    finally:
        await store.aclose()
        await patient.aclose()


async def test_a_write_succeeds_again_once_the_replica_is_back(setup: SentinelSetup, replica: aioredis.Redis) -> None:
    """A thawed replica catches up, and the next write is acknowledged as before."""
    store = await _open(setup, f"stapi-gw-test:{uuid4().hex}:", timeout_ms=1000)
    try:
        with frozen_replica(setup), pytest.raises(StoreUnavailable):
            await store.set("k", b"lost?")
        # Back from SIGSTOP, the replica may first reconnect to its primary (slow on a loaded machine).
        for _ in range(400):
            if (await replica.info("replication")).get("master_link_status") == "up":
                break
            await asyncio.sleep(0.05)
        await store.set("k", b"kept")
        assert await store.get("k") == b"kept"
    finally:
        await store.aclose()


async def test_a_cluster_without_replicas_refuses_waited_writes_on_every_node(redis_cluster_url: str) -> None:
    """WAIT goes to the node owning each key's slot (no "missing key" routing error), which has no replica."""
    store = open_store(f"{redis_cluster_url}?wait_replicas=1&wait_timeout_ms=20", prefix=f"t:{uuid4().hex}:")
    try:
        # Thirty keys land on all three nodes' slots.
        for n in range(30):
            with pytest.raises(StoreUnavailable, match="0 of 1 replicas acknowledged"):
                await store.set(f"k{n}", b"v")
        # The primary applied it: an unacknowledged write is of unknown fate, not undone.
        assert await store.get("k0") == b"v"
    finally:
        await store.aclose()
