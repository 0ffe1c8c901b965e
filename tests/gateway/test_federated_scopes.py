"""Provider scopes hold through federated products: a client sees, searches and orders only its members."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateways import GATEWAY_URL, gateway_client
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

KEY = "key-of-the-alpha-client-0123"
OTHER_KEY = "key-of-the-all-client-012345"
WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
SEARCH = {"datetime": WINDOW, "geometry": POINT}
CLIENTS = [
    {"id": "alpha-only", "key": KEY, "providers": ["alpha"], "products": ["*"]},
    {"id": "everything", "key": OTHER_KEY, "providers": ["*"], "products": ["*"]},
]
PRODUCTS = [
    {"id": "both", "members": ["alpha:eo", "beta:eo"]},
    {"id": "beta-only", "members": ["beta:eo", "beta:sar"]},
]
ALPHA = {"Authorization": f"Bearer {KEY}"}


def upstreams() -> dict[str, Any]:
    """Two real providers; beta has two products."""
    return {
        "alpha": build_provider([ProductSpec("eo", async_=True)], name="alpha"),
        "beta": build_provider([ProductSpec("eo", async_=True), ProductSpec("sar")], name="beta"),
    }


def calls(app: Any, method: str = "POST") -> int:
    """How many requests of `method` a provider received."""
    return len([r for r in backend_of(app).requests if r.method == method])


async def settle(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    """Poll a search record until it is finished, and return it."""
    answer = await eventually(
        lambda: client.get(location.removeprefix(GATEWAY_URL), headers=ALPHA),
        until=lambda r: r.json()["status"]["status_code"] in ("completed", "failed", "cancelled"),
        what="a finished search",
    )
    return dict(answer.json())


async def test_a_federated_product_shows_only_the_members_the_client_may_use() -> None:
    """Listing, document, queryables and order parameters name alpha's member only; beta-only is absent."""
    async with gateway_client(upstreams(), clients=CLIENTS, products=PRODUCTS) as client:
        listing = (await client.get("/products?limit=100", headers=ALPHA)).json()
        both = (await client.get("/products/both", headers=ALPHA)).json()
        order_parameters = (await client.get("/products/both/order-parameters", headers=ALPHA)).json()
        queryables = await client.get("/products/both/queryables", headers=ALPHA)
        hidden = [
            await client.get("/products/beta-only", headers=ALPHA),
            await client.get("/products/beta-only/queryables", headers=ALPHA),
            await client.post("/products/beta-only/opportunities", json=SEARCH, headers=ALPHA),
        ]
        full = (await client.get("/products/both", headers={"X-API-Key": OTHER_KEY})).json()
    assert sorted(p["id"] for p in listing["products"]) == ["alpha:eo", "both"]
    listed = next(p for p in listing["products"] if p["id"] == "both")
    assert listed["federation:members"] == both["federation:members"] == ["alpha:eo"]
    assert order_parameters["properties"]["member"]["enum"] == ["alpha:eo"]
    assert queryables.status_code == 200
    assert [r.status_code for r in hidden] == [404, 404, 404]
    assert full["federation:members"] == ["alpha:eo", "beta:eo"]


async def test_a_sync_search_asks_only_the_visible_members() -> None:
    """Every opportunity comes from alpha; beta never receives the search."""
    providers = upstreams()
    async with gateway_client(providers, clients=CLIENTS, products=PRODUCTS) as client:
        response = await client.post("/products/both/opportunities", json=SEARCH, headers={**ALPHA, "Prefer": "wait"})
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert features
    assert {f["properties"]["product_id"] for f in features} == {"alpha:eo"}
    assert calls(providers["beta"]) == 0


async def test_an_async_search_record_has_only_the_visible_members() -> None:
    """The record names alpha's member only, completes with its results, and beta is never asked."""
    providers = upstreams()
    async with gateway_client(providers, clients=CLIENTS, products=PRODUCTS, search_refresh_s=0.05) as client:
        created = await client.post(
            "/products/both/opportunities", json=SEARCH, headers={**ALPHA, "Prefer": "respond-async"}
        )
        assert created.status_code == 201, created.text
        record = await settle(client, created.headers["location"])
        collection = (await client.get(f"/products/both/opportunities/{record['id']}", headers=ALPHA)).json()
    assert [m["product_id"] for m in record["federation:members"]] == ["alpha:eo"]
    assert record["status"]["status_code"] == "completed"
    assert "federation:missing" not in record
    assert {f["properties"]["product_id"] for f in collection["features"]} == {"alpha:eo"}
    assert calls(providers["beta"]) == 0


async def test_an_order_can_go_only_to_a_visible_member() -> None:
    """Naming beta's member is a 422 that lists alpha's only; naming alpha's places the order there."""
    providers = upstreams()
    order = {**SEARCH, "order_parameters": {}}
    async with gateway_client(providers, clients=CLIENTS, products=PRODUCTS) as client:
        refused = await client.post("/products/both/orders", json={**order, "product_id": "beta:eo"}, headers=ALPHA)
        placed = await client.post("/products/both/orders", json={**order, "product_id": "alpha:eo"}, headers=ALPHA)
    assert refused.status_code == 422, refused.text
    message = refused.json()["errors"][0]["msg"]
    assert "alpha:eo" in message
    assert "beta:eo" not in message.split("one of:")[1]
    assert placed.status_code == 201, placed.text
    assert placed.json()["id"].startswith("alpha:")
    assert backend_of(providers["beta"]).orders == {}
    assert len(backend_of(providers["alpha"]).orders) == 1
