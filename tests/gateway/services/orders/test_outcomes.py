"""Orders whose answer is lost after the provider placed them: never placed twice, never lost.

Real stapi-fastapi 0.8.0 providers behind `LosesOrderAnswers` (500/502/503, reset, hang or an
unreadable 201 after placing), real Redis, and clients that retry with their Idempotency-Key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from stapi_pydantic import Order, OrderStatus

from gateway.domain.attempts import AttemptState
from gateway.services.journal import OrderJournal, Retention
from gateway.store import open_store
from tests.clients import KEY_A, KEY_B, two_clients
from tests.gateway.services.orders.burst import Burst, check_invariant, order_for
from tests.gateways import gateway_client
from tests.order_faults import LosesOrderAnswers, is_order_create
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

AS_A = {"Authorization": f"Bearer {KEY_A}"}
AS_B = {"Authorization": f"Bearer {KEY_B}"}
FAST_RECONCILE = {"deadline_s": 1.0, "reconcile_scan_interval_s": 0.05}


def provider() -> Any:
    """One provider with one sync product."""
    return build_provider([ProductSpec("eo")], name="acme")


def stores(store: str, redis_url: str, redis_prefix: str) -> dict[str, Any]:
    """Gateway settings for the store under test."""
    return {"store": redis_url, "store_prefix": redis_prefix} if store == "redis" else {}


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_answers_lost_after_placing_never_double_an_order(store: str, redis_url: str, redis_prefix: str) -> None:
    """200 keys, 30 % of creates lose their answer after placing, each retried: one order per key, all acknowledged."""
    app = provider()
    faulty = LosesOrderAnswers(app, rate=0.3, hang_s=1.5)
    settings = {**FAST_RECONCILE, **stores(store, redis_url, redis_prefix)}
    async with gateway_client({"acme": faulty}, provider_overrides={"circuit_failures": 0}, **settings) as client:
        burst = Burst()
        await burst.run(client, "acme:eo", range(200), tries=5, pause_s=0.1)
        # Keys still unacknowledged are being looked up; their clients keep retrying with the same key.
        await burst.run(client, "acme:eo", range(200), tries=20, pause_s=0.2)
        metrics = (await client.get("/metrics")).text
    per_key = check_invariant(backend_of(app), burst, "acme")
    assert set(faulty.faults) == {"500", "502", "503", "reset", "hang", "bad-201"}, faulty.faults
    assert len(backend_of(app).orders) == len(per_key) == len(burst.acknowledged) == 200
    assert burst.codes["order_outcome_unknown"] >= sum(faulty.faults.values()) > 30
    assert 'stapi_gateway_order_outcomes_total{outcome="reconciled"}' in metrics


async def test_a_create_that_never_reached_the_provider_keeps_its_key_and_is_reported() -> None:
    """503 without placing: unknown, retries answer 504 without advising a new key, then given up; nothing placed."""
    app = provider()
    failing = LosesOrderAnswers(app, rate=1.0, modes=["503"], before_place=True)
    settings: dict[str, Any] = {**FAST_RECONCILE, "order_unknown_horizon_s": 1.0}
    headers = {"Idempotency-Key": "never"}
    async with gateway_client({"acme": failing}, **settings) as client:
        first = await client.post("/products/acme:eo/orders", json=order_for(1), headers=headers)
        again = await client.post("/products/acme:eo/orders", json=order_for(1), headers=headers)
        await asyncio.sleep(2.5)
        given_up = await client.post("/products/acme:eo/orders", json=order_for(1), headers=headers)
    assert [first.status_code, again.status_code, given_up.status_code] == [504, 504, 504]
    assert {r.json()["code"] for r in (first, again, given_up)} == {"order_outcome_unknown"}
    assert first.json()["attempt"] == again.json()["attempt"] == given_up.json()["attempt"]
    assert "same Idempotency-Key" in first.json()["detail"]
    assert "stopped looking" in given_up.json()["detail"]
    assert all("new Idempotency-Key" not in r.json()["detail"] for r in (first, again, given_up))
    assert first.headers["retry-after"] == "1"
    assert failing.faults["503"] == 1  # the retries never sent the order again
    assert not backend_of(app).orders


async def test_a_4xx_from_the_provider_releases_the_key() -> None:
    """A provider's 4xx means nothing was placed: the same key may order again once the cause is gone."""
    app = provider()
    refusing = LosesOrderAnswers(app, rate=1.0, modes=["409"], before_place=True)
    headers = {"Idempotency-Key": "refused"}
    async with gateway_client({"acme": refusing}) as client:
        refused = await client.post("/products/acme:eo/orders", json=order_for(2), headers=headers)
        refusing.rate = 0.0
        placed = await client.post("/products/acme:eo/orders", json=order_for(2), headers=headers)
    assert refused.status_code == 502
    assert refused.json()["code"] == "provider_bad_status"
    assert placed.status_code == 201
    assert len(backend_of(app).orders) == 1


class RefusesLate(httpx.AsyncBaseTransport):
    """A real provider whose order creations wait for `answer`, then are refused with a 409."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.sent = asyncio.Event()
        self.answer = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if is_order_create(request):
            self.sent.set()
            await self.answer.wait()
            return httpx.Response(409, json={"detail": "window no longer available"}, request=request)
        return await self.inner.handle_async_request(request)


async def test_a_refusal_arriving_after_a_replica_called_the_outcome_unknown_settles_it(
    redis_url: str, redis_prefix: str
) -> None:
    """Replica B (a shorter deadline) calls a create still waiting at replica A unknown; the provider then
    refuses it: A answers the refusal (not a 500), the attempt is rejected, and the key orders again."""
    app = provider()
    late = RefusesLate(app)
    shared: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "secret": "s"}
    headers = {"Idempotency-Key": "late-refusal"}
    store = open_store(redis_url, prefix=redis_prefix)
    journal = OrderJournal(store, Retention(60, 600))
    try:
        async with (
            gateway_client({"acme": late}, deadline_s=20, **shared) as a,
            gateway_client({"acme": late}, deadline_s=0.5, reconcile_scan_interval_s=0.05, **shared) as b,
        ):
            sending = asyncio.create_task(a.post("/products/acme:eo/orders", json=order_for(3), headers=headers))
            await late.sent.wait()
            # B's reconciler finds the attempt older than its own deadline allows: unknown.
            (unknown,) = await eventually(
                lambda: journal.unresolved(10),
                until=lambda rows: len(rows) == 1 and rows[0].state is AttemptState.UNKNOWN,
                every_s=0.1,
            )
            late.answer.set()
            refused = await sending
            settled = await journal.load(unknown.id)
            again = await b.post("/products/acme:eo/orders", json=order_for(3), headers=headers)
    finally:
        await store.aclose()
    assert refused.status_code == 502, refused.text
    assert refused.json()["code"] == "provider_bad_status"
    assert settled is not None
    assert settled.state is AttemptState.REJECTED
    assert again.status_code == 502, again.text
    assert again.json()["code"] == "provider_bad_status"
    assert not backend_of(app).orders


class FoldsIdenticalOrders(httpx.AsyncBaseTransport):
    """A real provider behind a vendor habit: an identical create gets the existing order back."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.answers: dict[bytes, bytes] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_order_create(request):
            return await self.inner.handle_async_request(request)
        body = await request.aread()
        if body not in self.answers:
            response = await self.inner.handle_async_request(request)
            self.answers[body] = await response.aread()
        return httpx.Response(201, content=self.answers[body], headers={"content-type": "application/json"})


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_an_order_folded_into_another_clients_is_never_handed_over(
    store: str, redis_url: str, redis_prefix: str
) -> None:
    """A provider answers B's identical create with A's order: B gets a 502 and nothing; A keeps her
    order, and the same client's folded retry gets her own order back."""
    app = provider()
    settings = {"clients": two_clients(), **stores(store, redis_url, redis_prefix)}
    async with gateway_client({"acme": FoldsIdenticalOrders(app)}, **settings) as client:
        placed = await client.post("/products/acme:eo/orders", json=order_for(4), headers=AS_A)
        taken = await client.post("/products/acme:eo/orders", json=order_for(4), headers=AS_B)
        again = await client.post("/products/acme:eo/orders", json=order_for(4), headers=AS_A)
        order_id = placed.json()["id"]
        hers = await client.get(f"/orders/{order_id}", headers=AS_A)
        not_his = await client.get(f"/orders/{order_id}", headers=AS_B)
        his_list = (await client.get("/orders", headers=AS_B)).json()
    assert placed.status_code == 201, placed.text
    assert taken.status_code == 502, taken.text
    assert taken.json()["code"] == "provider_invalid_payload"
    assert order_id not in taken.text
    assert again.status_code == 201, again.text
    assert again.json()["id"] == order_id
    assert hers.status_code == 200
    Order[OrderStatus].model_validate(hers.json())
    assert not_his.status_code == 404
    assert his_list["features"] == []
    assert len(backend_of(app).orders) == 1
