"""`GET /orders` is newest first across providers, truly, though stapi-fastapi lists oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from stapi_pydantic import OrderCollection

from tests.gateway.http.routes.test_orders import path
from tests.gateway.services.orders.burst import order_for
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, build_provider, provider_client


async def walk(client: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    """Every order of `GET /orders`, following `next` links; each page validated."""
    seen: list[dict[str, Any]] = []
    url: str | None = f"/orders?limit={limit}"
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        OrderCollection.model_validate(page)
        seen.extend(page["features"])
        url = next((path(x["href"]) for x in page["links"] if x["rel"] == "next"), None)
    return seen


def created(order: dict[str, Any]) -> datetime:
    """An order's creation time."""
    return datetime.fromisoformat(order["properties"]["created"].replace("Z", "+00:00"))


async def test_orders_are_listed_newest_first_across_providers_and_pages() -> None:
    """Three oldest-first providers, 150 + 4 + 9 orders interleaved: pages of 7 newest first, each order once."""
    upstreams = {pid: build_provider([ProductSpec("eo")], name=pid) for pid in ("a", "b", "c")}
    counts = {"a": 150, "b": 4, "c": 9}
    direct = {pid: provider_client(app, pid) for pid, app in upstreams.items()}
    placed = 0
    while any(counts.values()):
        for pid in ("a", "b", "c"):
            if counts[pid]:
                response = await direct[pid].post("/products/eo/orders", json=order_for(placed))
                assert response.status_code == 201
                counts[pid] -= 1
                placed += 1
    for c in direct.values():
        await c.aclose()
    async with gateway_client(upstreams) as client:
        first = (await client.get("/orders?limit=7")).json()
        # An order placed while the client pages must not shift what it sees.
        async with provider_client(upstreams["a"], "a") as late:
            await late.post("/products/eo/orders", json=order_for(9999))
        seen = await walk(client, 7)
    ids = [o["id"] for o in seen]
    assert len(ids) == len(set(ids)) == placed + 1
    stamps = [created(o) for o in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert first["features"][0]["id"] == ids[1]  # the newest before the late one
