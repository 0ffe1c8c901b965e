"""Tracked orders in the store: registration when an order is placed, and claims by the tracker.

Keys: `tracked-order:{order id}` holds the record; `tracked-due:{provider}` indexes the open ones
by when each is next due, so a pass reads only what is due and the index's size is the number
tracked; `tracked-claim:{order id}` is the claim on the order's polling, taken with set-if-absent
for a lease. A claim also moves the order's due time a lease ahead, so other replicas stop seeing
it as due; if the claimer dies, the order falls due again as its claim ends. One key per order,
not per round: an order made due early (`poll_soon`) while claimed can't be claimed a second time.
The claimer renews its claim before publishing and releases it once saved. A claim's value says
when it ends by the tracker's clock, the clock due times are on, so it ends for the others at the
same moment the order falls due (its TTL, the same lease on the store's clock, is the backstop).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from gateway.domain import ids
from gateway.domain.attempts import OrderAttempt
from gateway.domain.tracking import TrackedOrder
from gateway.store import Store


def _record_key(order_id: str) -> str:
    return f"tracked-order:{order_id}"


def due_index(provider_id: str) -> str:
    """The index of a provider's open tracked orders, scored by when each is next due."""
    return f"tracked-due:{provider_id}"


def _claim_key(order_id: str) -> str:
    return f"tracked-claim:{order_id}"


def _claim_value(token: str, ends: float) -> bytes:
    return f"{token} {ends!r}".encode()


def _claim_ends(value: bytes) -> float:
    try:
        return float(value.split(b" ")[1])
    except (IndexError, ValueError):
        return float("-inf")  # a claim of the earlier layout (a bare token): over


class TrackedOrders:
    """The tracker's records in the store; `register` is what the order journal calls."""

    def __init__(self, store: Store, retention_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        # Records live as long as the journal keeps orders; each save renews them.
        self.retention_s = retention_s
        self.clock = clock

    async def register(self, attempt: OrderAttempt) -> None:
        """Track a placed attempt's order from now on (its first poll is due at once). Idempotent:
        registering again never resets what was seen; it re-indexes an open record whose index
        entry a crash may have kept from being written."""
        if attempt.order_id is None:
            return
        parts = ids.split(attempt.order_id)
        if parts is None:
            return
        now = self.clock()
        record = TrackedOrder(attempt.order_id, parts[0], parts[1], attempt.client, registered=now, due=now)
        key = _record_key(record.order_id)
        if not await self.store.set_if_absent(key, record.to_json(), self.retention_s):
            existing = await self.load(record.order_id)
            if existing is None or not existing.state.open:
                return
            record = existing
        # Record first: an index entry without a record would only be dropped by the tracker.
        await self.store.index_add(due_index(record.provider), record.order_id, record.due, self.retention_s)

    async def load(self, order_id: str) -> TrackedOrder | None:
        """A tracked order's record, None when it was never tracked or has expired."""
        raw = await self.store.get(_record_key(order_id))
        return None if raw is None else TrackedOrder.from_json(raw)

    async def due(self, provider_id: str, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` of a provider's orders due now, the longest overdue first (order id, due)."""
        now = self.clock()
        page = await self.store.index_page(due_index(provider_id), limit=limit)
        return [(order_id, due) for order_id, due in page if due <= now]

    async def claim(self, provider_id: str, order_id: str, lease_s: float) -> bytes | None:
        """Take the order's polling: the claim (to renew and release it), None when another process
        has it. The order stops being due for `lease_s`, unless `release`d earlier."""
        now, key = self.clock(), _claim_key(order_id)
        claim = _claim_value(uuid.uuid4().hex, now + lease_s)
        if not await self.store.set_if_absent(key, claim, lease_s):
            held = await self.store.get(key)
            if held is None or _claim_ends(held) > now or not await self.store.set_if_equals(key, held, claim, lease_s):
                return None
        await self.store.index_add(due_index(provider_id), order_id, now + lease_s, self.retention_s)
        return claim

    async def renew(self, order_id: str, claim: bytes, lease_s: float) -> bytes | None:
        """The claim held `lease_s` longer (the order's due time stays: it is past the poll by then);
        None when it lapsed, and another process may be polling the order."""
        renewed = _claim_value(claim.split(b" ")[0].decode(), self.clock() + lease_s)
        return renewed if await self.store.set_if_equals(_claim_key(order_id), claim, renewed, lease_s) else None

    async def release(self, provider_id: str, order_id: str, claim: bytes, due: float | None = None) -> None:
        """Give the claim back: after the record was saved, or (with `due`) unpolled, due again at its old place."""
        if await self.store.delete_if_equals(_claim_key(order_id), claim) and due is not None:
            await self.store.index_add(due_index(provider_id), order_id, due, self.retention_s)

    async def save(self, record: TrackedOrder) -> None:
        """Store a polled record and schedule it (or drop it from the due index once closed)."""
        await self.store.set(_record_key(record.order_id), record.to_json(), self.retention_s)
        if record.state.open:
            await self.store.index_add(due_index(record.provider), record.order_id, record.due, self.retention_s)
        else:
            await self.store.index_remove(due_index(record.provider), record.order_id)

    async def poll_soon(self, order_id: str) -> None:
        """Make an open order due now (its status just changed through the gateway, e.g. a cancel)."""
        record = await self.load(order_id)
        if record is not None and record.state.open:
            await self.store.index_add(due_index(record.provider), order_id, self.clock(), self.retention_s)

    async def forget(self, provider_id: str, order_id: str) -> None:
        """Drop an index entry whose record is gone (expired, or never written)."""
        await self.store.index_remove(due_index(provider_id), order_id)

    async def count(self, provider_id: str) -> int:
        """How many of a provider's orders are being tracked (one store call)."""
        return await self.store.index_count(due_index(provider_id))
