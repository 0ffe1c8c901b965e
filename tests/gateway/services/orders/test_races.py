"""Races between creating, replaying, listing and reconciling: no acknowledged order ever flips."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from stapi_pydantic import Order, OrderCollection

from gateway.domain.attempts import AttemptState, OrderAttempt
from gateway.services.journal import OrderJournal, Retention, new_attempt_id
from gateway.store import open_store
from tests.gateway.services.orders.burst import order_for
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, backend_of, build_provider

RACE_S = float(os.environ.get("STAPI_GATEWAY_RACE_S", "30"))


async def test_writers_and_listers_for_thirty_seconds_flip_no_acknowledged_order(
    redis_url: str, redis_prefix: str
) -> None:
    """8 writers and 4 listing loops on Redis for 30 s; then every acknowledged key replays its own order."""
    app = build_provider([ProductSpec("eo")], name="acme")
    settings: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "reconcile_scan_interval_s": 0.05}
    acknowledged: dict[str, str] = {}
    async with gateway_client({"acme": app}, **settings) as client:
        ends = time.monotonic() + RACE_S

        async def writer(w: int) -> None:
            n = 0
            while time.monotonic() < ends:
                key = f"w{w}-{n}"
                response = await client.post(
                    "/products/acme:eo/orders", json=order_for(w * 1_000 + n), headers={"Idempotency-Key": key}
                )
                assert response.status_code == 201, response.text
                acknowledged[key] = Order.model_validate(response.json()).id
                n += 1

        async def lister() -> None:
            while time.monotonic() < ends:
                response = await client.get("/orders", params={"limit": 50})
                assert response.status_code == 200
                OrderCollection.model_validate(response.json())

        await asyncio.gather(*(writer(w) for w in range(8)), *(lister() for _ in range(4)))
        for key, order_id in acknowledged.items():
            w, n = (int(x) for x in key[1:].split("-"))
            replay = await client.post(
                "/products/acme:eo/orders", json=order_for(w * 1_000 + n), headers={"Idempotency-Key": key}
            )
            assert replay.status_code == 201, (key, replay.text)
            assert replay.json()["id"] == order_id
    assert len(acknowledged) == len(backend_of(app).orders) >= 16


async def race_once(journal: OrderJournal, round_: int) -> OrderAttempt | None:
    """Create an attempt, then one writer places it while 30 others move it to unknown; the result."""
    now = time.time()
    attempt = OrderAttempt(
        id=new_attempt_id(),
        client="c",
        idempotency_key=None,
        product_id="acme:eo",
        member="acme:eo",
        sent={},
        fingerprint="f",
        state=AttemptState.SENDING,
        created=now,
    )
    await journal.create(attempt)
    placed = attempt.moved(AttemptState.PLACED, now, order_id=f"acme:o{round_}", order={"id": "x"})
    racers = [
        journal.transition(attempt.id, lambda a: a.moved(AttemptState.UNKNOWN, now, checks=a.checks + 1))
        for _ in range(30)
    ]
    racers.insert(round_ % 30, journal.transition(attempt.id, lambda _: placed))
    await asyncio.gather(*racers)
    return await journal.load(attempt.id)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_placed_is_never_overwritten_by_a_racing_writer(backend: str, redis_url: str, redis_prefix: str) -> None:
    """One writer places while 30 others move the same attempt to unknown: it ends placed, every round."""
    store = open_store(redis_url if backend == "redis" else "memory://", prefix=redis_prefix)
    journal = OrderJournal(store, Retention(60, 600))
    try:
        for round_ in range(20):
            final = await race_once(journal, round_)
            assert final is not None
            assert final.state is AttemptState.PLACED
            assert final.order_id == f"acme:o{round_}"
    finally:
        await store.aclose()
