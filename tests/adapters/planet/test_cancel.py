"""Cancelling Planet orders through the gateway (`DELETE /orders/{id}/`), and the adapter's own answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from stapi_pydantic import Order, OrderStatus

from adapters.base import OrderNotCancellable
from adapters.planet.wire import cancel_outcome
from gateway.domain.federation import CANCEL_CLASS
from gateway.settings.models import Settings
from tests.adapters.planet.helpers import POINT, adapter_for, fast_sim, interval, provider
from tests.clients import AS_A, AS_B, two_clients
from tests.gateways import gateway_client

CLIENTS = two_clients()


def _order() -> dict[str, Any]:
    return {"datetime": interval(5), "geometry": POINT, "order_parameters": {}}


def _settings() -> Settings:
    return Settings.build([provider()], secret="test-secret", clients=CLIENTS)


async def _place(client: httpx.AsyncClient) -> str:
    placed = await client.post("/products/planet:flexible/orders", json=_order(), headers=AS_A)
    assert placed.status_code == 201, placed.text
    return str(placed.json()["id"])


async def test_a_received_order_is_cancelled_and_cancelling_again_is_no_error() -> None:
    """A RECEIVED order: 202 and the order, cancelled (CANCELLED at Planet); again: 202, still cancelled."""
    sim = fast_sim(order_step_s=3600.0)
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        order_id = await _place(client)
        cancelled = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
        again = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
        statuses = (await client.get(f"/orders/{order_id}/statuses", headers=AS_A)).json()
        product = (await client.get("/products/planet:flexible", headers=AS_A)).json()
    assert cancelled.status_code == 202, cancelled.text
    Order[OrderStatus].model_validate(cancelled.json())
    assert cancelled.json()["id"] == order_id
    status = cancelled.json()["properties"]["status"]
    assert (status["status_code"], status["provider:status"]) == ("cancelled", "CANCELLED")
    assert again.status_code == 202, again.text
    assert again.json()["properties"]["status"]["provider:status"] == "CANCELLED"
    assert statuses["statuses"][-1]["provider:status"] == "CANCELLED"
    assert CANCEL_CLASS in product["conformsTo"]
    (held,) = sim.world.orders.values()
    assert held.cancelled is not None


async def test_a_fulfilled_order_is_not_cancellable() -> None:
    """Planet refuses a FULFILLED order: 409 `order_not_cancellable` naming FULFILLED; nothing changes."""
    sim = fast_sim(order_step_s=0.0)  # every order is at the end of its walk at once
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        order_id = await _place(client)
        refused = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "order_not_cancellable"
    assert refused.json()["provider:status"] == "FULFILLED"
    (held,) = sim.world.orders.values()
    assert held.cancelled is None


async def test_another_clients_order_is_refused_as_absent() -> None:
    """Client B cannot cancel client A's order: 404, as for reading it; the order is not cancelled."""
    sim = fast_sim(order_step_s=3600.0)
    async with gateway_client({"planet": sim.app}, settings=_settings()) as client:
        order_id = await _place(client)
        theirs = await client.post(f"/orders/{order_id}/cancel", headers=AS_B)
        read = await client.get(f"/orders/{order_id}", headers=AS_B)
    assert theirs.status_code == read.status_code == 404, theirs.text
    (held,) = sim.world.orders.values()
    assert held.cancelled is None


async def test_the_adapter_cancels_and_reports_refusals() -> None:
    """Against the simulator directly: cancel, then a second cancel raises with the order, cancelled."""
    sim = fast_sim(order_step_s=3600.0)
    adapter = adapter_for(httpx.ASGITransport(app=sim.app))
    order = sim.world.new_order({"name": "n", "status": "RECEIVED"})
    try:
        cancelled = await adapter.cancel_order(order.id)
        with pytest.raises(OrderNotCancellable) as refused:
            await adapter.cancel_order(order.id)
    finally:
        await adapter.aclose()
    assert cancelled["properties"]["status"]["provider:status"] == "CANCELLED"
    assert refused.value.vendor_state == "CANCELLED"
    assert refused.value.order is not None


@pytest.mark.parametrize(
    ("state", "cancelling"), [("PENDING_CANCELLATION", True), ("CANCELLED", True), ("FULFILLED", False)]
)
def test_a_refusal_says_whether_planet_is_calling_the_order_off_already(state: str, cancelling: bool) -> None:
    """Planet refuses a second cancel while PENDING_CANCELLATION (or once CANCELLED): the refusal says
    so, and the gateway answers it as accepted; a FULFILLED order's refusal is a real one."""
    order = {"id": "o1", "properties": {"status": {"status_code": "held", "provider:status": state}}}
    with pytest.raises(OrderNotCancellable) as refused:
        cancel_outcome("planet", 400, order)
    assert refused.value.cancelling is cancelling
    assert refused.value.vendor_state == state
