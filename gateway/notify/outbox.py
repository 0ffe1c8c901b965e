"""The outbox: events become deliveries in the store, and queue entries, before anything is sent.

Per event and per subscription that wants it, one delivery under a deterministic id: an event
published again (a tracker that restarted before saving its progress) finds its delivery and
makes no second one. Each delivery names the one before it for the same subscription and
subject (its lane), and the worker sends it only once that one is final, so one order's events
reach a receiver in the order they were published.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from gateway.domain.events import Event, EventType, probe_event
from gateway.notify.model import (
    DELIVERIES_OF,
    DELIVERY_KEY,
    LANE_TAIL_KEY,
    QUEUE_STREAM,
    Delivery,
    DeliveryState,
    Subscription,
    delivery_id,
)
from gateway.notify.schedule import expired_before, record_ttl_s
from gateway.notify.subscriptions import Subscriptions
from gateway.settings.models import WebhookSettings
from gateway.store import IndexPosition, Store

# Compare-and-set rounds on one lane's tail before linking to the last tail seen; only writers
# publishing the same subject at once for the same subscription ever retry.
_LANE_ROUNDS = 16
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """One page of a subscription's deliveries, newest first, and where the next page starts."""

    deliveries: list[Delivery]
    next: IndexPosition | None


class Outbox:
    """Stores events as deliveries to every subscription that wants them, and queues them."""

    def __init__(self, store: Store, subscriptions: Subscriptions, settings: WebhookSettings) -> None:
        self.store = store
        self.subscriptions = subscriptions
        self.settings = settings

    async def publish(self, events: list[Event]) -> None:
        """Store and queue each event's deliveries (a repeated event id makes no new one)."""
        for event in events:
            for subscription in await self._subscribers(event):
                await self.enqueue(subscription, event)

    async def send_test(self, subscription: Subscription) -> Delivery:
        """Queue a test event to one subscription; the delivery it made."""
        return await self.enqueue(subscription, probe_event(subscription.client, subscription.id))

    async def _subscribers(self, event: Event) -> list[Subscription]:
        if event.type is EventType.TEST:
            own = await self.subscriptions.load(event.subject)
            candidates = [] if own is None else [own]
        else:
            candidates = await self.subscriptions.of_client(event.client)
        return [s for s in candidates if s.wants(event)]

    async def enqueue(self, subscription: Subscription, event: Event) -> Delivery:
        """The delivery of `event` to `subscription`: made, linked, indexed and queued unless it exists."""
        did = delivery_id(subscription.id, event.id)
        key = DELIVERY_KEY.format(id=did)
        raw = await self.store.get(key)
        if raw is not None:
            existing = Delivery.from_json(raw)
            if not existing.state.final:
                # Its first publisher may have stopped before queueing it: queue it (again).
                # A second queue entry is harmless: the worker sends a delivery once, then skips it.
                await self._index_and_queue(existing)
            return existing
        now = time.time()
        fresh = Delivery(
            id=did,
            subscription_id=subscription.id,
            event=event,
            state=DeliveryState.PENDING,
            created=now,
            next_attempt_at=now,
        )
        ttl = record_ttl_s(fresh, self.settings, now)
        previous = await self._link(LANE_TAIL_KEY.format(subscription=subscription.id, subject=event.subject), did, ttl)
        fresh = replace(fresh, previous=previous)
        if not await self.store.set_if_absent(key, fresh.to_json(), ttl):
            # Another publisher of the same event got there first; its delivery stands.
            stored = await self.store.get(key)
            return fresh if stored is None else Delivery.from_json(stored)
        await self._index_and_queue(fresh)
        return fresh

    async def _link(self, lane: str, did: str, ttl_s: float) -> str | None:
        """Make `did` its lane's tail; the delivery before it (None if none, or expired).

        The tail names its own predecessor too, so a publisher that stopped between linking and
        storing, or two publishing the same event at once, find the same predecessor again.
        """
        tail: bytes | None = None
        previous: str | None = None
        for _ in range(_LANE_ROUNDS):
            tail = await self.store.get(lane)
            if tail is not None:
                tail_id, _, before = tail.decode().partition("\n")
                if tail_id == did:
                    return before or None
                previous = tail_id
                if await self.store.set_if_equals(lane, tail, f"{did}\n{previous}".encode(), ttl_s):
                    return previous
            elif await self.store.set_if_absent(lane, did.encode(), ttl_s):
                return None
        await self.store.set(lane, f"{did}\n{previous or ''}".encode(), ttl_s)
        return previous

    async def _index_and_queue(self, delivery: Delivery) -> None:
        ttl = record_ttl_s(delivery, self.settings, time.time())
        index = DELIVERIES_OF.format(subscription=delivery.subscription_id)
        await self.store.index_add(index, delivery.id, delivery.created, ttl_s=ttl)
        # Entries whose records have expired, which a listing (newest first) would never reach:
        # without this a busy subscription's index holds every delivery it ever had.
        await self.store.index_remove_below(index, expired_before(self.settings, time.time()))
        await self.store.stream_add(QUEUE_STREAM, {"delivery": delivery.id})


async def deliveries_of(
    store: Store, subscription_id: str, *, limit: int, after: IndexPosition | None = None
) -> DeliveryPage:
    """A subscription's deliveries, newest first, up to `limit` (at most MAX_PAGE), after a position.

    Deliveries whose records have expired are dropped from the index on the way.
    """
    index = DELIVERIES_OF.format(subscription=subscription_id)
    limit = max(0, min(limit, MAX_PAGE))
    rows = await store.index_page(index, limit=limit, after=after, descending=True)
    found: list[Delivery] = []
    for member, _ in rows:
        raw = await store.get(DELIVERY_KEY.format(id=member))
        if raw is None:
            await store.index_remove(index, member)
        else:
            found.append(Delivery.from_json(raw))
    last = rows[-1] if rows else None
    return DeliveryPage(found, None if last is None or len(rows) < limit else (last[1], last[0]))
