"""Webhook retries under a backlog: how late they come and what waiting costs the store.

    python bench/webhook_retries.py            # 5,000 events
    python bench/webhook_retries.py --quick    # 500 events (about a minute here)
    python bench/webhook_retries.py --events 2000 --redis redis://127.0.0.1:6379/15

One replica's notifier (gateway/notify/, default worker timing, 16 deliveries in flight) on a real
Redis under a unique prefix (deleted afterwards) delivers to an in-process receiver (an ASGI app
through httpx.ASGITransport: no sockets, so the numbers are the worker's and the store's).

- *first try*: every event is answered 204 at once. Reported: store calls per event, from its
  publication (the outbox's writes) to its acknowledgement.
- *retry*: every event's first attempt is answered 503, the second 204; `retry_initial_s` 5, so
  each retry is due 2.5 to 5 s after its failure. Reported: the time until every event is
  delivered, and how late the retries came (second attempt minus the time it was due).
- *waiting*: every attempt is answered 503 and `retry_initial_s` is an hour, so after the first
  round every delivery waits. Reported: store operations per second over 10 s of that wait.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import redis
import structlog
from common import CountingStore, drop_keys, machine

from gateway.domain.events import Event, order_status_event
from gateway.notify.model import DELIVERIES_OF, DELIVERY_KEY, Delivery
from gateway.notify.notifier import Notifier
from gateway.notify.subscriptions import Subscriptions
from gateway.obs.metrics import Metrics
from gateway.settings.models import WebhookSettings
from gateway.store import open_store

WAIT_WINDOW_S = 10.0


class Receiver:
    """Answers 503 to the first `fail` tries of each event id, 204 after; records each try's time."""

    def __init__(self, fail: int, expect: int) -> None:
        self.fail = fail
        self.expect = expect
        self.tries: dict[str, list[float]] = {}
        # Set once `expect` events were tried at all (`tried`), and once all were answered 204.
        self.tried = asyncio.Event()
        self.done = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Record the try, answer its scripted status."""
        while (await receive()).get("more_body"):
            pass
        headers = dict(scope["headers"])
        times = self.tries.setdefault(headers[b"webhook-id"].decode(), [])
        times.append(time.time())
        status = 503 if len(times) <= self.fail else 204
        if len(self.tries) >= self.expect:
            self.tried.set()
        if status == 204 and self.delivered() >= self.expect:
            self.done.set()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def delivered(self) -> int:
        """Events answered 204."""
        return sum(len(t) > self.fail for t in self.tries.values())


def events(n: int) -> list[Event]:
    """`n` status events of `n` different orders (no lane waits: each order has one)."""
    status = {"status_code": "accepted", "timestamp": "2025-01-01T00:00:00Z", "provider:status": "accepted"}
    return [order_status_event("alice", f"o{i}", status) for i in range(n)]


@dataclass
class World:
    """One started notifier on a counted store under a fresh prefix, and its one subscription."""

    store: CountingStore
    notifier: Notifier
    subscription_id: str


@asynccontextmanager
async def world(url: str, settings: WebhookSettings, receiver: Receiver) -> AsyncIterator[World]:
    """A notifier delivering to `receiver`; stopped, its keys deleted and its store closed afterwards."""
    prefix = f"bench-webhooks-{uuid.uuid4().hex[:8]}:"
    store = CountingStore(open_store(url, prefix=prefix))
    typed: Any = store
    subscription = await Subscriptions(typed, settings).create("alice", "http://127.0.0.1:9/hook", ["order.status"])
    notifier = Notifier(typed, settings, Metrics(), transport=httpx.ASGITransport(app=receiver))
    notifier.start()
    try:
        yield World(store, notifier, subscription.id)
    finally:
        await notifier.aclose()
        client = redis.Redis.from_url(url)
        try:
            drop_keys(client, prefix)
        finally:
            client.close()
        await store.inner.aclose()


async def first_try_row(url: str, n: int) -> dict[str, float]:
    """Every event is delivered at its first attempt: store calls per event, publishing included."""
    receiver = Receiver(fail=0, expect=n)
    async with world(url, WebhookSettings(allow_private=True), receiver) as w:
        before = sum(w.store.ops.values())
        await w.notifier.outbox.publish(events(n))
        await receiver.done.wait()
        ops = sum(w.store.ops.values()) - before
    return {"ops_per_event": ops / n}


async def retry_row(url: str, n: int) -> dict[str, float]:
    """Every event fails once: time to deliver all, and how late the retries were."""
    receiver = Receiver(fail=1, expect=n)
    async with world(url, WebhookSettings(retry_initial_s=5, allow_private=True), receiver) as w:
        published = time.time()
        await w.notifier.outbox.publish(events(n))
        await receiver.done.wait()
        drained = time.time() - published
        late = []
        index = DELIVERIES_OF.format(subscription=w.subscription_id)
        for record_id, _ in await w.store.inner.index_page(index, limit=n):
            raw = await w.store.inner.get(DELIVERY_KEY.format(id=record_id))
            delivery = Delivery.from_json(raw or b"")
            # A delivered record keeps the due time of its last retry.
            late.append(max(0.0, delivery.attempts[1].at - delivery.next_attempt_at))
    return {"drain_s": drained, "late_p50_s": statistics.median(late), "late_max_s": max(late)}


async def wait_row(url: str, n: int) -> dict[str, float]:
    """Every delivery failed once and waits an hour: store operations per second while it waits."""
    receiver = Receiver(fail=10**9, expect=n)
    async with world(url, WebhookSettings(retry_initial_s=3600, allow_private=True), receiver) as w:
        await w.notifier.outbox.publish(events(n))
        await receiver.tried.wait()
        # Let the last attempts settle and the worker reach its waiting rhythm.
        await asyncio.sleep(3.0)
        before = sum(w.store.ops.values())
        await asyncio.sleep(WAIT_WINDOW_S)
        ops = sum(w.store.ops.values()) - before
    return {"store_ops_per_s": ops / WAIT_WINDOW_S}


def main() -> None:
    """Run the three rows and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="500 events")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    n = 500 if args.quick else args.events
    # One log line per attempt would be most of the work measured: warnings only, to stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    print(f"webhook retries, {n} events, {machine()}", file=sys.stderr)
    first = asyncio.run(first_try_row(args.redis, n))
    retry = asyncio.run(retry_row(args.redis, n))
    waiting = asyncio.run(wait_row(args.redis, n))
    print(
        "\n| events | store ops / event delivered first time | all delivered (s) | retry late p50 (s) "
        f"| retry late max (s) | store ops/s while {n} wait |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {n} | {first['ops_per_event']:.1f} | {retry['drain_s']:.1f} | {retry['late_p50_s']:.2f} "
        f"| {retry['late_max_s']:.2f} | {waiting['store_ops_per_s']:.0f} |"
    )


if __name__ == "__main__":
    main()
