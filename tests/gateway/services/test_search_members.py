"""Search records remember their members by product id: reloads and old stored layouts cannot confuse them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from stapi_pydantic import OpportunityCollection, OpportunitySearchRecord

from gateway.app import create_app
from gateway.settings.loader import load_settings
from gateway.store import open_store
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, client_of, follow_get, gateway_client
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

ASYNC = {"Prefer": "respond-async"}
BODY = {"datetime": WINDOW, "geometry": POINT}


def providers() -> dict[str, Any]:
    """a: sync-only (emulated, done at once); b: async that finishes only when told; c: sync-only."""
    return {
        "a": build_provider([ProductSpec("optical")], name="a", opportunities_per_search=4),
        "b": build_provider(
            [ProductSpec("optical", sync=False, async_=True)],
            name="b",
            opportunities_per_search=3,
            async_completes=False,
        ),
        "c": build_provider([ProductSpec("optical")], name="c", opportunities_per_search=5),
    }


def write(path: Path, members: list[str]) -> None:
    """A configuration of providers a, b, c and the federated product `fed` over `members`."""
    entries = "".join(f"  {pid}:\n    url: http://{pid}.test\n" for pid in "abc")
    listed = ", ".join(members)
    gateway = "gateway:\n  secret: s\n  search_refresh_s: 0.05\n"
    path.write_text(f"{gateway}providers:\n{entries}products:\n  fed:\n    members: [{listed}]\n")


@pytest.mark.parametrize(
    "after",
    [["c:optical", "b:optical", "a:optical"], ["b:optical", "c:optical"], ["b:optical", "a:optical"]],
    ids=["added-and-reordered", "one-removed-one-added", "reordered"],
)
async def test_open_record_finishes_with_the_members_it_started_with(tmp_path: Path, after: list[str]) -> None:
    """A reload that changes `fed`'s members mid-search: the open record completes with a and b only."""
    config = tmp_path / "gateway.yaml"
    write(config, ["a:optical", "b:optical"])
    ups = providers()
    transports = {pid: httpx.ASGITransport(app=app) for pid, app in ups.items()}
    app = create_app(load_settings(config), transports=transports, watch_config=True)
    async with client_of(app) as c:
        created = await c.post("/products/fed/opportunities", json=BODY, headers=ASYNC)
        location = created.headers["location"].removeprefix(GATEWAY_URL)
        b = backend_of(ups["b"])

        async def b_started() -> bool:
            record = (await c.get(location)).json()
            return bool(b.search_records) and record["federation:members"][0]["status"] == "completed"

        await eventually(b_started)
        write(config, after)

        async def reloaded() -> bool:
            return bool((await c.get("/products/fed")).json()["federation:members"] == after)

        await eventually(reloaded)
        b.complete_search(next(iter(b.search_records)))
        record = await settle(c, location)
        pages = await follow_get(c, f"/products/fed/opportunities/{record['id']}")
    OpportunitySearchRecord.model_validate(record)
    for page in pages:
        OpportunityCollection.model_validate(page)
    assert record["status"]["status_code"] == "completed"
    assert [(m["product_id"], m["status"]) for m in record["federation:members"]] == [
        ("a:optical", "completed"),
        ("b:optical", "completed"),
    ]
    features = [f for page in pages for f in page["features"]]
    assert {f["properties"]["product_id"] for f in features} == {"a:optical", "b:optical"}
    assert len(features) == 4 + 3
    assert not [r for r in backend_of(ups["c"]).requests if r.method == "POST"]


def legacy_feature(member: str, i: int) -> dict[str, Any]:
    """An opportunity as the previous layout stored it (namespaced, placeholder links)."""
    start = f"2026-12-0{i + 1}T00:00:00Z"
    properties = {"datetime": f"{start}/2026-12-09T00:00:00Z", "product_id": member}
    return {"type": "Feature", "geometry": POINT, "properties": properties, "id": f"{member}-old-{i}", "links": []}


def status(code: str) -> dict[str, Any]:
    """An OpportunitySearchStatus as the previous layouts stored it."""
    return {
        "timestamp": "2026-12-01T00:00:00Z",
        "status_code": code,
        "reason_code": None,
        "reason_text": None,
        "links": [],
    }


def legacy_record(record_id: str, members: list[dict[str, Any]], codes: list[str]) -> dict[str, Any]:
    """A record as the previous layout stored it: members a list, matched by position."""
    request = {"datetime": WINDOW, "geometry": POINT, "filter": None, "limit": 2, "next": None}
    statuses = [status(code) for code in codes]
    return {
        "id": record_id,
        "client": "anonymous",
        "product_id": "fed",
        "opportunity_request": request,
        "statuses": statuses,
        "created": time.time(),
        "members": members,
    }


def legacy_member(product_id: str, mode: str, code: str, upstream_id: str | None = None) -> dict[str, Any]:
    """A member state of the previous layout."""
    return {
        "product_id": product_id,
        "mode": mode,
        "status": code,
        "upstream_id": upstream_id,
        "reason": None,
        "attempts": 0,
    }


async def test_records_of_the_previous_layout_load_and_finish(redis_url: str, redis_prefix: str) -> None:
    """In a real Redis: an open list-of-states record finishes (a kept result found by position,
    b's upstream search polled), and a completed one's single-value collection is served in pages."""
    ups = providers()
    b = backend_of(ups["b"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ups["b"]), base_url="http://b.test") as direct:
        upstream = (await direct.post("/products/optical/opportunities", json=BODY, headers=ASYNC)).json()
    b.complete_search(upstream["id"])
    kept = [legacy_feature("a:optical", i) for i in range(2)]
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        members = [
            legacy_member("a:optical", "emulated", "completed"),
            legacy_member("b:optical", "upstream", "in_progress", upstream["id"]),
        ]
        open_record = legacy_record("legacyopen", members, ["received", "in_progress"])
        done_members = [legacy_member(m, "emulated", "completed") for m in ("a:optical", "b:optical")]
        done = legacy_record("legacydone", done_members, ["received", "in_progress", "completed"])
        collection = {"type": "FeatureCollection", "id": "legacydone", "features": kept * 3}
        await store.set("search:legacyopen", orjson.dumps(open_record))
        await store.set("search-result:legacyopen:0", orjson.dumps(kept))
        await store.index_add("searches-active", "legacyopen", time.time())
        await store.set("search:legacydone", orjson.dumps(done))
        await store.set("search-collection:legacydone", orjson.dumps(collection))
    finally:
        await store.aclose()
    products = [{"id": "fed", "members": ["a:optical", "b:optical"]}]
    shared: dict[str, Any] = {
        "store": redis_url,
        "store_prefix": redis_prefix,
        "search_refresh_s": 0.05,
        "products": products,
    }
    async with gateway_client(ups, **shared) as client:
        record = await settle(client, "/searches/opportunities/legacyopen")
        pages = await follow_get(client, "/products/fed/opportunities/legacyopen")
        old_pages = await follow_get(client, "/products/fed/opportunities/legacydone")
    OpportunitySearchRecord.model_validate(record)
    for page in pages + old_pages:
        OpportunityCollection.model_validate(page)
    assert record["status"]["status_code"] == "completed"
    assert [m["status"] for m in record["federation:members"]] == ["completed", "completed"]
    ids = [f["id"] for page in pages for f in page["features"]]
    assert sorted(ids) == sorted(["a:optical-old-0", "a:optical-old-1"] + [f"b:optical-opp-{i}" for i in range(3)])
    assert [len(page["features"]) for page in pages] == [2, 2, 1]
    assert [len(page["features"]) for page in old_pages] == [2, 2, 2]
