"""Every simulated vendor behind a real `stapi-gateway serve` process: the four STAPI flows.

Two real processes per vendor on loopback: `stapi-gateway simulate --vendor NAME` and
`stapi-gateway serve` with the vendor's demo provider (adapters/registry.py). A vendor added to
the registry with a simulator is covered without editing this file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from stapi_pydantic import Order, OrderStatus, OrderStatuses, Product

from adapters.registry import simulated_vendors
from tests.served import free_port, served
from tests.waiting import eventually

VENDORS = sorted(simulated_vendors())
POINT = {"type": "Point", "coordinates": [13.35, 52.51]}


def _search_body() -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=1)
    stamps = [t.isoformat().replace("+00:00", "Z") for t in (start, start + timedelta(days=2))]
    window = "/".join(stamps)
    return {"datetime": window, "geometry": POINT, "limit": 5}


async def _opportunities(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    """A search answered in the request (`Prefer: wait`), or its async record followed to the end."""
    found = await client.post(f"/products/{product_id}/opportunities", json=_search_body(), headers={"Prefer": "wait"})
    assert found.status_code in (200, 201), found.text
    if found.status_code == 200:
        collection: dict[str, Any] = found.json()
        return collection
    record_href = next(link["href"] for link in found.json()["links"] if link["rel"] == "self")
    answer = await eventually(
        lambda: client.get(record_href),
        until=lambda r: r.json()["status"]["status_code"] in ("completed", "failed"),
        every_s=0.1,
        what="the search finished",
    )
    record = answer.json()
    href = next(link["href"] for link in record["links"] if link["rel"] == "opportunities")
    return dict((await client.get(href)).json())


@pytest.mark.parametrize("vendor", VENDORS)
async def test_the_four_flows_through_a_served_gateway(vendor: str, tmp_path: Path) -> None:
    """Products, an opportunity search, an order placed by an opportunity's link, the order and its statuses."""
    sim = simulated_vendors()[vendor]
    sim_port, port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    config = tmp_path / "gateway.yaml"
    provider = {"url": sim_url, "title": sim.title, **sim.provider(sim_url)}
    config.write_text(yaml.safe_dump({"gateway": {"deadline_s": 20}, "providers": {vendor: provider}}))
    async with (
        served(sim_port, "--vendor", vendor, command="simulate"),
        served(port, config=config) as gateway,
    ):
        client = gateway.client
        products = (await client.get("/products")).json()["products"]
        assert products
        assert all(p["id"].startswith(f"{vendor}:") for p in products)
        for product in products:
            Product.model_validate(product)
        searchable = next(p for p in products if any(link["rel"] == "opportunities" for link in p["links"]))
        collection = await _opportunities(client, searchable["id"])
        assert collection["features"], collection
        first = collection["features"][0]
        links = [*first.get("links", []), *collection.get("links", [])]
        order_link = next(link for link in links if link["rel"] == "create-order")
        placed = await client.post(order_link["href"], json=order_link["body"], headers={"Idempotency-Key": "e2e"})
        assert placed.status_code == 201, placed.text
        order = Order[OrderStatus].model_validate(placed.json())
        assert order.id.startswith(f"{vendor}:")
        again = await client.post(order_link["href"], json=order_link["body"], headers={"Idempotency-Key": "e2e"})
        assert again.json()["id"] == order.id
        read = await client.get(f"/orders/{order.id}")
        assert read.status_code == 200, read.text
        assert "provider:status" in read.json()["properties"]["status"]
        statuses = await client.get(f"/orders/{order.id}/statuses")
        assert statuses.status_code == 200, statuses.text
        OrderStatuses.model_validate(statuses.json())
    assert not [line for line in gateway.lines if "Traceback" in line], gateway.lines
