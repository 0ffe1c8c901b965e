"""In-process store: the embedded default for a single gateway process.

No method awaits anything, so each one runs to completion without the event loop switching
tasks in between: every operation is atomic with respect to other coroutines and no lock is
needed. (This does not hold across threads or processes; use Redis for those.)

Expiry is lazy (checked on access) plus an occasional sweep, so keys that are written once and
never read again (idempotency keys, say) do not accumulate forever.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field

from gateway.domain.ratelimit import RateLedger, Reservation
from gateway.store.base import (
    DEFAULT_PREFIX,
    STREAM_START,
    IndexPosition,
    StreamEntry,
    check_page,
    check_score,
    check_ttl,
)
from gateway.store.memory_streams import MemoryStreams

# Sweeping costs O(keys); doing it once per this many writes keeps it amortised O(1).
_SWEEP_EVERY = 1024


@dataclass
class _Index:
    scores: dict[str, float] = field(default_factory=dict)
    # Sorted by (score, member): the same order Redis uses, since UTF-8 byte order equals
    # code-point order and Redis breaks score ties by comparing member bytes.
    order: list[tuple[float, str]] = field(default_factory=list)
    deadline: float | None = None


def _deadline(ttl_s: float | None) -> float | None:
    check_ttl(ttl_s)
    return None if ttl_s is None else time.monotonic() + ttl_s


def _alive(deadline: float | None) -> bool:
    return deadline is None or time.monotonic() < deadline


class MemoryStore:
    """A `Store` kept in this process's memory; lost on restart, invisible to other processes."""

    def __init__(self, *, prefix: str = DEFAULT_PREFIX) -> None:
        # Nothing is shared, so the prefix isolates nothing; it is kept for parity with Redis.
        self.prefix = prefix
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._indexes: dict[str, _Index] = {}
        self._writes = 0
        self._streams = MemoryStreams()
        self._rates = RateLedger()

    # --- plain keys ----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        entry = self._live_value(key)
        return None if entry is None else entry[0]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._values[key] = (bytes(value), _deadline(ttl_s))
        self._wrote()

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        deadline = _deadline(ttl_s)
        if self._live_value(key) is not None:
            return False
        self._values[key] = (bytes(value), deadline)
        self._wrote()
        return True

    async def delete(self, key: str) -> bool:
        existed = self._live_value(key) is not None
        self._values.pop(key, None)
        return existed

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        entry = self._live_value(key)
        if entry is None or entry[0] != value:
            return False
        del self._values[key]
        return True

    async def set_if_equals(self, key: str, expected: bytes, value: bytes, ttl_s: float | None = None) -> bool:
        deadline = _deadline(ttl_s)
        entry = self._live_value(key)
        if entry is None or entry[0] != expected:
            return False
        self._values[key] = (bytes(value), deadline)
        self._wrote()
        return True

    # --- sorted indexes ------------------------------------------------------------------

    async def index_add(self, index: str, member: str, score: float, ttl_s: float | None = None) -> None:
        check_score(score)
        deadline = _deadline(ttl_s)
        idx = self._live_index(index)
        if idx is None:
            idx = self._indexes[index] = _Index()
        old = idx.scores.get(member)
        if old is not None:
            idx.order.pop(bisect_left(idx.order, (old, member)))
        idx.scores[member] = score
        insort(idx.order, (score, member))
        # Like ZADD + PEXPIRE: no TTL given leaves the index's current TTL alone.
        if deadline is not None:
            idx.deadline = deadline
        self._wrote()

    async def index_remove(self, index: str, member: str) -> None:
        idx = self._live_index(index)
        if idx is None or member not in idx.scores:
            return
        idx.order.pop(bisect_left(idx.order, (idx.scores.pop(member), member)))
        # Redis deletes an emptied zset, TTL included; mirror that so a later add starts fresh.
        if not idx.scores:
            del self._indexes[index]

    async def index_remove_below(self, index: str, score: float) -> int:
        idx = self._live_index(index)
        if idx is None:
            return 0
        cut = bisect_left(idx.order, (score, ""))
        for _, member in idx.order[:cut]:
            del idx.scores[member]
        del idx.order[:cut]
        if not idx.scores:
            del self._indexes[index]
        return cut

    async def index_page(
        self,
        index: str,
        *,
        limit: int,
        after: IndexPosition | None = None,
        descending: bool = False,
    ) -> list[tuple[str, float]]:
        check_page(limit, after)
        idx = self._live_index(index)
        if idx is None or limit == 0:
            return []
        order = idx.order
        if descending:
            end = len(order) if after is None else bisect_left(order, after)
            chosen = order[max(0, end - limit) : end][::-1]
        else:
            start = 0 if after is None else bisect_right(order, after)
            chosen = order[start : start + limit]
        return [(member, score) for score, member in chosen]

    # --- lifecycle -----------------------------------------------------------------------

    async def ping(self) -> None:
        return None

    async def durability_problems(self) -> list[str]:
        return ["memory:// keeps idempotency keys and the order journal in this process only: a restart forgets them"]

    async def aclose(self) -> None:
        self._values.clear()
        self._indexes.clear()
        self._streams.clear()

    # --- expiry --------------------------------------------------------------------------

    def _live_value(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._values.get(key)
        if entry is not None and not _alive(entry[1]):
            del self._values[key]
            return None
        return entry

    def _live_index(self, index: str) -> _Index | None:
        idx = self._indexes.get(index)
        if idx is not None and not _alive(idx.deadline):
            del self._indexes[index]
            return None
        return idx

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._values = {k: v for k, v in self._values.items() if _alive(v[1])}
            self._indexes = {k: v for k, v in self._indexes.items() if _alive(v.deadline)}

    # --- streams with consumer groups ----------------------------------------------------

    async def stream_add(self, stream: str, fields: dict[str, str]) -> str:
        return self._streams.add(stream, fields)

    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int, block_s: float = 0.0
    ) -> list[StreamEntry]:
        return await self._streams.read(stream, group, consumer, count, block_s)

    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_s: float, count: int, start: str = STREAM_START
    ) -> tuple[str, list[StreamEntry]]:
        return self._streams.claim(stream, group, consumer, min_idle_s, count, start)

    async def stream_ack(self, stream: str, group: str, entry_id: str) -> bool:
        return self._streams.ack(stream, group, entry_id)

    async def stream_prune_consumers(self, stream: str, group: str, *, idle_s: float) -> int:
        return self._streams.prune(stream, group, idle_s)

    # --- counting ------------------------------------------------------------------------

    async def index_count(self, index: str) -> int:
        idx = self._live_index(index)
        return 0 if idx is None else len(idx.scores)

    # --- rate gates ----------------------------------------------------------------------

    async def rate_reserve(self, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        return self._rates.reserve(key, per_s, burst, max_wait_s)
