"""Orders through the gateway against stapi-fastapi 0.8.0 upstreams: flows, idempotency, journal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateway.services.tracking_world import CollectingSink
from tests.gateways import GATEWAY_URL, gateway_client, hrefs
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

ORDER = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {"delivery_format": "cog"}}


def acme() -> Any:
    """A provider with a sync-only and a sync+async product."""
    return build_provider([ProductSpec("eo"), ProductSpec("sar", async_=True)], name="acme")


def path(href: str) -> str:
    """A gateway href as a path for the test client."""
    assert href.startswith(GATEWAY_URL), href
    return href.removeprefix(GATEWAY_URL)


def link(body: dict[str, Any], rel: str) -> dict[str, Any]:
    """The first link with this relation."""
    return next(x for x in body["links"] if x["rel"] == rel)


async def order_from(client: httpx.AsyncClient, order_link: dict[str, Any]) -> dict[str, Any]:
    """POST a create-order link's body unchanged and check the created order."""
    response = await client.post(path(order_link["href"]), json=order_link["body"])
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert response.headers["location"] == f"{GATEWAY_URL}/orders/{order['id']}"
    assert all(h.startswith(GATEWAY_URL) for h in hrefs(order))
    return order


async def test_flow_browse_products_search_and_order() -> None:
    """Flow 1: list products, search opportunities of one, order from the collection's link."""
    async with gateway_client({"acme": acme()}) as client:
        products = (await client.get("/products")).json()["products"]
        eo = next(p for p in products if p["id"] == "acme:eo")
        collection = (
            await client.post(path(link(eo, "opportunities")["href"]), json={"datetime": WINDOW, "geometry": POINT})
        ).json()
        order = await order_from(client, link(collection, "create-order"))
    assert order["id"].startswith("acme:")
    assert order["properties"]["product_id"] == "acme:eo"


async def test_flow_known_product_search_and_order() -> None:
    """Flow 2: get a product, search its opportunities, order."""
    async with gateway_client({"acme": acme()}) as client:
        product = (await client.get("/products/acme:sar")).json()
        collection = (
            await client.post(
                path(link(product, "opportunities")["href"]), json={"datetime": WINDOW, "geometry": POINT}
            )
        ).json()
        order = await order_from(client, link(collection, "create-order"))
        fetched = (await client.get(path(link(order, "self")["href"]))).json()
        statuses = (await client.get(path(link(order, "monitor")["href"]))).json()
    assert fetched["id"] == order["id"]
    assert statuses["statuses"][0]["status_code"] == "received"


async def test_flow_order_without_search() -> None:
    """Flow 3: get a product and order it directly from its create-order link."""
    async with gateway_client({"acme": acme()}) as client:
        product = (await client.get("/products/acme:eo")).json()
        response = await client.post(path(link(product, "create-order")["href"]), json=ORDER)
    assert response.status_code == 201
    assert response.json()["properties"]["order_parameters"] == {"delivery_format": "cog"}


async def test_flow_async_search_then_order() -> None:
    """Flow 4: async search, poll the record, fetch the collection, order from it."""
    async with gateway_client({"acme": acme()}, search_refresh_s=0.05) as client:
        created = await client.post(
            "/products/acme:sar/opportunities",
            json={"datetime": WINDOW, "geometry": POINT},
            headers={"Prefer": "respond-async"},
        )
        record = await settle(client, created.headers["location"])
        collection = (await client.get(path(link(record, "opportunities")["href"]))).json()
        order = await order_from(client, link(collection, "create-order"))
    assert order["properties"]["product_id"] == "acme:sar"


async def test_federated_opportunity_orders_go_to_its_member() -> None:
    """An opportunity of a federated search is ordered from its link at the member it names."""
    upstreams = {"a": build_provider([ProductSpec("eo")], name="a"), "b": build_provider([ProductSpec("eo")], name="b")}
    products = [{"id": "any-eo", "members": ["a:eo", "b:eo"]}]
    async with gateway_client(upstreams, products=products) as client:
        collection = (
            await client.post("/products/any-eo/opportunities", json={"datetime": WINDOW, "geometry": POINT})
        ).json()
        from_b = next(f for f in collection["features"] if f["properties"]["product_id"] == "b:eo")
        order = await order_from(client, link(from_b, "create-order"))
        unnamed = await client.post("/products/any-eo/orders", json=ORDER)
    assert order["properties"]["product_id"] == "b:eo"
    assert len(backend_of(upstreams["b"]).orders) == 1
    assert not backend_of(upstreams["a"]).orders
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["loc"] == ["body", "order_parameters", "member"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**ORDER, "order_parameters": {"bogus": 1}}, ["body", "order_parameters"]),
        ({**ORDER, "order_parameters": {"delivery_format": "png"}}, ["body", "order_parameters", "delivery_format"]),
        ({"datetime": WINDOW, "geometry": POINT}, ["body", "order_parameters"]),
        ({**ORDER, "geometry": {"type": "Polygon"}}, ["body", "geometry"]),
    ],
)
async def test_invalid_orders_are_422_before_the_provider_is_called(body: dict[str, Any], loc: list[str]) -> None:
    """Payload and order parameters are checked against the product's schema first."""
    provider = acme()
    async with gateway_client({"acme": provider}) as client:
        response = await client.post("/products/acme:eo/orders", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][: len(loc)] == loc
    assert not backend_of(provider).orders


async def test_retry_with_the_same_key_returns_the_original_order() -> None:
    """Same key, same body: 201 again with the same order, and no second upstream order."""
    provider = acme()
    headers = {"Idempotency-Key": "order-1"}
    async with gateway_client({"acme": provider}) as client:
        first = await client.post("/products/acme:eo/orders", json=ORDER, headers=headers)
        second = await client.post("/products/acme:eo/orders", json=ORDER, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert len(backend_of(provider).orders) == 1


async def test_key_reused_with_another_body_is_422() -> None:
    """Same key, different body: 422 idempotency_key_reused, and nothing placed."""
    provider = acme()
    headers = {"Idempotency-Key": "order-2"}
    other = {**ORDER, "order_parameters": {"delivery_format": "geotiff"}}
    async with gateway_client({"acme": provider}) as client:
        await client.post("/products/acme:eo/orders", json=ORDER, headers=headers)
        reused = await client.post("/products/acme:eo/orders", json=other, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert len(backend_of(provider).orders) == 1


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_twenty_concurrent_creates_with_one_key_place_one_order(
    store: str, redis_url: str, redis_prefix: str
) -> None:
    """Concurrent requests with one key all get the same order; the provider sees one."""
    provider = acme()
    settings: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix} if store == "redis" else {}
    headers = {"Idempotency-Key": "burst"}
    async with gateway_client({"acme": provider}, **settings) as client:
        responses = await asyncio.gather(
            *(client.post("/products/acme:eo/orders", json=ORDER, headers=headers) for _ in range(20))
        )
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(backend_of(provider).orders) == 1


class HangsAfterOrdering:
    """A real provider that places the order, then never answers in time (a lost response)."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app, self.delay_s = app, delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward; hold back the answer to order creations."""
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/orders"):
            held: list[Message] = []

            async def keep(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, keep)
            await asyncio.sleep(self.delay_s)
            for message in held:
                await send(message)
            return
        await self.app(scope, receive, send)


async def test_order_whose_answer_is_lost_is_504_then_reconciled_on_retry() -> None:
    """A timeout after sending is 504 order_outcome_unknown; the retry finds it, placing nothing new."""
    provider = acme()
    headers = {"Idempotency-Key": "lost-1"}
    async with gateway_client({"acme": HangsAfterOrdering(provider, delay_s=6)}, deadline_s=2.0) as client:
        lost = await client.post("/products/acme:eo/orders", json=ORDER, headers=headers)
        retried = await client.post("/products/acme:eo/orders", json=ORDER, headers=headers)
    assert lost.status_code == 504
    assert lost.json()["code"] == "order_outcome_unknown"
    assert retried.status_code == 201, retried.text
    placed = list(backend_of(provider).orders)
    assert placed == [retried.json()["id"].split(":", 1)[1]]


async def test_merged_order_listing_pages_every_order_once() -> None:
    """Orders of three providers, paged with a small limit, are each seen exactly once."""
    upstreams = {pid: build_provider([ProductSpec("eo")], name=pid) for pid in ("a", "b", "c")}
    async with gateway_client(upstreams) as client:
        placed = []
        for pid, count in (("a", 3), ("b", 1), ("c", 4)):
            for _ in range(count):
                response = await client.post(f"/products/{pid}:eo/orders", json=ORDER)
                placed.append(response.json()["id"])
        seen: list[str] = []
        url: str | None = "/orders?limit=2"
        while url:
            page = (await client.get(url)).json()
            seen.extend(o["id"] for o in page["features"])
            url = next((path(x["href"]) for x in page["links"] if x["rel"] == "next"), None)
    assert sorted(seen) == sorted(placed)
    assert len(seen) == len(set(seen)) == 8


async def test_unknown_orders_are_404() -> None:
    """Orders nobody has answer 404 in contract form."""
    async with gateway_client({"acme": acme()}) as client:
        missing = await client.get("/orders/acme:nope")
        statuses = await client.get("/orders/acme:nope/statuses")
        unprefixed = await client.get("/orders/nope")
    assert [missing.status_code, statuses.status_code, unprefixed.status_code] == [404, 404, 404]
    assert missing.json()["code"] == "not_found"


SECRET_LINKS = [
    {"href": "http://acme.test/internal/report?sig=PROVIDER-SIGNED", "rel": "report"},
    {"href": "http://10.0.0.7:9001/orders/x", "rel": "alternate"},
    {"href": "http://acme.test/orders/report", "rel": "describedby"},
]


class LinksInStatuses(httpx.AsyncBaseTransport):
    """A real provider whose status entries carry links: a signed one, a private one, a plain own one."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)

    def _inject(self, value: Any) -> None:
        if isinstance(value, dict):
            if "status_code" in value and "timestamp" in value:
                value["links"] = SECRET_LINKS
            for item in value.values():
                self._inject(item)
        elif isinstance(value, list):
            for item in value:
                self._inject(item)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if "/orders" not in request.url.path or not response.headers.get("content-type", "").endswith("json"):
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        data = json.loads(body)
        self._inject(data)
        return httpx.Response(
            response.status_code, content=json.dumps(data).encode(), headers={"content-type": "application/json"}
        )


async def test_links_in_status_entries_are_rewritten_like_the_orders() -> None:
    """A provider's own hrefs in status entries become the gateway's, signed and private ones go: in the
    create's answer, the order, its statuses, and the `order.status` events published for webhooks."""
    sink = CollectingSink()
    upstream = LinksInStatuses(acme())
    async with gateway_client({"acme": upstream}, events=sink, provider_overrides={"status_poll_s": 0.05}) as client:
        created = await client.post("/products/acme:eo/orders", json=ORDER)
        order_id = created.json()["id"]
        read = await client.get(f"/orders/{order_id}")
        statuses = await client.get(f"/orders/{order_id}/statuses")
        await eventually(lambda: sink.events, what="the first status published")
    shown = [created.text, read.text, statuses.text, *(json.dumps(e.data) for e in sink.events)]
    assert created.status_code == 201, created.text
    for text in shown:
        for leaked in ("acme.test", "10.0.0.7", "PROVIDER-SIGNED"):
            assert leaked not in text, text
    (entry,) = statuses.json()["statuses"]
    assert [link["rel"] for link in entry["links"]] == ["describedby"]
    assert entry["links"][0]["href"] == f"{GATEWAY_URL}/orders/acme:report"
