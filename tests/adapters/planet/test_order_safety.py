"""Orders to Planet are never placed twice: a lost create answer is found again by the attempt id
(Planet's `name`), and a 429 on create leaves nothing behind to duplicate."""

from __future__ import annotations

import asyncio

import httpx
from stapi_pydantic import Order, OrderStatus

from adapters.planet.simulator import PlanetSimulator
from gateway.settings.models import Settings
from tests.adapters.planet.helpers import POINT, fast_sim, interval, provider
from tests.gateways import gateway_client
from tests.waiting import eventually

FLEXIBLE = {"datetime": interval(5), "geometry": POINT, "order_parameters": {}}


class LosesCreateAnswer(httpx.AsyncBaseTransport):
    """Forwards to the simulator; the first `POST /orders/` is placed, then the connection resets."""

    def __init__(self, sim: PlanetSimulator) -> None:
        self.inner = httpx.ASGITransport(app=sim.app)
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward; lose the first create's answer after Planet has placed it."""
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/orders/") and not self.lost:
            await response.aread()
            self.lost += 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


async def test_lost_create_answer_is_the_same_order_on_retry() -> None:
    """The retry with the same Idempotency-Key returns the order Planet holds, and it holds one."""
    sim = fast_sim()
    transport = LosesCreateAnswer(sim)
    settings = Settings.build([provider()], secret="test-secret", deadline_s=2.0, reconcile_scan_interval_s=0.05)
    async with gateway_client({"planet": transport}, settings=settings) as client:
        headers = {"Idempotency-Key": "lost-1"}
        first = await client.post("/products/planet:flexible/orders", json=FLEXIBLE, headers=headers)
        assert first.status_code in (201, 202, 504), first.text
        assert transport.lost == 1
        again = await eventually(
            lambda: client.post("/products/planet:flexible/orders", json=FLEXIBLE, headers=headers),
            until=lambda r: r.status_code == 201,
            every_s=0.05,
            what="the lost order reconciled",
        )
        assert again.status_code == 201, again.text
        order = Order[OrderStatus].model_validate(again.json())
        (held,) = sim.world.orders.values()
        assert order.id == f"planet:{held.id}"
        # Planet's `name` is the gateway's attempt id: the reconciler asked for exactly that.
        assert sim.calls.get("order_list", 0) >= 1
        assert len(sim.world.orders) == 1


async def test_429_on_create_never_duplicates() -> None:
    """Planet's 429 is a refusal: nothing placed, the key freed, the retry places exactly one."""
    sim = fast_sim(limits={"order_create": 1})
    settings = Settings.build([provider()], secret="test-secret")
    async with gateway_client({"planet": sim.app}, settings=settings) as client:
        other = await client.post("/products/planet:flexible/orders", json=FLEXIBLE, headers={"Idempotency-Key": "a"})
        assert other.status_code == 201, other.text
        throttled = await client.post(
            "/products/planet:flexible/orders", json=FLEXIBLE, headers={"Idempotency-Key": "b"}
        )
        assert throttled.status_code == 502, throttled.text
        assert throttled.json()["code"] == "provider_bad_status"
        assert len(sim.world.orders) == 1
        await asyncio.sleep(1.05)  # the simulator's one-second window has passed
        placed = await client.post("/products/planet:flexible/orders", json=FLEXIBLE, headers={"Idempotency-Key": "b"})
        assert placed.status_code == 201, placed.text
        replay = await client.post("/products/planet:flexible/orders", json=FLEXIBLE, headers={"Idempotency-Key": "b"})
        assert replay.json()["id"] == placed.json()["id"]
        assert len(sim.world.orders) == 2
