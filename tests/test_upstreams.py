"""Smoke tests of the stapi-fastapi provider builder that the gateway tests rely on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from geojson_pydantic.geometries import Geometry
from stapi_pydantic import (
    OpportunityCollection,
    OpportunityProperties,
    OpportunitySearchRecord,
    Order,
    OrderStatus,
    OrderStatusCode,
)

from tests.upstreams import (
    ProductSpec,
    backend_of,
    build_provider,
    build_providers,
    provider_client,
    serve,
)

OPPORTUNITIES_ASYNC = "https://stapi.example.com/v0.1.0/opportunities-async"
SEARCH = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
}
SPECS = [
    ProductSpec(id="eo-sync", title="Sync EO"),
    ProductSpec(id="sar-both", title="SAR", async_=True),
    ProductSpec(id="sar-async", sync=False, async_=True),
]


@pytest.fixture
def client() -> httpx.AsyncClient:
    """A client for a fresh provider offering sync, sync+async and async-only products."""
    return provider_client(build_provider(SPECS, name="p1"))


def link(body: dict[str, Any], rel: str) -> dict[str, Any] | None:
    """The first link with relation `rel`, if any."""
    return next((lk for lk in body["links"] if lk["rel"] == rel), None)


async def test_products_paging_follows_next_tokens(client: httpx.AsyncClient) -> None:
    """GET /products?limit=1 pages through every product exactly once via next links."""
    seen: list[str] = []
    url: str | None = "/products?limit=1"
    async with client:
        while url is not None:
            response = await client.get(url)
            assert response.status_code == 200
            body = response.json()
            assert body["type"] == "ProductCollection"
            seen += [p["id"] for p in body["products"]]
            nxt = link(body, "next")
            url = nxt["href"] if nxt else None
    assert seen == ["eo-sync", "sar-both", "sar-async"]


async def test_product_conformance_lists_async_class(client: httpx.AsyncClient) -> None:
    """Per-product conformance carries the geojson and the async opportunities classes."""
    async with client:
        response = await client.get("/products/sar-both/conformance")
    conforms_to = response.json()["conformsTo"]
    assert OPPORTUNITIES_ASYNC in conforms_to
    assert any(c.startswith("https://geojson.org/schema/") for c in conforms_to)


async def test_sync_search_pages_with_post_next_link(client: httpx.AsyncClient) -> None:
    """Prefer: wait gives a sync collection whose POST next link yields the following page."""
    async with client:
        response = await client.post(
            "/products/sar-both/opportunities", json={**SEARCH, "limit": 10}, headers={"Prefer": "wait"}
        )
        assert response.status_code == 200
        assert response.headers["preference-applied"] == "wait"
        first = OpportunityCollection[Geometry, OpportunityProperties].model_validate(response.json())
        assert [f.id for f in first.features] == [f"sar-both-opp-{i}" for i in range(10)]
        nxt = link(response.json(), "next")
        assert nxt is not None
        assert nxt["method"] == "POST"
        second = await client.post(nxt["href"], json=nxt["body"], headers={"Prefer": "wait"})
    assert second.json()["features"][0]["id"] == "sar-both-opp-10"


async def test_sync_search_applies_cql2_filter(client: httpx.AsyncClient) -> None:
    """A CQL2 filter on off_nadir narrows the generated opportunities."""
    cql = {"op": "<", "args": [{"property": "off_nadir"}, 10]}
    async with client:
        response = await client.post("/products/eo-sync/opportunities", json={**SEARCH, "filter": cql})
    features = response.json()["features"]
    assert features
    assert all(f["properties"]["off_nadir"] < 10 for f in features)


async def test_async_search_completes_and_serves_collection(client: httpx.AsyncClient) -> None:
    """respond-async gives 201 + Location; polling the record yields a fetchable collection."""
    async with client:
        response = await client.post(
            "/products/sar-async/opportunities", json=SEARCH, headers={"Prefer": "respond-async"}
        )
        assert response.status_code == 201
        assert response.headers["preference-applied"] == "respond-async"
        location = response.headers["location"]
        assert OpportunitySearchRecord.model_validate(response.json()).status.status_code == "received"
        for _ in range(5):
            record = (await client.get(location)).json()
            if record["status"]["status_code"] == "completed":
                break
        assert record["status"]["status_code"] == "completed"
        opportunities = link(record, "opportunities")
        assert opportunities is not None
        collection = await client.get(opportunities["href"])
        assert collection.status_code == 200
        statuses = await client.get(f"{location}/statuses")
    body = OpportunityCollection[Geometry, OpportunityProperties].model_validate(collection.json())
    assert body.id is not None
    assert len(body.features) == 25
    assert [s["status_code"] for s in statuses.json()] == ["received", "completed"]


async def test_async_search_waits_for_backend_when_not_auto_completing() -> None:
    """With async_completes=False a record stays received until the test completes it."""
    app = build_provider(SPECS, async_completes=False)
    async with provider_client(app) as client:
        response = await client.post("/products/sar-async/opportunities", json=SEARCH)
        location = response.headers["location"]
        assert (await client.get(location)).json()["status"]["status_code"] == "received"
        backend_of(app).complete_search(response.json()["id"])
        record = (await client.get(location)).json()
    assert record["status"]["status_code"] == "completed"
    assert link(record, "opportunities") is not None


async def test_order_create_list_and_statuses(client: httpx.AsyncClient) -> None:
    """POST an order (201 + Location), then list it and read its status history."""
    async with client:
        response = await client.post(
            "/products/eo-sync/orders", json={**SEARCH, "order_parameters": {"delivery_format": "geotiff"}}
        )
        assert response.status_code == 201
        order = Order[OrderStatus].model_validate(response.json())
        assert response.headers["location"].endswith(f"/orders/{order.id}")
        listing = (await client.get("/orders")).json()
        assert [o["id"] for o in listing["features"]] == [order.id]
        assert listing["numberMatched"] == 1
        statuses = await client.get(f"/orders/{order.id}/statuses")
    assert statuses.status_code == 200
    assert [s["status_code"] for s in statuses.json()["statuses"]] == ["received"]
    assert order.properties.order_parameters == {"delivery_format": "geotiff"}


async def test_backend_state_is_inspectable_and_steerable() -> None:
    """Tests can read the backend's orders and move an order's status forward."""
    app = build_provider(SPECS)
    backend = backend_of(app)
    async with provider_client(app) as client:
        created = await client.post("/products/eo-sync/orders", json={**SEARCH, "order_parameters": {}})
        order_id = created.json()["id"]
        backend.set_order_status(order_id, OrderStatusCode.accepted)
        order = (await client.get(f"/orders/{order_id}")).json()
    assert list(backend.orders) == [order_id]
    assert order["properties"]["status"]["status_code"] == "accepted"
    assert [r.path for r in backend.requests][-1] == f"/orders/{order_id}"


async def test_build_providers_are_independent() -> None:
    """build_providers gives distinct providers with distinct products and separate state."""
    providers = build_providers(2)
    ids: list[str] = []
    for name, app in providers.items():
        async with provider_client(app, name) as client:
            ids += [p["id"] for p in (await client.get("/products")).json()["products"]]
    async with provider_client(providers["p1"], "p1") as client:
        await client.post("/products/p1-product-0/orders", json={**SEARCH, "order_parameters": {}})
    assert len(ids) == len(set(ids)) == 6
    assert len(backend_of(providers["p1"]).orders) == 1
    assert backend_of(providers["p2"]).orders == {}


async def test_serve_runs_provider_on_loopback() -> None:
    """serve() exposes a provider over real HTTP with hrefs built from the loopback host."""
    async with serve(build_provider(SPECS)) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/products/eo-sync")
    assert response.status_code == 200
    assert response.json()["links"][0]["href"] == f"{base_url}/products/eo-sync"
