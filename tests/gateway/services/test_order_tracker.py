"""The order status tracker on a real Redis against real stapi-fastapi upstreams and the Umbra simulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest
from stapi_pydantic import OrderStatusCode

from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import WALK, SimConfig, SimState
from gateway.domain.attempts import AttemptState, OrderAttempt
from gateway.domain.errors import OrderOutcomeUnknown, StoreUnavailable
from gateway.domain.events import Event
from gateway.domain.tracking import GONE_AFTER, TrackingState
from gateway.runtime import reconcile_settings
from gateway.services.reconcile import Reconciler
from gateway.settings.models import Settings
from tests.adapters.umbra.harness import POINT, WINDOW, fast_state, umbra_gateway, umbra_settings
from tests.gateway.services.tracking_world import (
    STAPI_ORDER,
    Clock,
    CollectingSink,
    CountingTransport,
    World,
    tracking_world,
)
from tests.gateways import gateway_client, provider_settings
from tests.order_faults import LosesOrderAnswers
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

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


async def test_two_trackers_on_one_redis_never_poll_one_order_at_once(redis_url: str, redis_prefix: str) -> None:
    """Two replicas' passes at the same moment: every due order is polled exactly once, never twice in flight."""
    app = acme()
    transport = CountingTransport(app, latency_s=0.02)
    sink = CollectingSink()
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": transport}) as world:
        order_ids = [await world.place("acme:eo") for _ in range(30)]
        # Budgets big enough that either replica alone could take every order.
        one, two = (world.tracker(sink, default_pace_per_s=1000.0, max_in_flight=50) for _ in range(2))
        polled = await asyncio.gather(one.run_due(), two.run_due())
        again = await asyncio.gather(one.run_due(), two.run_due())
    assert sum(polled) == 30
    assert list(again) == [0, 0]
    paths = [f"/orders/{upstream_id(o)}/statuses" for o in order_ids]
    assert [transport.calls[p] for p in paths] == [1] * 30
    assert max(transport.most[p] for p in paths) == 1
    assert sorted(e.subject for e in sink.events) == sorted(order_ids)
    assert sum(len(call) for call in sink.calls) == 30


async def test_a_tracker_stopped_between_publishing_and_saving_is_resumed_without_loss(
    redis_url: str, redis_prefix: str
) -> None:
    """Killed after publishing but before saving, the next replica publishes the same ids again; none is lost."""
    app = acme()
    sink = CollectingSink()
    transports = {"acme": CountingTransport(app)}
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), transports) as world:
        order_id = await world.place("acme:eo")
        first = world.tracker(sink)
        await first.run_due()
        backend_of(app).set_order_status(upstream_id(order_id), OrderStatusCode.accepted)
        world.clock.advance(POLL_S)
        sink.stall = True
        stalled = asyncio.create_task(first.run_due())
        await sink.stalled.wait()
        await first.stop()
        stalled.cancel()
        sink.stall = False
        fresh = world.tracker(sink)
        assert await fresh.run_due() == 0  # the dead replica's claim holds until its lease ends
        world.clock.advance(fresh.settings.lease_s)
        assert await fresh.run_due() == 1
        backend_of(app).set_order_status(upstream_id(order_id), OrderStatusCode.completed)
        world.clock.advance(POLL_S)
        await fresh.run_due()
    accepted = sink.calls[1]
    assert sink.calls[2] == accepted  # the same event ids, republished
    assert sink.codes() == ["received", "accepted", "completed"]
    assert sink.calls[3] == [sink.events[2].id]


async def test_an_order_made_due_early_while_claimed_is_not_polled_twice_at_once(
    redis_url: str, redis_prefix: str
) -> None:
    """A cancel makes an order due now (`poll_soon`) while one replica is polling it: another replica
    can't claim it until that poll ends (before, the moved due time made a second claim possible)."""
    app = acme()
    sink, other_sink = CollectingSink(), CollectingSink()
    async with tracking_world(
        stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": CountingTransport(app)}
    ) as world:
        order_id = await world.place("acme:eo")
        first = world.tracker(sink)
        sink.stall = True
        stalled = asyncio.create_task(first.run_due())
        await sink.stalled.wait()
        world.clock.advance(1.0)
        await world.tracked.poll_soon(order_id)
        other = world.tracker(other_sink)
        while_claimed = await other.run_due()
        await first.stop()
        stalled.cancel()
        world.clock.advance(first.settings.lease_s)
        after_the_lease = await other.run_due()
    assert while_claimed == 0
    assert after_the_lease == 1
    assert other_sink.codes() == ["received"]


class HeldStatuses(httpx.AsyncBaseTransport):
    """A real provider whose first status read waits until `release` is set (one slow poll)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/statuses") and not self.waiting.is_set():
            self.waiting.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)


async def test_a_poll_whose_claim_lapsed_publishes_and_saves_nothing(redis_url: str, redis_prefix: str) -> None:
    """A poll outlives its lease; another replica takes the order over and polls it. When the slow
    poll's answer comes, it finds its claim gone: no second publish, no stale save over the other's."""
    app = acme()
    held = HeldStatuses(app)
    slow_sink, other_sink = CollectingSink(), CollectingSink()
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": held}) as world:
        order_id = await world.place("acme:eo")
        slow = world.tracker(slow_sink)
        polling = asyncio.create_task(slow.run_due())
        await held.waiting.wait()
        world.clock.advance(slow.settings.lease_s + 1)
        other = world.tracker(other_sink)
        taken_over = await other.run_due()
        saved = await world.tracked.load(order_id)
        held.release.set()
        await polling
        after = await world.tracked.load(order_id)
    assert taken_over == 1
    assert other_sink.codes() == ["received"]
    assert slow_sink.calls == []
    assert saved is not None
    assert after == saved


async def test_a_fresh_tracker_resumes_where_a_stopped_one_left_off(redis_url: str, redis_prefix: str) -> None:
    """Progress is in the store: a new tracker (a restarted replica) publishes only what is new."""
    app = acme()
    sinks = CollectingSink(), CollectingSink()
    transports = {"acme": CountingTransport(app)}
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), transports) as world:
        order_id = await world.place("acme:eo")
        old = world.tracker(sinks[0])
        await old.run_due()
        await old.stop()
        backend_of(app).set_order_status(upstream_id(order_id), OrderStatusCode.accepted)
        world.clock.advance(POLL_S)
        await world.tracker(sinks[1]).run_due()
    assert sinks[0].codes() == ["received"]
    assert sinks[1].codes() == ["accepted"]
    assert not {e.id for e in sinks[0].events} & {e.id for e in sinks[1].events}


async def test_orders_not_due_cost_nothing(redis_url: str, redis_prefix: str) -> None:
    """A pass reads only the due orders' records and statuses: the same store calls with 40 idle orders as with none."""

    async def pass_cost(prefix: str, idle: int) -> tuple[int, list[str], int]:
        app = acme()
        transport = CountingTransport(app)
        async with tracking_world(stapi_settings(redis_url, prefix, ["acme"]), {"acme": transport}) as world:
            tracker = world.tracker(CollectingSink(), default_pace_per_s=1000.0)
            for _ in range(idle):
                await world.place("acme:eo")
            await tracker.run_due()
            world.clock.advance(POLL_S / 2)
            due = [await world.place("acme:eo") for _ in range(3)]
            world.store.ops.clear()
            world.store.reads.clear()
            reads_before = transport.status_reads()
            assert await tracker.run_due() == 3
            records = [r for r in world.store.reads if r.startswith("tracked-order:")]
            assert sorted(records) == sorted(f"tracked-order:{o}" for o in due)
            return sum(world.store.ops.values()), records, transport.status_reads() - reads_before

    idle_ops, _, idle_reads = await pass_cost(redis_prefix + "idle:", 40)
    bare_ops, _, bare_reads = await pass_cost(redis_prefix + "bare:", 0)
    assert idle_ops == bare_ops
    assert idle_reads == bare_reads == 3


async def test_more_due_than_the_budget_slip_oldest_first(redis_url: str, redis_prefix: str) -> None:
    """With a provider limit of 4 calls/s the tracker takes a quarter: one poll a pass, the longest overdue one."""
    app = acme()
    sink = CollectingSink()
    settings = stapi_settings(redis_url, redis_prefix, ["acme"], rate_per_s=4.0)
    async with tracking_world(settings, {"acme": CountingTransport(app)}) as world:
        tracker = world.tracker(sink)
        order_ids = []
        for _ in range(3):
            order_ids.append(await world.place("acme:eo"))
            world.clock.advance(1.0)
        assert await tracker.run_due() == 1
        waiting = await world.tracked.due("acme", 10)
    assert [e.subject for e in sink.events] == order_ids[:1]
    assert [order_id for order_id, _ in waiting] == order_ids[1:]


@pytest.mark.parametrize(("max_concurrent", "cap"), [(4, 1), (12, 3), (400, 8)])
async def test_polls_in_flight_per_provider_are_capped(
    redis_url: str, redis_prefix: str, max_concurrent: int, cap: int
) -> None:
    """The tracker keeps at most a quarter of a provider's max_concurrent (and at most 8) polls in flight."""
    app = acme()
    transport = CountingTransport(app, latency_s=0.1)
    settings = stapi_settings(redis_url, redis_prefix, ["acme"], max_concurrent=max_concurrent)
    async with tracking_world(settings, {"acme": transport}) as world:
        for _ in range(12):
            await world.place("acme:eo")
        transport.peak = 0
        assert await world.tracker(CollectingSink(), default_pace_per_s=1000.0).run_due() == 12
    assert transport.peak == cap


async def test_an_order_the_provider_no_longer_has_stops_being_tracked_after_a_few_tries(
    redis_url: str, redis_prefix: str
) -> None:
    """404 after 404, backing off each time: after GONE_AFTER of them the order leaves the due index."""
    app = acme()
    async with tracking_world(
        stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": CountingTransport(app)}
    ) as world:
        tracker = world.tracker(CollectingSink())
        order_id = await world.place("acme:eo")
        backend = backend_of(app)
        del backend.orders[upstream_id(order_id)], backend.order_statuses[upstream_id(order_id)]
        delays = []
        for _ in range(GONE_AFTER):
            before = world.clock()
            assert await tracker.run_due() == 1
            record = await world.tracked.load(order_id)
            assert record is not None
            delays.append(record.due - before)
            world.clock.advance(record.due - before)
        left = await world.tracked.count("acme")
    assert record is not None
    assert record.state is TrackingState.GONE
    assert delays[0] < delays[1]  # backing off
    assert left == 0
    polls = world.metrics.registry.get_sample_value(
        "stapi_gateway_status_polls_total", {"provider": "acme", "outcome": "not_found"}
    )
    assert polls == GONE_AFTER


async def test_an_order_found_by_reconciliation_is_tracked(redis_url: str, redis_prefix: str) -> None:
    """A create whose answer was lost becomes placed by reconciliation, and is registered on the way."""
    app = acme()
    lossy = LosesOrderAnswers(app, rate=1.0, modes=["502"])
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": lossy}) as world:
        with pytest.raises(OrderOutcomeUnknown):
            await world.place("acme:eo")
        (attempt,) = await world.journal.unresolved(10)
        reconciler = Reconciler(
            world.journal, world.catalogue, world.metrics, reconcile_settings(world.settings.gateway)
        )
        await reconciler.run_once()
        placed = await world.journal.load(attempt.id)
        sink = CollectingSink()
        await world.tracker(sink).run_due()
    assert placed is not None
    assert placed.state is AttemptState.PLACED
    assert [e.subject for e in sink.events] == [placed.order_id]
    assert sink.codes() == ["received"]


async def test_a_placed_attempt_left_in_the_unresolved_index_is_registered_when_found(
    redis_url: str, redis_prefix: str
) -> None:
    """Killed between an attempt's move to placed and its index cleanup: the next look at the index registers it."""
    async with tracking_world(stapi_settings(redis_url, redis_prefix, ["acme"]), {}) as world:
        sending = OrderAttempt(
            id="a" * 32, client="anonymous", idempotency_key=None, product_id="acme:eo", member="acme:eo",
            sent={}, fingerprint="f", state=AttemptState.SENDING, created=world.clock(),
        )  # fmt: skip
        await world.journal.create(sending)
        placed = replace(sending, state=AttemptState.PLACED, order_id="acme:order-9")
        # The compare-and-set's write alone, as a process killed right after it leaves things.
        await world.store.set(f"order-attempt:{sending.id}", placed.to_json())
        assert await world.tracked.load("acme:order-9") is None
        assert await world.journal.unresolved(10) == []
        record = await world.tracked.load("acme:order-9")
        due = await world.tracked.due("acme", 10)
    assert record is not None
    assert (record.provider, record.upstream_id, record.client) == ("acme", "order-9", "anonymous")
    assert [order_id for order_id, _ in due] == ["acme:order-9"]


async def test_registering_again_keeps_what_was_seen(redis_url: str, redis_prefix: str) -> None:
    """A repeated registration (a retried journal write) neither resets progress nor duplicates events."""
    app = acme()
    sink = CollectingSink()
    async with tracking_world(
        stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": CountingTransport(app)}
    ) as world:
        order_id = await world.place("acme:eo")
        tracker = world.tracker(sink)
        await tracker.run_due()
        await world.tracked.register(world.attempts[order_id])
        world.clock.advance(POLL_S)
        await tracker.run_due()
        record = await world.tracked.load(order_id)
    assert sink.codes() == ["received"]
    assert sum(len(call) for call in sink.calls) == 1
    assert record is not None
    assert record.polls == 2


async def test_a_store_failure_while_publishing_saves_nothing(redis_url: str, redis_prefix: str) -> None:
    """The sink refuses (the outbox's store is down): progress is not saved, and the events come again later."""
    app = acme()

    class Refusing(CollectingSink):
        async def publish(self, events: list[Event]) -> None:
            await super().publish(events)
            if len(self.calls) == 1:
                raise StoreUnavailable("outbox store down")

    sink = Refusing()
    async with tracking_world(
        stapi_settings(redis_url, redis_prefix, ["acme"]), {"acme": CountingTransport(app)}
    ) as world:
        order_id = await world.place("acme:eo")
        tracker = world.tracker(sink)
        await tracker.run_due()
        record = await world.tracked.load(order_id)
        world.clock.advance(tracker.settings.lease_s)
        await tracker.run_due()
        after = await world.tracked.load(order_id)
    assert record is not None
    assert record.seen == ()
    assert sink.calls[0] == sink.calls[1]
    assert after is not None
    assert after.seen == tuple(sink.calls[0])


async def test_through_the_gateway_an_umbra_order_gets_every_status_while_nobody_polls(
    redis_url: str, redis_prefix: str
) -> None:
    """The gateway's own tracker, running in its lifespan: one event per status of the walk, then silence."""
    sink = CollectingSink()
    state = fast_state()
    settings = umbra_settings(state, store=redis_url, store_prefix=redis_prefix, umbra={"status_poll_s": 0.05})
    async with umbra_gateway(state, settings=settings, events=sink) as client:
        created = await client.post("/products/umbra:spotlight/orders", json=UMBRA_ORDER)
        assert created.status_code == 201, created.text
        await eventually(lambda: sink.codes()[-1:] == ["completed"], what="the completed status published")
    assert [e.data["provider:status"] for e in sink.events] == list(WALK)
    assert {e.subject for e in sink.events} == {created.json()["id"]}
    assert len({e.id for e in sink.events}) == len(WALK)


async def test_orders_placed_before_a_restart_keep_being_tracked(redis_url: str, redis_prefix: str) -> None:
    """A gateway stopped right after the order was placed; the restarted one publishes its statuses."""
    app = acme()
    settings = stapi_settings(redis_url, redis_prefix, ["acme"], status_poll_s=0.05)
    # A short deadline, so a claim the stopped gateway held mid-poll lapses soon (lease 2 x 2 + 5 s).
    settings = settings.model_copy(update={"gateway": settings.gateway.model_copy(update={"deadline_s": 2.0})})
    before, after = CollectingSink(), CollectingSink()
    async with gateway_client({"acme": app}, settings=settings, events=before) as client:
        created = await client.post("/products/acme:eo/orders", json=STAPI_ORDER)
        assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    backend_of(app).set_order_status(upstream_id(order_id), OrderStatusCode.completed)
    async with gateway_client({"acme": app}, settings=settings, events=after):
        for _ in range(600):
            if after.codes()[-1:] == ["completed"]:
                break
            await asyncio.sleep(0.025)
    published = before.events + [e for e in after.events if e.id not in {b.id for b in before.events}]
    assert [str(e.data["status_code"]) for e in published] == ["received", "completed"]
    assert after.codes()[-1] == "completed"
