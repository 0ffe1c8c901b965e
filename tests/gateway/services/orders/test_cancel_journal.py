"""Cancels are journaled like creates: written before the vendor is called, ended with what came of it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.umbra.simulator import build_app
from gateway.domain.cancels import CancelState
from gateway.services.cancel_journal import CancelJournal
from gateway.services.journal import Retention
from gateway.services.tracked_orders import TrackedOrders, due_index
from gateway.store import Store, open_store
from tests.adapters.umbra.harness import POINT, WINDOW, fast_state, umbra_gateway
from tests.waiting import eventually

ORDER: dict[str, Any] = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[Store]:
    """The Redis the gateway under test journals into, read independently of it."""
    opened = open_store(redis_url, prefix=redis_prefix)
    yield opened
    await opened.aclose()


class LostCancelTransport(httpx.AsyncBaseTransport):
    """The simulated Umbra, but a cancel's answer is lost after the request went out."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.cancels_sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward; for a cancel, let the vendor act on it and then drop the answer."""
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/cancel"):
            self.cancels_sent += 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


async def _place(client: httpx.AsyncClient, reached: list[str], state: Any) -> str:
    placed = await client.post("/products/umbra:spotlight/orders", json=ORDER)
    assert placed.status_code == 201, placed.text
    order_id = str(placed.json()["id"])
    state.tasks[order_id.split(":", 1)[1]].forced = reached
    return order_id


@pytest.mark.parametrize(
    ("reached", "status", "journaled", "vendor_state"),
    [
        (["RECEIVED", "ACCEPTED"], 202, CancelState.ACCEPTED, None),
        (["RECEIVED", "SCHEDULED", "TASKED", "DELIVERED"], 409, CancelState.REFUSED, "DELIVERED"),
    ],
    ids=["accepted", "refused"],
)
async def test_each_cancel_is_journaled_with_its_outcome(
    store: Store, redis_url: str, redis_prefix: str, reached: list[str], status: int, journaled: CancelState,
    vendor_state: str | None,
) -> None:  # fmt: skip
    """An accepted and a refused cancel each leave one entry: who asked, and the end it came to."""
    state = fast_state(status_step_s=3600.0)
    async with umbra_gateway(state, store=redis_url, store_prefix=redis_prefix) as client:
        order_id = await _place(client, reached, state)
        answered = await client.post(f"/orders/{order_id}/cancel")
    entries = await CancelJournal(store, Retention(60, 60)).of_order(order_id)
    assert answered.status_code == status, answered.text
    assert [(e.state, e.client, e.vendor_state) for e in entries] == [(journaled, "anonymous", vendor_state)]
    assert entries[0].finished is not None


async def test_a_lost_cancel_answer_is_unknown_and_never_resent(
    store: Store, redis_url: str, redis_prefix: str
) -> None:
    """The answer to a cancel is lost: one call went out (no retry), the client gets a 502, the journal says unknown."""
    state = fast_state(status_step_s=3600.0)
    lossy = LostCancelTransport(httpx.ASGITransport(app=build_app(state=state)))
    async with umbra_gateway(state, umbra_transport=lossy, store=redis_url, store_prefix=redis_prefix) as client:
        order_id = await _place(client, ["RECEIVED", "ACCEPTED"], state)
        answered = await client.post(f"/orders/{order_id}/cancel")
    entries = await CancelJournal(store, Retention(60, 60)).of_order(order_id)
    assert answered.status_code == 502, answered.text
    assert lossy.cancels_sent == 1
    assert [e.state for e in entries] == [CancelState.UNKNOWN]
    assert entries[0].error_code == "provider_unreachable"


async def test_an_accepted_cancel_makes_the_order_due_for_tracking(
    store: Store, redis_url: str, redis_prefix: str
) -> None:
    """Once polled, an Umbra order is next due minutes later; after an accepted cancel the tracker polls
    it at its next pass and sees it end (within seconds, not at its 300 s cadence)."""
    state = fast_state(status_step_s=3600.0)
    tracked = TrackedOrders(store, 60)
    async with umbra_gateway(state, store=redis_url, store_prefix=redis_prefix) as client:
        order_id = await _place(client, ["RECEIVED", "ACCEPTED"], state)

        async def polled() -> bool:
            record = await tracked.load(order_id)
            return record is not None and record.polls >= 1

        await eventually(polled)
        before = dict(await store.index_page(due_index("umbra"), limit=10))[order_id]
        cancelled = await client.post(f"/orders/{order_id}/cancel")

        async def ended() -> bool:
            record = await tracked.load(order_id)
            return record is not None and not record.state.open

        await eventually(ended)
    assert cancelled.status_code == 202
    assert before > time.time() + 60
