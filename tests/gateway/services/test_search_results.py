"""Async search records keep the whole result (up to the cap) and serve it in pages with `next`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from stapi_pydantic import OpportunityCollection, OpportunitySearchRecord

from gateway.app import create_app
from gateway.settings.models import Settings
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, follow_get, gateway_client, hrefs, lifespan, provider_settings
from tests.upstreams import ProductSpec, build_provider

ASYNC = {"Prefer": "respond-async"}
FAST: dict[str, Any] = {"search_refresh_s": 0.05}
# No `limit`: the default of 10 is what pages the stored collection.
BODY = {"datetime": WINDOW, "geometry": POINT}


def acme(per_search: int = 25) -> Any:
    """A provider with a sync-only product (searched by emulation) and an async one."""
    specs = [ProductSpec("eo"), ProductSpec("sar", sync=False, async_=True)]
    return build_provider(specs, name="acme", opportunities_per_search=per_search)


async def search_all(client: httpx.AsyncClient, product: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Start an async search, wait for its record, follow its collection's `next` links.

    Every record and page is checked against the stapi-pydantic 0.1.0 models.
    """
    created = await client.post(f"/products/{product}/opportunities", json=body, headers=ASYNC)
    assert created.status_code == 201, created.text
    OpportunitySearchRecord.model_validate(created.json())
    record = await settle(client, created.headers["location"])
    OpportunitySearchRecord.model_validate(record)
    assert record["status"]["status_code"] == "completed", record
    href = next(link["href"] for link in record["links"] if link["rel"] == "opportunities")
    pages = await follow_get(client, href)
    for page in pages:
        OpportunityCollection.model_validate(page)
        assert all(h.startswith(GATEWAY_URL) for h in hrefs(page))
    return record, pages


def ids_of(pages: list[dict[str, Any]]) -> list[str]:
    """Every opportunity id, page after page."""
    return [f["id"] for page in pages for f in page["features"]]


@pytest.mark.parametrize("product", ["eo", "sar"], ids=["emulated", "upstream-async"])
async def test_every_opportunity_is_reachable_by_following_next(product: str) -> None:
    """25 opportunities at the default limit: three pages (10, 10, 5), each opportunity once."""
    async with gateway_client({"acme": acme()}, **FAST) as client:
        record, pages = await search_all(client, f"acme:{product}", BODY)
    assert [len(page["features"]) for page in pages] == [10, 10, 5]
    assert ids_of(pages) == [f"acme:{product}-opp-{i}" for i in range(25)]
    assert {page["numberMatched"] for page in pages} == {25}
    assert record["status"]["reason_text"] is None


async def test_a_client_limit_pages_the_stored_collection_and_a_foreign_cursor_is_refused() -> None:
    """`?limit=` overrides the search's page size; a cursor of another collection is a 400."""
    async with gateway_client({"acme": acme()}, **FAST) as client:
        record, pages = await search_all(client, "acme:eo", {**BODY, "limit": 4})
        bigger = (await client.get(f"/products/acme:eo/opportunities/{record['id']}?limit=20")).json()
        other, _ = await search_all(client, "acme:eo", BODY)
        cursor = next(link["href"] for link in pages[0]["links"] if link["rel"] == "next").split("next=")[1]
        foreign = await client.get(f"/products/acme:eo/opportunities/{other['id']}?next={cursor}")
    assert [len(page["features"]) for page in pages] == [4, 4, 4, 4, 4, 4, 1]
    OpportunityCollection.model_validate(bigger)
    assert len(bigger["features"]) == 20
    assert foreign.status_code == 400
    assert foreign.json()["code"] == "invalid_cursor"


async def test_a_federated_record_keeps_every_members_whole_result() -> None:
    """50 opportunities over two emulated members: five pages of 10, in start-time order."""
    upstreams = {pid: build_provider([ProductSpec("optical")], name=pid) for pid in ("a", "b")}
    products = [{"id": "optical", "members": ["a:optical", "b:optical"]}]
    async with gateway_client(upstreams, products=products, **FAST) as client:
        _, pages = await search_all(client, "optical", BODY)
    features = [f for page in pages for f in page["features"]]
    assert [len(page["features"]) for page in pages] == [10] * 5
    assert sorted(ids_of(pages)) == sorted(f"{p}:optical-opp-{i}" for p in "ab" for i in range(25))
    starts = [f["properties"]["datetime"].split("/")[0] for f in features]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("product", "kept"),
    [("acme:eo", 7), ("acme:sar", 7), ("fed", 14)],
    ids=["emulated", "upstream-async", "federated"],
)
async def test_the_cap_per_member_is_honoured_and_said(product: str, kept: int) -> None:
    """`max_search_results` bounds what each member keeps; the record says not everything was kept."""
    upstreams = {"acme": acme(), "b": build_provider([ProductSpec("eo")], name="b")}
    products = [{"id": "fed", "members": ["acme:eo", "b:eo"]}]
    async with gateway_client(upstreams, products=products, max_search_results=7, **FAST) as client:
        record, pages = await search_all(client, product, BODY)
    assert len(set(ids_of(pages))) == kept
    assert pages[0]["numberMatched"] == kept
    assert "not every result kept" in record["status"]["reason_text"]


async def test_pages_of_a_paging_upstream_collection_are_followed() -> None:
    """A gateway upstream serves its collection in pages: the record follows its `next` links.

    Gateway G1 emulates async over a sync-only product (250 opportunities, so three upstream
    pages of 100 each way); gateway G2 uses G1's async search and collects G1's pages.
    """
    g1_settings = Settings.build(provider_settings(["acme"]), secret="g1", **FAST)
    g1 = create_app(g1_settings, transports={"acme": httpx.ASGITransport(app=acme(per_search=250))})
    async with lifespan(g1), gateway_client({"g1": g1}, **FAST) as client:
        _, pages = await search_all(client, "g1:acme:eo", {**BODY, "limit": 100})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=g1), base_url="http://g1.test") as direct:
            upstream_records = (await direct.get("/searches/opportunities")).json()["search_records"]
    assert len(upstream_records) == 1, "G2 used G1's async search, not its sync one"
    assert [len(page["features"]) for page in pages] == [100, 100, 50]
    assert ids_of(pages) == [f"g1:acme:eo-opp-{i}" for i in range(250)]
