"""Asynchronous opportunity search records, kept in the store so every replica sees them.

A record is the gateway's own (its id has no provider prefix) and tracks one member per
provider product that takes part: a single product has one member, a federated product one per
member product. Results are stored with a placeholder base URL and given the client's base on
the way out, because the background work that fetches them has no request to take it from.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.store import Store

TERMINAL = frozenset({"completed", "failed", "cancelled"})
BASE_PLACEHOLDER = "stapi-gateway-base:"
_ALL = "searches"
_ACTIVE = "searches-active"


def _record_key(record_id: str) -> str:
    return f"search:{record_id}"


def _result_key(record_id: str, member: int) -> str:
    return f"search-result:{record_id}:{member}"


def _collection_key(record_id: str) -> str:
    return f"search-collection:{record_id}"


def _lock_key(record_id: str) -> str:
    return f"search-lock:{record_id}"


def status(code: str, reason_text: str | None = None) -> dict[str, Any]:
    """An OpportunitySearchStatus stamped now."""
    return {
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "status_code": code,
        "reason_code": None,
        "reason_text": reason_text,
        "links": [],
    }


def new_record(product_id: str, search: dict[str, Any], member_ids: list[str], client: str) -> dict[str, Any]:
    """A freshly received record with one member per provider product, owned by `client`."""
    first = status("received")
    return {
        "id": uuid.uuid4().hex,
        "client": client,
        "product_id": product_id,
        "opportunity_request": {**search, "next": None},
        "statuses": [first],
        "created": time.time(),
        "members": [
            {"product_id": pid, "mode": None, "status": "received", "upstream_id": None, "reason": None, "attempts": 0}
            for pid in member_ids
        ],
    }


def derive_status(members: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The record's status from its members': done when all are; completed if any completed."""
    codes = [m["status"] for m in members]
    if all(code == "received" for code in codes):
        return "received", None
    if not all(code in TERMINAL for code in codes):
        return "in_progress", None
    if "completed" in codes:
        failed = [m["product_id"] for m in members if m["status"] != "completed"]
        return "completed", (f"no results from {', '.join(failed)}" if failed else None)
    if all(code == "cancelled" for code in codes):
        return "cancelled", "every provider cancelled the search"
    reasons = "; ".join(f"{m['product_id']}: {m['reason'] or m['status']}" for m in members)
    return "failed", reasons


def advance_status(record: dict[str, Any]) -> bool:
    """Append a status when the members' state changed the record's; True if it did."""
    code, reason = derive_status(record["members"])
    if record["statuses"][-1]["status_code"] == code:
        return False
    record["statuses"].append(status(code, reason))
    return True


def missing_members(record: dict[str, Any]) -> list[str]:
    """Provider ids of members that ended without results."""
    missing = [m["product_id"].split(":", 1)[0] for m in record["members"] if m["status"] != "completed"]
    return list(dict.fromkeys(missing))


def with_base(data: bytes, base: str) -> Any:
    """Stored JSON with the placeholder base replaced by the client's."""
    return orjson.loads(data.replace(BASE_PLACEHOLDER.encode(), base.encode()))


class SearchRecords:
    """Where records, member results and final collections live in the store."""

    def __init__(self, store: Store, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    async def save(self, record: dict[str, Any], *, due: float | None = None) -> None:
        """Write a record; `due` (epoch seconds) schedules its next refresh, None ends them."""
        await self.store.set(_record_key(record["id"]), orjson.dumps(record), self.ttl_s)
        if due is None:
            await self.store.index_remove(_ACTIVE, record["id"])
        else:
            await self.store.index_add(_ACTIVE, record["id"], due, self.ttl_s)

    async def create(self, record: dict[str, Any]) -> None:
        """Write a new record, list it, and make it due at once."""
        await self.save(record, due=time.time())
        await self.store.index_add(_ALL, record["id"], record["created"], self.ttl_s)

    async def load(self, record_id: str) -> dict[str, Any] | None:
        """A record, or None if it never existed or expired."""
        data = await self.store.get(_record_key(record_id))
        return None if data is None else orjson.loads(data)

    async def page(
        self, *, limit: int, after: tuple[float, str] | None, client: str | None = None
    ) -> list[tuple[dict[str, Any], float]]:
        """Records newest first after a position, only `client`'s if given; expired ones leave the listing."""
        out: list[tuple[dict[str, Any], float]] = []
        while len(out) < limit:
            entries = await self.store.index_page(_ALL, limit=limit - len(out), after=after, descending=True)
            if not entries:
                break
            for record_id, score in entries:
                record = await self.load(record_id)
                if record is None:
                    await self.store.index_remove(_ALL, record_id)
                elif client is None or record.get("client") == client:
                    out.append((record, score))
                after = (score, record_id)
        return out

    async def due(self, limit: int) -> list[str]:
        """Ids of unfinished records whose refresh is due."""
        now = time.time()
        entries = await self.store.index_page(_ACTIVE, limit=limit)
        return [record_id for record_id, score in entries if score <= now]

    async def save_result(self, record_id: str, member: int, features: list[dict[str, Any]]) -> None:
        """One member's namespaced opportunities."""
        await self.store.set(_result_key(record_id, member), orjson.dumps(features), self.ttl_s)

    async def load_result(self, record_id: str, member: int) -> list[dict[str, Any]]:
        """One member's opportunities (empty if it has none)."""
        data = await self.store.get(_result_key(record_id, member))
        return [] if data is None else list(orjson.loads(data))

    async def save_collection(self, record_id: str, collection: dict[str, Any], members: int) -> None:
        """The final, merged collection of a completed search; the members' parts go."""
        await self.store.set(_collection_key(record_id), orjson.dumps(collection), self.ttl_s)
        for index in range(members):
            await self.store.delete(_result_key(record_id, index))

    async def load_collection(self, record_id: str) -> bytes | None:
        """The stored collection, still with the placeholder base."""
        return await self.store.get(_collection_key(record_id))

    async def lock(self, record_id: str, ttl_s: float) -> bytes | None:
        """Take the record's work lock; the token to release it, or None if another holds it."""
        token = uuid.uuid4().bytes
        return token if await self.store.set_if_absent(_lock_key(record_id), token, ttl_s) else None

    async def unlock(self, record_id: str, token: bytes) -> None:
        """Release the lock if it is still ours."""
        await self.store.delete_if_equals(_lock_key(record_id), token)
