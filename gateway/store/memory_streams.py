"""The memory store's streams: Redis Streams' consumer-group semantics, in this process.

What the delivery queue relies on is kept: ids increase, a group reads each entry once (from
the stream's start when the group is new), read entries stay pending for their consumer until
acknowledged, and pending entries idle long enough can be claimed by another consumer. Like the
rest of the memory store, no method awaits between reading and writing, so each is atomic.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from gateway.store.base import STREAM_START, StreamEntry

StreamId = tuple[int, int]


@dataclass
class _Pending:
    consumer: str
    # When it was last given to a consumer (monotonic): its idle time counts from here.
    since: float


@dataclass
class _Group:
    # The last entry given to any consumer: reads of new entries start after it.
    last: StreamId = (0, 0)
    pending: dict[StreamId, _Pending] = field(default_factory=dict)
    # When each consumer last read or claimed (monotonic), like XINFO CONSUMERS' idle time.
    seen: dict[str, float] = field(default_factory=dict)


@dataclass
class _Stream:
    # Insertion order is id order: ids only ever increase.
    entries: dict[StreamId, dict[str, str]] = field(default_factory=dict)
    last: StreamId = (0, 0)
    groups: dict[str, _Group] = field(default_factory=dict)


def parse_id(entry_id: str) -> StreamId:
    """A `<ms>-<seq>` id as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def format_id(entry_id: StreamId) -> str:
    """A pair as a `<ms>-<seq>` id."""
    return f"{entry_id[0]}-{entry_id[1]}"


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class MemoryStreams:
    """Every stream of one memory store."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        # Readers blocked in `read`, woken by the next `add` (each a future of its own loop).
        self._waiters: set[asyncio.Future[None]] = set()

    def clear(self) -> None:
        """Forget every stream."""
        self._streams.clear()

    def add(self, stream: str, fields: dict[str, str]) -> str:
        """Append an entry; its id."""
        found = self._streams.setdefault(stream, _Stream())
        ms = int(time.time() * 1000)
        # Like Redis: the clock's millisecond, or the last id's plus one step if the clock lags.
        new = (ms, 0) if ms > found.last[0] else (found.last[0], found.last[1] + 1)
        found.entries[new] = dict(fields)
        found.last = new
        for waiter in self._waiters:
            if not waiter.done():
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)
        return format_id(new)

    async def read(self, stream: str, group: str, consumer: str, count: int, block_s: float) -> list[StreamEntry]:
        """New entries for `consumer`, waiting up to `block_s` for one if there are none."""
        got = self._read_new(stream, group, consumer, count)
        if got or block_s <= 0:
            return got
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=block_s)
        finally:
            self._waiters.discard(waiter)
            waiter.cancel()
        return self._read_new(stream, group, consumer, count)

    def claim(
        self, stream: str, group: str, consumer: str, min_idle_s: float, count: int, start: str
    ) -> tuple[str, list[StreamEntry]]:
        """XAUTOCLAIM: pending entries idle for `min_idle_s`, from `start`, given to `consumer`."""
        found = self._streams.get(stream)
        held = None if found is None else found.groups.get(group)
        if found is None or held is None:
            return STREAM_START, []
        now = time.monotonic()
        held.seen[consumer] = now
        first = parse_id(start)
        claimed: list[StreamEntry] = []
        for entry_id in sorted(i for i in held.pending if i >= first):
            if len(claimed) == count:
                return format_id(entry_id), claimed
            if now - held.pending[entry_id].since < min_idle_s:
                continue
            fields = found.entries.get(entry_id)
            if fields is None:
                # Deleted without an ack: Redis 7 drops such entries from the pending list here.
                del held.pending[entry_id]
                continue
            held.pending[entry_id] = _Pending(consumer, now)
            claimed.append(StreamEntry(format_id(entry_id), dict(fields)))
        return STREAM_START, claimed

    def ack(self, stream: str, group: str, entry_id: str) -> bool:
        """XACK and XDEL: True if the entry was pending."""
        found = self._streams.get(stream)
        if found is None:
            return False
        key = parse_id(entry_id)
        held = found.groups.get(group)
        acked = held is not None and held.pending.pop(key, None) is not None
        found.entries.pop(key, None)
        return acked

    def _read_new(self, stream: str, group: str, consumer: str, count: int) -> list[StreamEntry]:
        found = self._streams.setdefault(stream, _Stream())
        held = found.groups.setdefault(group, _Group())
        got: list[StreamEntry] = []
        now = time.monotonic()
        held.seen[consumer] = now
        for entry_id, fields in found.entries.items():
            if len(got) == count:
                break
            if entry_id <= held.last:
                continue
            held.last = entry_id
            held.pending[entry_id] = _Pending(consumer, now)
            got.append(StreamEntry(format_id(entry_id), dict(fields)))
        return got

    def prune(self, stream: str, group: str, idle_s: float) -> int:
        """XGROUP DELCONSUMER of every consumer idle `idle_s` or more that holds no pending entry."""
        found = self._streams.get(stream)
        held = None if found is None else found.groups.get(group)
        if held is None:
            return 0
        holding = {p.consumer for p in held.pending.values()}
        now = time.monotonic()
        gone = [c for c, at in held.seen.items() if c not in holding and now - at >= idle_s]
        for consumer in gone:
            del held.seen[consumer]
        return len(gone)
