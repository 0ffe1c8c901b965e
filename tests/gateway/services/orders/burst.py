"""Many clients ordering with Idempotency-Keys and retrying, and the invariant every run must keep.

Each key orders a point of its own, so the provider's orders can be told apart by key: the
provider must hold at most one order per key, and exactly the one each client saw acknowledged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from geojson_pydantic import Point
from stapi_pydantic import Order

from tests.gateway.http.routes.test_opportunities import WINDOW
from tests.upstreams import InMemoryBackend


def order_for(key: int) -> dict[str, Any]:
    """The order of key number `key`: a point of its own, and the product's default parameters left out."""
    point = {"type": "Point", "coordinates": [round(-170 + key * 0.01, 6), 10.0]}
    return {"datetime": WINDOW, "geometry": point, "order_parameters": {}}


def key_of(order: Order[Any]) -> int:
    """Which key an upstream order belongs to, from its point."""
    assert isinstance(order.geometry, Point), order.geometry  # order_for places every order at a point
    lon = order.geometry.coordinates[0]
    return round((lon + 170) / 0.01)


@dataclass
class Burst:
    """What the clients saw: the order id acknowledged (201) per key, and every status received."""

    acknowledged: dict[int, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    async def order(self, client: httpx.AsyncClient, product: str, key: int, *, tries: int, pause_s: float) -> None:
        """Order for `key`, retrying with the same Idempotency-Key until acknowledged or out of tries."""
        for _ in range(tries):
            try:
                response = await client.post(
                    f"/products/{product}/orders", json=order_for(key), headers={"Idempotency-Key": f"key-{key}"}
                )
            except httpx.TransportError:
                self.codes["transport_error"] += 1
                await asyncio.sleep(pause_s)
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 201:
                body = response.json()
                Order.model_validate(body)
                previous = self.acknowledged.setdefault(key, body["id"])
                assert previous == body["id"], f"key {key} acknowledged as {previous} and as {body['id']}"
                return
            self.codes[response.json()["code"]] += 1
            assert "new Idempotency-Key" not in response.json()["detail"], response.text
            await asyncio.sleep(pause_s)

    async def run(
        self,
        client: httpx.AsyncClient,
        product: str,
        keys: range,
        *,
        tries: int = 5,
        pause_s: float = 0.05,
        width: int = 20,
    ) -> None:
        """Every key ordered by one of `width` concurrent clients."""
        queue = list(keys)

        async def worker() -> None:
            while queue:
                await self.order(client, product, queue.pop(0), tries=tries, pause_s=pause_s)

        await asyncio.gather(*(worker() for _ in range(width)))


def check_invariant(backend: InMemoryBackend, burst: Burst, provider_id: str) -> Counter[int]:
    """At most one upstream order per key; each acknowledged id is that key's one order. Orders per key."""
    per_key: Counter[int] = Counter()
    by_id: dict[str, int] = {}
    for order_id, order in backend.orders.items():
        key = key_of(order)
        per_key[key] += 1
        by_id[f"{provider_id}:{order_id}"] = key
    doubled = {key: n for key, n in per_key.items() if n > 1}
    assert not doubled, f"keys placed more than once: {doubled}"
    for key, order_id in burst.acknowledged.items():
        assert by_id.get(order_id) == key, f"key {key} was acknowledged with {order_id}, which the provider lacks"
    return per_key
