"""The four STAPI flows through the gateway against the simulated Planet API, and a federated
product mixing `planet:assured` with a STAPI product."""

from __future__ import annotations

import asyncio

import httpx
from stapi_pydantic import Order, OrderStatus, OrderStatuses, Product

from gateway.settings.models import ProviderSettings, Settings
from tests.adapters.planet.helpers import POINT, fast_sim, interval, provider, search_body
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, build_provider
from tests.waiting import eventually


def _settings(*extra: ProviderSettings, **gateway: object) -> Settings:
    return Settings.build([provider(), *extra], secret="test-secret", **gateway)  # type: ignore[arg-type]


async def test_products_flow() -> None:
    """Both Planet products are listed; flexible is order-only, so searching it is refused."""
    sim = fast_sim()
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        listed = (await client.get("/products")).json()["products"]
        assert {p["id"] for p in listed} == {"planet:assured", "planet:flexible"}
        for product in listed:
            Product.model_validate(product)
        flexible = (await client.get("/products/planet:flexible")).json()
        assert "opportunities" not in {link["rel"] for link in flexible["links"]}
        search = await client.post("/products/planet:flexible/opportunities", json=search_body())
        assert search.status_code == 404, search.text
        assert search.json()["code"] == "search_not_supported"
        schema = (await client.get("/products/planet:assured/order-parameters")).json()
        assert schema["required"] == ["imaging_window"]


async def test_opportunities_order_and_status_flows() -> None:
    """Search (sync), order the first opportunity by its own link, read the order and its statuses."""
    sim = fast_sim()
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        found = await client.post(
            "/products/planet:assured/opportunities", json=search_body(limit=2), headers={"Prefer": "wait"}
        )
        assert found.status_code == 200, found.text
        first = found.json()["features"][0]
        assert first["id"].startswith("planet:")
        (link,) = [link for link in first["links"] if link["rel"] == "create-order"]
        assert link["href"] == "http://gateway.test/products/planet:assured/orders"
        assert not [link for link in found.json()["links"] if link["rel"] == "create-order"]
        placed = await client.post(
            link["href"].removeprefix("http://gateway.test"), json=link["body"], headers={"Idempotency-Key": "k1"}
        )
        assert placed.status_code == 201, placed.text
        order = Order[OrderStatus].model_validate(placed.json())
        assert order.id.startswith("planet:")
        (held,) = sim.world.orders.values()
        assert held.fields["imaging_window"] == first["properties"]["planet:imaging_window"]
        await asyncio.sleep(0.2)
        read = await client.get(f"/orders/{order.id}")
        assert read.status_code == 200, read.text
        assert read.json()["properties"]["status"]["provider:status"] == "FULFILLED"
        statuses = await client.get(f"/orders/{order.id}/statuses")
        assert statuses.status_code == 200, statuses.text
        OrderStatuses.model_validate(statuses.json())
        assert [s["status_code"] for s in statuses.json()["statuses"]] == [
            "received",
            "accepted",
            "tasked",
            "completed",
        ]
        listed = (await client.get("/orders")).json()
        assert [o["id"] for o in listed["features"]] == [order.id]


async def test_async_search_through_the_gateway() -> None:
    """`Prefer: respond-async` gives the gateway's record; it completes with Planet's windows."""
    sim = fast_sim()
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        started = await client.post(
            "/products/planet:assured/opportunities", json=search_body(), headers={"Prefer": "respond-async"}
        )
        assert started.status_code == 201, started.text
        record_id = started.json()["id"]
        answer = await eventually(
            lambda: client.get(f"/searches/opportunities/{record_id}"),
            until=lambda r: r.json()["status"]["status_code"] in ("completed", "failed"),
            every_s=0.05,
        )
        record = answer.json()
        assert record["status"]["status_code"] == "completed", record
        collection = await client.get(f"/products/planet:assured/opportunities/{record_id}")
        assert collection.status_code == 200, collection.text
        features = collection.json()["features"]
        assert features
        assert all(any(link["rel"] == "create-order" for link in f["links"]) for f in features)


async def test_more_than_seven_days_is_a_422_naming_datetime() -> None:
    """A window beyond Planet's seven days fails before any call."""
    sim = fast_sim()
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        answer = await client.post(
            "/products/planet:assured/opportunities", json=search_body(datetime=interval(8)), headers={"Prefer": "wait"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"] == ["body", "datetime"]
        assert "search_create" not in sim.calls


async def test_federated_product_mixes_planet_with_stapi() -> None:
    """A federated product over planet:assured and a STAPI product searches both and orders either."""
    sim = fast_sim()
    stapi = build_provider([ProductSpec(id="optical", title="Optical")], name="acme")
    acme = ProviderSettings(id="acme", url="http://acme.test", title="Acme")
    products = [{"id": "any-optical", "title": "Any optical", "members": ["planet:assured", "acme:optical"]}]
    settings = Settings.build([provider(), acme], products=products, secret="test-secret")
    async with gateway_client({"planet": sim.app, "acme": stapi}, settings=settings) as client:
        found = await client.post(
            "/products/any-optical/opportunities", json=search_body(limit=50), headers={"Prefer": "wait"}
        )
        assert found.status_code == 200, found.text
        body = found.json()
        members = {f["properties"]["product_id"] for f in body["features"]}
        assert members == {"planet:assured", "acme:optical"}
        assert not body.get("federation:missing")
        planet = next(f for f in body["features"] if f["properties"]["product_id"] == "planet:assured")
        federated = next(link for link in planet["links"] if link["href"].endswith("/products/any-optical/orders"))
        placed = await client.post("/products/any-optical/orders", json=federated["body"])
        assert placed.status_code == 201, placed.text
        assert placed.json()["properties"]["product_id"] == "planet:assured"
        assert len(sim.world.orders) == 1


async def test_flexible_order_without_opportunities() -> None:
    """Flexible is ordered straight away; a client `name` is not an order parameter (422)."""
    sim = fast_sim()
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        order = {"datetime": interval(10), "geometry": POINT, "order_parameters": {"sat_elevation_angle_min": 70}}
        placed = await client.post("/products/planet:flexible/orders", json=order)
        assert placed.status_code == 201, placed.text
        (held,) = sim.world.orders.values()
        assert held.fields["sat_elevation_angle_min"] == 70
        named = {**order, "order_parameters": {"name": "mine"}}
        refused = await client.post("/products/planet:flexible/orders", json=named)
        assert refused.status_code == 422, refused.text
        assert len(sim.world.orders) == 1
        assert isinstance(httpx.URL(str(placed.headers.get("location", "http://x/"))), httpx.URL)
