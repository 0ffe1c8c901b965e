"""Rate limits shared by replicas: two gateways on one real Redis keep one provider's order rate, one
client's rate and a vendor's per-endpoint limit together; a store that fails falls back to the process."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
import structlog

from adapters.client import NoRateSlot
from gateway.obs.metrics import Metrics
from gateway.store import open_store
from gateway.upstream.rate_gates import Gates
from tests.gateways import gateway_client
from tests.rate_clock import CreateClock, most_in_a_second
from tests.upstreams import ProductSpec, backend_of, build_provider

ORDER = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
    "order_parameters": {},
}
KEY = "key-of-the-shared-client-0123"
CLIENT = {"id": "shared", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), "rate_per_s": 0.01, "burst": 2}


def shared(redis_url: str, redis_prefix: str, **gateway: Any) -> dict[str, Any]:
    """Gateway settings of one deployment: one Redis, one prefix, one secret."""
    return {"store": redis_url, "store_prefix": redis_prefix, "secret": "shared-secret", **gateway}


async def test_two_gateways_on_one_redis_share_a_providers_order_rate(redis_url: str, redis_prefix: str) -> None:
    """12 creates at once through two gateways, `order_rate_per_s: 4`: all placed, never more than the
    rate plus one in a second, and spread over the time one rate needs for all (not two rates' time)."""
    provider = CreateClock(build_provider([ProductSpec("eo")], name="acme"))
    overrides = {"order_rate_per_s": 4}
    settings = shared(redis_url, redis_prefix, deadline_s=8)
    async with (
        gateway_client({"acme": provider}, provider_overrides=overrides, **settings) as one,
        gateway_client({"acme": provider}, provider_overrides=overrides, **settings) as two,
    ):
        creates = [client.post("/products/acme:eo/orders", json=ORDER) for client in (one, two) for _ in range(6)]
        answers = await asyncio.gather(*creates)
    assert [a.status_code for a in answers] == [201] * 12
    assert len(provider.arrivals) == 12
    assert most_in_a_second(provider.arrivals) <= 5
    # Each gateway alone would have sent its 6 in 1.25 s; together they keep one rate: 11 intervals.
    assert max(provider.arrivals) - min(provider.arrivals) >= 11 / 4 - 0.25


async def test_a_create_with_no_slot_before_the_deadline_is_503_with_retry_after(
    redis_url: str, redis_prefix: str
) -> None:
    """One gateway spends the provider's order slot; the other's create is not sent: 503 provider_rate_limited
    with Retry-After, and nothing placed (the provider saw one create)."""
    acme = build_provider([ProductSpec("eo")], name="acme")
    overrides = {"order_rate_per_s": 1 / 120}
    settings = shared(redis_url, redis_prefix, deadline_s=2.0)
    async with (
        gateway_client({"acme": acme}, provider_overrides=overrides, **settings) as one,
        gateway_client({"acme": acme}, provider_overrides=overrides, **settings) as two,
    ):
        placed = await one.post("/products/acme:eo/orders", json=ORDER)
        refused = await two.post("/products/acme:eo/orders", json=ORDER)
    assert placed.status_code == 201
    assert refused.status_code == 503
    assert refused.json()["code"] == "provider_rate_limited"
    assert 60 <= int(refused.headers["Retry-After"]) <= 120
    assert len(backend_of(acme).orders) == 1


async def test_a_clients_rate_is_shared_by_two_gateways(redis_url: str, redis_prefix: str) -> None:
    """A client with a burst of 2 gets two requests through the two gateways together, then 429 with
    Retry-After at either (per process it would have had four)."""
    acme = build_provider([ProductSpec("eo")], name="acme")
    settings = shared(redis_url, redis_prefix, clients=[CLIENT])
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        gateway_client({"acme": acme}, **settings) as one,
        gateway_client({"acme": acme}, **settings) as two,
    ):
        statuses = [(await c.get("/products", headers=headers)).status_code for c in (one, two)]
        limited = [await c.get("/products", headers=headers) for c in (one, two)]
    assert statuses == [200, 200]
    assert [r.status_code for r in limited] == [429, 429]
    assert all(r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1 for r in limited)


async def test_a_vendors_per_endpoint_limit_is_shared_through_the_adapters_gates(
    redis_url: str, redis_prefix: str
) -> None:
    """The gates an adapter gets (Umbra's create-task, say) are one gate for two gateways on one Redis."""
    stores = [open_store(redis_url, prefix=redis_prefix) for _ in range(2)]
    try:
        one, two = (Gates(store, Metrics()).for_provider("umbra", fallback_budget_s=0.2) for store in stores)
        await one("create-task", 0.5).wait()
        with pytest.raises(NoRateSlot) as refused:
            await two("create-task", 0.5).wait()
        await two("create-feasibility", 0.5).wait()  # another endpoint, another gate
    finally:
        for store in stores:
            await store.aclose()
    assert 1.5 <= refused.value.retry_after_s <= 2.0


async def test_an_unreachable_store_falls_back_to_a_limit_of_this_process() -> None:
    """With Redis gone, calls are still let through at the rate, per process: logged once, counted each time."""
    store = open_store("redis://127.0.0.1:1/0")
    metrics = Metrics()
    gates = Gates(store, metrics)
    try:
        with structlog.testing.capture_logs() as logs:
            first = await gates.reserve("provider", "acme:rate", 0.1, 1.0, 0.0)
            second = await gates.reserve("provider", "acme:rate", 0.1, 1.0, 0.0)
    finally:
        await store.aclose()
    assert first.granted
    assert not second.granted
    assert [entry["event"] for entry in logs] == ["rate_gates_local"]
    assert 'stapi_gateway_rate_gate_local_total{scope="provider"} 2.0' in metrics.exposition().decode()


async def test_with_memory_the_limits_are_per_process() -> None:
    """memory://: each gateway keeps its own gates, so two of them each let a client's burst through."""
    acme = build_provider([ProductSpec("eo")], name="acme")
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        gateway_client({"acme": acme}, clients=[CLIENT]) as one,
        gateway_client({"acme": acme}, clients=[CLIENT]) as two,
    ):
        statuses = [(await c.get("/products", headers=headers)).status_code for c in (one, two, one, two)]
        over = await one.get("/products", headers=headers)
    assert statuses == [200, 200, 200, 200]
    assert over.status_code == 429
