"""The outbox: deliveries stored once per (subscription, event), linked per subject, listed newest first."""

from __future__ import annotations

from gateway.domain.events import Event, order_status_event
from gateway.notify.model import QUEUE_GROUP, QUEUE_STREAM, DeliveryState
from gateway.notify.outbox import Outbox, deliveries_of
from gateway.notify.subscriptions import Subscriptions
from gateway.settings.models import WebhookSettings
from gateway.store import Store

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
