"""Cancelling Umbra tasks through the gateway: accepted, refused past SCHEDULED, not on STAPI, only one's own."""

from __future__ import annotations

from typing import Any

import httpx
from stapi_pydantic import Order, OrderStatus

from adapters.umbra.simulator_state import SimState
from gateway.domain.federation import CANCEL_CLASS
from tests.adapters.umbra.harness import POINT, WINDOW, fast_state, umbra_gateway
from tests.clients import AS_A, AS_B, two_clients
from tests.upstreams import ProductSpec, backend_of, build_provider

ORDER: dict[str, Any] = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}
STAPI_ORDER: dict[str, Any] = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}
CLIENTS = two_clients()


def still_state() -> SimState:
    """A simulated Canopy whose tasks stay where a test puts them (no walk within a test)."""
    return fast_state(status_step_s=3600.0)


async def _place(client: httpx.AsyncClient, state: SimState, reached: list[str]) -> str:
    """Place a task as client A and put it at the end of `reached`: the gateway's order id."""
    placed = await client.post("/products/umbra:spotlight/orders", json=ORDER, headers=AS_A)
    assert placed.status_code == 201, placed.text
    order_id = str(placed.json()["id"])
    state.tasks[order_id.split(":", 1)[1]].forced = reached
    return order_id


async def test_a_task_is_cancelled_and_cancelling_again_is_no_error() -> None:
    """An ACCEPTED task: 202 and the order, cancelled (CANCELED at Umbra); a second cancel is 202 too."""
    state = still_state()
    async with umbra_gateway(state, clients=CLIENTS) as client:
        order_id = await _place(client, state, ["RECEIVED", "SUBMITTED", "ACCEPTED"])
        cancelled = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
        again = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
        read = (await client.get(f"/orders/{order_id}", headers=AS_A)).json()
    assert cancelled.status_code == 202, cancelled.text
    order = Order[OrderStatus].model_validate(cancelled.json())
    assert order.id == order_id
    assert cancelled.json()["properties"]["status"]["status_code"] == "cancelled"
    assert cancelled.json()["properties"]["status"]["provider:status"] == "CANCELED"
    assert again.status_code == 202, again.text
    assert again.json()["properties"]["status"]["provider:status"] == "CANCELED"
    assert read["properties"]["status"]["provider:status"] == "CANCELED"
    assert all(not link["href"].startswith("http://umbra.test") for link in cancelled.json()["links"])


async def test_a_cancel_asked_again_while_umbra_is_calling_the_task_off_is_accepted() -> None:
    """A task in CANCEL_REQUESTED (a first cancel accepted, its answer lost): Umbra refuses a second
    cancel with 422, and the gateway answers 202 with the order, not 409 (the client asked again)."""
    state = still_state()
    async with umbra_gateway(state, clients=CLIENTS) as client:
        order_id = await _place(client, state, ["RECEIVED", "SUBMITTED", "ACCEPTED", "CANCEL_REQUESTED"])
        again = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
    assert again.status_code == 202, again.text
    Order[OrderStatus].model_validate(again.json())
    assert again.json()["properties"]["status"]["provider:status"] == "CANCEL_REQUESTED"


async def test_a_delivered_task_is_not_cancellable() -> None:
    """Past SCHEDULED Umbra answers 422: the gateway's 409 names the task's status, which stays."""
    state = still_state()
    async with umbra_gateway(state, clients=CLIENTS) as client:
        order_id = await _place(client, state, ["RECEIVED", "SCHEDULED", "TASKED", "DELIVERED"])
        refused = await client.post(f"/orders/{order_id}/cancel", headers=AS_A)
        read = (await client.get(f"/orders/{order_id}", headers=AS_A)).json()
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "order_not_cancellable"
    assert refused.json()["provider:status"] == "DELIVERED"
    assert read["properties"]["status"]["provider:status"] == "DELIVERED"


async def test_another_clients_order_is_refused_as_absent() -> None:
    """Client B cannot cancel client A's task: 404 as for reading it, and the task is not cancelled."""
    state = still_state()
    async with umbra_gateway(state, clients=CLIENTS) as client:
        order_id = await _place(client, state, ["RECEIVED", "SUBMITTED"])
        theirs = await client.post(f"/orders/{order_id}/cancel", headers=AS_B)
        read = await client.get(f"/orders/{order_id}", headers=AS_B)
        anonymous = await client.post(f"/orders/{order_id}/cancel")
    assert theirs.status_code == read.status_code == 404, theirs.text
    assert anonymous.status_code == 401
    (task,) = state.tasks.values()
    assert task.forced == ["RECEIVED", "SUBMITTED"]


async def test_a_stapi_provider_cannot_cancel() -> None:
    """An order at a STAPI 0.1 provider: 405 `cancel_not_supported`; only Umbra's products list the class."""
    state = still_state()
    stapi = build_provider([ProductSpec("eo")], name="acme")
    async with umbra_gateway(state, {"acme": stapi}, clients=CLIENTS) as client:
        placed = await client.post("/products/acme:eo/orders", json=STAPI_ORDER, headers=AS_A)
        assert placed.status_code == 201, placed.text
        refused = await client.post(f"/orders/{placed.json()['id']}/cancel", headers=AS_A)
        umbra = (await client.get("/products/umbra:spotlight", headers=AS_A)).json()
        umbra_classes = (await client.get("/products/umbra:spotlight/conformance", headers=AS_A)).json()
        acme = (await client.get("/products/acme:eo", headers=AS_A)).json()
        landing = (await client.get("/", headers=AS_A)).json()
    assert refused.status_code == 405, refused.text
    assert refused.json()["code"] == "cancel_not_supported"
    assert len(backend_of(stapi).orders) == 1
    assert CANCEL_CLASS in umbra["conformsTo"]
    assert CANCEL_CLASS in umbra_classes["conformsTo"]
    assert CANCEL_CLASS not in acme["conformsTo"]
    assert CANCEL_CLASS in landing["conformsTo"]
