"""Orders through a gateway whose store waits for a replica (`?wait_replicas=1`), before and after it dies.

Real `redis-server` primary and replica behind three Sentinels (tests/redis_topologies.py), a real
stapi-fastapi provider counting the orders it receives.
"""

from __future__ import annotations

import asyncio

from tests.gateway.services.tracking_world import STAPI_ORDER
from tests.gateways import gateway_client
from tests.redis_topologies import SentinelSetup
from tests.upstreams import ProductSpec, backend_of, build_provider


async def test_without_an_acknowledging_replica_orders_answer_503_and_reach_no_provider(
    sentinel_setup: SentinelSetup,
) -> None:
    """Replica up: the order is placed. Replica killed: 503 store_unavailable and the provider sees no order."""
    app = build_provider([ProductSpec("eo")], name="acme")
    store = f"{sentinel_setup.url}?wait_replicas=1&wait_timeout_ms=100"
    async with gateway_client({"acme": app}, store=store) as client:
        placed = await client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers={"Idempotency-Key": "k-up"})
        assert placed.status_code == 201, placed.text
        assert len(backend_of(app).orders) == 1
        await asyncio.to_thread(sentinel_setup.processes.kill, sentinel_setup.replica_port)
        for key in ("k-up-again", "k-down"):
            refused = await client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers={"Idempotency-Key": key})
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "store_unavailable"
        unkeyed = await client.post("/products/acme:eo/orders", json=STAPI_ORDER)
        assert unkeyed.status_code == 503, unkeyed.text
        # Reads do not wait: the order placed earlier is still served from the primary.
        read = await client.get(f"/orders/{placed.json()['id']}")
        assert read.status_code == 200, read.text
    assert len(backend_of(app).orders) == 1
