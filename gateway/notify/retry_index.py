"""Deliveries waiting for a later attempt, kept out of the queue until they are due.

A delivery that failed (or waits for its lane's turn behind one that failed) could stay pending
on the queue stream to be claimed and looked at again and again; then how late a retry comes
grows with how many wait (each claim round looks at a few of them), and so does the store work.
Instead its queue entry is acknowledged and its id kept here, in one index scored by the time it
is due. Every replica looks at the index's head each round and puts what is due back on the
queue: store work per round is one read plus three calls per delivery due, whatever the backlog.

Putting one back is: a short set-if-absent lock on (delivery, due time), so one replica does it;
the score moved a lease ahead; the queue entry. The index thus keeps every delivery until it is
final: a replica that dies after the lock leaves the member, due again once the lock expires, and
one that dies after queueing (or the one that read the entry) leaves it due again once the lease
ends. The worker records the next due time (or removes the member) once it has acted, which also
ends the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.notify.model import QUEUE_STREAM, REQUEUE_LOCK_KEY, RETRY_INDEX
from gateway.store import Store

# The field that marks a queue entry put back from the index. Such an entry removes its delivery
# from the index once final; a delivery made final by another entry (a republished event, a
# claimed original) leaves its member behind until it is put back once more and found final.
REQUEUED = "requeued"


class RetryIndex:
    """The due-time index of deliveries waiting for their next attempt, shared by every replica."""

    def __init__(
        self, store: Store, *, lease_s: float, lock_s: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.lease_s = lease_s
        # The lock only spans one replica's read-then-move of a member (the moved score keeps the
        # others off it): short, so a lock left by a dead replica, by a store error after the
        # lock, or by a handler whose clock runs behind re-parking at the same due time, holds
        # the delivery back seconds, not a whole lease.
        self.lock_s = lock_s
        self.clock = clock
        # Whether this replica's last look found the index empty: then looking again at every
        # short read can wait for the next round (or for this replica's next `wait`).
        self.seen_empty = False

    async def wait(self, delivery_id: str, due: float) -> None:
        """Keep `delivery_id` here until `due` (moving it if it is here already)."""
        await self.store.index_add(RETRY_INDEX, delivery_id, due)
        self.seen_empty = False

    async def done(self, delivery_id: str) -> None:
        """Forget `delivery_id`: it is final, or gone (called for entries marked `REQUEUED`)."""
        await self.store.index_remove(RETRY_INDEX, delivery_id)

    async def requeue_due(self, limit: int) -> int:
        """Put up to `limit` deliveries that are due back on the queue; how many this replica did."""
        if limit <= 0:
            return 0
        now = self.clock()
        queued = 0
        head = await self.store.index_page(RETRY_INDEX, limit=limit)
        self.seen_empty = not head
        for delivery_id, due in head:
            if due > now:
                break
            lock = REQUEUE_LOCK_KEY.format(id=delivery_id, due=repr(due))
            if not await self.store.set_if_absent(lock, b"1", ttl_s=self.lock_s):
                continue
            await self.store.index_add(RETRY_INDEX, delivery_id, now + self.lease_s)
            await self.store.stream_add(QUEUE_STREAM, {"delivery": delivery_id, REQUEUED: "1"})
            queued += 1
        return queued

    async def count(self) -> int:
        """How many deliveries wait (one cheap call)."""
        return await self.store.index_count(RETRY_INDEX)
