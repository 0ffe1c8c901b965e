"""Opportunity search through the gateway, sync and async, against stapi-fastapi 0.8.0 upstreams."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from stapi_pydantic import OpportunityCollection

from tests.gateways import GATEWAY_URL, follow_get, gateway_client, hrefs
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
FAST: dict[str, Any] = {"search_refresh_s": 0.05}


def search(limit: int = 10, **extra: Any) -> dict[str, Any]:
    """A valid opportunity search request."""
    return {"datetime": WINDOW, "geometry": POINT, "limit": limit, **extra}


def acme() -> Any:
    """A provider with a sync-only, a sync+async and an async-only product."""
    specs = [ProductSpec("eo"), ProductSpec("sar", async_=True), ProductSpec("radar", sync=False, async_=True)]
    return build_provider(specs, name="acme", opportunities_per_search=25)


async def follow(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a search and follow its POST `next` links; every page's body."""
    pages = []
    response = await client.post(path, json=body, headers={"Prefer": "wait"})
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        nxt = next((link for link in page["links"] if link["rel"] == "next"), None)
        if nxt is None or len(pages) > 50:
            return pages
        assert nxt["method"] == "POST"
        response = await client.post(nxt["href"].removeprefix(GATEWAY_URL), json=nxt["body"])


async def settle(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    """Poll a search record until it is finished, and return it."""
    answer = await eventually(
        lambda: client.get(location.removeprefix(GATEWAY_URL)),
        until=lambda r: r.json()["status"]["status_code"] in ("completed", "failed", "cancelled"),
        what="a finished search",
    )
    return dict(answer.json())


async def test_sync_search_is_namespaced_and_pages_through_every_opportunity() -> None:
    """Following POST next links through the gateway visits all 25 opportunities exactly once."""
    async with gateway_client({"acme": acme()}) as client:
        pages = await follow(client, "/products/acme:eo/opportunities", search(limit=7))
    ids = [f["id"] for page in pages for f in page["features"]]
    assert len(pages) == 4
    assert ids == [f"acme:eo-opp-{i}" for i in range(25)]
    assert {f["properties"]["product_id"] for page in pages for f in page["features"]} == {"acme:eo"}
    assert all(h.startswith(GATEWAY_URL) for page in pages for h in hrefs(page))


async def test_create_order_link_body_is_postable_and_points_at_the_gateway() -> None:
    """The collection's create-order link names the gateway product and carries order_parameters."""
    async with gateway_client({"acme": acme()}) as client:
        page = (await client.post("/products/acme:eo/opportunities", json=search())).json()
    order = next(link for link in page["links"] if link["rel"] == "create-order")
    assert order["href"] == f"{GATEWAY_URL}/products/acme:eo/orders"
    assert order["method"] == "POST"
    assert order["body"] == {"datetime": WINDOW, "geometry": POINT, "filter": None, "order_parameters": {}}


@pytest.mark.parametrize(
    ("product", "prefer", "status", "applied"),
    [
        ("eo", None, 200, None),
        ("eo", "wait", 200, "wait"),
        ("eo", "respond-async", 201, "respond-async"),
        ("sar", None, 200, None),
        ("sar", "wait", 200, "wait"),
        ("sar", "Respond-Async; foo=bar", 201, "respond-async"),
        ("sar", "respond-async, wait=10", 201, "respond-async"),
        ("radar", None, 201, None),
        ("radar", "wait", 201, None),
        ("radar", "respond-async", 201, "respond-async"),
    ],
)
async def test_search_mode_matrix(product: str, prefer: str | None, status: int, applied: str | None) -> None:
    """Without Prefer a search is sync when the product can be; the applied preference is always said."""
    headers = {"Prefer": prefer} if prefer else {}
    async with gateway_client({"acme": acme()}, **FAST) as client:
        response = await client.post(f"/products/acme:{product}/opportunities", json=search(), headers=headers)
    assert response.status_code == status, response.text
    assert response.headers.get("preference-applied") == applied
    if status == 201:
        assert response.headers["location"] == response.json()["links"][0]["href"]
        assert response.headers["location"].startswith(f"{GATEWAY_URL}/searches/opportunities/")
        assert ":" not in response.json()["id"]
    else:
        assert response.headers["content-type"] == "application/geo+json"


async def test_sync_searches_ask_upstream_for_wait() -> None:
    """An async-capable upstream product is asked with Prefer: wait for a synchronous answer."""
    provider = acme()
    async with gateway_client({"acme": provider}) as client:
        await client.post("/products/acme:sar/opportunities", json=search())
    posts = [r for r in backend_of(provider).requests if r.method == "POST"]
    assert [r.headers.get("prefer") for r in posts] == ["wait"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"geometry": POINT}, ["body", "datetime"]),
        ({"datetime": "2026-12-10T00:00:00Z/2026-12-01T00:00:00Z", "geometry": POINT}, ["body", "datetime"]),
        ({"datetime": WINDOW, "geometry": {"type": "Point"}}, ["body", "geometry"]),
        ({"datetime": WINDOW, "geometry": POINT, "filter": {"foo": 1}}, ["body", "filter"]),
        ({"datetime": WINDOW, "geometry": POINT, "limit": "5"}, ["body", "limit"]),
        ({"datetime": WINDOW, "geometry": POINT, "limit": 0}, ["body", "limit"]),
    ],
)
async def test_invalid_search_is_422_before_any_provider_call(body: dict[str, Any], loc: list[str]) -> None:
    """A bad request names the failing field and never reaches the provider."""
    provider = acme()
    async with gateway_client({"acme": provider}) as client:
        response = await client.post("/products/acme:eo/opportunities", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == loc
    assert not [r for r in backend_of(provider).requests if r.method == "POST"]


async def test_tampered_search_cursor_is_a_400() -> None:
    """A `next` the gateway did not sign for this product is refused."""
    async with gateway_client({"acme": acme()}) as client:
        first = (await client.post("/products/acme:eo/opportunities", json=search(limit=5))).json()
        cursor = next(link for link in first["links"] if link["rel"] == "next")["body"]["next"]
        other = await client.post("/products/acme:sar/opportunities", json=search(limit=5, next=cursor))
        forged = await client.post("/products/acme:eo/opportunities", json=search(limit=5, next="x" + cursor))
    assert other.status_code == 400
    assert forged.status_code == 400
    assert forged.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("product", ["sar", "radar"])
async def test_async_search_completes_upstream_and_serves_its_collection(product: str) -> None:
    """An async search runs at the provider; the record completes and links to the collection."""
    async with gateway_client({"acme": acme()}, **FAST) as client:
        created = await client.post(
            f"/products/acme:{product}/opportunities", json=search(limit=5), headers={"Prefer": "respond-async"}
        )
        record = await settle(client, created.headers["location"])
        link = next(link for link in record["links"] if link["rel"] == "opportunities")
        pages = await follow_get(client, link["href"], OpportunityCollection)
        statuses = (await client.get(f"/searches/opportunities/{record['id']}/statuses")).json()
    collection = pages[0]
    assert record["status"]["status_code"] == "completed"
    assert record["product_id"] == f"acme:{product}"
    assert collection["id"] == record["id"]
    assert [len(page["features"]) for page in pages] == [5, 5, 5, 5, 5]
    assert collection["features"][0]["id"] == f"acme:{product}-opp-0"
    assert statuses[0]["status_code"] == "received"
    assert statuses[-1]["status_code"] == "completed"
    assert all(h.startswith(GATEWAY_URL) for h in hrefs(collection) + hrefs(record))


async def test_sync_only_product_gets_async_by_emulation() -> None:
    """A provider without async search still gets a gateway record, completed from a sync search."""
    provider = acme()
    async with gateway_client({"acme": provider}, **FAST) as client:
        created = await client.post(
            "/products/acme:eo/opportunities", json=search(limit=4), headers={"Prefer": "respond-async"}
        )
        record = await settle(client, created.headers["location"])
        pages = await follow_get(client, f"/products/acme:eo/opportunities/{record['id']}", OpportunityCollection)
    assert record["status"]["status_code"] == "completed"
    assert [f["id"] for page in pages for f in page["features"]] == [f"acme:eo-opp-{i}" for i in range(25)]
    assert [f["id"] for f in pages[0]["features"]] == [f"acme:eo-opp-{i}" for i in range(4)]
    posts = [r for r in backend_of(provider).requests if r.method == "POST"]
    assert [r.headers.get("prefer") for r in posts] == ["wait"]


async def test_failed_upstream_search_fails_the_record() -> None:
    """A provider that reports failure makes the gateway record fail with the reason."""
    provider = build_provider([ProductSpec("sar", async_=True)], name="acme")
    async with gateway_client({"acme": provider}, **FAST) as client:
        bad_filter = {"op": "<", "args": [{"property": "no_such_property"}, 1]}
        created = await client.post(
            "/products/acme:sar/opportunities",
            json=search(filter=bad_filter),
            headers={"Prefer": "respond-async"},
        )
        record = await settle(client, created.headers["location"])
    assert record["status"]["status_code"] == "failed"
    assert record["federation:members"][0]["status"] == "failed"


async def test_unknown_search_record_and_collection_are_404() -> None:
    """Ids nobody minted answer 404 in contract form."""
    async with gateway_client({"acme": acme()}) as client:
        record = await client.get("/searches/opportunities/nope")
        collection = await client.get("/products/acme:eo/opportunities/nope")
    assert record.status_code == 404
    assert collection.status_code == 404
    assert record.json()["code"] == "not_found"


async def test_search_records_are_listed_newest_first_with_paging() -> None:
    """Every record appears exactly once when paging with a small limit."""
    async with gateway_client({"acme": acme()}, **FAST) as client:
        made = []
        for _ in range(5):
            created = await client.post(
                "/products/acme:eo/opportunities", json=search(), headers={"Prefer": "respond-async"}
            )
            made.append(created.json()["id"])
        seen: list[str] = []
        url: str | None = "/searches/opportunities?limit=2"
        while url:
            page = (await client.get(url)).json()
            seen.extend(r["id"] for r in page["search_records"])
            url = next((x["href"].removeprefix(GATEWAY_URL) for x in page["links"] if x["rel"] == "next"), None)
    assert seen == list(reversed(made))
