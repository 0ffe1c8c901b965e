"""The rate-gate contract (`Store.rate_reserve`) on every store: memory, and real Redis, Sentinel and Cluster."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from gateway.domain.errors import StoreUnavailable
from gateway.store import Store, open_store

# Waits are measured from each call's own "now", so a stall between two calls (a loaded machine,
# a Cluster or Sentinel client finding its node) shortens the later wait by as much. The gates
# here are slow enough (seconds between slots) that a stall of up to SLACK_S changes no verdict.
SLACK_S = 1.0


async def test_a_burst_goes_at_once_and_later_calls_are_spaced_one_interval_apart(store: Store) -> None:
    """`burst` reservations wait nothing; each one after waits one more interval (1 / per_s)."""
    answers = [await store.rate_reserve("gate", 0.25, 3.0, 60.0) for _ in range(6)]
    assert all(a.granted for a in answers)
    assert [a.wait_s for a in answers[:3]] == [0.0, 0.0, 0.0]
    for k, answer in enumerate(answers[3:], start=1):
        assert k * 4.0 - SLACK_S <= answer.wait_s <= k * 4.0


async def test_a_wait_longer_than_allowed_reserves_nothing(store: Store) -> None:
    """Refused: the answer says how long a slot is away, and the next caller gets that same slot."""
    first = await store.rate_reserve("gate", 0.25, 1.0, 0.0)
    refused = await store.rate_reserve("gate", 0.25, 1.0, 0.1)
    taken = await store.rate_reserve("gate", 0.25, 1.0, 10.0)
    after = await store.rate_reserve("gate", 0.25, 1.0, 10.0)
    assert first.granted
    assert first.wait_s == 0.0
    assert not refused.granted
    assert 4.0 - SLACK_S <= refused.wait_s <= 4.0
    assert taken.granted
    assert taken.wait_s <= refused.wait_s
    assert after.granted
    assert 8.0 - SLACK_S <= after.wait_s <= 8.0


async def test_a_client_that_will_not_wait_gets_now_or_nothing(store: Store) -> None:
    """With `max_wait_s` 0 (a client's rate), the burst is granted, then refused with the time to wait."""
    answers = [await store.rate_reserve("client", 0.5, 2.0, 0.0) for _ in range(4)]
    assert [a.granted for a in answers] == [True, True, False, False]
    assert all(2.0 - SLACK_S <= a.wait_s <= 2.0 for a in answers[2:])


async def test_gates_are_independent_by_key(store: Store) -> None:
    """Spending one gate leaves another full."""
    await store.rate_reserve("one", 0.1, 1.0, 0.0)
    assert not (await store.rate_reserve("one", 0.1, 1.0, 0.0)).granted
    assert (await store.rate_reserve("two", 0.1, 1.0, 0.0)).granted


async def test_an_idle_gate_fills_up_again(store: Store) -> None:
    """After 1 / per_s of idleness the slot spent is back."""
    await store.rate_reserve("gate", 20.0, 1.0, 0.0)
    await asyncio.sleep(0.1)
    again = await store.rate_reserve("gate", 20.0, 1.0, 0.0)
    assert again.granted
    assert again.wait_s == 0.0


async def test_concurrent_reservations_each_get_their_own_slot(store: Store) -> None:
    """Reservations made at once are never given the same slot: their waits are one interval apart."""
    answers = await asyncio.gather(*(store.rate_reserve("gate", 0.5, 1.0, 60.0) for _ in range(20)))
    waits = sorted(a.wait_s for a in answers)
    assert all(a.granted for a in answers)
    assert all(later - earlier >= 2.0 - SLACK_S for earlier, later in itertools.pairwise(waits))


@pytest.mark.parametrize(
    ("per_s", "burst", "max_wait_s"),
    [
        (0.0, 1.0, 1.0),
        (-1.0, 1.0, 1.0),
        (math.inf, 1.0, 1.0),
        (math.nan, 1.0, 1.0),
        (1.0, 0.5, 1.0),
        (1.0, math.inf, 1.0),
        (1.0, 1.0, -1.0),
        (1.0, 1.0, math.inf),
        (1.0, 1.0, math.nan),
    ],
)
async def test_gates_no_store_can_keep_are_refused_alike(
    store: Store, per_s: float, burst: float, max_wait_s: float
) -> None:
    """Both stores refuse a non-positive or non-finite rate, a burst under 1, a negative or endless wait."""
    with pytest.raises(ValueError, match="must be"):
        await store.rate_reserve("gate", per_s, burst, max_wait_s)


async def test_redis_gates_are_shared_by_clients_and_kept_under_the_prefix(redis_url: str, redis_prefix: str) -> None:
    """Two store clients of one Redis share a gate; another prefix is another deployment's gate."""
    one, two = open_store(redis_url, prefix=redis_prefix), open_store(redis_url, prefix=redis_prefix)
    other = open_store(redis_url, prefix=redis_prefix + "other:")
    try:
        assert (await one.rate_reserve("gate", 0.1, 1.0, 0.0)).granted
        assert not (await two.rate_reserve("gate", 0.1, 1.0, 0.0)).granted
        assert (await other.rate_reserve("gate", 0.1, 1.0, 0.0)).granted
    finally:
        for store in (one, two, other):
            await store.aclose()


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    """A Redis that does not answer raises StoreUnavailable, as every other store operation does."""
    store = open_store("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreUnavailable):
            await store.rate_reserve("gate", 1.0, 1.0, 0.0)
    finally:
        await store.aclose()
