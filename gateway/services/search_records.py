"""Where asynchronous search records live: the store, so every replica sees them.

The records themselves are typed data in gateway/domain/records.py, which also owns their stored
form. Results are stored with a placeholder base URL and given the client's base on the way
out, because the background work that fetches them has no request to take it from.

Each member's results are kept page by page as they are fetched (a page fetched again after a
crash overwrites itself), and a completed search's merged collection in chunks of
`CHUNK` opportunities, so serving one page of it reads at most two chunks.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway.domain.records import BASE_PLACEHOLDER, MemberState, SearchRecord, decode_record, encode_record
from gateway.store import Store

CHUNK = 100
_ALL = "searches"
_ACTIVE = "searches-active"


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

    async def save(self, record: SearchRecord, *, due: float | None = None) -> None:
        """Write a record; `due` (epoch seconds) schedules its next refresh, None ends them."""
        await self.store.set(_record_key(record.id), encode_record(record), self.ttl_s)
        if due is None:
            await self.unschedule(record.id)
        else:
            await self.postpone(record.id, due)

    async def unschedule(self, record_id: str) -> None:
        """End a record's refreshes (it is finished, or gone) without writing it."""
        await self.store.index_remove(_ACTIVE, record_id)

    async def postpone(self, record_id: str, due: float) -> None:
        """Move a record's next refresh to `due` without writing it."""
        await self.store.index_add(_ACTIVE, record_id, due, self.ttl_s)

    async def create(self, record: SearchRecord) -> None:
        """Write a new record, list it, and make it due at once."""
        await self.save(record, due=time.time())
        await self.store.index_add(_ALL, record.id, record.created, self.ttl_s)
        # Records are listed for their TTL after creation; older entries would only pile up.
        await self.store.index_remove_below(_ALL, time.time() - self.ttl_s)

    async def load(self, record_id: str) -> SearchRecord | None:
        """A record, or None if it never existed or expired."""
        data = await self.store.get(_record_key(record_id))
        return None if data is None else decode_record(data)

    async def page(
        self, *, limit: int, after: tuple[float, str] | None, client: str | None = None
    ) -> list[tuple[SearchRecord, float]]:
        """Records newest first after a position, only `client`'s if given; expired ones leave the listing."""
        out: list[tuple[SearchRecord, float]] = []
        while len(out) < limit:
            entries = await self.store.index_page(_ALL, limit=limit - len(out), after=after, descending=True)
            if not entries:
                break
            for record_id, score in entries:
                record = await self.load(record_id)
                if record is None:
                    await self.store.index_remove(_ALL, record_id)
                elif client is None or record.client == client:
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

    async def load_results(self, record_id: str, member_id: str, state: MemberState) -> list[dict[str, Any]]:
        """Every opportunity kept for one member, in the order fetched."""
        keys = [_page_key(record_id, member_id, n) for n in range(state.pages)]
        if state.legacy_result is not None:
            keys.insert(0, _legacy_result_key(record_id, state.legacy_result))
        features: list[dict[str, Any]] = []
        for key in keys:
            data = await self.store.get(key)
            features.extend(orjson.loads(data) if data is not None else [])
        return features

    async def save_collection(
        self, record: SearchRecord, header: dict[str, Any], features: list[dict[str, Any]]
    ) -> None:
        """The final, merged collection of a completed search, in chunks; the members' pages go.

        The header is written last, so a reader that finds it finds every chunk.
        """
        record_id = record.id
        chunks = _chunks(features)
        for number, chunk in enumerate(chunks):
            await self.store.set(_chunk_key(record_id, number), orjson.dumps(chunk), self.ttl_s)
        stored = {**header, "numberMatched": len(features), "chunks": len(chunks)}
        await self.store.set(_collection_key(record_id), orjson.dumps(stored), self.ttl_s)
        for member_id, state in record.members.items():
            for number in range(state.pages):
                await self.store.delete(_page_key(record_id, member_id, number))
            if state.legacy_result is not None:
                await self.store.delete(_legacy_result_key(record_id, state.legacy_result))

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
