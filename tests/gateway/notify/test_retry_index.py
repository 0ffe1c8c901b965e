"""The retry index: waiting deliveries leave the queue, come back once when due, and survive a dead replica."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import structlog

from gateway.notify.model import DELIVERY_KEY, QUEUE_GROUP, QUEUE_STREAM, REQUEUE_LOCK_KEY, RETRY_INDEX
from gateway.notify.notifier import Notifier
from gateway.notify.outbox import deliveries_of
from gateway.notify.retry_index import RetryIndex
from gateway.obs.metrics import Metrics
from gateway.store import Store
from tests.gateway.notify.receivers import Receiver
from tests.gateway.notify.test_worker import FAST, SETTINGS, _subscribe, running, status_event
from tests.gateway.services.tracking_world import CountingStore
from tests.waiting import eventually


async def _queued(store: Store) -> list[str]:
    """The delivery ids on the queue that no consumer has read yet (read, then acknowledged)."""
    entries = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "probe", count=1000)
    for entry in entries:
        await store.stream_ack(QUEUE_STREAM, QUEUE_GROUP, entry.id)
    return [entry.fields["delivery"] for entry in entries]


async def test_a_delivery_waiting_for_its_retry_leaves_the_queue_for_the_index(store: Store) -> None:
    """After a failed attempt the queue entry is acknowledged (nothing pending to claim again and
    again) and the index holds the delivery at the time its record says it is due; the rest of its
    lane, however long, waits right behind it, each record saying so."""
    settings = SETTINGS.model_copy(update={"retry_initial_s": 3600, "retry_max_s": 3600, "retry_for_s": 86400})
    receiver = Receiver(statuses=lambda _: 503)
    sub = await _subscribe(store, settings)
    notifier = Notifier(store, settings, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=FAST)
    published = [status_event("o1", 0), status_event("o1", 1), status_event("o1", 2), status_event("o2", 0)]
    try:
        await notifier.outbox.publish(published)
        entries = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "w", count=10)
        handled = [await notifier.worker.handle(entry) for entry in entries]
        _, pending = await store.stream_claim(QUEUE_STREAM, QUEUE_GROUP, "probe", min_idle_s=0, count=10)
        waiting = dict(await store.index_page(RETRY_INDEX, limit=10))
    finally:
        await notifier.aclose()
    assert handled == [True, True, True, True]
    assert pending == []
    records = {d.event.id: d for d in (await deliveries_of(store, sub.id, limit=10)).deliveries}
    first, second, third, other = (records[e.id] for e in published)
    assert [r.attempt_count for r in (first, second, third, other)] == [1, 0, 0, 1]
    # Only the first status of o1 was sent; the others wait behind its retry.
    behind = first.next_attempt_at
    assert waiting == {first.id: behind, second.id: behind, third.id: behind, other.id: other.next_attempt_at}
    assert second.next_attempt_at == third.next_attempt_at == behind
    assert min(waiting.values()) > first.attempts[0].at + 1800


async def test_looking_at_the_index_costs_one_call_whatever_waits(store: Store) -> None:
    """With nothing due, a round is one store call, for 1 waiting delivery as for 200."""
    counted = CountingStore(store)
    index = RetryIndex(counted, lease_s=60, clock=lambda: 1000.0)
    calls = []
    for backlog in (1, 200):
        for n in range(backlog):
            await store.index_add(RETRY_INDEX, f"d{backlog}-{n}", 5000.0 + n)
        counted.ops.clear()
        assert await index.requeue_due(64) == 0
        calls.append(sum(counted.ops.values()))
    assert calls == [1, 1]
    assert await index.count() == 201


async def test_two_replicas_requeue_each_due_delivery_once_and_leave_the_rest(store: Store) -> None:
    """Replicas racing over the index's head put each due delivery on the queue once, leave what
    is not due, and keep what they queued in the index a lease ahead (until the worker acts)."""
    for n in range(30):
        await store.index_add(RETRY_INDEX, f"due-{n}", 100.0 + n)
    await store.index_add(RETRY_INDEX, "later", 5000.0)
    replicas = [RetryIndex(store, lease_s=60, clock=lambda: 1000.0) for _ in range(3)]
    counts = await asyncio.gather(*(r.requeue_due(100) for r in replicas))
    queued = await _queued(store)
    assert sum(counts) == 30
    assert sorted(queued) == sorted(f"due-{n}" for n in range(30))
    scores = dict(await store.index_page(RETRY_INDEX, limit=100))
    assert scores.pop("later") == 5000.0
    assert set(scores.values()) == {1060.0}


async def test_a_replica_that_died_mid_requeue_leaves_the_delivery_due_again_after_the_lease(store: Store) -> None:
    """A replica took the requeue lock and died before queueing: once the lock's lease ends the
    delivery is queued by another replica (nothing is stranded)."""
    await store.index_add(RETRY_INDEX, "d1", 100.0)
    # What the dead replica did: the lock, nothing else.
    assert await store.set_if_absent(REQUEUE_LOCK_KEY.format(id="d1", due=repr(100.0)), b"1", ttl_s=0.3)
    survivor = RetryIndex(store, lease_s=0.3, clock=lambda: 1000.0)
    assert await survivor.requeue_due(10) == 0
    assert await _queued(store) == []

    async def requeued() -> bool:
        return await survivor.requeue_due(10) == 1

    await eventually(requeued, within_s=10, every_s=0.05)
    assert await _queued(store) == ["d1"]


async def test_every_retry_arrives_and_the_index_ends_empty(store: Store) -> None:
    """A receiver that fails each event twice gets all of them, in order per order, and once they are
    delivered nothing is left waiting; a member left behind for a finished delivery is dropped."""
    receiver = Receiver(statuses=lambda n: 503 if n < 2 else 204)
    await _subscribe(store)
    events = [status_event(order, n) for n in range(3) for order in ("o1", "o2")]
    await store.index_add(RETRY_INDEX, "gone-long-ago", 0.0)
    async with running(store, receiver) as notifier:
        await notifier.outbox.publish(events)
        await eventually(lambda: len(receiver.delivered()) == len(events))

        async def emptied() -> bool:
            return await notifier.worker.retries.count() == 0

        await eventually(emptied)
    assert receiver.first_deliveries_by_subject() == {o: [e.id for e in events if e.subject == o] for o in ("o1", "o2")}
    assert all(receiver.tries[e.id] == 3 for e in events)


async def test_the_waiting_gauge_counts_what_waits_in_the_index(store: Store) -> None:
    """`stapi_gateway_webhook_retries_waiting` says how many deliveries wait for a later attempt."""
    settings = SETTINGS.model_copy(update={"retry_initial_s": 3600, "retry_max_s": 3600, "retry_for_s": 86400})
    receiver = Receiver(statuses=lambda _: 503)
    await _subscribe(store, settings)
    metrics = Metrics()
    timing = replace(FAST, gauge_every_s=0.05)
    async with running(store, receiver, settings, metrics, timing=timing) as notifier:
        await notifier.outbox.publish([status_event("o1", 0), status_event("o2", 0)])
        await eventually(lambda: b"stapi_gateway_webhook_retries_waiting 2.0" in metrics.exposition())
    assert len(receiver.got) == 2


async def test_a_delivery_made_at_the_first_try_never_touches_the_index(store: Store) -> None:
    """The common case pays nothing for retries: no index call from queue entry to acknowledgement."""
    counted = CountingStore(store)
    receiver = Receiver()
    await _subscribe(store)
    notifier = Notifier(counted, SETTINGS, Metrics(), transport=httpx.ASGITransport(app=receiver), timing=FAST)
    try:
        await notifier.outbox.publish([status_event("o1", 0), status_event("o2", 0)])
        entries = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "w", count=10)
        counted.ops.clear()
        handled = [await notifier.worker.handle(entry) for entry in entries]
    finally:
        await notifier.aclose()
    assert handled == [True, True]
    assert len(receiver.delivered()) == 2
    assert {op for op in counted.ops if op.startswith("index_")} == set()


async def test_a_requeued_entry_that_breaks_the_worker_is_not_left_pending(store: Store) -> None:
    """A delivery whose record the worker can't read (a bug, not the store): the entry put back from
    the index is acknowledged, as the index brings the delivery back after its lease anyway, so no
    entries pile up on the queue for it."""
    await store.set(DELIVERY_KEY.format(id="broken"), b"not a delivery")
    await store.index_add(RETRY_INDEX, "broken", 0.0)
    receiver = Receiver()
    with structlog.testing.capture_logs() as logs:
        async with running(store, receiver):
            await eventually(lambda: any(e["event"] == "webhook_worker_error" for e in logs))
    _, pending = await store.stream_claim(QUEUE_STREAM, QUEUE_GROUP, "probe", min_idle_s=0, count=10)
    assert pending == []
    assert [member for member, _ in await store.index_page(RETRY_INDEX, limit=10)] == ["broken"]
    assert receiver.got == []


async def test_an_idle_worker_looks_at_an_empty_index_once_a_round_not_once_a_read(store: Store) -> None:
    """With nothing waiting, the many short reads of an idle queue do not each look at the index:
    only the claim rounds do (before `seen_empty`, every read that found the queue dry looked)."""
    counted = CountingStore(store)
    timing = replace(FAST, block_s=0.01, claim_every_s=0.5)
    notifier = Notifier(counted, SETTINGS, Metrics(), transport=httpx.ASGITransport(app=Receiver()), timing=timing)
    notifier.start()
    try:
        await eventually(lambda: counted.ops["stream_read"] >= 20)
    finally:
        await notifier.aclose()
    assert counted.ops["index_page"] <= counted.ops["stream_claim"] + 1
