"""The four STAPI flows through the gateway against the simulated Umbra Canopy."""

from __future__ import annotations

import asyncio
from typing import Any

from stapi_pydantic import (
    OpportunityCollection,
    OpportunitySearchRecord,
    Order,
    OrderCollection,
    OrderStatuses,
    Product,
)

from adapters.umbra.simulator_models import SpotlightConstraints
from tests.adapters.umbra.harness import LINE, POINT, WINDOW, fast_state, umbra_gateway
from tests.waiting import eventually


async def test_products_queryables_and_order_parameters() -> None:
    """umbra:spotlight and umbra:scan are listed, with Umbra's constraints as schemas."""
    async with umbra_gateway(fast_state()) as client:
        products = (await client.get("/products")).json()["products"]
        ids = {p["id"] for p in products}
        assert {"umbra:spotlight", "umbra:scan"} <= ids
        for product in products:
            Product.model_validate(product)
        queryables = (await client.get("/products/umbra:spotlight/queryables")).json()
        assert queryables["properties"]["sceneSize"]["enum"][1] == "5x5_KM"
        parameters = (await client.get("/products/umbra:scan/order-parameters")).json()
        assert parameters["properties"]["swathWidthMeters"]["maximum"] == 10000
        assert "taskName" in parameters["properties"]
        conformance = (await client.get("/products/umbra:scan/conformance")).json()["conformsTo"]
        assert "https://stapi.example.com/v0.1.0/opportunities-async" in conformance


async def test_sync_search_polls_the_feasibility() -> None:
    """Prefer: wait polls the feasibility and returns its opportunities, each with an order link."""
    state = fast_state()
    search = {
        "datetime": WINDOW,
        "geometry": POINT,
        "filter": {"op": "=", "args": [{"property": "polarization"}, "HH"]},
    }
    async with umbra_gateway(state) as client:
        response = await client.post("/products/umbra:spotlight/opportunities", json=search, headers={"Prefer": "wait"})
        assert response.status_code == 200, response.text
        body = response.json()
        OpportunityCollection.model_validate(body)
    assert body["features"]
    feature = body["features"][0]
    assert feature["id"].startswith("umbra:")
    assert feature["geometry"] == POINT
    assert "umbra:grazing_angle_start_degrees" in feature["properties"]
    assert feature["properties"]["product_id"] == "umbra:spotlight"
    (order_link,) = [link for link in feature["links"] if link["rel"] == "create-order"]
    assert order_link["href"] == "http://gateway.test/products/umbra:spotlight/orders"
    assert order_link["body"]["order_parameters"]["polarization"] == "HH"
    (feasibility,) = state.feasibilities.values()
    assert feasibility.request.constraints.polarization == "HH"


async def test_async_search_is_a_native_record_and_a_collection() -> None:
    """respond-async gives a record; once complete, its opportunities link gives the collection."""
    async with umbra_gateway(fast_state()) as client:
        search = {"datetime": WINDOW, "geometry": LINE}
        headers = {"Prefer": "respond-async"}
        created = await client.post("/products/umbra:scan/opportunities", json=search, headers=headers)
        assert created.status_code == 201, created.text
        record = created.json()
        OpportunitySearchRecord.model_validate(record)
        location = f"/searches/opportunities/{record['id']}"
        answer = await eventually(
            lambda: client.get(location),
            until=lambda r: r.json()["status"]["status_code"] in ("completed", "failed"),
            every_s=0.05,
        )
        record = answer.json()
        assert record["status"]["status_code"] == "completed"
        href = next(link["href"] for link in record["links"] if link["rel"] == "opportunities")
        collection = (await client.get(href.removeprefix("http://gateway.test"))).json()
        OpportunityCollection.model_validate(collection)
        assert collection["features"]
        assert all(f["geometry"] == LINE for f in collection["features"])


async def test_a_short_window_completes_empty() -> None:
    """A feasibility with opportunities: null is an empty collection, not an error."""
    async with umbra_gateway(fast_state()) as client:
        search = {"datetime": "2030-01-01T00:00:00Z/2030-01-01T01:00:00Z", "geometry": POINT}
        response = await client.post("/products/umbra:spotlight/opportunities", json=search, headers={"Prefer": "wait"})
        assert response.status_code == 200, response.text
        assert response.json()["features"] == []


async def test_wrong_geometry_is_a_422_naming_it_before_any_call() -> None:
    """Spotlight takes a Point, Scan a two-point LineString: anything else is refused here."""
    state = fast_state()
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    three = {"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2]]}
    async with umbra_gateway(state) as client:
        for product, geometry in (("spotlight", LINE), ("spotlight", polygon), ("scan", POINT), ("scan", three)):
            search = {"datetime": WINDOW, "geometry": geometry}
            response = await client.post(f"/products/umbra:{product}/opportunities", json=search)
            assert response.status_code == 422, response.text
            assert ["body", "geometry"] in [e["loc"] for e in response.json()["errors"]]
            order = {"datetime": WINDOW, "geometry": geometry, "order_parameters": {}}
            response = await client.post(f"/products/umbra:{product}/orders", json=order)
            assert response.status_code == 422, response.text
    assert state.feasibilities == {}
    assert state.tasks == {}


async def test_order_and_its_statuses() -> None:
    """An order is a task tagged with the attempt id; its statuses walk, Umbra's word kept."""
    state = fast_state()
    order: dict[str, Any] = {
        "datetime": WINDOW,
        "geometry": POINT,
        "order_parameters": {"sceneSize": "10x10_KM", "tags": ["demo"], "productTypes": ["GEC", "SICD"]},
    }
    async with umbra_gateway(state) as client:
        created = await client.post("/products/umbra:spotlight/orders", json=order, headers={"Idempotency-Key": "k-1"})
        assert created.status_code == 201, created.text
        body = created.json()
        Order.model_validate(body)
        assert body["id"].startswith("umbra:")
        assert body["properties"]["product_id"] == "umbra:spotlight"
        (task,) = state.tasks.values()
        assert task.request.userOrderId
        assert task.request.taskName.startswith("stapi-gateway ")
        assert isinstance(task.request.constraints, SpotlightConstraints)
        assert task.request.constraints.sceneSize == "10x10_KM"
        await asyncio.sleep(0.3)
        statuses = (await client.get(f"/orders/{body['id']}/statuses")).json()
        OrderStatuses.model_validate(statuses)
        words = [s["provider:status"] for s in statuses["statuses"]]
        assert words[-1] == "RECEIVED"
        assert len(words) > 2
        assert statuses["statuses"][-1]["status_code"] == "received"
        fetched = (await client.get(f"/orders/{body['id']}")).json()
        Order.model_validate(fetched)
        assert fetched["properties"]["status"]["provider:status"] == words[0]
        listed = (await client.get("/orders")).json()
        OrderCollection.model_validate(listed)
        assert body["id"] in [o["id"] for o in listed["features"]]


async def test_a_vendor_422_names_the_clients_field() -> None:
    """Umbra's own 422 (a value outside its range) comes back located in the client's terms."""
    async with umbra_gateway(fast_state()) as client:
        search = {
            "datetime": WINDOW,
            "geometry": POINT,
            "filter": {"op": "=", "args": [{"property": "rangeResolutionMinMeters"}, 0.3]},
        }
        response = await client.post("/products/umbra:spotlight/opportunities", json=search, headers={"Prefer": "wait"})
        assert response.status_code == 422, response.text
        assert ["body", "filter", "rangeResolutionMinMeters"] in [e["loc"] for e in response.json()["errors"]]
