"""The outbox: deliveries stored once per (subscription, event), linked per subject, listed newest first."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

from gateway.domain.errors import StoreUnavailable
from gateway.domain.events import Event, order_status_event
from gateway.notify.model import DELIVERIES_OF, QUEUE_GROUP, QUEUE_STREAM, DeliveryState
from gateway.notify.outbox import Outbox, deliveries_of
from gateway.notify.schedule import KEEP_FINAL_S
from gateway.notify.subscriptions import Subscriptions
from gateway.settings.models import WebhookSettings
from gateway.store import Store
from tests.faults import FailsOnce

SETTINGS = WebhookSettings(allow_private=True)


def status_event(order: str, n: int, client: str = "alice") -> Event:
    """The n-th status of an order."""
    status = {"status_code": "accepted", "timestamp": f"2025-01-01T00:00:{n:02d}Z", "provider:status": f"s{n}"}
    return order_status_event(client, order, status)


async def _outbox(store: Store) -> tuple[Outbox, Subscriptions]:
    subscriptions = Subscriptions(store, SETTINGS)
    return Outbox(store, subscriptions, SETTINGS), subscriptions


async def test_republishing_makes_no_second_delivery(store: Store) -> None:
    """The same events published twice leave one delivery each, and the queue holds entries only for those."""
    outbox, subscriptions = await _outbox(store)
    sub = await subscriptions.create("alice", "http://127.0.0.1/hook", ["order.status"])
    events = [status_event("o1", n) for n in range(3)]
    await outbox.publish(events)
    await outbox.publish(events[:2])
    page = await deliveries_of(store, sub.id, limit=10)
    assert sorted(d.event.id for d in page.deliveries) == sorted(e.id for e in events)
    queued = await store.stream_read(QUEUE_STREAM, QUEUE_GROUP, "t", count=100)
    # Pending deliveries are queued again on republish (their first publisher may have died before queueing).
    assert {e.fields["delivery"] for e in queued} == {d.id for d in page.deliveries}


async def test_each_delivery_names_the_one_before_it_in_its_lane(store: Store) -> None:
    """Per (subscription, order), each delivery's `previous` is the one published before it; orders don't mix."""
    outbox, subscriptions = await _outbox(store)
    sub = await subscriptions.create("alice", "http://127.0.0.1/hook", ["order.status"])
    mixed = [status_event("o1", 0), status_event("o2", 0), status_event("o1", 1), status_event("o2", 1)]
    await outbox.publish(mixed)
    by_event = {d.event.id: d for d in (await deliveries_of(store, sub.id, limit=10)).deliveries}
    first_o1, first_o2, second_o1, second_o2 = (by_event[e.id] for e in mixed)
    assert first_o1.previous is None
    assert first_o2.previous is None
    assert second_o1.previous == first_o1.id
    assert second_o2.previous == first_o2.id


async def test_only_wanting_subscriptions_of_the_client_get_deliveries(store: Store) -> None:
    """Another client's events, and event types not asked for, make no delivery; a test event goes to one."""
    outbox, subscriptions = await _outbox(store)
    orders = await subscriptions.create("alice", "http://127.0.0.1/a", ["order.status"])
    searches = await subscriptions.create("alice", "http://127.0.0.1/b", ["search.completed"])
    await outbox.publish([status_event("o1", 0), status_event("o9", 0, client="bob")])
    assert [d.event.subject for d in (await deliveries_of(store, orders.id, limit=10)).deliveries] == ["o1"]
    assert (await deliveries_of(store, searches.id, limit=10)).deliveries == []
    probe = await outbox.send_test(searches)
    listed = (await deliveries_of(store, searches.id, limit=10)).deliveries
    assert [d.id for d in listed] == [probe.id]
    assert listed[0].state is DeliveryState.PENDING
    assert len((await deliveries_of(store, orders.id, limit=10)).deliveries) == 1


async def test_listing_pages_newest_first_and_visits_each_once(store: Store) -> None:
    """Following `next` lists every delivery once, newest first."""
    outbox, subscriptions = await _outbox(store)
    sub = await subscriptions.create("alice", "http://127.0.0.1/hook", ["order.status"])
    events = [status_event(f"o{n}", n) for n in range(7)]
    for event in events:
        await outbox.publish([event])
    seen = []
    page = await deliveries_of(store, sub.id, limit=3)
    seen += page.deliveries
    while page.next is not None:
        page = await deliveries_of(store, sub.id, limit=3, after=page.next)
        seen += page.deliveries
    assert sorted(d.event.id for d in seen) == sorted(e.id for e in events)
    assert len(seen) == len(events)
    assert [d.created for d in seen] == sorted((d.created for d in seen), reverse=True)


async def test_a_delivery_republished_after_its_publisher_died_keeps_its_predecessor(store: Store) -> None:
    """The publisher of an order's second status stops after linking it, before storing it; the
    republished status still names the first as the one before it, so it can't overtake it."""
    outbox, subscriptions = await _outbox(store)
    sub = await subscriptions.create("alice", "http://127.0.0.1/hook", ["order.status"])
    first, second = status_event("o1", 0), status_event("o1", 1)
    await outbox.publish([first])
    dying, _ = await _outbox(cast(Store, FailsOnce(store, "set_if_absent", "webhook-delivery:")))
    with pytest.raises(StoreUnavailable):
        await dying.publish([second])
    await outbox.publish([second])
    by_event = {d.event.id: d for d in (await deliveries_of(store, sub.id, limit=10)).deliveries}
    assert by_event[second.id].previous == by_event[first.id].id


async def test_the_same_status_published_at_once_by_two_replicas_keeps_its_predecessor(store: Store) -> None:
    """Two publishers of one status at the same moment store one delivery, naming the status before it."""
    outbox, subscriptions = await _outbox(store)
    other, _ = await _outbox(store)
    sub = await subscriptions.create("alice", "http://127.0.0.1/hook", ["order.status"])
    for n in range(0, 20, 2):
        first, second = status_event(f"o{n}", 0), status_event(f"o{n}", 1)
        await outbox.publish([first])
        await asyncio.gather(outbox.publish([second]), other.publish([second]))
        by_event = {d.event.id: d for d in (await deliveries_of(store, sub.id, limit=100)).deliveries}
        assert by_event[second.id].previous == by_event[first.id].id, n


async def test_entries_of_expired_deliveries_leave_the_subscriptions_index(store: Store) -> None:
    """A delivery older than its retry window plus the week it is kept has no record any more: the
    next delivery made drops its index entry, so a busy subscription's index stays its live ones."""
    outbox, subscriptions = await _outbox(store)
    sub = await subscriptions.create("alice", "http://127.0.0.1/hook", ["order.status"])
    index = DELIVERIES_OF.format(subscription=sub.id)
    long_gone = time.time() - SETTINGS.retry_for_s - KEEP_FINAL_S - 60
    await store.index_add(index, "delivery-of-last-month", long_gone)
    await outbox.publish([status_event("o1", 0)])
    members = [member for member, _ in await store.index_page(index, limit=10)]
    assert "delivery-of-last-month" not in members
    assert len(members) == 1
