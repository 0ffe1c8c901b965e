"""Which parts of Planet's published documents the simulator follows, checked one fact at a time.

Read with the search tools (stored copies): docs.planet.com/develop/apis/tasking/assured_tasking
and flexible_tasking, developers.planet.com/docs/tasking/examples/{assured,orders}, the notebooks
in planetlabs/notebooks jupyter-notebooks/tasking-api/ (order creation, monitoring), and Planet
staff's stapi-fastapi-planet (src/planet/client.py, conversions.py: field names only).
Not followed, because no document we have shows it: the error body (DRF's shape, chosen), the
search states before DONE (PENDING, IN_PROGRESS), order-history events other than ORDER_CREATED
and ORDER_FULFILLED, and the limits of endpoints other than listing orders.
"""

from __future__ import annotations

import asyncio
import base64

import httpx

from adapters.planet.simulator import DEFAULT_LIMITS, DEMO_API_KEY
from tests.adapters.planet.helpers import HEADERS, POINT, URL, fast_sim, interval

# Documented facts the adapter relies on, each with where it is written.
WINDOW_FIELDS = {  # assured_tasking: the fields of each imaging window; constellations: satellite_type
    "id",
    "start_time",
    "end_time",
    "satellite_type",
    "off_nadir_angle_min",
    "off_nadir_angle_max",
    "cloud_forecast",
}
ORDER_FIELDS = {  # orders example, notebooks, stapi-fastapi-planet conversions.py
    "id",
    "name",
    "geometry",
    "original_geometry",
    "pl_number",
    "product",
    "imaging_window",
    "start_time",
    "end_time",
    "created_time",
    "status",
    "capture_status_published_count",
    "capture_assessment_success_count",
}
FLEXIBLE_STATES = {"RECEIVED", "PENDING", "IN_PROGRESS", "FULFILLED"}  # flexible_tasking's state list (a subset)


def _client(sim_app: object, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim_app), base_url=URL, headers=headers or HEADERS)  # type: ignore[arg-type]


async def test_imaging_window_search_as_documented() -> None:
    """POST /imaging-windows/search/ (geometry, pl_number, product) -> 201 + Location, a path from the
    host root; GET it until DONE with the documented window fields (assured_tasking)."""
    sim = fast_sim()
    async with _client(sim.app) as client:
        body = {"geometry": POINT, "pl_number": "PL-000001", "product": "Assured Tasking"}
        created = await client.post("/imaging-windows/search/", json=body)
        assert created.status_code == 201
        location = created.headers["location"]
        assert location.startswith("/tasking/v2/imaging-windows/search/")
        assert location.endswith("/")
        await asyncio.sleep(0.05)
        done = (await client.get(f"http://planet.test{location}")).json()
        assert done["status"] == "DONE"
        assert done["imaging_windows"]
        assert set(done["imaging_windows"][0]) == WINDOW_FIELDS
        assert {"prediction"} <= set(done["imaging_windows"][0]["cloud_forecast"][0])
        # "cannot be more than 7 days in the future"
        late = await client.post("/imaging-windows/search/", json={**body, "end_time": interval(8).split("/")[1]})
        assert late.status_code == 400
        assert "end_time" in late.json()
        # "a Point or a two-point LineString"
        line = {"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2]]}
        assert (await client.post("/imaging-windows/search/", json={**body, "geometry": line})).status_code == 400


async def test_orders_as_documented() -> None:
    """POST /orders/ with only name and geometry (pl_number and product from the key) -> 201; the
    geometry is expanded and the input kept; listing is Django-style paged (orders example)."""
    sim = fast_sim()
    async with _client(sim.app) as client:
        created = await client.post("/orders/", json={"name": "Order 01", "geometry": POINT})
        assert created.status_code == 201
        order = created.json()
        assert set(order) >= ORDER_FIELDS
        assert order["status"] in FLEXIBLE_STATES
        assert order["original_geometry"] == POINT
        assert order["geometry"]["type"] == "Polygon"
        assert (await client.get(f"/orders/{order['id']}/")).json()["id"] == order["id"]
        page = (await client.get("/orders/", params={"limit": 50, "offset": 0, "ordering": "-created_time"})).json()
        assert set(page) == {"count", "next", "previous", "results"}
        assert (await client.get("/order-history/", params={"order_id": order["id"]})).json()["results"][0][
            "event_type"
        ] == "ORDER_CREATED"
        # Assured orders need the imaging window.
        assured = await client.post("/orders/", json={"name": "a", "geometry": POINT, "product": "Assured Tasking"})
        assert assured.status_code == 400
        assert "imaging_window" in assured.json()


async def test_auth_as_documented() -> None:
    """`Authorization: api-key <KEY>` or HTTP Basic with the key as the user; anything else is 401."""
    sim = fast_sim()
    basic = base64.b64encode(f"{DEMO_API_KEY}:".encode()).decode()
    async with _client(sim.app, {"Authorization": f"Basic {basic}"}) as client:
        assert (await client.get("/orders/")).status_code == 200
    async with _client(sim.app, {"Authorization": "api-key wrong"}) as client:
        assert (await client.get("/orders/")).status_code == 401
    # Listing: 40/s burst (the docs' rate-limit note for listing orders).
    assert DEFAULT_LIMITS["order_list"] == 40
