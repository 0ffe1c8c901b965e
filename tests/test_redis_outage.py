"""When Redis goes away and comes back, as README "When Redis goes away" promises, under traffic.

A real `redis-server` (tests/redis_server.py) stopped with SIGKILL and started again on the same
port and AOF directory, a real stapi-fastapi provider, the gateway's lifespan (and so its order
tracker and webhook worker loops) running throughout.
"""

from __future__ import annotations

import re

import httpx
from stapi_pydantic import OrderStatusCode

from gateway.settings.models import Settings
from tests.gateway.services.tracking_world import STAPI_ORDER, CollectingSink
from tests.gateways import gateway_client, provider_settings
from tests.redis_server import RedisProcess
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

SEARCH = {"datetime": "2030-01-01T00:00:00Z/2030-01-03T00:00:00Z", "geometry": STAPI_ORDER["geometry"]}


def _store_errors(metrics: str, operation: str) -> float:
    """`stapi_gateway_store_errors_total{operation=...}` from a /metrics page (0 when not yet counted)."""
    found = re.search(rf'stapi_gateway_store_errors_total\{{operation="{operation}"\}} ([0-9.e+]+)', metrics)
    return float(found.group(1)) if found else 0.0


def _published_completed(sink: CollectingSink, order_id: str) -> bool:
    """Whether the tracker published the order's `completed` status."""
    return any(e.subject == order_id and str(e.data.get("status_code")) == "completed" for e in sink.events)


async def _codes_while_down(client: httpx.AsyncClient, order_id: str, record_id: str) -> dict[str, tuple[int, str]]:
    """What each kind of request answers while the store is down: (status, error code or '')."""
    requests = {
        "products": client.get("/products"),
        "product": client.get("/products/acme:eo"),
        "order": client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers={"Idempotency-Key": "k-down"}),
        "order_without_key": client.post("/products/acme:eo/orders", json=STAPI_ORDER),
        "read_order": client.get(f"/orders/{order_id}"),
        "search_async": client.post(
            "/products/acme:sar/opportunities", json=SEARCH, headers={"Prefer": "respond-async"}
        ),
        "search_sync": client.post("/products/acme:eo/opportunities", json=SEARCH),
        "search_record": client.get(f"/searches/opportunities/{record_id}"),
        "list_orders": client.get("/orders"),
        "readyz": client.get("/readyz"),
        "healthz": client.get("/healthz"),
    }
    answers = {}
    for name, request in requests.items():
        response = await request
        code = response.json().get("code", "") if response.status_code >= 400 else ""
        answers[name] = (response.status_code, code)
    return answers


async def test_redis_down_then_back_under_traffic(redis_process: RedisProcess) -> None:
    """Reads and sync searches keep working, orders and search records answer 503 store_unavailable; all resumes."""
    app = build_provider([ProductSpec("eo"), ProductSpec("sar", async_=True)], name="acme")
    providers = provider_settings(["acme"], status_poll_s=0.05, circuit_failures=0)
    settings = Settings.build(
        providers,
        store=redis_process.url,
        secret="s",
        deadline_s=3.0,
        search_refresh_s=0.1,
        reconcile_scan_interval_s=0.05,
    )
    sink = CollectingSink()
    async with gateway_client({"acme": app}, settings=settings, events=sink) as client:
        placed = await client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers={"Idempotency-Key": "k-up"})
        asynchronously = {"Prefer": "respond-async"}
        started = await client.post("/products/acme:sar/opportunities", json=SEARCH, headers=asynchronously)
        assert placed.status_code == started.status_code == 201, (placed.text, started.text)
        order_id, record_id = placed.json()["id"], started.json()["id"]
        redis_process.kill()
        down = await _codes_while_down(client, order_id, record_id)
        # The background loops meet the outage, count it and carry on.
        loops = ("order_tracking", "order_reconcile", "search_poll", "webhook_read")
        counted = await eventually(
            lambda: client.get("/metrics"),
            until=lambda m: all(_store_errors(m.text, loop) > 0 for loop in loops),
            what="a store error counted by every background loop",
        )
        assert counted.status_code == 200
        redis_process.start()
        ready = await eventually(lambda: client.get("/readyz"), until=lambda r: r.status_code == 200, every_s=0.05)
        retried = await client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers={"Idempotency-Key": "k-up"})
        fresh = await client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers={"Idempotency-Key": "k-down"})
        record = await client.get(f"/searches/opportunities/{record_id}")
        # The tracker polls again: a status the provider reaches after the outage is published.
        backend_of(app).set_order_status(order_id.partition(":")[2], OrderStatusCode.completed)
        await eventually(lambda: _published_completed(sink, order_id), what="the completed status published")
    for name in ("products", "product", "search_sync", "list_orders", "healthz"):
        assert down[name] == (200, ""), (name, down[name])
    for name in ("order", "order_without_key", "read_order", "search_async", "search_record"):
        assert down[name] == (503, "store_unavailable"), (name, down[name])
    assert down["readyz"][0] == 503
    assert ready.status_code == 200, ready.text
    assert ready.json()["store"]["healthy"] is True
    assert retried.status_code == 201
    assert retried.json()["id"] == order_id
    assert fresh.status_code == 201, fresh.text
    assert record.status_code == 200, record.text
    assert _published_completed(sink, order_id)
    # One order per key at the provider: the refused attempts placed nothing.
    assert len(backend_of(app).orders) == 2
