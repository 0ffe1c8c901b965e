"""Federated products: one product over several providers' products, merged by start time."""

from __future__ import annotations

from typing import Any

import structlog
from stapi_pydantic import OpportunityCollection

from tests.faults import RefusingTransport
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, follow_get, gateway_client, hrefs
from tests.upstreams import ProductSpec, build_provider
from tests.waiting import eventually

FEDERATED = [{"id": "optical-hr", "title": "Optical HR", "members": ["a:optical", "b:optical", "down:x"]}]


def upstreams() -> dict[str, Any]:
    """Two working providers with differently spaced opportunities, and one that is down."""
    return {
        "a": build_provider([ProductSpec("optical"), ProductSpec("other")], name="a", opportunities_per_search=10),
        "b": build_provider([ProductSpec("optical", async_=True)], name="b", opportunities_per_search=7),
        "down": RefusingTransport(),
    }


def order_key(feature: dict[str, Any]) -> tuple[str, str]:
    """Start of the opportunity's interval, then its id (RFC 3339 in one zone sorts as text)."""
    return feature["properties"]["datetime"].split("/")[0], feature["id"]


async def test_federated_product_is_listed_with_members_providers_and_shared_conformance() -> None:
    """The federated product appears in /products and on its own, with the union of providers."""
    async with gateway_client(upstreams(), products=FEDERATED) as client:
        listing = (await client.get("/products?limit=100")).json()
        product = (await client.get("/products/optical-hr")).json()
        queryables = (await client.get("/products/optical-hr/queryables")).json()
    assert "optical-hr" in [p["id"] for p in listing["products"]]
    assert listing["federation:missing"] == ["down"]
    assert product["title"] == "Optical HR"
    assert sorted(p["name"] for p in product["providers"]) == ["a", "b"]
    assert "https://stapi.example.com/v0.1.0/opportunities-async" in product["conformsTo"]
    assert "https://geojson.org/schema/Point.json" in product["conformsTo"]
    assert "off_nadir" in queryables["properties"]
    assert all(h.startswith(GATEWAY_URL) for h in hrefs(product))


async def test_federated_sync_search_merges_by_start_time_across_pages() -> None:
    """Paging a federated search visits every member opportunity once, in start-time order."""
    body = {"datetime": WINDOW, "geometry": POINT, "limit": 4}
    seen: list[dict[str, Any]] = []
    async with gateway_client(upstreams(), products=FEDERATED) as client:
        response = await client.post("/products/optical-hr/opportunities", json=body)
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["federation:missing"] == ["down"]
            seen.extend(page["features"])
            nxt = next((x for x in page["links"] if x["rel"] == "next"), None)
            if nxt is None:
                break
            response = await client.post("/products/optical-hr/opportunities", json=nxt["body"])
    assert len(seen) == 17
    assert len({f["id"] for f in seen}) == 17
    assert seen == sorted(seen, key=order_key)
    assert {f["properties"]["product_id"] for f in seen} == {"a:optical", "b:optical"}


async def test_federated_async_search_completes_with_per_member_state() -> None:
    """One record for all members: it completes when each has finished or failed."""
    body = {"datetime": WINDOW, "geometry": POINT, "limit": 3}
    async with gateway_client(upstreams(), products=FEDERATED, search_refresh_s=0.05) as client:
        created = await client.post(
            "/products/optical-hr/opportunities", json=body, headers={"Prefer": "respond-async"}
        )
        assert created.status_code == 201
        record = await settle(client, created.headers["location"])
        pages = await follow_get(client, f"/products/optical-hr/opportunities/{record['id']}", OpportunityCollection)
    features = [f for page in pages for f in page["features"]]
    collection = pages[0]
    members = {m["product_id"]: m["status"] for m in record["federation:members"]}
    assert members == {"a:optical": "completed", "b:optical": "completed", "down:x": "failed"}
    assert record["status"]["status_code"] == "completed"
    assert record["federation:missing"] == ["down"]
    assert collection["federation:missing"] == ["down"]
    # Both members' whole results (a's by emulation, b's upstream), in pages of the search's limit.
    assert len(features) == 10 + 7
    assert [len(page["features"]) for page in pages] == [3, 3, 3, 3, 3, 2]
    assert features == sorted(features, key=order_key)


async def test_federated_search_with_every_member_down_is_a_502() -> None:
    """When no member answers, the search fails in contract form."""
    products = [{"id": "gone", "members": ["down:x", "down2:y"]}]
    async with gateway_client({"down": RefusingTransport(), "down2": RefusingTransport()}, products=products) as c:
        response = await c.post("/products/gone/opportunities", json={"datetime": WINDOW, "geometry": POINT})
    assert response.status_code == 502
    assert sorted(response.json()["federation:missing"]) == ["down", "down2"]


async def test_member_missing_at_its_provider_is_reported_at_start_up() -> None:
    """A member product the provider does not have is logged as an error when the gateway starts."""
    products = [{"id": "typo", "members": ["a:optical", "a:no-such-product"]}]
    with structlog.testing.capture_logs() as logs:
        async with gateway_client(upstreams(), products=products) as client:
            await client.get("/")
            await eventually(lambda: any(e["event"] == "federated_member_unknown" for e in logs))
    unknown = [e for e in logs if e["event"] == "federated_member_unknown"]
    assert [(e["product"], e["member"]) for e in unknown] == [("typo", "a:no-such-product")]
