"""Following the status of every order the gateway placed, in the background of every replica.

A pass asks each provider's due index (gateway/services/tracked_orders.py) for the orders due
now, longest overdue first, as many as the tracker's own budget for that provider allows: a
share of the provider's `rate_per_s` (or a fixed pace when it sets none) and a few calls in
flight, so requests keep the rest. Orders beyond the budget slip to a later pass, still first in
line. Each order is claimed for its round through the store (no two replicas poll it at once; a
replica that dies leaves it due again after the lease), its status history is read, the entries
not seen before are published as events, oldest first, and only then is the progress saved: a
crash in between publishes the same event ids again, which the sink drops, and never loses one.
Polls cost store calls only for orders that are due, never for every order ever placed.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from functools import partial

import structlog

from adapters.base import DeliberateError, JSONObject, NotFound
from gateway.aio.tasks import cancel_all, stop_task
from gateway.domain.errors import StoreUnavailable
from gateway.domain.events import EventSink, order_status_event
from gateway.domain.orders import namespace_status
from gateway.domain.ratelimit import TokenBucket
from gateway.domain.tracking import TrackedOrder, in_history_order
from gateway.obs.metrics import Metrics
from gateway.services.catalogue import Catalogue
from gateway.services.fanout import Deadline, call_one
from gateway.services.tracked_orders import TrackedOrders
from gateway.settings.models import ProviderSettings
from gateway.upstream.context import request_id
from gateway.upstream.providers import Provider
from gateway.upstream.stamp import new_request_id

log = structlog.get_logger("gateway.tracking")


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """How hard the tracker may press each provider, and how long it follows an order."""

    deadline_s: float
    # Orders are tracked at most this long (the journal's `order_retention_s`).
    max_age_s: float = 90 * 86_400.0
    interval_s: float = 1.0
    # The tracker's part of a provider's `rate_per_s`; the rest is left to clients' requests.
    rate_share: float = 0.25
    # Polls per second per provider and process when the provider declares no `rate_per_s`.
    default_pace_per_s: float = 20.0
    # Polls in flight per provider and process (also at most a quarter of its `max_concurrent`).
    max_in_flight: int = 8
    max_pages: int = 5
    page_size: int = 100
    gauge_every_s: float = 10.0
    # Where the hrefs in published status entries point: the gateway's `public_url` ("" when it has
    # none: then they are paths), as no request says which base a webhook receiver knows.
    links_base: str = ""

    @property
    def lease_s(self) -> float:
        """How long a claim holds an order: a wait for a free slot, one poll's deadline, the store calls."""
        return 2 * self.deadline_s + 5.0

    @property
    def max_wait_s(self) -> float:
        """How long a claimed order may wait for a slot and still be polled within its lease."""
        return self.lease_s - self.deadline_s - 1.0

    def pace(self, provider: ProviderSettings, vendor_rate_per_s: float | None = None) -> float:
        """Polls per second this process may send a provider: a share of its configured `rate_per_s`,
        else of the read rate its vendor documents (the adapter's), else the fixed default."""
        rate = provider.rate_per_s or vendor_rate_per_s
        return rate * self.rate_share if rate else self.default_pace_per_s

    def in_flight(self, provider: ProviderSettings) -> int:
        """Polls this process may have running at a provider at once."""
        return max(1, min(self.max_in_flight, provider.max_concurrent // 4))


class _Lane:
    """One provider's budget in this process: a token bucket for the pace, slots for the polls in
    flight, and how many claimed orders are waiting or running.

    Per process on purpose, unlike the provider's own limits (gateway/upstream/rate_gates.py, shared
    by replicas): the pace is a share of `rate_per_s`, and every poll also takes a slot of that
    shared limit at the transport, so replicas together never exceed it."""

    def __init__(self, provider: ProviderSettings, settings: TrackerSettings, vendor_rate_per_s: float | None) -> None:
        self.provider = provider
        pace = settings.pace(provider, vendor_rate_per_s)
        # A pass may spend what one interval earns, so the pace holds whatever the pass rate.
        self.burst = max(1, math.ceil(pace * settings.interval_s))
        self.bucket = TokenBucket(pace, burst=self.burst)
        self.slots = asyncio.Semaphore(settings.in_flight(provider))
        self.claimed = 0

    @property
    def room(self) -> int:
        """How many more orders a pass may claim: at most one interval's worth waits for a slot."""
        return self.burst - self.claimed


@dataclass(frozen=True, slots=True)
class _Claim:
    """One round of polling this process holds: which order, its due score, the claim's token, when taken."""

    order_id: str
    due: float
    token: bytes
    at: float


def poll_interval(provider: Provider) -> float:
    """How often a provider's open orders are polled: its `status_poll_s`, else its adapter's default."""
    return provider.settings.status_poll_s or provider.adapter.status_poll_s


class OrderTracker:
    """Polls due tracked orders at their providers and publishes each new status entry once."""

    def __init__(
        self,
        orders: TrackedOrders,
        catalogue: Catalogue,
        events: EventSink,
        metrics: Metrics,
        settings: TrackerSettings,
    ) -> None:
        self.orders = orders
        # Swapped by a reload, like the search runner's and the reconciler's.
        self.catalogue = catalogue
        self.events = events
        self.metrics = metrics
        self.settings = settings
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run passes in the background until `stop`."""
        self._loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the passes and cancel polls in flight (their orders fall due again after the lease)."""
        await stop_task(self._loop_task)
        await cancel_all(self._tasks)

    async def run_due(self) -> int:
        """One pass, waiting for the polls it started (tests, the bench); the number of polls."""
        started = await self._pass()
        await asyncio.gather(*started)
        await self.refresh_gauge()
        return len(started)

    async def refresh_gauge(self) -> None:
        """Set the tracked-orders gauge of every configured provider (one store call each)."""
        for provider in self.catalogue.providers:
            self.metrics.tracked_orders.labels(provider.id).set(await self.orders.count(provider.id))

    async def _loop(self) -> None:
        counted = float("-inf")
        while True:
            try:
                await self._pass()
                if time.monotonic() - counted >= self.settings.gauge_every_s:
                    await self.refresh_gauge()
                    counted = time.monotonic()
            except StoreUnavailable as exc:
                self.metrics.store_errors.labels("order_tracking").inc()
                log.warning("order_tracking_store_unavailable", detail=exc.detail)
            except Exception:
                log.exception("order_tracking_crashed")
            await asyncio.sleep(self._interval())

    def _interval(self) -> float:
        # Twice per the shortest cadence, so an order is never a whole cadence late.
        cadences = [poll_interval(p) for p in self.catalogue.providers]
        return max(0.01, min([self.settings.interval_s, *(c / 2 for c in cadences)]))

    # --- one pass --------------------------------------------------------------------

    def _lane(self, provider: Provider) -> _Lane:
        lane = self._lanes.get(provider.id)
        if lane is None or lane.provider is not provider.settings:
            # A reload may change the provider's limits; polls already running finish on the old lane.
            lane = self._lanes[provider.id] = _Lane(provider.settings, self.settings, provider.adapter.read_rate_per_s)
        return lane

    async def _pass(self) -> list[asyncio.Task[None]]:
        started: list[asyncio.Task[None]] = []
        for provider in self.catalogue.providers:
            lane = self._lane(provider)
            if lane.room <= 0 or not provider.breaker.healthy:
                continue  # enough waiting, or its circuit is open: its orders wait, still first in line
            for order_id, due in await self.orders.due(provider.id, lane.room):
                if lane.bucket.take() > 0:
                    break  # this pass's share of the budget is spent
                token = await self.orders.claim(provider.id, order_id, self.settings.lease_s)
                if token is None:
                    continue  # another replica is polling it
                started.append(self._spawn(provider, lane, _Claim(order_id, due, token, time.monotonic())))
        return started

    def _spawn(self, provider: Provider, lane: _Lane, claim: _Claim) -> asyncio.Task[None]:
        lane.claimed += 1
        task = asyncio.create_task(self._guarded(provider, lane, claim))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, provider: Provider, lane: _Lane, claim: _Claim) -> None:
        order_id = claim.order_id
        request_id.set(new_request_id("track"))  # this task's own: its upstream calls' X-Request-ID
        try:
            async with lane.slots:
                if time.monotonic() - claim.at > self.settings.max_wait_s:
                    # Too late to finish within the lease: give the round back rather than risk
                    # a second replica polling the order at the same time.
                    await self.orders.release(provider.id, order_id, claim.token, due=claim.due)
                    return
                await self.poll(provider, order_id, claim.token)
        except StoreUnavailable as exc:
            # Nothing saved: the claim lapses and the order is polled again, its events republished.
            self.metrics.store_errors.labels("order_tracking").inc()
            log.warning("order_tracking_store_unavailable", order=order_id, detail=exc.detail)
        except Exception:
            log.exception("order_tracking_crashed", order=order_id)
        finally:
            lane.claimed -= 1

    async def poll(self, provider: Provider, order_id: str, claim: bytes | None = None) -> TrackedOrder | None:
        """Poll one claimed order: publish its new status entries, then save; the record as saved.

        With the `claim`'s token, the claim is renewed once the provider answered, and nothing is
        published or saved if it lapsed meanwhile (another replica may be polling it: its events
        must not be published twice at once, nor its save overwritten by an older one)."""
        record = await self.orders.load(order_id)
        if record is None or not record.state.open:
            await self.orders.forget(provider.id, order_id)
            return None
        every, max_age = poll_interval(provider), self.settings.max_age_s
        entries: list[JSONObject] | None
        try:
            entries = await self._history(provider, record.upstream_id)
        except DeliberateError as exc:
            gone = isinstance(exc, NotFound)
            record = record.failed(self.orders.clock(), every, max_age, not_found=gone)
            outcome = "not_found" if gone else "failed"
            log.info("order_status_poll_failed", order=order_id, code=exc.code, errors=record.errors)
            entries = None
        if claim is not None and (claim := await self.orders.renew(order_id, claim, self.settings.lease_s)) is None:
            log.warning("order_tracking_claim_lapsed", order=order_id)
            return None
        if entries is not None:
            links = provider.rewriter(self.settings.links_base)
            shown = [namespace_status(e, links) for e in in_history_order(entries)]
            events = [order_status_event(record.client, order_id, e) for e in shown]
            fresh = record.fresh(events)
            if fresh:
                await self.events.publish(fresh)
            record = record.observed(events, self.orders.clock(), every, max_age)
            outcome = "changed" if fresh else "unchanged"
        await self.orders.save(record)
        if claim is not None:
            await self.orders.release(provider.id, order_id, claim)
        self.metrics.status_polls.labels(provider.id, outcome).inc()
        if not record.state.open:
            log.info("order_tracking_ended", order=order_id, state=record.state.value, status=record.last_status)
        return record

    async def _history(self, provider: Provider, upstream_id: str) -> list[JSONObject]:
        """The order's status entries as the provider lists them, all pages within one deadline."""
        deadline = Deadline(self.settings.deadline_s)
        read = provider.adapter.order_statuses
        entries: list[JSONObject] = []
        token: str | None = None
        for _ in range(self.settings.max_pages):
            page = await call_one(
                provider.id, partial(read, upstream_id, token=token, limit=self.settings.page_size), deadline
            )
            entries.extend(page.items)
            if page.next_token is None or page.next_token == token:
                break
            token = page.next_token
        return entries
