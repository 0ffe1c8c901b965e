"""The reconciler: finds lost orders however long the provider's list, within a bounded budget, circuit-aware."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from gateway.services.journal import unresolved_at
from gateway.store import open_store
from tests.gateway.services.orders.burst import order_for
from tests.gateways import gateway_client
from tests.order_faults import LosesOrderAnswers
from tests.upstreams import ProductSpec, backend_of, build_provider, provider_client
from tests.waiting import eventually


def provider() -> Any:
    """One provider with one sync product."""
    return build_provider([ProductSpec("eo")], name="acme")


async def place_directly(app: Any, count: int) -> None:
    """Orders placed at the provider without the gateway (other clients of the vendor)."""
    async with provider_client(app, "acme") as direct:
        for i in range(count):
            response = await direct.post("/products/eo/orders", json=order_for(10_000 + i))
            assert response.status_code == 201, response.text


def reconcile_calls(metrics: str) -> int:
    """How many order-list pages the gateway's reconciler asked provider `acme` for (its own counter)."""
    match = re.search(r'stapi_gateway_reconcile_calls_total\{provider="acme"\} ([0-9.]+)', metrics)
    return int(float(match.group(1))) if match else 0


def orders_listed(app: Any) -> int:
    """How many order-list pages the provider served (listings and reconciliation alike)."""
    return sum(1 for r in backend_of(app).requests if r.path == "/orders")


async def retry_until_placed(
    client: httpx.AsyncClient, key: str, body: dict[str, Any], tries: int = 60
) -> httpx.Response:
    """Retry an order with its key until it is acknowledged (or out of tries)."""
    for _ in range(tries):
        response = await client.post("/products/acme:eo/orders", json=body, headers={"Idempotency-Key": key})
        if response.status_code == 201:
            return response
        assert response.json()["code"] == "order_outcome_unknown", response.text
        await asyncio.sleep(0.1)
    return response


@pytest.mark.parametrize("max_pages", [10, 2])
async def test_lost_order_behind_more_than_500_others_is_found(max_pages: int) -> None:
    """The provider lists 650 orders oldest first; the lost one is last: found in one scan, or resumed across scans."""
    app = provider()
    await place_directly(app, 650)
    faulty = LosesOrderAnswers(app, rate=1.0, modes=["502"])
    settings: dict[str, Any] = {"reconcile_scan_interval_s": 0.05, "reconcile_max_pages": max_pages}
    async with gateway_client({"acme": faulty}, **settings) as client:
        body = order_for(1)
        lost = await client.post("/products/acme:eo/orders", json=body, headers={"Idempotency-Key": "deep"})
        faulty.rate = 0.0
        found = await retry_until_placed(client, "deep", body)
    assert lost.status_code == 504
    assert found.status_code == 201, found.text
    assert len(backend_of(app).orders) == 651
    assert found.json()["properties"]["order_parameters"] == {"delivery_format": "cog"}  # the provider's default


async def test_reconciliation_calls_are_bounded_whatever_clients_do() -> None:
    """Five attempts that never resolve, hammered by listings and retries: list calls stay within the scan budget."""
    app = provider()
    await place_directly(app, 250)
    never = LosesOrderAnswers(app, rate=1.0, modes=["503"], before_place=True)
    scan_interval, pages, seconds = 0.5, 3, 4.0
    settings: dict[str, Any] = {
        "reconcile_scan_interval_s": scan_interval,
        "reconcile_max_pages": pages,
        "deadline_s": 1.0,
    }
    async with gateway_client({"acme": never}, provider_overrides={"circuit_failures": 0}, **settings) as client:
        for i in range(5):
            await client.post("/products/acme:eo/orders", json=order_for(i), headers={"Idempotency-Key": f"k{i}"})
        listings = 0
        loop = asyncio.get_running_loop()
        ends = loop.time() + seconds

        async def hammer(i: int) -> None:
            nonlocal listings
            while loop.time() < ends:
                assert (await client.get("/orders")).status_code == 200
                listings += 1
                retried = await client.post(
                    "/products/acme:eo/orders", json=order_for(i), headers={"Idempotency-Key": f"k{i}"}
                )
                assert retried.status_code == 504

        await asyncio.gather(*(hammer(i) for i in range(5)))
        metrics = (await client.get("/metrics")).text
    bound = (seconds / scan_interval + 2) * pages
    assert 0 < reconcile_calls(metrics) <= bound, (reconcile_calls(metrics), bound, listings)
    assert orders_listed(app) > reconcile_calls(metrics)  # the clients' listings are not counted against it
    assert listings >= 5
    assert never.faults["503"] == 5
    assert 'stapi_gateway_order_attempts_unresolved{provider="acme"} 5.0' in metrics


async def test_reconciliation_waits_for_an_open_circuit_then_finds_the_order() -> None:
    """A 502 after placing opens the circuit (threshold 1); the lookup waits until it may probe, then succeeds."""
    app = provider()
    faulty = LosesOrderAnswers(app, rate=1.0, modes=["502"])
    overrides = {"circuit_failures": 1, "circuit_open_s": 0.6}
    async with gateway_client({"acme": faulty}, provider_overrides=overrides, reconcile_scan_interval_s=0.05) as client:
        body = order_for(3)
        lost = await client.post("/products/acme:eo/orders", json=body, headers={"Idempotency-Key": "circuit"})
        faulty.rate = 0.0
        opened = (await client.get("/readyz")).json()["providers"]["acme"]["state"]
        calls_while_open = orders_listed(app)
        found = await retry_until_placed(client, "circuit", body)
        closed = (await client.get("/readyz")).json()["providers"]["acme"]["state"]
    assert lost.status_code == 504
    assert opened == "open"
    assert calls_while_open == 0
    assert found.status_code == 201
    assert closed == "closed"
    assert len(backend_of(app).orders) == 1


async def test_one_providers_backlog_does_not_keep_anothers_lost_order_unfound() -> None:
    """501 attempts of unknown outcome wait at a provider that places nothing (more than a pass once
    read of all providers together); another provider's lost order is still found for its retry."""
    down_app, up_app = (build_provider([ProductSpec("eo")], name=name) for name in ("down", "up"))
    down = LosesOrderAnswers(down_app, rate=1.0, modes=["503"], before_place=True)
    up = LosesOrderAnswers(up_app, rate=1.0, modes=["502"])
    upstreams = {"down": down, "up": up}
    settings: dict[str, Any] = {"deadline_s": 2.0, "reconcile_scan_interval_s": 0.05}
    async with gateway_client(upstreams, provider_overrides={"circuit_failures": 0}, **settings) as client:
        for n in range(501):  # a client retrying without a key: a new attempt each time
            assert (await client.post("/products/down:eo/orders", json=order_for(n))).status_code == 504
        headers = {"Idempotency-Key": "up-1"}
        lost = await client.post("/products/up:eo/orders", json=order_for(9_999), headers=headers)
        found = await eventually(
            lambda: client.post("/products/up:eo/orders", json=order_for(9_999), headers=headers),
            until=lambda r: r.status_code == 201,
            every_s=0.2,
            what="the lost order found at the healthy provider",
        )
    assert lost.status_code == 504
    assert found.json()["id"] == f"up:{next(iter(backend_of(up_app).orders))}"
    assert len(backend_of(up_app).orders) == 1
    assert not backend_of(down_app).orders


async def test_attempts_journaled_before_per_provider_indexes_are_still_reconciled(
    redis_url: str, redis_prefix: str
) -> None:
    """An attempt only in the all-providers index (journaled by the previous layout) is put in its
    provider's index when a gateway starts, and its lost order is found for the retry."""
    app = build_provider([ProductSpec("eo")], name="acme")
    lossy = LosesOrderAnswers(app, rate=1.0, modes=["502"])
    settings: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "secret": "s"}
    headers = {"Idempotency-Key": "legacy-1"}
    async with gateway_client({"acme": lossy}, reconcile_scan_interval_s=3600, **settings) as client:
        lost = await client.post("/products/acme:eo/orders", json=order_for(1), headers=headers)
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        (attempt_id, _), *_ = await store.index_page(unresolved_at("acme"), limit=10)
        await store.index_remove(unresolved_at("acme"), attempt_id)
        lossy.rate = 0.0
        fast: dict[str, Any] = {"deadline_s": 2.0, "reconcile_scan_interval_s": 0.05, **settings}
        async with gateway_client({"acme": lossy}, **fast) as client:
            found = await eventually(
                lambda: client.post("/products/acme:eo/orders", json=order_for(1), headers=headers),
                until=lambda r: r.status_code == 201,
                every_s=0.2,
            )
            reindexed = await store.index_page(unresolved_at("acme"), limit=10)
    finally:
        await store.aclose()
    assert lost.status_code == 504
    assert found.json()["id"] == f"acme:{next(iter(backend_of(app).orders))}"
    assert len(backend_of(app).orders) == 1
    assert reindexed == []  # found, so settled: out of both indexes
