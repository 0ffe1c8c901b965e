"""The delivery worker against in-process receivers: signed, retried with the same id, in order, durable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import cast

import httpx
import pytest
import structlog
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.domain.errors import StoreUnavailable
from gateway.domain.events import Event, order_status_event
from gateway.notify.model import QUEUE_GROUP, QUEUE_STREAM, DeliveryState, Subscription
from gateway.notify.notifier import Notifier
from gateway.notify.outbox import Outbox, deliveries_of
from gateway.notify.schedule import WorkerTiming
from gateway.notify.subscriptions import Subscriptions, new_secret
from gateway.obs.metrics import Metrics
from gateway.settings.models import WebhookSettings
from gateway.store import Store, open_store
from tests.faults import FailsOnce
from tests.gateway.notify.receivers import Receiver
from tests.waiting import eventually

FAST = WorkerTiming(claim_every_s=0.05, min_idle_s=0.15, block_s=0.1)
SETTINGS = WebhookSettings(retry_initial_s=0.02, retry_max_s=0.1, retry_for_s=120, allow_private=True, timeout_s=5)


def status_event(order: str, n: int) -> Event:
    """The n-th status of one of alice's orders."""
    status = {"status_code": "accepted", "timestamp": f"2025-01-01T00:00:{n:02d}Z", "provider:status": f"s{n}"}
    return order_status_event("alice", order, status)


@asynccontextmanager
async def running(
    store: Store,
    receiver: Receiver,
    settings: WebhookSettings = SETTINGS,
    metrics: Metrics | None = None,
    timing: WorkerTiming = FAST,
) -> AsyncIterator[Notifier]:
    """A started notifier whose HTTP client reaches `receiver` in-process."""
    transport = httpx.ASGITransport(app=receiver)
    notifier = Notifier(store, settings, metrics or Metrics(), transport=transport, timing=timing)
    notifier.start()
    try:
        yield notifier
    finally:
        await notifier.aclose()


async def _subscribe(store: Store, settings: WebhookSettings = SETTINGS) -> Subscription:
    return await Subscriptions(store, settings).create("alice", "http://127.0.0.1:9/hook?token=t", ["order.status"])


async def test_deliveries_are_signed_and_verify(store: Store) -> None:
    """The receiver gets the event body with Standard Webhooks headers that verify with the secret."""
    receiver = Receiver()
    sub = await _subscribe(store)
    event = status_event("o1", 0)
    metrics = Metrics()
    async with running(store, receiver, metrics=metrics) as notifier:
        await notifier.outbox.publish([event])
        await eventually(lambda: len(receiver.delivered()) == 1)
    got = receiver.got[0]
    assert got.body == event.body()
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == event.id
    assert Webhook(sub.secret).verify(got.body, got.headers)["data"]["order_id"] == "o1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)
    assert b'stapi_gateway_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics.exposition()


@pytest.mark.parametrize("failures", [1, 3])
async def test_a_failing_receiver_gets_everything_in_order_with_stable_ids(store: Store, failures: int) -> None:
    """Each event fails `failures` times, then arrives with the same id; each order's events keep their order."""
    receiver = Receiver(statuses=lambda n: 503 if n < failures else 200)
    sub = await _subscribe(store)
    events = [status_event(order, n) for n in range(4) for order in ("o1", "o2")]
    async with running(store, receiver) as notifier:
        await notifier.outbox.publish(events)
        await eventually(lambda: len(receiver.delivered()) == len(events))
    assert all(receiver.tries[e.id] == failures + 1 for e in events)
    assert {r.event_id for r in receiver.got} == {e.id for e in events}
    by_subject = receiver.first_deliveries_by_subject()
    assert by_subject == {o: [e.id for e in events if e.subject == o] for o in ("o1", "o2")}
    listed = (await deliveries_of(store, sub.id, limit=100)).deliveries
    assert {d.state for d in listed} == {DeliveryState.DELIVERED}
    assert all(d.attempt_count == failures + 1 and d.attempts[0].status == 503 for d in listed)


async def test_a_delivery_past_its_window_is_failed_and_listed_with_attempts(store: Store) -> None:
    """A receiver that always fails: after retry_for_s the delivery is FAILED, its attempts say why, never the URL."""
    settings = SETTINGS.model_copy(update={"retry_for_s": 0.4})
    receiver = Receiver(statuses=lambda _: 500)
    sub = await _subscribe(store, settings)
    metrics = Metrics()
    async with running(store, receiver, settings, metrics) as notifier:
        await notifier.outbox.publish([status_event("o1", 0)])

        async def failed() -> bool:
            listed = (await deliveries_of(store, sub.id, limit=10)).deliveries
            return listed[0].state is DeliveryState.FAILED

        await eventually(failed)
    (delivery,) = (await deliveries_of(store, sub.id, limit=10)).deliveries
    assert delivery.attempt_count >= 2
    assert delivery.attempts[-1].status == 500
    assert delivery.attempts[-1].error == "HTTP 500: receiver says no"
    public = delivery.public()
    assert public["state"] == "failed"
    assert public["next_attempt_at"] is None
    assert "token" not in str(public)
    assert b'stapi_gateway_webhook_deliveries_total{outcome="failed"} 1.0' in metrics.exposition()


async def test_a_deleted_subscription_gets_nothing_more(store: Store) -> None:
    """A queue entry for a subscription deleted meanwhile is acknowledged without sending anything."""
    receiver = Receiver()
    sub = await _subscribe(store)
    notifier = Notifier(store, SETTINGS, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=FAST)
    try:
        await notifier.outbox.publish([status_event("o1", 0)])
        await Subscriptions(store, SETTINGS).delete("alice", sub.id)
        (entry,) = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "w", count=10)
        assert await notifier.worker.handle(entry) is True
        _, left = await store.stream_claim(QUEUE_STREAM, QUEUE_GROUP, "probe", min_idle_s=0, count=10)
    finally:
        await notifier.aclose()
    assert receiver.got == []
    assert left == []


async def test_an_entry_waiting_for_its_lane_stays_pending(store: Store) -> None:
    """The second status of an order is not sent while the first is undelivered: its entry is left pending."""
    receiver = Receiver()
    await _subscribe(store)
    notifier = Notifier(store, SETTINGS, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=FAST)
    try:
        await notifier.outbox.publish([status_event("o1", 0), status_event("o1", 1)])
        first, second = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "w", count=10)
        assert await notifier.worker.handle(second) is False
        assert receiver.got == []
        assert await notifier.worker.handle(first) is True
        assert await notifier.worker.handle(second) is True
    finally:
        await notifier.aclose()
    assert [r.event_id for r in receiver.got] == [status_event("o1", n).id for n in range(2)]


async def test_two_workers_and_one_stopped_midway_lose_nothing_and_never_overlap(
    redis_url: str, redis_prefix: str
) -> None:
    """Two replicas on one Redis; one stops mid-way: every event still arrives, in order, never sent twice at once."""
    receiver = Receiver(statuses=lambda n: 500 if n == 0 else 200, hold_s=0.02)
    stores = [open_store(redis_url, prefix=redis_prefix) for _ in range(2)]
    try:
        await _subscribe(stores[0])
        events = [status_event(order, n) for n in range(6) for order in ("o1", "o2", "o3")]
        async with running(stores[1], receiver) as survivor:
            first = Notifier(stores[0], SETTINGS, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=FAST)
            first.start()
            await first.outbox.publish(events)
            await eventually(lambda: len(receiver.got) >= 6)
            await first.aclose()
            await eventually(lambda: len({r.event_id for r in receiver.delivered()}) == len(events))
            assert survivor.worker.consumer != first.worker.consumer
    finally:
        for opened in stores:
            await opened.aclose()
    assert receiver.max_in_flight == 1
    assert receiver.first_deliveries_by_subject() == {
        o: [e.id for e in events if e.subject == o] for o in ("o1", "o2", "o3")
    }


async def test_entries_a_dead_consumer_read_are_claimed_and_delivered(store: Store) -> None:
    """Entries read by a consumer that died before acknowledging them (a SIGKILLed replica) are delivered by another."""
    receiver = Receiver()
    await _subscribe(store)
    events = [status_event("o1", n) for n in range(3)]
    publisher = Notifier(store, SETTINGS, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=FAST)
    await publisher.outbox.publish(events)
    await publisher.aclose()
    assert len(await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "killed", count=10)) == 3
    async with running(store, receiver):
        await eventually(lambda: len(receiver.delivered()) == 3)
    assert [r.event_id for r in receiver.delivered()] == [e.id for e in events]


async def test_a_long_gone_replicas_consumer_name_is_forgotten(store: Store) -> None:
    """A replica that read and acked, then went away, leaves its name in the group; a live worker prunes
    it once it has idled past `consumer_idle_s`, and never its own (it reads every `block_s`)."""
    receiver = Receiver()
    await _subscribe(store)
    await store.stream_add(QUEUE_STREAM, {"delivery": "none"})
    [entry] = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "gone-replica", count=1)
    await store.stream_ack(QUEUE_STREAM, QUEUE_GROUP, entry.id)
    timing = WorkerTiming(claim_every_s=0.05, min_idle_s=0.15, block_s=0.05, consumer_idle_s=0.5, prune_every_s=0.1)
    notifier = Notifier(store, SETTINGS, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=timing)
    with structlog.testing.capture_logs() as logs:
        notifier.start()
        try:
            await eventually(lambda: any(e["event"] == "webhook_consumers_pruned" for e in logs))
        finally:
            await notifier.aclose()
    assert sum(e.get("count", 0) for e in logs if e["event"] == "webhook_consumers_pruned") == 1


async def test_a_lane_behind_a_delivery_that_was_never_queued_moves_on(store: Store) -> None:
    """A status stored but never queued (its publisher stopped, and nothing publishes it again) would
    hold its lane until its record expired: once long due, it is queued again, and both arrive in order."""
    receiver = Receiver()
    await _subscribe(store)
    first, second = status_event("o1", 0), status_event("o1", 1)
    timing = replace(FAST, orphan_after_s=0.3)
    async with running(store, receiver, timing=timing) as notifier:
        dying = Outbox(cast(Store, FailsOnce(store, "stream_add")), notifier.outbox.subscriptions, SETTINGS)
        with pytest.raises(StoreUnavailable):
            await dying.publish([first])
        await notifier.outbox.publish([second])
        await eventually(lambda: len(receiver.delivered()) == 2)
    assert [r.event_id for r in receiver.delivered()] == [first.id, second.id]
