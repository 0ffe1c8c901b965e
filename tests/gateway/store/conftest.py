"""Fixtures of the store contract suite: every test runs on memory, one Redis, Sentinel and Cluster,
and on Sentinel with `?wait_replicas=1` (gateway/store/redis_replicated.py keeps the same contract)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest

from gateway.store import Store, open_store

StoreFactory = Callable[[str], Store]


# Generous: the contract is under test here, not the replica's speed (tests of the timeout set their own).
WAITING = "?wait_replicas=1&wait_timeout_ms=1000"


@pytest.fixture(params=["memory", "redis", "sentinel", "cluster", "sentinel+wait"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Factory for stores of one implementation; the suffix extends the store's key prefix."""
    opened: list[Store] = []
    if request.param == "memory":
        url, base = "memory://", "stapi-gw-test:"
    elif request.param == "redis":
        url, base = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    elif request.param == "sentinel+wait":
        url, base = request.getfixturevalue("redis_sentinel_url") + WAITING, f"stapi-gw-test:{uuid4().hex}:"
    else:
        # The session's own Sentinel setup or Cluster, thrown away at the end: a fresh prefix suffices.
        url, base = request.getfixturevalue(f"redis_{request.param}_url"), f"stapi-gw-test:{uuid4().hex}:"

    def tracked(suffix: str) -> Store:
        store = open_store(url, prefix=base + suffix)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        await store.aclose()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    """One store of the implementation under test."""
    return make_store("")
