"""The status tracker's parts on a real Redis in front of real upstreams, driven pass by pass.

Built like gateway/runtime.py builds them, but with a clock the test moves and no background
loop: each `run_due()` is one pass. The sink and the transports here are the test's own: a sink
that keeps event ids once (as the webhook outbox does) and transports that count provider calls.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, cast

import httpx
from starlette.types import ASGIApp

from gateway.domain.attempts import OrderAttempt
from gateway.domain.events import Event
from gateway.obs.metrics import Metrics
from gateway.runtime import reconcile_settings, tracker_settings
from gateway.services.catalogue import Catalogue
from gateway.services.fanout import Deadline
from gateway.services.journal import OrderJournal, Retention
from gateway.services.order_tracker import OrderTracker
from gateway.services.ordering import OrderDesk
from gateway.services.reconcile import Reconciler
from gateway.services.token_cache import StoreTokens
from gateway.services.tracked_orders import TrackedOrders
from gateway.settings.models import Settings
from gateway.store import Store, open_store
from gateway.upstream.providers import build_providers

STAPI_ORDER: dict[str, Any] = {
    "datetime": "2030-01-01T00:00:00Z/2030-01-03T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
    "filter": None,
    "order_parameters": {"delivery_format": "cog"},
}


class Clock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on."""
        self.now += seconds


class CollectingSink:
    """An EventSink that keeps each event id once, in arrival order, and every publish call."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.calls: list[list[str]] = []
        self._ids: set[str] = set()
        # When set, a publish stores its events and then never returns (a replica killed mid-way).
        self.stall = False
        self.stalled = asyncio.Event()

    async def publish(self, events: list[Event]) -> None:
        """Keep the events not seen before."""
        self.calls.append([e.id for e in events])
        for event in events:
            if event.id not in self._ids:
                self._ids.add(event.id)
                self.events.append(event)
        if self.stall:
            self.stalled.set()
            await asyncio.Event().wait()

    def codes(self, order_id: str | None = None) -> list[str]:
        """The status codes published, in order (of one order, if given)."""
        return [str(e.data["status_code"]) for e in self.events if order_id in (None, e.subject)]


class CountingTransport(httpx.AsyncBaseTransport):
    """Forwards to an ASGI app; counts calls per path, and the most in flight at once per path."""

    def __init__(self, app: ASGIApp, *, latency_s: float = 0.0) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.latency_s = latency_s
        self.calls: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        # Calls in flight at once, whatever their path.
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward, counting (a latency makes overlapping calls overlap for sure)."""
        path = request.url.path
        self.calls[path] += 1
        self.running[path] += 1
        self.most[path] = max(self.most[path], self.running[path])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return await self.inner.handle_async_request(request)
        finally:
            self.running[path] -= 1
            self.in_flight -= 1

    def status_reads(self) -> int:
        """Calls that read an order's status history (STAPI `/orders/{id}/statuses`, Umbra's task GET)."""
        return sum(n for path, n in self.calls.items() if path.endswith("/statuses") or "/tasking/tasks/" in path)


class CountingStore:
    """A real store, every call counted by operation (and the keys `get` read)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.ops: Counter[str] = Counter()
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.ops[name] += 1
            if name == "get":
                self.reads.append(str(args[0]))
            return await target(*args, **kwargs)

        return counted


@dataclass
class World:
    """One gateway's order desk and tracked orders over a shared store, and trackers on demand."""

    settings: Settings
    store: CountingStore
    metrics: Metrics
    catalogue: Catalogue
    tracked: TrackedOrders
    journal: OrderJournal
    desk: OrderDesk
    clock: Clock
    trackers: list[OrderTracker] = field(default_factory=list)
    # The placed attempts by order id.
    attempts: dict[str, OrderAttempt] = field(default_factory=dict)

    def tracker(self, sink: CollectingSink, **overrides: Any) -> OrderTracker:
        """A tracker like a replica's (not started), with its own lanes and claims."""
        tuned = replace(tracker_settings(self.settings.gateway), **overrides)
        tracker = OrderTracker(self.tracked, self.catalogue, sink, self.metrics, tuned)
        self.trackers.append(tracker)
        return tracker

    async def place(self, product_id: str, order: dict[str, Any] | None = None) -> str:
        """Place an order through the order desk: the gateway's order id."""
        gw = self.settings.gateway
        attempt = await self.desk.place(
            client="anonymous",
            target=self.catalogue.target(product_id),
            order=dict(order or STAPI_ORDER),
            idempotency_key=None,
            deadline=Deadline(gw.deadline_s),
        )
        assert attempt.order_id is not None
        self.attempts[attempt.order_id] = attempt
        return attempt.order_id


@asynccontextmanager
async def tracking_world(
    settings: Settings, transports: Mapping[str, httpx.AsyncBaseTransport], clock: Clock | None = None
) -> AsyncIterator[World]:
    """The world for `settings` (its store must be Redis), with providers on `transports`."""
    gw = settings.gateway
    clock = clock or Clock()
    store = CountingStore(open_store(gw.store, prefix=gw.store_prefix))
    as_store = cast("Store", store)
    metrics = Metrics()
    providers = build_providers(settings, metrics, transports, StoreTokens(as_store))
    catalogue = Catalogue(settings, providers)
    tracked = TrackedOrders(as_store, gw.order_retention_s, clock=clock)
    journal = OrderJournal(as_store, Retention(gw.idempotency_ttl_s, gw.order_retention_s), tracked)
    reconciler = Reconciler(journal, catalogue, metrics, reconcile_settings(gw))
    desk = OrderDesk(journal, catalogue, reconciler, metrics, gw.deadline_s)
    world = World(settings, store, metrics, catalogue, tracked, journal, desk, clock)
    try:
        yield world
    finally:
        for tracker in world.trackers:
            await tracker.stop()
        await providers.aclose()
        await store.inner.aclose()
