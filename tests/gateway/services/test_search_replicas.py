"""Search records on a real Redis: shared by replicas, kept across restarts, expired by TTL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stapi_pydantic import OpportunityCollection

from gateway.store import open_store
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import follow_get, gateway_client
from tests.upstreams import ProductSpec, build_provider
from tests.waiting import eventually

BODY = {"datetime": WINDOW, "geometry": POINT, "limit": 3}
ASYNC = {"Prefer": "respond-async"}
# The index of records whose refresh is due (gateway/services/search_records.py).
ACTIVE = "searches-active"
# The index of every search record, newest listed first.
LISTED = "searches"


def upstreams() -> dict[str, Any]:
    """One provider with a sync-only product (searched by emulation) and an async one."""
    return {"acme": build_provider([ProductSpec("eo"), ProductSpec("sar", async_=True)], name="acme")}


async def test_two_replicas_share_records_and_a_restart_loses_none(redis_url: str, redis_prefix: str) -> None:
    """A search created on one replica completes and is read on the other, and after a restart."""
    providers = upstreams()
    shared: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "search_refresh_s": 0.05}
    async with gateway_client(providers, **shared) as one, gateway_client(providers, **shared) as two:
        created = {}
        for product in ("eo", "sar"):
            response = await one.post(f"/products/acme:{product}/opportunities", json=BODY, headers=ASYNC)
            assert response.status_code == 201
            created[product] = response.json()["id"]
        records = {p: await settle(two, f"/searches/opportunities/{rid}") for p, rid in created.items()}
        pages = await follow_get(two, f"/products/acme:sar/opportunities/{created['sar']}", OpportunityCollection)
        listed = (await two.get("/searches/opportunities")).json()
    assert {r["status"]["status_code"] for r in records.values()} == {"completed"}
    assert sum(len(page["features"]) for page in pages) == 25
    assert {r["id"] for r in listed["search_records"]} == set(created.values())
    async with gateway_client(providers, **shared) as restarted:
        again = (await restarted.get(f"/searches/opportunities/{created['eo']}")).json()
        kept = await follow_get(restarted, f"/products/acme:eo/opportunities/{created['eo']}", OpportunityCollection)
    assert again["status"]["status_code"] == "completed"
    assert [f["id"] for page in kept for f in page["features"]] == [f"acme:eo-opp-{i}" for i in range(25)]


async def test_record_started_by_a_stopped_replica_is_finished_by_another(redis_url: str, redis_prefix: str) -> None:
    """A record left unfinished when its replica stops is picked up by a replica still running."""
    providers = upstreams()
    # The first replica never refreshes on its own before it stops.
    slow: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "search_refresh_s": 3600}
    async with gateway_client(providers, **slow) as one:
        response = await one.post("/products/acme:sar/opportunities", json=BODY, headers=ASYNC)
        record_id = response.json()["id"]
        await asyncio.sleep(0.1)
    fast: dict[str, Any] = {**slow, "search_refresh_s": 0.05}
    async with gateway_client(providers, **fast) as two:
        record = await settle(two, f"/searches/opportunities/{record_id}")
    assert record["status"]["status_code"] == "completed"


async def test_records_expire_after_their_ttl(redis_url: str, redis_prefix: str) -> None:
    """With a short TTL the record, its collection and its listing entry are gone afterwards."""
    settings: dict[str, Any] = {
        "store": redis_url,
        "store_prefix": redis_prefix,
        "search_refresh_s": 0.05,
        "search_ttl_s": 0.5,
    }
    async with gateway_client(upstreams(), **settings) as client:
        response = await client.post("/products/acme:eo/opportunities", json=BODY, headers=ASYNC)
        record = await settle(client, response.headers["location"])
        await asyncio.sleep(0.8)
        gone = await client.get(f"/searches/opportunities/{record['id']}")
        collection = await client.get(f"/products/acme:eo/opportunities/{record['id']}")
        listed = (await client.get("/searches/opportunities")).json()
    assert gone.status_code == 404
    assert collection.status_code == 404
    assert listed["search_records"] == []


async def test_memory_store_records_expire_too() -> None:
    """The embedded store honours the same TTL."""
    async with gateway_client(upstreams(), search_refresh_s=0.05, search_ttl_s=0.3) as client:
        response = await client.post("/products/acme:eo/opportunities", json=BODY, headers=ASYNC)
        await settle(client, response.headers["location"])
        await asyncio.sleep(0.5)
        gone = await client.get(response.headers["location"])
    assert gone.status_code == 404


async def test_due_entries_of_finished_or_vanished_records_leave_the_index(redis_url: str, redis_prefix: str) -> None:
    """A finished record left due (its replica died mid-save) and 100 due ids without records are
    dropped by the poller, so they cannot fill the head of the index and starve live searches."""
    shared: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "search_refresh_s": 0.05}
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        async with gateway_client(upstreams(), **shared) as client:
            response = await client.post("/products/acme:eo/opportunities", json=BODY, headers=ASYNC)
            finished = await settle(client, response.headers["location"])
            long_ago = time.time() - 3600
            await store.index_add(ACTIVE, finished["id"], long_ago)
            for n in range(100):
                await store.index_add(ACTIVE, f"vanished-{n}", long_ago)
            await eventually(lambda: store.index_count(ACTIVE), until=lambda count: count == 0)
            live = await client.post("/products/acme:sar/opportunities", json=BODY, headers=ASYNC)
            settled = await settle(client, live.headers["location"])
    finally:
        await store.aclose()
    assert settled["status"]["status_code"] == "completed"


async def test_listing_entries_older_than_the_ttl_are_dropped_when_a_search_is_created(
    redis_url: str, redis_prefix: str
) -> None:
    """The list of all searches keeps entries no older than the records' TTL: one left from long ago
    (a record expired unread) goes when the next search is created, instead of staying for ever."""
    shared: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "search_refresh_s": 0.05}
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        await store.index_add(LISTED, "search-of-last-year", time.time() - 400 * 86_400)
        async with gateway_client(upstreams(), **shared) as client:
            created = await client.post("/products/acme:eo/opportunities", json=BODY, headers=ASYNC)
        members = [member for member, _ in await store.index_page(LISTED, limit=10)]
    finally:
        await store.aclose()
    assert members == [created.json()["id"]]
