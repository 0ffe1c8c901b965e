"""The order status tracker on a real Redis against real stapi-fastapi upstreams and the Umbra simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from stapi_pydantic import OrderStatusCode

from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import WALK, SimConfig, SimState
from gateway.domain.attempts import AttemptState, OrderAttempt
from gateway.domain.errors import StoreUnavailable
from gateway.domain.events import Event
from gateway.domain.tracking import GONE_AFTER, TrackingState
from gateway.settings.models import Settings
from gateway.store import open_store
from tests.adapters.umbra.harness import POINT, WINDOW, umbra_settings
from tests.gateway.services.tracking_world import Clock, CollectingSink, CountingTransport, World, tracking_world
from tests.gateways import provider_settings
from tests.upstreams import ProductSpec, backend_of, build_provider

POLL_S = 60.0
UMBRA_ORDER = {"datetime": WINDOW, "geometry": POINT, "filter": None, "order_parameters": {}}


def acme() -> Any:
    """A stapi-fastapi provider with one product."""
    return build_provider([ProductSpec("eo")], name="acme")


def stapi_settings(redis_url: str, prefix: str, pids: list[str], **provider: Any) -> Settings:
    """Providers at http://{pid}.test polled every POLL_S, on the test's Redis prefix."""
    provider.setdefault("status_poll_s", POLL_S)
    return Settings.build(provider_settings(pids, **provider), store=redis_url, store_prefix=prefix, secret="s")


def upstream_id(order_id: str) -> str:
    """The provider's own id of a gateway order id."""
    return order_id.partition(":")[2]


def tracked_gauge(world: World, pid: str) -> float | None:
    """The tracked-orders gauge of a provider."""
    return world.metrics.registry.get_sample_value("stapi_gateway_tracked_orders", {"provider": pid})


@pytest.mark.parametrize("final", ["completed", "rejected", "cancelled", "failed", "expired"])
async def test_each_new_status_is_published_once_in_order_until_a_terminal_one(
    redis_url: str, redis_prefix: str, final: str
) -> None:
    """Received at the first poll, then each status as the provider adds it; after a terminal one, no more polls."""
    app = acme()
    transport = CountingTransport(app)
    sink = CollectingSink()
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": transport}) as world:
        tracker = world.tracker(sink)
        order_id = await world.place("acme:eo")
        assert await tracker.run_due() == 1
        assert sink.codes() == ["received"]
        assert tracked_gauge(world, "acme") == 1
        assert await tracker.run_due() == 0  # not due again before its cadence
        backend = backend_of(app)
        backend.set_order_status(upstream_id(order_id), OrderStatusCode.accepted)
        world.clock.advance(POLL_S)
        assert await tracker.run_due() == 1
        backend.set_order_status(upstream_id(order_id), OrderStatusCode.scheduled)
        backend.set_order_status(upstream_id(order_id), OrderStatusCode(final))
        world.clock.advance(POLL_S)
        assert await tracker.run_due() == 1
        reads = transport.status_reads()
        world.clock.advance(10 * POLL_S)
        assert await tracker.run_due() == 0
        record = await world.tracked.load(order_id)
    assert sink.codes() == ["received", "accepted", "scheduled", final]
    assert {e.subject for e in sink.events} == {order_id}
    assert {e.client for e in sink.events} == {"anonymous"}
    assert sum(len(call) for call in sink.calls) == 4  # each entry published once
    assert transport.status_reads() == reads == 3
    assert record is not None
    assert record.state is TrackingState.TERMINAL
    assert tracked_gauge(world, "acme") == 0


async def test_an_umbra_task_walks_to_delivered_and_is_no_longer_polled(redis_url: str, redis_prefix: str) -> None:
    """Against the simulated Umbra, the events name every status of its walk, in order, ending at DELIVERED."""
    sink, clock, step = CollectingSink(), Clock(), 10.0
    state = SimState(SimConfig(status_step_s=step), clock=clock)
    app = build_app(state=state)
    transport = CountingTransport(app)
    transports = {"umbra": transport, "umbra#token": httpx.ASGITransport(app=app)}
    poll = {"status_poll_s": step}
    settings = umbra_settings(state, store=redis_url, store_prefix=redis_prefix, umbra=poll)
    async with tracking_world(settings, transports, clock) as world:
        tracker = world.tracker(sink)
        order_id = await world.place("umbra:spotlight", UMBRA_ORDER)
        for _ in range(3 * len(WALK)):
            await tracker.run_due()
            if sink.codes()[-1:] == ["completed"]:
                break
            clock.advance(step * 2.5)
        reads = transport.status_reads()
        clock.advance(100 * step)
        polled_after = await tracker.run_due()
    assert [e.data["provider:status"] for e in sink.events] == list(WALK)
    assert sink.codes()[-1] == "completed"
    assert {e.subject for e in sink.events} == {order_id}
    assert polled_after == 0
    assert transport.status_reads() == reads
