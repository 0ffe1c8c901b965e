"""The Umbra adapter on its own, against the simulator over httpx.ASGITransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from stapi_pydantic import OpportunityCollection, OpportunitySearchRecord, Order, OrderStatuses

from adapters.base import (
    ProviderBadStatus,
    ProviderInvalidPayload,
    ProviderUnreachable,
    RequestValidationFailed,
    SearchMode,
    UpstreamNotFound,
)
from adapters.umbra.adapter import UmbraAdapter
from adapters.umbra.config import UmbraOptions
from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import SimState
from tests.adapters.umbra.harness import POINT, UMBRA_URL, WINDOW, fast_state

SEARCH = {"datetime": WINDOW, "geometry": POINT, "filter": None}


@asynccontextmanager
async def adapter(state: SimState, transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[UmbraAdapter]:
    """An adapter with a token minted at the simulator (the gateway's OAuth is tested through it)."""
    sim = build_app(state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim), base_url=UMBRA_URL) as minting:
        body = {"client_id": state.config.client_id, "client_secret": state.config.client_secret}
        body |= {"audience": state.config.audience, "grant_type": "client_credentials"}
        token = (await minting.post("/oauth/token", json=body)).json()["access_token"]
    client = httpx.AsyncClient(
        transport=transport or httpx.ASGITransport(app=sim),
        base_url=UMBRA_URL,
        headers={"Authorization": f"Bearer {token}"},
    )
    found = UmbraAdapter("umbra", client, UmbraOptions(poll_interval_s=0.02))
    try:
        yield found
    finally:
        await found.aclose()


async def test_searches_records_and_collections() -> None:
    """Sync answers a collection, async a record whose collection pages by position."""
    async with adapter(fast_state()) as umbra:
        sync = await umbra.search_opportunities("spotlight", SEARCH, SearchMode.SYNC)
        assert not sync.is_async
        OpportunityCollection.model_validate(sync.body)
        started = await umbra.search_opportunities("spotlight", SEARCH, SearchMode.ASYNC)
        assert started.is_async
        OpportunitySearchRecord.model_validate(started.body)
        assert started.body["status"]["status_code"] == "received"
        await asyncio.sleep(0.06)
        record = await umbra.get_search_record(started.body["id"])
        assert record["status"]["status_code"] == "completed"
        assert any(link["rel"] == "opportunities" for link in record["links"])
        first = await umbra.get_opportunity_collection("spotlight", record["id"], limit=2)
        assert len(first.body["features"]) == 2
        assert first.next_token == "2"
        rest = await umbra.get_opportunity_collection("spotlight", record["id"], token=first.next_token)
        ids = [f["id"] for f in first.body["features"] + rest.body["features"]]
        assert ids == [f"{record['id']}-{i}" for i in range(len(ids))]
        with pytest.raises(UpstreamNotFound):
            await umbra.get_opportunity_collection("scan", record["id"])
        with pytest.raises(UpstreamNotFound):
            await umbra.get_search_record("not-a-uuid")


async def test_orders_lists_and_statuses() -> None:
    """create_order tags the task, find_order finds it exactly, list_orders pages newest first."""
    state = fast_state(create_task_per_s=100)
    async with adapter(state) as umbra:
        made = []
        for i in range(3):
            order = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {"taskName": f"t{i}"}}
            made.append((await umbra.create_order("spotlight", order, reference=f"attempt-{i}")).body)
            await asyncio.sleep(0.01)
        for body in made:
            Order.model_validate(body)
        found = await umbra.find_order("attempt-1")
        assert found is not None
        assert found["id"] == made[1]["id"]
        assert await umbra.find_order("attempt-9") is None
        first = await umbra.list_orders(token=None, limit=2)
        second = await umbra.list_orders(token=first.next_token, limit=2)
        assert [o["id"] for o in first.items + second.items] == [o["id"] for o in reversed(made)]
        assert second.next_token is None
        task = state.tasks[made[0]["id"]]
        task.forced = ["RECEIVED", "SUBMITTED", "SOMETHING_NEW", "REJECTED"]
        statuses = await umbra.order_statuses(made[0]["id"], token=None, limit=10)
        OrderStatuses.model_validate({"statuses": statuses.items})
        assert [s["provider:status"] for s in statuses.items] == ["REJECTED", "SOMETHING_NEW", "SUBMITTED", "RECEIVED"]
        assert [s["status_code"] for s in statuses.items] == ["rejected", "received", "received", "received"]
        assert statuses.items[1]["reason_code"] == "unknown_provider_status"


async def test_vendor_failures_become_the_gateways_errors() -> None:
    """A 422 is located in the client's terms; 5xx, garbage and resets keep the transport rules."""

    def failing(status: int, content: bytes) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: httpx.Response(status, content=content))

    async with adapter(fast_state()) as umbra:
        bad = {**SEARCH, "filter": {"op": "=", "args": [{"property": "multilookFactor"}, 3]}}
        with pytest.raises(RequestValidationFailed) as refused:
            await umbra.search_opportunities("spotlight", bad, SearchMode.ASYNC)
        assert refused.value.errors[0]["loc"] == ["body", "filter", "multilookFactor"]
        with pytest.raises(RequestValidationFailed) as refused:
            await umbra.search_opportunities(
                "spotlight", {**SEARCH, "datetime": "2030-01-01T00:00:00Z/.."}, SearchMode.SYNC
            )
        assert refused.value.errors[0]["loc"] == ["body", "datetime"]
    async with adapter(fast_state(), failing(503, b"{}")) as umbra:
        with pytest.raises(ProviderBadStatus):
            await umbra.get_order("9c4d1c52-5d2e-4a7b-9a39-0d7c1a3c8e11")
    async with adapter(fast_state(), failing(200, b"<html>")) as umbra:
        with pytest.raises(ProviderInvalidPayload):
            await umbra.list_orders(token=None, limit=5)

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    async with adapter(fast_state(), httpx.MockTransport(reset)) as umbra:
        order = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}
        with pytest.raises(ProviderUnreachable) as lost:
            await umbra.create_order("spotlight", order, reference="r")
        assert lost.value.maybe_received
