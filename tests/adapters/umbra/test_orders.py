"""Umbra orders when things go wrong: a lost create answer, 429s, and a federated product."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from stapi_pydantic import OpportunityCollection, Order

from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import SimState
from tests.adapters.umbra.harness import POINT, WINDOW, fast_state, umbra_gateway, umbra_settings
from tests.upstreams import ProductSpec, backend_of, build_provider

ORDER: dict[str, Any] = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}


class LosesTaskAnswers(httpx.AsyncBaseTransport):
    """Forwards to the simulator; the first `lose` task creations reach it and then reset."""

    def __init__(self, state: SimState, lose: int = 1) -> None:
        self.inner = httpx.ASGITransport(app=build_app(state=state))
        self.lose = lose
        self.creates = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward; for a lost create, drop the answer after Umbra has the task."""
        creating = request.method == "POST" and request.url.path == "/tasking/tasks"
        self.creates += creating
        response = await self.inner.handle_async_request(request)
        if creating and self.lose > 0:
            self.lose -= 1
            await response.aread()  # the task exists now
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


async def _retry(client: httpx.AsyncClient, key: str, tries: int = 60) -> httpx.Response:
    response = None
    for _ in range(tries):
        response = await client.post("/products/umbra:spotlight/orders", json=ORDER, headers={"Idempotency-Key": key})
        if response.status_code == 201:
            return response
        await asyncio.sleep(0.1)
    assert response is not None
    return response


async def test_a_lost_create_is_found_by_its_attempt_id() -> None:
    """The answer is lost after Umbra created the task: retried with its key, the same order, one task."""
    state = fast_state()
    lossy = LosesTaskAnswers(state)
    async with umbra_gateway(state, umbra_transport=lossy, reconcile_scan_interval_s=0.05) as client:
        lost = await client.post("/products/umbra:spotlight/orders", json=ORDER, headers={"Idempotency-Key": "lost-1"})
        assert lost.status_code == 504, lost.text
        assert lost.json()["code"] == "order_outcome_unknown"
        found = await _retry(client, "lost-1")
        again = await _retry(client, "lost-1")
    assert found.status_code == 201, found.text
    Order.model_validate(found.json())
    (task,) = state.tasks.values()
    assert found.json()["id"] == f"umbra:{task.id}"
    assert again.json()["id"] == found.json()["id"]
    assert lossy.creates == 1


async def test_a_429_on_create_never_duplicates() -> None:
    """Past Umbra's create limit the vendor answers 429 and creates nothing; the retry creates it once."""
    state = fast_state(create_task_per_s=1)
    # The adapter's own pacing off, so that Umbra's limit is what answers.
    settings = umbra_settings(state, umbra={"options": {"create_task_per_s": 1000, "poll_interval_s": 0.02}})
    async with umbra_gateway(state, settings=settings) as client:
        keys = [f"burst-{i}" for i in range(3)]
        answers = await asyncio.gather(
            *[client.post("/products/umbra:spotlight/orders", json=ORDER, headers={"Idempotency-Key": k}) for k in keys]
        )
        codes = sorted(a.status_code for a in answers)
        assert codes[0] == 201
        assert 502 in codes, codes
        refused = [a for a in answers if a.status_code == 502]
        assert all(a.json()["code"] == "provider_bad_status" for a in refused)
        assert len(state.tasks) == codes.count(201)
        placed = {}
        for key in keys:
            await asyncio.sleep(1.05)
            response = await _retry(client, key)
            assert response.status_code == 201, response.text
            placed[key] = response.json()["id"]
    assert len(set(placed.values())) == 3
    assert len(state.tasks) == 3
    assert len({t.request.userOrderId for t in state.tasks.values()}) == 3


async def test_a_federated_product_mixes_umbra_with_a_stapi_provider() -> None:
    """A federated SAR product over umbra:spotlight and a STAPI provider's product searches both and orders either."""
    state = fast_state()
    acme = build_provider([ProductSpec("sar")], name="acme")
    products = [{"id": "sar-any", "members": ["umbra:spotlight", "acme:sar"]}]
    async with umbra_gateway(state, {"acme": acme}, products=products) as client:
        search = {"datetime": WINDOW, "geometry": POINT}
        response = await client.post("/products/sar-any/opportunities", json=search, headers={"Prefer": "wait"})
        assert response.status_code == 200, response.text
        body = response.json()
        OpportunityCollection.model_validate(body)
        members = {f["properties"]["product_id"] for f in body["features"]}
        assert members == {"umbra:spotlight", "acme:sar"}
        assert "federation:missing" not in body
        umbra = next(f for f in body["features"] if f["properties"]["product_id"] == "umbra:spotlight")
        # One way to order each federated opportunity: the member's own link is replaced.
        (link,) = [link for link in umbra["links"] if link["rel"] == "create-order"]
        assert link["href"].endswith("/products/sar-any/orders")
        created = await client.post(link["href"].removeprefix("http://gateway.test"), json=link["body"])
        assert created.status_code == 201, created.text
        Order.model_validate(created.json())
        assert created.json()["properties"]["product_id"] == "umbra:spotlight"
        order = {**ORDER, "order_parameters": {"member": "acme:sar"}}
        other = await client.post("/products/sar-any/orders", json=order)
        assert other.status_code == 201, other.text
    assert len(state.tasks) == 1
    assert len(backend_of(acme).orders) == 1
