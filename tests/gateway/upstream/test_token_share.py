"""One OAuth token for every replica: single-flight minting over a real Redis, and a mint lock whose
holder died blocks nobody for longer than the wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.services.token_cache import StoreTokens
from gateway.store import Store, open_store
from gateway.upstream.token_share import MINT_LOCK_S, MINT_WAIT_S, TokenShare
from tests.faults import unused_port


@pytest.fixture
async def redis_store(redis_url: str, redis_prefix: str) -> AsyncIterator[Store]:
    """A real Redis under the test's own prefix."""
    store = open_store(redis_url, prefix=redis_prefix)
    yield store
    await store.aclose()


class Vendor:
    """A token endpoint that counts exchanges and takes a while to answer (so replicas overlap)."""

    def __init__(self) -> None:
        self.exchanges = 0

    async def mint(self) -> tuple[str, float]:
        """Exchange credentials for a token valid for an hour."""
        self.exchanges += 1
        await asyncio.sleep(0.05)
        return f"token-{self.exchanges}", 3600.0


async def test_replicas_starting_together_make_one_exchange(redis_store: Store) -> None:
    """Ten replicas (each its own TokenShare over the one Redis) asking at once: one exchange, one token."""
    vendor = Vendor()
    shares = [TokenShare(StoreTokens(redis_store), "umbra:client-1") for _ in range(10)]
    entries = await asyncio.gather(*(share.obtain(vendor.mint) for share in shares))
    assert vendor.exchanges == 1
    assert {entry.value for entry in entries} == {"token-1"}
    assert sum(not entry.adopted for entry in entries) == 1


async def test_a_dead_minter_blocks_no_one_past_the_wait(redis_store: Store) -> None:
    """A replica took the mint lock and died: another one waits at most MINT_WAIT_S, then mints itself."""
    tokens = StoreTokens(redis_store)
    assert await tokens.lock("umbra:client-2", MINT_LOCK_S) is not None  # the dead replica's lock, never released
    now = [0.0]

    def clock() -> float:
        now[0] += MINT_WAIT_S / 4  # each look at the clock is a quarter of the wait later
        return now[0]

    vendor = Vendor()
    entry = await TokenShare(tokens, "umbra:client-2", clock=clock).obtain(vendor.mint)
    assert vendor.exchanges == 1
    assert entry.value == "token-1"


async def test_an_unreachable_store_mints_alone() -> None:
    """With the store down the replica mints for itself rather than failing the request."""
    store = open_store(f"redis://127.0.0.1:{unused_port()}/0", prefix="t:")
    try:
        vendor = Vendor()
        entry = await TokenShare(StoreTokens(store), "umbra:client-3").obtain(vendor.mint)
    finally:
        await store.aclose()
    assert vendor.exchanges == 1
    assert entry.stored is None
