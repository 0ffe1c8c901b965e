"""An upgrade loses no search: records the previous layout wrote to Redis are served and finished."""

from __future__ import annotations

import time
from typing import Any

import orjson
from stapi_pydantic import OpportunityCollection, OpportunitySearchRecord

from gateway.store import open_store
from tests.gateway.domain.test_records import COMPLETED, RECEIVED
from tests.gateway.http.routes.test_opportunities import settle
from tests.gateways import follow_get, gateway_client
from tests.upstreams import ProductSpec, build_provider

DONE_ID, OPEN_ID = "c46faca3230f4a9fb723901328d912a3", "1f7fa49b932e4b1ab2bfd24db2d9f6d9"
# The completed record's collection as the previous layout stored it: a header, then chunks.
HEADER = (
    b'{"type":"FeatureCollection","id":"c46faca3230f4a9fb723901328d912a3",'
    b'"federation:missing":["c"],"numberMatched":7,"chunks":1}'
)


def chunk() -> bytes:
    """The previous layout's one chunk of 7 namespaced opportunities, by start time."""
    starts = ["12-01T00", "12-01T00", "12-03T06", "12-04T00", "12-05T12", "12-07T00", "12-07T18"]
    owners = ["a", "b", "a", "b", "a", "b", "a"]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
            "properties": {
                "datetime": f"2026-{start}:00:00+00:00/2026-12-10T00:00:00+00:00",
                "product_id": f"{owner}:optical",
                "off_nadir": 0.0,
            },
            "id": f"{owner}:optical-opp-{index // 2}",
            "links": [],
        }
        for index, (start, owner) in enumerate(zip(starts, owners, strict=True))
    ]
    return orjson.dumps(features)


async def test_records_in_redis_from_the_previous_layout_are_served_and_finished(
    redis_url: str, redis_prefix: str
) -> None:
    """A completed record and its collection are served as before; a received one is run to completion."""
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        await store.set(f"search:{DONE_ID}", COMPLETED)
        await store.set(f"search-collection:{DONE_ID}", HEADER)
        await store.set(f"search-collection:{DONE_ID}:0", chunk())
        await store.index_add("searches", DONE_ID, 1796136344.2764177)
        await store.set(f"search:{OPEN_ID}", RECEIVED)
        await store.index_add("searches", OPEN_ID, 1796136350.2037673)
        await store.index_add("searches-active", OPEN_ID, time.time())
    finally:
        await store.aclose()
    ups = {
        "a": build_provider([ProductSpec("optical")], name="a"),
        "b": build_provider([ProductSpec("optical", sync=False, async_=True)], name="b"),
        "acme": build_provider([ProductSpec("eo")], name="acme", opportunities_per_search=3),
    }
    products = [{"id": "fed", "members": ["a:optical", "b:optical"]}]
    shared: dict[str, Any] = {
        "store": redis_url,
        "store_prefix": redis_prefix,
        "search_refresh_s": 0.05,
        "products": products,
    }
    async with gateway_client(ups, **shared) as client:
        done = (await client.get(f"/searches/opportunities/{DONE_ID}")).json()
        pages = await follow_get(client, f"/products/fed/opportunities/{DONE_ID}", OpportunityCollection)
        finished = await settle(client, f"/searches/opportunities/{OPEN_ID}")
        results = await follow_get(client, f"/products/acme:eo/opportunities/{OPEN_ID}", OpportunityCollection)
        listed = (await client.get("/searches/opportunities")).json()["search_records"]
    for record in (done, finished):
        OpportunitySearchRecord.model_validate(record)
    assert done["status"]["status_code"] == "completed"
    assert done["status"]["reason_text"] == "no results from c:nosuch"
    assert done["federation:members"] == [
        {"product_id": "a:optical", "status": "completed", "reason_text": None},
        {"product_id": "b:optical", "status": "completed", "reason_text": None},
        {"product_id": "c:nosuch", "status": "failed", "reason_text": "provider 'c': Not Found"},
    ]
    assert done["federation:missing"] == ["c"]
    assert [len(page["features"]) for page in pages] == [2, 2, 2, 1]
    assert finished["status"]["status_code"] == "completed"
    assert finished["federation:members"] == [{"product_id": "acme:eo", "status": "completed", "reason_text": None}]
    assert len([f for page in results for f in page["features"]]) == 3
    assert [r["id"] for r in listed] == [OPEN_ID, DONE_ID]
