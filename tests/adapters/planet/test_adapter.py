"""The Planet adapter against the simulated Planet API, through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from stapi_pydantic import OpportunitySearchRecord, Order, OrderStatus

from adapters.base import (
    InvalidRequest,
    ProviderBadStatus,
    ProviderInvalidPayload,
    RequestValidationFailed,
    SearchMode,
    UpstreamNotFound,
)
from tests.adapters.planet.helpers import POINT, adapter_for, fast_sim, interval, search_body


async def test_sync_search_maps_windows_to_opportunities_with_their_own_order_link() -> None:
    """SYNC polls the search until DONE; each window is an opportunity whose link orders it."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    result = await adapter.search_opportunities("assured", search_body(limit=3), SearchMode.SYNC)
    assert not result.is_async
    features = result.body["features"]
    assert len(features) == 3
    assert result.next_token is not None
    first = features[0]
    window = next(iter(sim.world.windows.values()))
    assert first["id"] == window["id"] == first["properties"]["planet:imaging_window"]
    assert first["geometry"] == POINT
    assert first["properties"]["planet:satellite_type"] in ("SKYSAT", "PELICAN")
    (link,) = first["links"]
    assert link["rel"] == "create-order"
    assert link["href"] == "http://planet.test/tasking/v2/products/assured/orders"
    assert link["body"]["order_parameters"] == {"imaging_window": window["id"]}
    # The next page reads the same search again: no second search at Planet.
    more = await adapter.search_opportunities("assured", search_body(limit=3, next=result.next_token), SearchMode.SYNC)
    assert more.body["features"][0]["id"] != first["id"]
    assert len(sim.world.searches) == 1


async def test_async_search_is_a_record_that_completes_with_a_collection() -> None:
    """ASYNC returns the search as a STAPI record; DONE links the collection of its windows."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    result = await adapter.search_opportunities("assured", search_body(), SearchMode.ASYNC)
    assert result.is_async
    OpportunitySearchRecord.model_validate(result.body)
    assert result.body["status"]["status_code"] == "received"
    await asyncio.sleep(0.05)
    record = await adapter.get_search_record(result.body["id"])
    OpportunitySearchRecord.model_validate(record)
    assert record["status"]["status_code"] == "completed"
    assert record["status"]["provider:status"] == "DONE"
    (link,) = [link for link in record["links"] if link["rel"] == "opportunities"]
    collection = await adapter.get_opportunity_collection("assured", link["href"].rsplit("/", 1)[-1])
    assert len(collection.body["features"]) == len(sim.world.searches[record["id"]].windows)


async def test_failed_search_says_why() -> None:
    """A FAILED search is a failed record (async) and a 400 naming Planet's reason (sync)."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    north = {"type": "Point", "coordinates": [10.0, 85.0]}
    with pytest.raises(InvalidRequest, match="reaches this geometry"):
        await adapter.search_opportunities("assured", search_body(geometry=north), SearchMode.SYNC)
    result = await adapter.search_opportunities("assured", search_body(geometry=north), SearchMode.ASYNC)
    await asyncio.sleep(0.05)
    record = await adapter.get_search_record(result.body["id"])
    assert record["status"]["status_code"] == "failed"
    assert record["status"]["reason_code"] == "GEOMETRY_OUT_OF_REACH"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"datetime": interval(days_ahead=8)}, ["body", "datetime"]),
        ({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, ["body", "geometry"]),
        ({"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2]]}}, ["body", "geometry"]),
        ({"filter": {"op": "=", "args": [{"property": "x"}, 1]}}, ["body", "filter"]),
    ],
)
async def test_what_planet_would_refuse_is_a_422_before_any_call(change: dict[str, object], loc: list[str]) -> None:
    """Windows past 7 days, geometries Planet does not take and filters fail naming the field, unsent."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    with pytest.raises(RequestValidationFailed) as caught:
        await adapter.search_opportunities("assured", search_body(**change), SearchMode.ASYNC)
    assert caught.value.errors[0]["loc"] == loc
    assert sim.calls == {}


async def test_orders_carry_the_reference_and_map_to_stapi() -> None:
    """`name` is the attempt id; find_order finds it exactly; statuses walk and keep Planet's own."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    found = await adapter.search_opportunities("assured", search_body(limit=1), SearchMode.SYNC)
    body = found.body["features"][0]["links"][0]["body"]
    created = await adapter.create_order("assured", body, reference="attempt-1")
    (held,) = sim.world.orders.values()
    assert held.fields["name"] == "attempt-1"
    window = body["order_parameters"]["imaging_window"]
    assert held.fields["imaging_window"] == window
    # Planet answers with an expanded geometry; the input is kept as the search geometry.
    assert Order.model_validate(created.body).geometry.type == "Polygon"
    assert created.body["properties"]["search_parameters"]["geometry"] == POINT
    assert (await adapter.find_order("attempt-1"))["id"] == held.id  # type: ignore[index]
    assert await adapter.find_order("attempt-") is None
    await asyncio.sleep(0.2)
    statuses = await adapter.order_statuses(held.id, token=None, limit=10)
    assert [s["provider:status"] for s in statuses.items] == ["RECEIVED", "PENDING", "IN_PROGRESS", "FULFILLED"]
    assert [s["status_code"] for s in statuses.items] == ["received", "accepted", "tasked", "completed"]
    for status in statuses.items:
        OrderStatus.model_validate(status)
    page = await adapter.order_statuses(held.id, token=None, limit=2)
    assert page.next_token == "2"
    assert (await adapter.get_order(held.id))["properties"]["status"]["status_code"] == "completed"


async def test_list_orders_newest_first_with_offset_tokens() -> None:
    """list_orders pages Planet's offsets, newest first."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    for i in range(5):
        order = {"geometry": POINT, "datetime": interval(), "order_parameters": {}}
        await adapter.create_order("flexible", order, reference=f"r{i}")
        await asyncio.sleep(0.002)
    first = await adapter.list_orders(token=None, limit=3)
    assert [o["properties"]["planet:name"] for o in first.items] == ["r4", "r3", "r2"]
    assert first.next_token == "3"
    assert first.number_matched == 5
    second = await adapter.list_orders(token=first.next_token, limit=3)
    assert [o["properties"]["planet:name"] for o in second.items] == ["r1", "r0"]
    assert second.next_token is None


async def test_planet_400_is_a_422_in_the_clients_terms() -> None:
    """An unknown imaging window comes back as Planet's field error, located in order_parameters."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    payload = {"geometry": POINT, "order_parameters": {"imaging_window": "no-such-window"}}
    with pytest.raises(RequestValidationFailed) as caught:
        await adapter.create_order("assured", payload, reference="a")
    assert caught.value.errors[0]["loc"] == ["body", "order_parameters", "imaging_window"]
    assert not sim.world.orders


async def test_bad_key_is_a_502_without_the_key_and_unknown_ids_are_404s() -> None:
    """A 401 is the gateway's problem (502), and names no credential; unknown orders are 404."""
    sim = fast_sim()
    adapter = adapter_for(httpx.ASGITransport(app=sim.app), key="wrong-secret-key")
    with pytest.raises(ProviderBadStatus) as caught:
        await adapter.list_orders(token=None, limit=5)
    assert caught.value.status == 401
    assert "wrong-secret-key" not in caught.value.detail
    good = adapter_for(httpx.ASGITransport(app=sim.app))
    with pytest.raises(UpstreamNotFound):
        await good.get_order("nope")
    with pytest.raises(UpstreamNotFound):
        await good.order_statuses("nope", token=None, limit=5)


class _ForeignLocation(httpx.AsyncBaseTransport):
    """The simulated Planet API, except that a search's `Location` names another host."""

    def __init__(self, app: Any, location: str) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.location = location
        self.sent: list[tuple[str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.host, request.headers.get("authorization")))
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/imaging-windows/search/"):
            response.headers["location"] = self.location
        return response


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "//evil.test/x"])
async def test_a_location_outside_planets_origin_is_not_followed(location: str) -> None:
    """A `Location` naming another host is provider_invalid_payload (a 502), and the API key goes nowhere else."""
    transport = _ForeignLocation(fast_sim().app, location)
    adapter = adapter_for(transport)
    with pytest.raises(ProviderInvalidPayload) as raised:
        await adapter.search_opportunities("assured", search_body(limit=3), SearchMode.SYNC)
    assert raised.value.code == "provider_invalid_payload"
    assert "outside its own origin" in raised.value.detail
    assert {host for host, _ in transport.sent} == {"planet.test"}
