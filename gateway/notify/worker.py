"""The delivery worker every replica runs: takes deliveries off the queue and sends them.

Entries come from the queue stream through one consumer group shared by every replica: new
ones by reading, and ones another consumer read and never acknowledged (it died, or left them
for later) by claiming them once idle. An entry is acknowledged when its delivery is final (or
gone), or once the delivery waits in the retry index for a later attempt (gateway/notify/
retry_index.py puts it back on the queue when due). One whose lane predecessor is being sent
stays pending: sent as soon as that one is final if it is here, else claimed again later. A
short lock per delivery keeps two replicas from sending one delivery at once; the record is
re-read under it, so a delivery already made is not made again.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import structlog

from gateway.aio.tasks import stop_task
from gateway.domain.errors import StoreUnavailable
from gateway.notify.model import DELIVERY_KEY, QUEUE_GROUP, QUEUE_STREAM, Delivery, DeliveryAttempt
from gateway.notify.reporting import report_attempt
from gateway.notify.retry_index import REQUEUED, RetryIndex
from gateway.notify.schedule import DEFAULT_TIMING, WorkerTiming, after_attempt, record_ttl_s
from gateway.notify.sender import Sender
from gateway.notify.subscriptions import Subscriptions
from gateway.obs.metrics import Metrics
from gateway.settings.models import WebhookSettings
from gateway.store import STREAM_START, Store, StreamEntry

log = structlog.get_logger("gateway.webhooks")

T = TypeVar("T")

SENDING_KEY = "webhook-sending:{id}"
ORPHAN_KEY = "webhook-orphan:{id}"
# After a store failure, a loop waits this long before trying again.
_STORE_PAUSE_S = 1.0
# Waiting entries remembered for a prompt retry; beyond this they wait for the next claim.
_MAX_WAITING = 1024


class DeliveryWorker:
    """Sends queued deliveries, at most `concurrency` at once in this process."""

    def __init__(
        self,
        store: Store,
        subscriptions: Subscriptions,
        sender: Sender,
        settings: WebhookSettings,
        metrics: Metrics,
        *,
        consumer: str,
        timing: WorkerTiming = DEFAULT_TIMING,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.subscriptions = subscriptions
        self.sender = sender
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer
        self.timing = timing
        self._draw = draw
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Entries left waiting for a delivery this process is making: retried as soon as it is final.
        self._waiting: dict[str, StreamEntry] = {}
        self._loops: list[asyncio.Task[None]] = []
        self.retries = RetryIndex(store, lease_s=timing.requeue_lease_s)
        self._room = asyncio.Event()

    def start(self) -> None:
        """Start reading and claiming."""
        self._loops = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._claim_loop())]

    async def stop(self) -> None:
        """Stop, cancelling attempts in flight: their entries stay pending and another consumer claims them."""
        for loop in self._loops:
            await stop_task(loop)
        for task in list(self._tasks.values()):
            await stop_task(task)

    def _free(self) -> int:
        return self.settings.concurrency - len(self._tasks)

    def _spawn(self, entry: StreamEntry) -> None:
        if entry.id in self._tasks:
            return
        task = asyncio.create_task(self._guarded(entry))
        self._tasks[entry.id] = task

    async def _guarded(self, entry: StreamEntry) -> None:
        try:
            await self.handle(entry)
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels("webhook_delivery").inc()
            log.warning("webhook_store_unavailable", entry=entry.id, error=str(exc))
        except Exception:
            # A bug must not stop the worker. The entry stays pending and is tried again later,
            # unless it came from the retry index, which brings it back after its lease anyway
            # (so a delivery that always fails this way piles up no entries).
            log.exception("webhook_worker_error", entry=entry.id)
            if entry.fields.get(REQUEUED):
                await self._despite_store("ack", self.store.stream_ack(QUEUE_STREAM, QUEUE_GROUP, entry.id))
        finally:
            self._tasks.pop(entry.id, None)
            self._room.set()

    async def _read_loop(self) -> None:
        while True:
            if self._free() <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            wanted = self._free()
            reading = self.store.stream_read(
                QUEUE_STREAM, QUEUE_GROUP, self.consumer, count=wanted, block_s=self.timing.block_s
            )
            if (entries := await self._despite_store("read", reading)) is None:
                await asyncio.sleep(_STORE_PAUSE_S)
                continue
            for entry in entries:
                self._spawn(entry)
            if len(entries) < wanted and not self.retries.seen_empty:
                # The queue ran dry with room to spare: bring back retries that are due now, at the
                # pace deliveries finish, rather than only once per claim round.
                await self._requeue()

    async def _claim_loop(self) -> None:
        start = STREAM_START
        pruned_at = counted_at = float("-inf")
        while True:
            await asyncio.sleep(self.timing.claim_every_s)
            if time.monotonic() - pruned_at >= self.timing.prune_every_s:
                pruned_at = time.monotonic()
                await self._prune()
            if time.monotonic() - counted_at >= self.timing.gauge_every_s:
                counted_at = time.monotonic()
                if (waiting := await self._despite_store("count", self.retries.count())) is not None:
                    self.metrics.webhook_retries_waiting.set(waiting)
            if self._free() <= 0:
                continue
            idle_s, count = self.timing.min_idle_s, self._free()
            claiming = self.store.stream_claim(
                QUEUE_STREAM, QUEUE_GROUP, self.consumer, min_idle_s=idle_s, count=count, start=start
            )
            if (claimed := await self._despite_store("claim", claiming)) is None:
                continue
            start, entries = claimed
            for entry in entries:
                self._spawn(entry)
            await self._requeue()

    async def _requeue(self) -> None:
        limit = self._free() * self.timing.requeue_per_free
        await self._despite_store("requeue", self.retries.requeue_due(limit))

    async def _prune(self) -> None:
        pruning = self.store.stream_prune_consumers(QUEUE_STREAM, QUEUE_GROUP, idle_s=self.timing.consumer_idle_s)
        if gone := await self._despite_store("prune", pruning):
            log.info("webhook_consumers_pruned", count=gone)

    async def _despite_store(self, loop: str, call: Awaitable[T]) -> T | None:
        """`call`'s answer, or None when the store is away (counted and logged: the loop carries on)."""
        try:
            return await call
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels(f"webhook_{loop}").inc()
            log.warning("webhook_store_unavailable", loop=loop, error=str(exc))
            return None

    async def handle(self, entry: StreamEntry) -> bool:
        """Work on one queue entry; True if it was acknowledged (its delivery is final, gone, or
        waiting in the retry index), False if it stays pending to be looked at again."""
        did = entry.fields.get("delivery", "")
        if (found := await self._read(did)) is None or found[1].state.final:
            return await self._finish(entry, did)
        raw, delivery = found
        if await self.subscriptions.load(delivery.subscription_id) is None:
            return await self._finish(entry, did)
        if delivery.next_attempt_at > time.time():
            return await self._park(entry, did, delivery.next_attempt_at)
        before = None if delivery.previous is None else await self._read(delivery.previous)
        if before is not None and not before[1].state.final:
            return await self._wait_for_turn(entry, raw, delivery, before[1])
        lock = SENDING_KEY.format(id=did)
        token = secrets.token_hex(8).encode()
        if not await self.store.set_if_absent(lock, token, ttl_s=self.settings.timeout_s * 2 + 30):
            return False
        try:
            updated = await self._attempt(did)
        finally:
            await self.store.delete_if_equals(lock, token)
        if updated is None:
            return False
        if not updated.state.final:
            return await self._park(entry, did, updated.next_attempt_at)
        return await self._finish(entry, did)

    async def _wait_for_turn(self, entry: StreamEntry, raw: bytes, delivery: Delivery, previous: Delivery) -> bool:
        """The delivery before this one in its lane is not final yet."""
        if previous.next_attempt_at > time.time():
            # It waits for a retry: so does this one, due right after it. The record says so too,
            # so the one behind this one parks as well instead of taking it for being sent.
            later = replace(delivery, next_attempt_at=previous.next_attempt_at)
            ttl = record_ttl_s(later, self.settings, time.time())
            await self.store.set_if_equals(DELIVERY_KEY.format(id=delivery.id), raw, later.to_json(), ttl)
            return await self._park(entry, delivery.id, previous.next_attempt_at)
        # It is due, so being sent (here or elsewhere): stay pending, and go at once if it is here.
        if time.time() - previous.next_attempt_at > self.timing.orphan_after_s:
            await self._requeue_orphan(previous.id)
        if len(self._waiting) >= _MAX_WAITING:
            # Stale ones (their predecessor was handled elsewhere) are still pending: claimed later.
            self._waiting.clear()
        self._waiting[previous.id] = entry
        return False

    async def _requeue_orphan(self, did: str) -> None:
        """Queue a long-due predecessor again through the retry index, unless it is being sent;
        once per lease, so the waiters behind it do not each queue it again."""
        if await self.store.get(SENDING_KEY.format(id=did)) is not None:
            return
        if await self.store.set_if_absent(ORPHAN_KEY.format(id=did), b"1", ttl_s=self.timing.requeue_lease_s):
            log.warning("webhook_predecessor_requeued", delivery_id=did)
            await self.retries.wait(did, time.time())

    def _wake(self, did: str) -> None:
        """`did` is final or parked: the entry waiting behind it here, if any, is looked at now."""
        if (waiting := self._waiting.pop(did, None)) is not None:
            self._spawn(waiting)

    async def _attempt(self, did: str) -> Delivery | None:
        """Send once under the lock; the delivery as recorded after it, or None if nothing was sent."""
        # Re-read under the lock: another consumer may have sent it since the first read.
        if (found := await self._read(did)) is None:
            return None
        raw, delivery = found
        if delivery.state.final:
            return delivery
        subscription = await self.subscriptions.load(delivery.subscription_id)
        if subscription is None or delivery.next_attempt_at > time.time():
            return None
        result = await self.sender.send(subscription, delivery.event)
        now = time.time()
        attempt = DeliveryAttempt(at=now, status=result.status, error=result.error, duration_ms=result.duration_ms)
        updated = after_attempt(delivery, attempt, self.settings, now=now, draw=self._draw())
        ttl = record_ttl_s(updated, self.settings, now)
        if not await self.store.set_if_equals(DELIVERY_KEY.format(id=did), raw, updated.to_json(), ttl):
            log.warning("webhook_delivery_changed", delivery_id=did)
            return None
        report_attempt(self.metrics, updated, result, now)
        return updated

    async def _read(self, did: str) -> tuple[bytes, Delivery] | None:
        """The delivery's stored bytes (what a compare-and-set expects) and its record; None once
        the record expired (it belonged to a delivery final long ago)."""
        raw = await self.store.get(DELIVERY_KEY.format(id=did))
        return None if raw is None else (raw, Delivery.from_json(raw))

    async def _park(self, entry: StreamEntry, did: str, due: float) -> bool:
        """Leave the queue for the retry index until `due` (indexed first: a crash between keeps the entry)."""
        await self.retries.wait(did, due)
        self._wake(did)
        return await self._ack(entry)

    async def _finish(self, entry: StreamEntry, did: str) -> bool:
        """Done with a final or gone delivery: out of the retry index if it came from there, then acked."""
        if entry.fields.get(REQUEUED):
            await self.retries.done(did)
        self._wake(did)
        return await self._ack(entry)

    async def _ack(self, entry: StreamEntry) -> bool:
        await self.store.stream_ack(QUEUE_STREAM, QUEUE_GROUP, entry.id)
        return True
