"""The demo simulator speaks STAPI 0.1.0 as stapi-pydantic models read it."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from geojson_pydantic.geometries import Geometry
from stapi_pydantic import (
    OpportunityCollection,
    OpportunityProperties,
    Order,
    OrderCollection,
    OrderStatus,
    OrderStatuses,
    Product,
    ProductsCollection,
)

from gateway.demo.catalogue import VENDORS
from gateway.demo.simulator import simulator_app
from tests.upstreams import ProductSpec, build_provider

BASE = "http://sim.test"
START, END = "2026-12-01T00:00:00+00:00", "2026-12-10T00:00:00+00:00"
SEARCH: dict[str, Any] = {
    "datetime": f"{START}/{END}",
    "geometry": {"type": "Polygon", "coordinates": [[[13.3, 52.4], [13.5, 52.4], [13.5, 52.6], [13.3, 52.4]]]},
}


def client_for(vendor: str = "acme", base_url: str = BASE, **kwargs: Any) -> httpx.AsyncClient:
    """An in-process client for a fresh simulator."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator_app(vendor, **kwargs)), base_url=base_url)


def rel(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The first link with relation `name`, if any."""
    return next((link for link in body["links"] if link["rel"] == name), None)


def order_body(**parameters: Any) -> dict[str, Any]:
    """An order request for the shared search."""
    return {**SEARCH, "order_parameters": parameters}


async def test_landing_page_and_conformance() -> None:
    """GET / links to the collections with absolute hrefs; /conformance lists core."""
    async with client_for() as client:
        root = (await client.get("/")).json()
        conformance = (await client.get("/conformance")).json()
    assert {link["rel"] for link in root["links"]} >= {"self", "conformance", "products", "orders"}
    assert all(link["href"].startswith(BASE) for link in root["links"])
    assert "https://stapi.example.com/v0.1.0/core" in conformance["conformsTo"]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
async def test_products_paging_visits_every_product_once(vendor: str) -> None:
    """limit=1 paging through next links yields each catalogue product exactly once."""
    seen: list[str] = []
    url: str | None = "/products?limit=1"
    async with client_for(vendor) as client:
        while url is not None:
            page = ProductsCollection.model_validate((await client.get(url)).json())
            seen += [p.id for p in page.products]
            nxt = next((link for link in page.links if link.rel == "next"), None)
            url = str(nxt.href) if nxt else None
    assert seen == [p.id for p in VENDORS[vendor].products]


async def test_product_document_validates_with_links_and_conformance() -> None:
    """A product validates as stapi-pydantic Product and carries 0.8.0's links and classes."""
    async with client_for("orbit") as client:
        response = await client.get("/products/sar-spotlight")
        conformance = (await client.get("/products/sar-spotlight/conformance")).json()["conformsTo"]
    product = Product.model_validate(response.json())
    assert product.license == "proprietary"
    assert product.providers[0].name == "Orbit Radar Systems"
    rels = {link.rel: link for link in product.links}
    assert set(rels) == {"self", "conformance", "queryables", "order-parameters", "create-order", "opportunities"}
    assert rels["create-order"].method == "POST"
    assert str(rels["self"].href) == f"{BASE}/products/sar-spotlight"
    assert "https://stapi.example.com/v0.1.0/opportunities" in product.conformsTo
    assert conformance == product.conformsTo
    assert any(c.startswith("https://geojson.org/schema/") for c in conformance)


async def test_schemas_are_json_schema_objects() -> None:
    """Queryables and order parameters are JSON Schemas; order parameters forbid extras."""
    async with client_for() as client:
        queryables = (await client.get("/products/optical-30cm/queryables")).json()
        parameters = (await client.get("/products/optical-30cm/order-parameters")).json()
    assert queryables["type"] == parameters["type"] == "object"
    assert "off_nadir" in queryables["properties"]
    assert parameters["additionalProperties"] is False


async def test_not_found_shapes_match_fastapi() -> None:
    """Unknown products, orders, routes and paging tokens give 404 {"detail": ...}."""
    async with client_for() as client:
        assert (await client.get("/products/nope")).json() == {"detail": "Not Found"}
        assert (await client.post("/products/nope/opportunities", json=SEARCH)).status_code == 404
        assert (await client.get("/orders/nope")).json() == {"detail": "Order not found"}
        assert (await client.get("/nope")).json() == {"detail": "Not Found"}
        bad_token = await client.get("/products?next=nope")
    assert bad_token.status_code == 404
    assert bad_token.json() == {"detail": "Error finding pagination token for products"}


async def test_opportunities_validate_and_page_through_the_interval() -> None:
    """Sync search pages via POST next links; every pass lies inside the requested interval."""
    features: list[Any] = []
    request: dict[str, Any] | None = {**SEARCH, "limit": 4}
    url = "/products/optical-50cm/opportunities"
    async with client_for() as client:
        while request is not None:
            response = await client.post(url, json=request)
            assert response.headers["content-type"] == "application/geo+json"
            page = OpportunityCollection[Geometry, OpportunityProperties].model_validate(response.json())
            assert len(page.features) <= 4
            create_order = rel(response.json(), "create-order")
            assert create_order is not None
            assert create_order["method"] == "POST"
            features += page.features
            nxt = rel(response.json(), "next")
            request, url = (nxt["body"], nxt["href"]) if nxt else (None, url)
    ids = [f.id for f in features]
    assert len(ids) == len(set(ids)) == 36  # nine days at one pass every six hours
    for feature in features:
        assert feature.properties is not None
        start, end = feature.properties.datetime
        assert datetime.fromisoformat(START) <= start <= end <= datetime.fromisoformat(END)
        assert feature.properties.product_id == "optical-50cm"


async def test_opportunities_are_deterministic() -> None:
    """The same search gives the same opportunities, even from another simulator instance."""
    async with client_for("orbit") as first, client_for("orbit") as second:
        a = (await first.post("/products/sar-stripmap/opportunities", json=SEARCH)).json()
        b = (await second.post("/products/sar-stripmap/opportunities", json=SEARCH)).json()
    assert a == b
    assert {"incidence_angle", "look_direction", "orbit_state"} <= set(a["features"][0]["properties"])


async def test_opportunity_filter_is_applied_across_pages() -> None:
    """A CQL2 filter keeps only matching passes and its next link resumes after the page."""
    cql = {"op": "<", "args": [{"property": "cloud_cover"}, 30]}
    async with client_for() as client:
        url = "/products/optical-50cm/opportunities"
        first = (await client.post(url, json={**SEARCH, "filter": cql, "limit": 3})).json()
        nxt = rel(first, "next")
        assert nxt is not None
        second = (await client.post(nxt["href"], json=nxt["body"])).json()
    features = first["features"] + second["features"]
    assert len(first["features"]) == 3
    assert all(f["properties"]["cloud_cover"] < 30 for f in features)
    assert len({f["id"] for f in features}) == len(features)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"datetime": SEARCH["datetime"]}, ["body", "geometry"]),
        ({**SEARCH, "datetime": f"{END}/{START}"}, ["body", "datetime"]),
        ({**SEARCH, "limit": "5"}, ["body", "limit"]),
        ({**SEARCH, "filter": {"foo": 1}}, ["body", "filter"]),
    ],
)
async def test_bad_opportunity_body_gives_fastapi_422(body: dict[str, Any], loc: list[str]) -> None:
    """Invalid search bodies give 422 with FastAPI's list-of-errors detail."""
    async with client_for() as client:
        response = await client.post("/products/optical-50cm/opportunities", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


async def test_bad_prefer_header_gives_400() -> None:
    """Only the exact Prefer values of stapi-fastapi 0.8.0 are accepted."""
    async with client_for() as client:
        response = await client.post(
            "/products/optical-50cm/opportunities", json=SEARCH, headers={"Prefer": "respond-async, wait=10"}
        )
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid Prefer header value: respond-async, wait=10"}


async def test_orders_create_list_page_and_statuses() -> None:
    """Orders are created with 201 + Location, listed with paging, and report statuses."""
    async with client_for("orbit") as client:
        created = [
            await client.post("/products/sar-stripmap/orders", json=order_body(polarisation="HH+HV")) for _ in range(3)
        ]
        assert all(r.status_code == 201 for r in created)
        orders = [Order[OrderStatus].model_validate(r.json()) for r in created]
        assert created[0].headers["location"] == f"{BASE}/orders/{orders[0].id}"
        assert orders[0].properties.order_parameters == {"product_type": "GRD", "polarisation": "HH+HV"}
        seen: list[str] = []
        url: str | None = "/orders?limit=2"
        while url is not None:
            raw = (await client.get(url)).json()
            # numberMatched is only a serialisation alias in stapi-pydantic, so validation drops it.
            assert raw["numberMatched"] == 3
            page = OrderCollection[OrderStatus].model_validate(raw)
            seen += [o.id for o in page.features]
            nxt = next((link for link in page.links if link.rel == "next"), None)
            url = str(nxt.href) if nxt else None
        one = Order[OrderStatus].model_validate((await client.get(f"/orders/{orders[1].id}")).json())
        monitor = next(link for link in one.links if link.rel == "monitor")
        statuses = OrderStatuses[OrderStatus].model_validate((await client.get(str(monitor.href))).json())
    assert seen == [o.id for o in orders]
    assert [s.status_code for s in statuses.statuses] == ["received"]
    assert one.properties.status.status_code == "received"


async def test_bad_order_parameters_give_422() -> None:
    """Order parameters outside the product's schema are rejected like FastAPI does."""
    async with client_for() as client:
        response = await client.post("/products/optical-50cm/orders", json=order_body(bogus=1))
        missing = await client.post("/products/optical-50cm/orders", json=SEARCH)
    assert response.status_code == missing.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"
    assert missing.json()["detail"][0]["loc"] == ["body", "order_parameters"]


async def test_orders_advance_through_lifecycle() -> None:
    """With a short order_step_s an order walks received -> accepted -> scheduled -> completed."""
    async with client_for(order_step_s=0.02) as client:
        order_id = (await client.post("/products/optical-50cm/orders", json=order_body())).json()["id"]
        await asyncio.sleep(0.1)
        statuses = (await client.get(f"/orders/{order_id}/statuses")).json()["statuses"]
        order = (await client.get(f"/orders/{order_id}")).json()
    assert [s["status_code"] for s in statuses] == ["received", "accepted", "scheduled", "completed"]
    assert order["properties"]["status"]["status_code"] == "completed"


async def test_hrefs_follow_the_request_host() -> None:
    """Every href is built from the base URL the request arrived on."""
    async with client_for(base_url="http://other.example:9000") as client:
        body = (await client.get("/products")).json()
    hrefs = [link["href"] for p in body["products"] for link in p["links"]] + [lk["href"] for lk in body["links"]]
    assert all(h.startswith("http://other.example:9000/") for h in hrefs)


async def test_latency_delays_each_response() -> None:
    """latency_s adds a sleep to every request."""
    async with client_for(latency_s=0.05) as client:
        started = time.perf_counter()
        await client.get("/conformance")
    assert time.perf_counter() - started >= 0.05


def test_unknown_vendor_is_rejected() -> None:
    """Asking for a vendor with no catalogue fails early, naming the known ones."""
    with pytest.raises(ValueError, match="acme"):
        simulator_app("nobody")


async def test_malformed_json_body_gives_fastapi_422() -> None:
    """A body that is not JSON gets FastAPI's json_invalid error with the byte position."""
    async with client_for() as client:
        response = await client.post(
            "/products/optical-50cm/opportunities", content=b"{", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert response.json()["detail"][0]["loc"] == ["body", 1]


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON document; list items collapse to `[]`."""
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in {f"{prefix}.{k}", *key_paths(v, f"{prefix}.{k}")}}
    if isinstance(value, list):
        return {p for item in value for p in key_paths(item, f"{prefix}[]")}
    return set()


async def test_wire_shapes_cover_stapi_fastapi() -> None:
    """Every key stapi-fastapi 0.8.0 sends, the simulator sends too, with the same status and media type."""
    reference = build_provider([ProductSpec(id="optical-50cm")])
    ref = httpx.AsyncClient(transport=httpx.ASGITransport(app=reference), base_url=BASE)
    search = {**SEARCH, "limit": 2}
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/products?limit=1", None),
        ("GET", "/products/optical-50cm", None),
        ("GET", "/products/optical-50cm/conformance", None),
        ("POST", "/products/optical-50cm/opportunities", search),
        ("POST", "/products/optical-50cm/orders", order_body()),
        ("POST", "/products/optical-50cm/orders", order_body()),
        ("GET", "/orders?limit=1", None),
        ("GET", "/orders/nope", None),
        ("POST", "/products/optical-50cm/opportunities", {"datetime": "x"}),
    ]
    async with ref, client_for() as sim:
        for method, url, body in calls:
            expected, actual = await ref.request(method, url, json=body), await sim.request(method, url, json=body)
            assert actual.status_code == expected.status_code, url
            assert actual.headers["content-type"] == expected.headers["content-type"], url
            assert key_paths(expected.json()) <= key_paths(actual.json()), url
