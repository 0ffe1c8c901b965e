"""The simulated Umbra Canopy on its own: tokens, validation, limits, feasibilities and the walk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import WALK, SimConfig, SimState

WINDOW = {"windowStartAt": "2030-01-01T00:00:00Z", "windowEndAt": "2030-01-03T00:00:00Z"}
SPOT = {"imagingMode": "SPOTLIGHT", "geometry": {"type": "Point", "coordinates": [13.4, 52.5]}}
CREDENTIALS = {
    "client_id": "umbra-sim-client",
    "client_secret": "umbra-sim-secret",
    "audience": "https://api.canopy.umbra.space",
    "grant_type": "client_credentials",
}


@asynccontextmanager
async def _client(state: SimState) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    transport = httpx.ASGITransport(app=build_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://umbra.test") as client:
        token = (await client.post("/oauth/token", json=CREDENTIALS)).json()["access_token"]
        yield client, {"Authorization": f"Bearer {token}"}


async def test_token_exchange_is_json_counted_and_a_day_long() -> None:
    """The token endpoint takes Umbra's JSON body, answers expires_in 86400 and counts exchanges."""
    state = SimState(SimConfig(token_exchanges_per_day=2))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(state=state)), base_url="http://u") as c:
        first = await c.post("/oauth/token", json=CREDENTIALS)
        assert first.status_code == 200
        assert first.json()["expires_in"] == 86400
        assert (await c.post("/oauth/token", data=CREDENTIALS)).status_code == 400
        assert (await c.post("/oauth/token", json={**CREDENTIALS, "client_secret": "x"})).status_code == 401
        assert (await c.post("/oauth/token", json=CREDENTIALS)).status_code == 200
        assert (await c.post("/oauth/token", json=CREDENTIALS)).status_code == 429
    assert state.token_exchanges == 2


async def test_tasking_needs_a_live_bearer_token() -> None:
    """Without a token, or with an unknown one, tasking answers 401."""
    async with _client(SimState(SimConfig())) as (client, _):
        assert (await client.post("/tasking/tasks/search", json={"query": {}})).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert (await client.post("/tasking/tasks/search", json={"query": {}}, headers=bad)).status_code == 401


async def test_validation_errors_have_fastapis_shape() -> None:
    """A 422 is FastAPI's {detail: [{loc, msg, type}]}, located in the body."""
    scan = {"imagingMode": "SCAN", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2]]}}
    async with _client(SimState(SimConfig())) as (client, auth):
        response = await client.post("/tasking/feasibilities", json={"constraints": scan, **WINDOW}, headers=auth)
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"][:2] == ["body", "constraints"]
        assert {"msg", "type"} <= set(error)
        unknown = {"query": {"userOrderId": {"equals": "x"}}}
        response = await client.post("/tasking/tasks/search", json=unknown, headers=auth)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "query", "userOrderId", "equals"]


async def test_feasibility_completes_with_opportunities_or_null() -> None:
    """RECEIVED, then COMPLETED with Umbra's Opportunity fields; a short window gives null."""
    state = SimState(SimConfig(feasibility_delay_s=0.05))
    async with _client(state) as (client, auth):
        created = await client.post("/tasking/feasibilities", json={"constraints": SPOT, **WINDOW}, headers=auth)
        assert created.status_code == 201
        assert created.json()["status"] == "RECEIVED"
        await asyncio.sleep(0.06)
        done = (await client.get(f"/tasking/feasibilities/{created.json()['id']}", headers=auth)).json()
        assert done["status"] == "COMPLETED"
        assert done["opportunities"]
        assert {"windowStartAt", "grazingAngleStartDegrees", "slantRangeStartKm", "satelliteId"} <= set(
            done["opportunities"][0]
        )
        short = {"windowStartAt": "2030-01-01T00:00:00Z", "windowEndAt": "2030-01-01T01:00:00Z"}
        created = await client.post("/tasking/feasibilities", json={"constraints": SPOT, **short}, headers=auth)
        await asyncio.sleep(0.06)
        done = (await client.get(f"/tasking/feasibilities/{created.json()['id']}", headers=auth)).json()
        assert done["status"] == "COMPLETED"
        assert done["opportunities"] is None


async def test_creates_past_the_limit_are_429_and_create_nothing() -> None:
    """Create task is limited to 2/s: the third in a second is a 429 and no task."""
    state = SimState(SimConfig())
    body: dict[str, Any] = {"constraints": SPOT, "taskName": "t", **WINDOW}
    async with _client(state) as (client, auth):
        statuses = [(await client.post("/tasking/tasks", json=body, headers=auth)).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert len(state.tasks) == 2


async def test_tasks_walk_the_documented_lifecycle_and_search_pages() -> None:
    """A task walks RECEIVED -> ... -> DELIVERED; search filters by userOrderId and pages with skip."""
    state = SimState(SimConfig(status_step_s=0.01, create_task_per_s=10))
    async with _client(state) as (client, auth):
        for i in range(3):
            body = {"constraints": SPOT, "taskName": f"t{i}", "userOrderId": f"ref-{i}", **WINDOW}
            assert (await client.post("/tasking/tasks", json=body, headers=auth)).status_code == 201
        await asyncio.sleep(0.15)
        search = {"query": {"userOrderId": {"eq": "ref-1"}}}
        (found,) = (await client.post("/tasking/tasks/search", json=search, headers=auth)).json()["features"]
        assert found["properties"]["taskName"] == "t1"
        task = (await client.get(f"/tasking/tasks/{found['id']}", headers=auth)).json()
        assert [h["status"] for h in reversed(task["properties"]["statusHistory"])] == list(WALK)
        page = {"query": {}, "limit": 2, "skip": 2, "sortBy": [{"field": "createdAt", "dir": "desc"}]}
        body = (await client.post("/tasking/tasks/search", json=page, headers=auth)).json()
        assert body["context"] == {"limit": 2, "matched": 3, "returned": 1}
        assert body["features"][0]["properties"]["taskName"] == "t0"


def test_the_umbra_adapter_offers_exactly_the_protocol() -> None:
    """The Umbra adapter's public operations are the protocol's: none missing, none the gateway never calls."""
    import inspect

    from adapters.base import ProviderAdapter
    from adapters.umbra.adapter import UmbraAdapter

    def operations(cls: type) -> set[str]:
        found = {n for n, m in inspect.getmembers(cls) if inspect.iscoroutinefunction(m) and not n.startswith("_")}
        return found - {"aclose"}

    assert operations(UmbraAdapter) == operations(ProviderAdapter)
