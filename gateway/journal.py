"""The order journal: every attempt to place an order, written before and after the provider call.

An attempt is `sending` while the provider call runs, then `placed` (with the order),
`rejected` (with the error the client got) or `unknown` (the provider may have placed it). An
Idempotency-Key maps to the attempt it started. Every entry names the client that made it, so
listing orders per client later needs no migration. Unresolved attempts are indexed so that a
later retry or listing can reconcile them with the provider.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway.store import Store

_UNRESOLVED = "order-attempts-unresolved"


def _attempt_key(attempt_id: str) -> str:
    return f"order-attempt:{attempt_id}"


def _idempotency_key(client: str, key: str) -> str:
    return f"idempotency:{client}:{key}"


def _owner_key(order_id: str) -> str:
    return f"order-owner:{order_id}"


def new_attempt(
    client: str, product_id: str, member_id: str, sent: dict[str, Any], digest: str, idempotency_key: str | None
) -> dict[str, Any]:
    """An attempt about to be sent."""
    return {
        "id": uuid.uuid4().hex,
        "client": client,
        "idempotency_key": idempotency_key,
        "product_id": product_id,
        "member": member_id,
        "sent": sent,
        "fingerprint": digest,
        "state": "sending",
        "created": time.time(),
        "order_id": None,
        "order": None,
        "error": None,
    }


class OrderJournal:
    """Attempts, idempotency keys and order ownership in the store."""

    def __init__(self, store: Store, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    async def claim(self, client: str, key: str, attempt_id: str) -> str | None:
        """Bind an idempotency key to an attempt; the attempt it already names, if taken."""
        name = _idempotency_key(client, key)
        if await self.store.set_if_absent(name, attempt_id.encode(), self.ttl_s):
            return None
        existing = await self.store.get(name)
        # The key expired between the two calls: take it again.
        if existing is None:
            return await self.claim(client, key, attempt_id)
        return existing.decode()

    async def release(self, client: str, key: str, attempt_id: str) -> None:
        """Unbind an idempotency key, if it still names this attempt."""
        await self.store.delete_if_equals(_idempotency_key(client, key), attempt_id.encode())

    async def save(self, attempt: dict[str, Any]) -> None:
        """Write an attempt; unresolved ones stay indexed for reconciliation."""
        await self.store.set(_attempt_key(attempt["id"]), orjson.dumps(attempt), self.ttl_s)
        if attempt["state"] in ("sending", "unknown"):
            await self.store.index_add(_UNRESOLVED, attempt["id"], attempt["created"], self.ttl_s)
        else:
            await self.store.index_remove(_UNRESOLVED, attempt["id"])
        if attempt["order_id"]:
            await self.store.set(_owner_key(attempt["order_id"]), attempt["client"].encode(), self.ttl_s)

    async def load(self, attempt_id: str) -> dict[str, Any] | None:
        """An attempt, or None when it expired."""
        data = await self.store.get(_attempt_key(attempt_id))
        return None if data is None else orjson.loads(data)

    async def unresolved(self, limit: int) -> list[dict[str, Any]]:
        """The oldest attempts whose outcome is not known yet."""
        out = []
        for attempt_id, _ in await self.store.index_page(_UNRESOLVED, limit=limit):
            attempt = await self.load(attempt_id)
            if attempt is None:
                await self.store.index_remove(_UNRESOLVED, attempt_id)
            else:
                out.append(attempt)
        return out

    async def owner(self, order_id: str) -> str | None:
        """The client that placed an order through this gateway, if it did."""
        data = await self.store.get(_owner_key(order_id))
        return None if data is None else data.decode()
