"""The Redis store's streams: XADD, XREADGROUP (creating the group on first use), XAUTOCLAIM, XACK+XDEL.

Plain functions on a `redis.asyncio` client (one Redis, a Sentinel primary or a Cluster: each
call touches one key); `RedisStore` names the keys and turns failures into `StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from redis.exceptions import ResponseError

from gateway.store.base import STREAM_START, StreamEntry
from gateway.store.redis_urls import RedisClient

# A blocking read must answer before the client's 2 s socket timeout takes it for a dead server.
MAX_BLOCK_S = 1.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(raw: Iterable[Any]) -> list[StreamEntry]:
    # redis-py parses each entry to (id, {field: value}); a deleted one may come back without fields.
    return [
        StreamEntry(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
        for entry_id, fields in raw
        if fields is not None
    ]


async def add(redis: RedisClient, name: str, fields: dict[str, str]) -> str:
    """XADD; the new entry's id."""
    return _text(await redis.xadd(name, cast("Any", fields)))


async def _create_group(redis: RedisClient, name: str, group: str) -> None:
    try:
        # From id 0: entries added before any reader existed are read too.
        await redis.xgroup_create(name, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read(
    redis: RedisClient, name: str, group: str, consumer: str, count: int, block_s: float
) -> list[StreamEntry]:
    """XREADGROUP of new entries (`>`), creating the group if the stream or group is missing."""
    # BLOCK 0 would wait for ever; here 0 means not to block at all.
    block = None if block_s <= 0 else max(1, int(min(block_s, MAX_BLOCK_S) * 1000))
    try:
        answer = await redis.xreadgroup(group, consumer, {name: ">"}, count=count, block=block)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        await _create_group(redis, name, group)
        answer = await redis.xreadgroup(group, consumer, {name: ">"}, count=count, block=block)
    # RESP2 answers [[stream, entries]], RESP3 {stream: [entries]}; None when nothing came.
    if not answer:
        return []
    if isinstance(answer, dict):
        return [entry for found in answer.values() for entry in _entries(found[0])]
    return [entry for _, found in answer for entry in _entries(found)]


async def claim(
    redis: RedisClient, name: str, group: str, consumer: str, min_idle_s: float, count: int, start: str
) -> tuple[str, list[StreamEntry]]:
    """XAUTOCLAIM: the next start and the entries claimed (none while the group does not exist)."""
    idle_ms = max(0, int(min_idle_s * 1000))
    try:
        answer = await redis.xautoclaim(name, group, consumer, idle_ms, start, count=count)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        return STREAM_START, []
    return _text(answer[0]), _entries(answer[1])


async def ack(redis: RedisClient, name: str, group: str, entry_id: str) -> bool:
    """XACK and XDEL in one transaction: True if the entry was pending."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(name, group, entry_id)
        pipe.xdel(name, entry_id)
        acked, _ = await pipe.execute()
    return bool(acked)


async def prune(redis: RedisClient, name: str, group: str, idle_s: float) -> int:
    """Delete the group's consumers idle `idle_s` or more with no pending entry; how many.

    Not atomic, and need not be: a live consumer reads at least every few seconds, so one idle
    for far longer is gone, and one holding entries is never deleted (that would orphan them).
    """
    try:
        consumers = await redis.xinfo_consumers(name, group)
    except ResponseError as exc:
        if "NOGROUP" in str(exc) or "no such key" in str(exc):
            return 0
        raise
    dropped = 0
    for consumer in consumers:
        if int(consumer["pending"]) == 0 and int(consumer["idle"]) >= idle_s * 1000:
            await redis.xgroup_delconsumer(name, group, _text(consumer["name"]))
            dropped += 1
    return dropped
