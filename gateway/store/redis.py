"""Redis-backed store, shared by every gateway process pointed at the same server.

Keys are `<prefix>kv:<key>` and indexes (ZSETs) `<prefix>ix:<index>`, so the two namespaces
cannot collide. Every redis-py failure leaves this module as `StoreUnavailable`, worded from a
redacted copy of the URL so a password never reaches logs or HTTP responses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit

from redis.exceptions import (
    CrossSlotTransactionError,
    InvalidPipelineStack,
    RedisClusterException,
    RedisError,
)

from gateway.domain.errors import StoreUnavailable
from gateway.domain.ratelimit import Reservation, check_rate
from gateway.store import redis_durability, redis_rates, redis_streams
from gateway.store.base import (
    DEFAULT_PREFIX,
    STREAM_START,
    IndexPosition,
    StreamEntry,
    check_page,
    check_score,
    check_ttl,
)
from gateway.store.redis_urls import Connection

# A lock must only be released by its owner: GET and DEL have to happen as one step.
_DELETE_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Compare-and-set: replace only what the caller read. ARGV[3] is the TTL in ms, or "" for none.
_SET_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
return 0
"""


def redact_url(url: str) -> str:
    """The URL without its user-info, safe to show in logs and error messages."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host, query="", fragment="").geturl()


def ttl_ms(ttl_s: float | None) -> int | None:
    """A TTL in seconds (checked) as the whole milliseconds PX takes, or None for no TTL."""
    check_ttl(ttl_s)
    # PX takes whole milliseconds and refuses 0; round up so a key never outlives nothing.
    return None if ttl_s is None else max(1, math.ceil(ttl_s * 1000))


def _rows(raw: Iterable[Any]) -> list[tuple[str, float]]:
    # RESP2 answers (member, score) tuples, RESP3 [member, score] lists: unpacking takes both.
    return [(member.decode(), float(score)) for member, score in raw]


class RedisStore:
    """A `Store` on one Redis, a Sentinel-managed primary or a Redis Cluster, via `redis.asyncio`.

    Cluster-safe by construction: every operation touches exactly one key (see gateway/store/base.py).
    """

    def __init__(self, connection: Connection, *, prefix: str = DEFAULT_PREFIX, label: str = "redis") -> None:
        """Wrap `connection`, whose client must not use decode_responses; `label` names it in errors."""
        self.prefix = prefix
        self._redis = connection.client
        self._connection = connection
        self._label = label
        self._delete_if_equals = self._redis.register_script(_DELETE_IF_EQUALS)
        self._set_if_equals = self._redis.register_script(_SET_IF_EQUALS)
        self._rate_script = redis_rates.script_of(self._redis)

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (CrossSlotTransactionError, InvalidPipelineStack):
            raise  # a multi-key bug in this module, not an outage: let it fail loudly
        except (RedisError, RedisClusterException, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            # Redis never echoes a password, but scrub them from messages in case a future one does.
            for secret in self._connection.secrets:
                reason = reason.replace(secret, "***")
            raise StoreUnavailable(f"State store {self._label} unavailable during {operation}: {reason}") from exc

    def _kv(self, key: str) -> str:
        return f"{self.prefix}kv:{key}"

    def _ix(self, index: str) -> str:
        return f"{self.prefix}ix:{index}"

    # --- plain keys ----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        with self._translated("get"):
            # Values stay bytes because the client never sets decode_responses (see __init__).
            return cast("bytes | None", await self._redis.get(self._kv(key)))

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = ttl_ms(ttl_s)
        with self._translated("set"):
            await self._redis.set(self._kv(key), value, px=px)

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        px = ttl_ms(ttl_s)
        with self._translated("set_if_absent"):
            return bool(await self._redis.set(self._kv(key), value, nx=True, px=px))

    async def delete(self, key: str) -> bool:
        with self._translated("delete"):
            return bool(await self._redis.delete(self._kv(key)))

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        with self._translated("delete_if_equals"):
            return bool(await self._delete_if_equals(keys=[self._kv(key)], args=[value]))

    async def set_if_equals(self, key: str, expected: bytes, value: bytes, ttl_s: float | None = None) -> bool:
        px = ttl_ms(ttl_s)
        with self._translated("set_if_equals"):
            args: list[bytes | str] = [expected, value, "" if px is None else str(px)]
            return bool(await self._set_if_equals(keys=[self._kv(key)], args=args))

    # --- sorted indexes ------------------------------------------------------------------

    async def index_add(self, index: str, member: str, score: float, ttl_s: float | None = None) -> None:
        check_score(score)
        px = ttl_ms(ttl_s)
        name = self._ix(index)
        with self._translated("index_add"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(name, {member: score})
                if px is not None:
                    pipe.pexpire(name, px)
                await pipe.execute()

    async def index_remove(self, index: str, member: str) -> None:
        with self._translated("index_remove"):
            await self._redis.zrem(self._ix(index), member)

    async def index_remove_below(self, index: str, score: float) -> int:
        with self._translated("index_remove_below"):
            return int(await self._redis.zremrangebyscore(self._ix(index), "-inf", f"({score!r}"))

    async def index_page(
        self,
        index: str,
        *,
        limit: int,
        after: IndexPosition | None = None,
        descending: bool = False,
    ) -> list[tuple[str, float]]:
        """Page through the ZSET in (score, member) order; see the comment below for `after`."""
        check_page(limit, after)
        if limit == 0:
            return []
        name = self._ix(index)
        with self._translated("index_page"):
            if after is None:
                return _rows(await self._redis.zrange(name, 0, limit - 1, desc=descending, withscores=True))
            # Redis orders equal scores by member bytes, but no single command starts a range
            # mid-way through a tie. So, in one MULTI for a consistent snapshot, read the whole
            # tie group at the cursor's score and filter it here, then up to `limit` members
            # strictly beyond that score. Tie groups are expected to be small (timestamps); a
            # huge one costs a large read, never a wrong page. repr() round-trips the float
            # exactly, and UTF-8 byte order equals str order, so the filter agrees with Redis.
            score, member = after
            at = repr(float(score))
            beyond = ("(" + at, "-inf") if descending else ("(" + at, "+inf")
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrange(name, at, at, desc=descending, withscores=True, byscore=True)
                pipe.zrange(name, *beyond, desc=descending, withscores=True, byscore=True, offset=0, num=limit)
                ties_raw, rest_raw = await pipe.execute()
        ties = [row for row in _rows(ties_raw) if (row[0] < member if descending else row[0] > member)]
        return (ties + _rows(rest_raw))[:limit]

    # --- lifecycle -----------------------------------------------------------------------

    async def ping(self) -> None:
        with self._translated("ping"):
            await self._redis.ping()

    async def durability_problems(self) -> list[str]:
        """Compare each primary's persistence and eviction settings with what idempotency needs."""
        with self._translated("config_get"):
            return await redis_durability.problems(self._redis, self._label)

    async def aclose(self) -> None:
        with self._translated("aclose"):
            await self._redis.aclose()
            for companion in self._connection.companions:
                await companion.aclose()

    # --- streams with consumer groups: keys `<prefix>st:<stream>` ----------------------------

    async def stream_add(self, stream: str, fields: dict[str, str]) -> str:
        with self._translated("stream_add"):
            return await redis_streams.add(self._redis, f"{self.prefix}st:{stream}", fields)

    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int, block_s: float = 0.0
    ) -> list[StreamEntry]:
        with self._translated("stream_read"):
            return await redis_streams.read(self._redis, f"{self.prefix}st:{stream}", group, consumer, count, block_s)

    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_s: float, count: int, start: str = STREAM_START
    ) -> tuple[str, list[StreamEntry]]:
        name = f"{self.prefix}st:{stream}"
        with self._translated("stream_claim"):
            return await redis_streams.claim(self._redis, name, group, consumer, min_idle_s, count, start)

    async def stream_ack(self, stream: str, group: str, entry_id: str) -> bool:
        with self._translated("stream_ack"):
            return await redis_streams.ack(self._redis, f"{self.prefix}st:{stream}", group, entry_id)

    async def stream_prune_consumers(self, stream: str, group: str, *, idle_s: float) -> int:
        with self._translated("stream_prune_consumers"):
            return await redis_streams.prune(self._redis, f"{self.prefix}st:{stream}", group, idle_s)

    # --- counting ------------------------------------------------------------------------

    async def index_count(self, index: str) -> int:
        with self._translated("index_count"):
            return int(await self._redis.zcard(self._ix(index)))

    # --- rate gates: keys `<prefix>rl:<key>`, one key per script (cluster-safe) ---------------

    async def rate_reserve(self, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        check_rate(per_s, burst, max_wait_s)
        with self._translated("rate_reserve"):
            return await redis_rates.reserve(self._rate_script, f"{self.prefix}rl:{key}", per_s, burst, max_wait_s)
