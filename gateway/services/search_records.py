"""Asynchronous opportunity search records, kept in the store so every replica sees them.

A record is the gateway's own (its id has no provider prefix) and tracks one member per
provider product that takes part: a single product has one member, a federated product one per
member product. Members are keyed by their namespaced product id and remembered by the record,
so a reload that changes a federated product's members lets open records finish with the ones
they started with. Results are stored with a placeholder base URL and given the client's base on
the way out, because the background work that fetches them has no request to take it from.

Each member's results are kept page by page as they are fetched (a page fetched again after a
crash overwrites itself), and a completed search's merged collection in chunks of
`CHUNK` opportunities, so serving one page of it reads at most two chunks.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.domain.records import BASE_PLACEHOLDER
from gateway.store import Store

TERMINAL = frozenset({"completed", "failed", "cancelled"})

CHUNK = 100
_ALL = "searches"
_ACTIVE = "searches-active"
# A member's state: how it searches, where it stands, and how far its results were fetched
# (`page` is the provider's token of the next page to fetch, `pages` how many were kept).
_MEMBER: dict[str, Any] = {
    "mode": None,
    "status": "received",
    "upstream_id": None,
    "reason": None,
    "attempts": 0,
    "collection_id": None,
    "page": None,
    "pages": 0,
    "count": 0,
    "truncated": False,
    # Providers an upstream gateway's result pages said they lack (that gateway's ids).
    "missing": [],
}


def _record_key(record_id: str) -> str:
    return f"search:{record_id}"


def _page_key(record_id: str, member_id: str, number: int) -> str:
    return f"search-result:{record_id}:{member_id}:{number}"


def _legacy_result_key(record_id: str, index: int) -> str:
    # Where the previous layout kept a member's whole result, by the member's list position.
    return f"search-result:{record_id}:{index}"


def _collection_key(record_id: str) -> str:
    return f"search-collection:{record_id}"


def _chunk_key(record_id: str, number: int) -> str:
    return f"search-collection:{record_id}:{number}"


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
        "members": {pid: {**_MEMBER, "missing": []} for pid in member_ids},
    }


def migrated(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record in this layout: one written when members were a list (matched by position)
    is keyed by member product id, and a completed member's result is found where it was."""
    members = record["members"]
    if isinstance(members, list):
        keyed: dict[str, Any] = {}
        for index, old in enumerate(members):
            state = {key: value for key, value in old.items() if key != "product_id"}
            if state.get("status") == "completed":
                state["legacy_result"] = index
            keyed[old["product_id"]] = state
        record["members"] = members = keyed
    for state in members.values():
        for key, value in _MEMBER.items():
            state.setdefault(key, list(value) if isinstance(value, list) else value)
    return record


def derive_status(members: dict[str, dict[str, Any]]) -> tuple[str, str | None]:
    """The record's status from its members': done when all are; completed if any completed."""
    codes = [m["status"] for m in members.values()]
    if all(code == "received" for code in codes):
        return "received", None
    if not all(code in TERMINAL for code in codes):
        return "in_progress", None
    if "completed" in codes:
        failed = [pid for pid, m in members.items() if m["status"] != "completed"]
        cut = [pid for pid, m in members.items() if m["status"] == "completed" and m["truncated"]]
        notes = [f"no results from {', '.join(failed)}"] if failed else []
        if cut:
            notes.append(f"not every result kept from {', '.join(cut)}")
        return "completed", "; ".join(notes) or None
    if all(code == "cancelled" for code in codes):
        return "cancelled", "every provider cancelled the search"
    reasons = "; ".join(f"{pid}: {m['reason'] or m['status']}" for pid, m in members.items())
    return "failed", reasons


def advance_status(record: dict[str, Any]) -> bool:
    """Append a status when the members' state changed the record's; True if it did."""
    code, reason = derive_status(record["members"])
    if record["statuses"][-1]["status_code"] == code:
        return False
    record["statuses"].append(status(code, reason))
    return True


def missing_members(record: dict[str, Any]) -> list[str]:
    """Provider ids of members that ended without results, and the providers an upstream gateway
    said a member's result lacks, namespaced (`g1:bravo`)."""
    missing = [pid.split(":", 1)[0] for pid, m in record["members"].items() if m["status"] != "completed"]
    for member_id, state in record["members"].items():
        if state["status"] == "completed":
            provider = member_id.split(":", 1)[0]
            missing.extend(f"{provider}:{behind}" for behind in state.get("missing") or [])
    return list(dict.fromkeys(missing))


def with_base(data: bytes, base: str) -> Any:
    """Stored JSON with the placeholder base replaced by the client's."""
    return orjson.loads(data.replace(BASE_PLACEHOLDER.encode(), base.encode()))


def _chunks(features: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [features[start : start + CHUNK] for start in range(0, len(features), CHUNK)]


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
        return None if data is None else migrated(orjson.loads(data))

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

    async def save_page(self, record_id: str, member_id: str, number: int, features: list[dict[str, Any]]) -> None:
        """One fetched page of a member's namespaced opportunities."""
        await self.store.set(_page_key(record_id, member_id, number), orjson.dumps(features), self.ttl_s)

    async def load_results(self, record_id: str, member_id: str, state: dict[str, Any]) -> list[dict[str, Any]]:
        """Every opportunity kept for one member, in the order fetched."""
        keys = [_page_key(record_id, member_id, n) for n in range(state["pages"])]
        if state.get("legacy_result") is not None:
            keys.insert(0, _legacy_result_key(record_id, state["legacy_result"]))
        features: list[dict[str, Any]] = []
        for key in keys:
            data = await self.store.get(key)
            features.extend(orjson.loads(data) if data is not None else [])
        return features

    async def save_collection(
        self, record: dict[str, Any], header: dict[str, Any], features: list[dict[str, Any]]
    ) -> None:
        """The final, merged collection of a completed search, in chunks; the members' pages go.

        The header is written last, so a reader that finds it finds every chunk.
        """
        record_id = record["id"]
        chunks = _chunks(features)
        for number, chunk in enumerate(chunks):
            await self.store.set(_chunk_key(record_id, number), orjson.dumps(chunk), self.ttl_s)
        stored = {**header, "numberMatched": len(features), "chunks": len(chunks)}
        await self.store.set(_collection_key(record_id), orjson.dumps(stored), self.ttl_s)
        for member_id, state in record["members"].items():
            for number in range(state["pages"]):
                await self.store.delete(_page_key(record_id, member_id, number))
            if state.get("legacy_result") is not None:
                await self.store.delete(_legacy_result_key(record_id, state["legacy_result"]))

    async def load_collection(self, record_id: str, base: str, offset: int, limit: int) -> dict[str, Any] | None:
        """`limit` opportunities of a stored collection from `offset`, with the client's base;
        `numberMatched` tells how many it holds. None if there is none (yet)."""
        data = await self.store.get(_collection_key(record_id))
        if data is None:
            return None
        collection: dict[str, Any] = with_base(data, base)
        if "features" in collection:
            # The previous layout kept the whole collection in one value.
            collection.setdefault("numberMatched", len(collection["features"]))
            collection["features"] = collection["features"][offset : offset + limit]
            return collection
        features: list[dict[str, Any]] = []
        first, last = offset // CHUNK, (offset + limit - 1) // CHUNK
        for number in range(first, min(last + 1, collection.pop("chunks"))):
            chunk = await self.store.get(_chunk_key(record_id, number))
            features.extend(with_base(chunk, base) if chunk is not None else [])
        start = offset - first * CHUNK
        collection["features"] = features[start : start + limit]
        return collection

    async def lock(self, record_id: str, ttl_s: float) -> bytes | None:
        """Take the record's work lock; the token to release it, or None if another holds it."""
        token = uuid.uuid4().bytes
        return token if await self.store.set_if_absent(_lock_key(record_id), token, ttl_s) else None

    async def unlock(self, record_id: str, token: bytes) -> None:
        """Release the lock if it is still ours."""
        await self.store.delete_if_equals(_lock_key(record_id), token)
