"""The contract every state store honours, whatever holds the bytes.

Keys and index names are plain strings chosen by the caller; each store puts them under its
own prefix (default `DEFAULT_PREFIX`), so several gateways can share one Redis. Plain keys and
indexes live in separate namespaces: a key and an index may share a name without clashing.

Every failure to reach or use the backing service is raised as `gateway.domain.errors.StoreUnavailable`.

Cluster safety (a `redis+cluster://` store spreads keys over nodes by hash slot): every operation
here touches exactly one Redis key. A Lua script gets that key in KEYS and never builds a key
name inside the script; a MULTI or pipeline only batches commands on that one key. An operation
that must touch several keys atomically (a script, a MULTI, WATCH) has to put them in one hash
slot: give them the same hash tag, `{...}`, as the part of the name Redis hashes (e.g.
`<prefix>kv:{order:123}:state` and `<prefix>kv:{order:123}:lock`), and say so where it is
defined. The prefix must hold no `{`, or it would become every key's tag and put them all on one node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from gateway.domain.ratelimit import Reservation

DEFAULT_PREFIX = "stapi-gw:"

#: A position in an index: (score, member). Pages resume strictly after one.
IndexPosition = tuple[float, str]
#: Where a scan of a stream's pending entries starts; also what a finished scan answers.
STREAM_START = "0-0"


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of a stream: its id (`<ms>-<seq>`, increasing) and its fields."""

    id: str
    fields: dict[str, str]


class Store(Protocol):
    """Async key/value store with TTLs, atomic lock primitives and sorted indexes."""

    async def get(self, key: str) -> bytes | None:
        """Return the value stored under `key`, or None if absent or expired."""

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store `value`; without `ttl_s` the key never expires (any previous TTL is dropped)."""

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        """Atomically store `value` only if `key` is absent; True if this call stored it."""

    async def delete(self, key: str) -> bool:
        """Remove `key`; True if it existed."""

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Atomically remove `key` only if it currently holds `value`; True if removed."""

    async def set_if_equals(self, key: str, expected: bytes, value: bytes, ttl_s: float | None = None) -> bool:
        """Atomically replace `key`'s value only if it currently holds `expected`; True if replaced.

        The compare-and-set that state transitions rely on: a writer that read an old value
        can never overwrite what another writer stored since.
        """

    async def index_add(self, index: str, member: str, score: float, ttl_s: float | None = None) -> None:
        """Add `member` (or move it) to `index` at `score`; `ttl_s` (re)sets the whole index's TTL."""

    async def index_remove(self, index: str, member: str) -> None:
        """Remove `member` from `index` (no error if it is not there)."""

    async def index_remove_below(self, index: str, score: float) -> int:
        """Remove every member scored below `score` (entries whose records have expired); how many."""

    async def index_page(
        self,
        index: str,
        *,
        limit: int,
        after: IndexPosition | None = None,
        descending: bool = False,
    ) -> list[tuple[str, float]]:
        """Up to `limit` (member, score) pairs ordered by (score, member), strictly after `after`."""

    async def ping(self) -> None:
        """Return if the store is usable, raise StoreUnavailable otherwise."""

    async def durability_problems(self) -> list[str]:
        """Why keys written now might be lost later (restart, eviction); empty when none is known."""

    async def aclose(self) -> None:
        """Release connections; the store must not be used afterwards."""

    # --- streams with consumer groups (Redis Streams semantics) ---------------------------

    async def stream_add(self, stream: str, fields: dict[str, str]) -> str:
        """Append an entry to `stream` (created if missing); its id."""

    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int, block_s: float = 0.0
    ) -> list[StreamEntry]:
        """Up to `count` entries no consumer of `group` was given yet, now pending for `consumer`.

        The group is created (reading from the stream's start) if it does not exist. With
        `block_s` > 0 and nothing new, waits up to that long for an entry to arrive.
        """

    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_s: float, count: int, start: str = STREAM_START
    ) -> tuple[str, list[StreamEntry]]:
        """Take over up to `count` pending entries of `group` idle for `min_idle_s` or more.

        Scans the pending entries from id `start`; answers where the next scan should start
        (`STREAM_START` when this one reached the end) and the entries claimed, now pending for
        `consumer` with their idle time reset. Never-acknowledged entries of a dead consumer
        are how another one finds its work.
        """

    async def stream_ack(self, stream: str, group: str, entry_id: str) -> bool:
        """Acknowledge an entry and delete it from the stream; True if it was pending."""

    async def stream_prune_consumers(self, stream: str, group: str, *, idle_s: float) -> int:
        """Forget the group's consumers idle for `idle_s` or more that hold no pending entry (replicas
        long gone, each of which joined under a name of its own); how many were forgotten."""

    async def index_count(self, index: str) -> int:
        """How many members `index` holds (0 when it does not exist); one cheap call, whatever the size."""

    # --- rate gates ---------------------------------------------------------------------------

    async def rate_reserve(self, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        """Reserve the next slot of the rate gate `key` (`per_s` a second, `burst` at once), atomically.

        Granted when the slot comes within `max_wait_s`: the caller sleeps `wait_s` and goes, with
        no second call. Otherwise nothing is reserved and `wait_s` says when a slot would be free.
        One gate for every process that shares the store (gateway/domain/ratelimit.py `gcra`).
        """


def check_ttl(ttl_s: float | None) -> None:
    """Reject TTLs that no backend can honour, so both implementations fail the same way."""
    if ttl_s is not None and not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"ttl_s must be a positive finite number of seconds, got {ttl_s!r}")


def check_page(limit: int, after: IndexPosition | None) -> None:
    """Reject page requests the implementations would otherwise answer inconsistently."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if after is not None and math.isnan(after[0]):
        raise ValueError("after score must not be NaN")


def check_score(score: float) -> None:
    """Redis refuses NaN scores; refuse them everywhere so the memory store agrees."""
    if math.isnan(score):
        raise ValueError("index score must not be NaN")
