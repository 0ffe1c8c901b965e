"""Gateway over gateway: G2's provider `g1` is gateway G1, in front of stapi-fastapi providers
`alpha` and `bravo` and a federated product `fed` over both.

Everything G1 serves passes G2's StapiAdapter, which validates each answer with the
stapi-pydantic 0.1.0 models (an invalid one would be a 502 here); what G2 serves is validated
against the same models in the tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from stapi_pydantic import (
    OpportunityCollection,
    OpportunitySearchRecord,
    Order,
    OrderCollection,
    OrderStatuses,
    Product,
    ProductsCollection,
)

from gateway.app import create_app
from gateway.settings.models import Settings
from tests.faults import SwitchApp, SwitchTransport
from tests.gateway.http.routes.test_federated_orders import create_product_order, payload
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, follow_get, gateway_client, hrefs, lifespan, provider_settings
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

FED = {"id": "fed", "title": "Any optical", "members": ["alpha:optical", "bravo:optical"]}
FAST = {"search_refresh_s": 0.05}
SEARCH = {"datetime": WINDOW, "geometry": POINT}
FAILURE_HEADER = "stapi-gateway-provider-failure"


@dataclass
class Chain:
    """G2's client, and what stands behind G1."""

    client: httpx.AsyncClient
    alpha: FastAPI
    bravo: FastAPI
    bravo_link: SwitchTransport


@asynccontextmanager
async def chain(
    *,
    bravo_down: bool = False,
    bravo_app: Any = None,
    g1: dict[str, Any] | None = None,
    g1_providers: dict[str, Any] | None = None,
    g2_products: list[dict[str, Any]] | None = None,
) -> AsyncIterator[Chain]:
    """G1 (its lifespan run for real) in front of alpha and bravo; G2 in front of G1."""
    alpha = build_provider(
        [ProductSpec("optical"), ProductSpec("sar", async_=True)], name="alpha", opportunities_per_search=12
    )
    bravo = build_provider([ProductSpec("optical")], name="bravo", opportunities_per_search=7)
    link = SwitchTransport(bravo_app or bravo, down=bravo_down)
    settings = Settings.build(
        provider_settings(["alpha", "bravo"], **(g1_providers or {})),
        products=[FED],
        secret="g1-secret",
        **{**FAST, **(g1 or {})},
    )
    g1_app = create_app(settings, transports={"alpha": httpx.ASGITransport(app=alpha), "bravo": link})
    g2: dict[str, Any] = {**FAST, "products": g2_products or []}
    async with lifespan(g1_app), gateway_client({"g1": g1_app}, **g2) as client:
        yield Chain(client, alpha, bravo, link)


def features_of(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every opportunity of a paged collection."""
    return [f for page in pages for f in page["features"]]


async def post_pages(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A sync search and its POST `next` links (bounded), each page validated."""
    pages: list[dict[str, Any]] = []
    while True:
        response = await client.post(path, json=body)
        assert response.status_code == 200, response.text
        OpportunityCollection.model_validate(response.json())
        pages.append(response.json())
        following = next((x for x in pages[-1]["links"] if x["rel"] == "next"), None)
        if following is None or len(pages) > 20:
            return pages
        path, body = following["href"].removeprefix(GATEWAY_URL), following["body"]


async def test_products_of_both_gateways_levels_are_listed_with_g2_ids_and_links() -> None:
    """G1's products (and its federated one) appear in G2 as `g1:...`, with G2 links only."""
    async with chain() as c:
        pages = await follow_get(c.client, "/products?limit=2", ProductsCollection)
        fed = (await c.client.get("/products/g1:fed")).json()
        optical = (await c.client.get("/products/g1:alpha:optical")).json()
        schemas = [
            await c.client.get(f"/products/g1:{pid}/{kind}")
            for pid in ("fed", "alpha:optical")
            for kind in ("queryables", "order-parameters", "conformance")
        ]
    products = [p for page in pages for p in page["products"]]
    assert sorted(p["id"] for p in products) == ["g1:alpha:optical", "g1:alpha:sar", "g1:bravo:optical", "g1:fed"]
    assert not any("federation:missing" in page for page in pages)
    assert all(h.startswith(GATEWAY_URL) for h in hrefs(pages))
    Product.model_validate(fed)
    assert fed["federation:members"] == ["g1:alpha:optical", "g1:bravo:optical"]
    assert Product.model_validate(optical).id == "g1:alpha:optical"
    assert all(h.startswith(GATEWAY_URL) for h in hrefs([fed, optical]))
    assert [r.status_code for r in schemas] == [200] * 6
    assert schemas[1].json()["properties"]["member"]["enum"] == ["g1:alpha:optical", "g1:bravo:optical"]


async def test_sync_searches_page_through_every_opportunity_of_the_chain() -> None:
    """One provider's product and G1's federated one: every opportunity once, G2 ids, G2 cursors."""
    async with chain() as c:
        single = await post_pages(c.client, "/products/g1:alpha:optical/opportunities", {**SEARCH, "limit": 5})
        federated = await post_pages(c.client, "/products/g1:fed/opportunities", {**SEARCH, "limit": 6})
    assert [len(p["features"]) for p in single] == [5, 5, 2]
    assert {f["properties"]["product_id"] for f in features_of(single)} == {"g1:alpha:optical"}
    assert [link["rel"] for link in single[-1]["links"]] == ["create-order"]
    merged = features_of(federated)
    assert len(merged) == len({f["id"] for f in merged}) == 12 + 7
    assert {f["properties"]["product_id"] for f in merged} == {"g1:alpha:optical", "g1:bravo:optical"}
    # Each federated opportunity names its member as G2 knows it; the collection has no catch-all link.
    for feature in merged:
        (order,) = [link for link in feature["links"] if link["rel"] == "create-order"]
        assert order["href"] == f"{GATEWAY_URL}/products/g1:fed/orders"
        assert order["body"]["order_parameters"] == {"member": feature["properties"]["product_id"]}
    assert not any(link["rel"] == "create-order" for page in federated for link in page["links"])


@pytest.mark.parametrize(("product", "count"), [("g1:alpha:sar", 12), ("g1:fed", 19), ("g1:alpha:optical", 12)])
async def test_async_searches_complete_through_the_chain(product: str, count: int) -> None:
    """A record at G2 over G1's record (whatever G1 does below: upstream async, emulated, both)."""
    async with chain() as c:
        created = await c.client.post(
            f"/products/{product}/opportunities", json={**SEARCH, "limit": 5}, headers={"Prefer": "respond-async"}
        )
        assert created.status_code == 201, created.text
        record = await settle(c.client, created.headers["location"])
        pages = await follow_get(c.client, f"/products/{product}/opportunities/{record['id']}", OpportunityCollection)
    OpportunitySearchRecord.model_validate(record)
    assert record["status"]["status_code"] == "completed"
    assert "federation:missing" not in record
    features = features_of(pages)
    assert len(features) == len({f["id"] for f in features}) == count
    assert all(f["properties"]["product_id"].startswith("g1:") for f in features)


async def test_orders_through_the_chain_federated_or_not() -> None:
    """A reference-client order on G1's federated product, one from an opportunity's link, and a
    plain one: placed at the right provider, listed, read and monitored through G2."""
    async with chain() as c:
        by_client = await create_product_order(c.client, "g1:fed", payload("g1:bravo:optical"))
        collection = (await c.client.post("/products/g1:fed/opportunities", json=SEARCH)).json()
        from_alpha = next(f for f in collection["features"] if f["properties"]["product_id"] == "g1:alpha:optical")
        link = next(x for x in from_alpha["links"] if x["rel"] == "create-order")
        from_link = await c.client.post(link["href"].removeprefix(GATEWAY_URL), json=link["body"])
        plain = await c.client.post(
            "/products/g1:alpha:sar/orders", json={**SEARCH, "order_parameters": {"delivery_format": "geotiff"}}
        )
        listing = await follow_get(c.client, "/orders?limit=2", OrderCollection)
        order_id = by_client.json()["id"]
        one = await c.client.get(f"/orders/{order_id}")
        statuses = await c.client.get(f"/orders/{order_id}/statuses")
    assert [r.status_code for r in (by_client, from_link, plain)] == [201, 201, 201], by_client.text + from_link.text
    placed: list[Order[Any]] = [Order.model_validate(r.json()) for r in (by_client, from_link, plain)]
    assert [o.properties.product_id for o in placed] == ["g1:bravo:optical", "g1:alpha:optical", "g1:alpha:sar"]
    assert [o.id.split(":")[:2] for o in placed] == [["g1", "bravo"], ["g1", "alpha"], ["g1", "alpha"]]
    # Neither gateway's `member` reached the providers.
    bravo_orders = list(backend_of(c.bravo).orders.values())
    assert [o.properties.order_parameters for o in bravo_orders] == [{"delivery_format": "cog"}]
    assert len(backend_of(c.alpha).orders) == 2
    listed = [o["id"] for page in listing for o in page["features"]]
    assert sorted(listed) == sorted(o.id for o in placed)
    assert one.status_code == 200
    assert Order.model_validate(one.json()).id == order_id
    assert OrderStatuses.model_validate(statuses.json()).statuses[0].status_code == "received"
    assert all(h.startswith(GATEWAY_URL) for h in hrefs([r.json() for r in (by_client, from_link, plain, one)]))


async def test_a_provider_missing_behind_g1_is_missing_in_g2_namespaced() -> None:
    """bravo down behind G1: G1's `federation:missing` reaches G2's client as `g1:bravo` in the
    product list, searches (sync and async), the order list and the federated order schema."""
    async with chain(bravo_down=True) as c:
        products = await c.client.get("/products?limit=100")
        orders = await c.client.get("/orders")
        sync = await c.client.post("/products/g1:fed/opportunities", json=SEARCH)
        asked = {"Prefer": "respond-async"}
        created = await c.client.post("/products/g1:fed/opportunities", json=SEARCH, headers=asked)
        record = await settle(c.client, created.headers["location"])
        collection = await c.client.get(f"/products/g1:fed/opportunities/{record['id']}")
        schema = (await c.client.get("/products/g1:fed/order-parameters")).json()
    assert [r.status_code for r in (products, orders, sync, collection)] == [200] * 4
    ProductsCollection.model_validate(products.json())
    OrderCollection.model_validate(orders.json())
    for body in (products.json(), orders.json(), sync.json(), record, collection.json()):
        assert body["federation:missing"] == ["g1:bravo"], body
    assert record["status"]["status_code"] == "completed"
    assert {f["properties"]["product_id"] for f in sync.json()["features"]} == {"g1:alpha:optical"}
    assert schema["properties"]["member"]["enum"] == ["g1:alpha:optical"]
    assert schema["federation:missing"] == ["g1:bravo"]


async def test_a_dead_provider_behind_g1_does_not_open_g2s_circuit_for_all_of_g1() -> None:
    """`g1:bravo:*` fails with G1's reason (its code, `provider: g1:bravo`) as often as it is asked;
    G2's circuit towards G1 stays closed and `g1:alpha:optical` keeps answering 200."""
    async with chain(bravo_down=True) as c:
        failures = [await c.client.get("/products/g1:bravo:optical") for _ in range(12)]
        healthy = await c.client.get("/products/g1:alpha:optical")
        ready = (await c.client.get("/readyz")).json()
    for response in failures:
        assert response.status_code in (502, 503), response.text
        body = response.json()
        assert body["code"] in ("provider_unreachable", "provider_unavailable")
        assert body["provider"] == "g1:bravo"
        assert "provider 'bravo'" in body["detail"]
        # What G2 says to a gateway in front of it, in turn.
        assert response.headers[FAILURE_HEADER] == "g1:bravo"
    assert healthy.status_code == 200
    assert ready["providers"]["g1"]["state"] == "closed"
    assert ready["providers"]["g1"]["consecutive_failures"] == 0


async def test_a_provider_hanging_behind_g1_is_cut_by_g1_and_missing_in_g2() -> None:
    """With G1's deadline below G2's timeout for it (as the README advises), a hanging bravo is
    G1's straggler: G2 gets G1's partial answer in time and lists `g1:bravo` as missing."""
    bravo = SwitchApp(build_provider([ProductSpec("optical")], name="bravo"), mode="hang")
    async with chain(bravo_app=bravo, g1={"deadline_s": 0.5}) as c:
        products = await c.client.get("/products?limit=100")
        healthy = await c.client.get("/products/g1:alpha:optical")
    assert products.status_code == 200
    assert products.json()["federation:missing"] == ["g1:bravo"]
    assert "g1:alpha:optical" in [p["id"] for p in products.json()["products"]]
    assert healthy.status_code == 200


async def test_g1s_validation_errors_reach_g2s_client_with_their_reasons() -> None:
    """A request G2 accepts but G1 rejects (G1 allows shorter intervals): G2's 422 carries G1's errors."""
    order = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {"member": "g1:alpha:optical"}}
    async with chain(g1={"max_interval_days": 1}) as c:
        federated = await c.client.post("/products/g1:fed/orders", json=order)
        search = await c.client.post("/products/g1:alpha:optical/opportunities", json=SEARCH)
    for response in (federated, search):
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "validation_failed"
        assert "provider 'g1' rejected the request" in body["detail"]
        assert body["errors"], body
        assert body["errors"][0]["loc"] == ["body", "datetime"]
        assert body["errors"][0]["msg"]
    assert not backend_of(c.alpha).orders


async def test_an_order_g1_could_not_send_frees_g2s_idempotency_key() -> None:
    """G1's 502/503 on a create means nothing was placed (its 504 would mean unknown): G2 reports
    it as such and frees the key, so the retry once bravo is back places exactly one order."""
    order = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}
    headers = {"Idempotency-Key": "chain-1"}
    async with chain(bravo_down=True, g1_providers={"circuit_open_s": 0.05}) as c:
        refused = await c.client.post("/products/g1:bravo:optical/orders", json=order, headers=headers)
        c.bravo_link.down = False
        # G1's circuit towards bravo lets a probe through after 50 ms.
        placed = await eventually(
            lambda: c.client.post("/products/g1:bravo:optical/orders", json=order, headers=headers),
            until=lambda r: r.status_code == 201,
            what="the order placed once bravo is back",
        )
        again = await c.client.post("/products/g1:bravo:optical/orders", json=order, headers=headers)
    assert refused.status_code in (502, 503), refused.text
    assert refused.json()["provider"] == "g1:bravo"
    assert placed.status_code == 201, placed.text
    assert again.json()["id"] == placed.json()["id"]
    assert len(backend_of(c.bravo).orders) == 1


async def test_g2s_own_federated_product_over_g1s_products_orders_at_the_member_named() -> None:
    """Federating at G2 over products G1 serves: G2's member ids are `g1:...`, and G1 gets no `member`."""
    products = [{"id": "both", "members": ["g1:alpha:optical", "g1:bravo:optical"]}]
    async with chain(g2_products=products) as c:
        schema = (await c.client.get("/products/both/order-parameters")).json()
        placed = await create_product_order(c.client, "both", payload("g1:alpha:optical"))
    assert schema["properties"]["member"]["enum"] == ["g1:alpha:optical", "g1:bravo:optical"]
    assert placed.status_code == 201, placed.text
    assert Order.model_validate(placed.json()).properties.product_id == "g1:alpha:optical"
    assert [o.properties.order_parameters for o in backend_of(c.alpha).orders.values()] == [{"delivery_format": "cog"}]
