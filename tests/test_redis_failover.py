"""A Sentinel failover under traffic: the primary SIGKILLed mid-burst, the replica promoted.

Real `redis-server` primary, replica and three Sentinels (tests/redis_topologies.py), a gateway
whose store is the `redis+sentinel://` URL, and a real stapi-fastapi provider counting orders.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.gateway.services.orders.burst import Burst, check_invariant
from tests.gateways import gateway_client
from tests.redis_topologies import SentinelSetup
from tests.upstreams import ProductSpec, backend_of, build_provider

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
KEYS = range(150)


async def _start_search(client: httpx.AsyncClient) -> str | None:
    """Start an async search; its record id, or None if the store refused (503) during the failover."""
    created = await client.post(
        "/products/acme:sar/opportunities",
        json={"datetime": WINDOW, "geometry": POINT},
        headers={"Prefer": "respond-async"},
    )
    if created.status_code == 503:
        assert created.json()["code"] == "store_unavailable", created.text
        return None
    assert created.status_code == 201, created.text
    record_id: str = created.json()["id"]
    return record_id


async def _status_of(client: httpx.AsyncClient, record_id: str) -> str:
    """The record's status once completed, or whatever it last was after a few seconds of polling."""
    status = ""
    for _ in range(100):
        response = await client.get(f"/searches/opportunities/{record_id}")
        if response.status_code == 200:
            status = response.json()["status"]["status_code"]
            if status == "completed":
                break
        await asyncio.sleep(0.1)
    return status


async def test_a_failover_during_orders_and_searches_loses_and_doubles_nothing(sentinel_setup: SentinelSetup) -> None:
    """Orders with Idempotency-Keys across a failover: one order per key at the provider; searches complete."""
    app = build_provider([ProductSpec("eo"), ProductSpec("sar", async_=True)], name="acme")
    settings: dict[str, Any] = {
        "store": sentinel_setup.url,
        "deadline_s": 1.0,
        "reconcile_scan_interval_s": 0.05,
        "search_refresh_s": 0.1,
    }
    async with gateway_client({"acme": app}, provider_overrides={"circuit_failures": 0}, **settings) as client:
        searches = [await _start_search(client) for _ in range(3)]
        burst = Burst()
        running = asyncio.create_task(burst.run(client, "acme:eo", KEYS, tries=8, pause_s=0.2))
        while len(burst.acknowledged) < 40:  # noqa: ASYNC110 - polling what the clients saw is the point
            await asyncio.sleep(0.01)
        old = await asyncio.to_thread(sentinel_setup.kill_primary)
        during = [await _start_search(client) for _ in range(3)]
        new = await asyncio.to_thread(sentinel_setup.wait_for_promotion, old)
        await running
        # Attempts cut off by the failover become unknown once stale (deadline + 5 s), then are found.
        await burst.run(client, "acme:eo", KEYS, tries=40, pause_s=0.3)
        after = [await _start_search(client) for _ in range(3)]
        started = [record for record in searches + during + after if record is not None]
        statuses = [await _status_of(client, record) for record in started]
    assert new != old
    per_key = check_invariant(backend_of(app), burst, "acme")  # no key ordered twice, every 201 placed
    assert burst.codes["store_unavailable"] > 0, burst.codes  # the failover landed while clients were ordering
    assert len(burst.acknowledged) == len(per_key)
    # As with a plain Redis killed mid-burst (tests/gateway/services/orders/test_store_faults.py): a
    # journal write the primary applied just before dying leaves its key unknown, never doubled.
    assert len(per_key) >= len(KEYS) - 10
    assert None not in searches + after
    assert statuses == ["completed"] * len(started)
