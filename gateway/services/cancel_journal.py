"""The cancel journal: every cancel request the gateway sends, written before the vendor is called.

Like order creation, a cancel is a write the gateway never retries on its own: the journal says
what was asked, by whom, and what came of it (a lost answer stays `unknown`; the client may ask
again, since cancelling a cancelled order is not an error).
"""

from __future__ import annotations

import time

from gateway.domain.cancels import CancelAttempt, CancelState
from gateway.services.journal import Retention, new_attempt_id
from gateway.store import Store


def _key(attempt_id: str) -> str:
    return f"order-cancel:{attempt_id}"


def _index(order_id: str) -> str:
    return f"order-cancels:{order_id}"


class CancelJournal:
    """Cancel attempts in the store, indexed per order."""

    def __init__(self, store: Store, retention: Retention) -> None:
        self.store = store
        self.retention = retention

    async def begin(self, order_id: str, client: str) -> CancelAttempt:
        """Journal a cancel about to be sent (a crash during the call leaves it `sending`)."""
        attempt = CancelAttempt(new_attempt_id(), order_id, client, CancelState.SENDING, time.time())
        ttl = self.retention.orders_s
        await self.store.set(_key(attempt.id), attempt.to_json(), ttl)
        await self.store.index_add(_index(order_id), attempt.id, attempt.created, ttl)
        return attempt

    async def end(self, attempt: CancelAttempt) -> None:
        """Store how a cancel ended."""
        await self.store.set(_key(attempt.id), attempt.to_json(), self.retention.orders_s)

    async def of_order(self, order_id: str, limit: int = 20) -> list[CancelAttempt]:
        """An order's cancel attempts, newest first."""
        found = []
        for attempt_id, _ in await self.store.index_page(_index(order_id), limit=limit, descending=True):
            raw = await self.store.get(_key(attempt_id))
            if raw is not None:
                found.append(CancelAttempt.from_json(raw))
        return found
