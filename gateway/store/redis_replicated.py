"""A RedisStore whose writes count only once `wait_replicas` replicas acknowledged them (WAIT).

Redis replicates asynchronously: a write the primary acknowledged just before dying can be missing
on the replica Sentinel promotes, and an idempotency key or journal entry that vanishes lets a
retry place a paid order twice. Here every write is followed by WAIT on the same connection, and
one that too few replicas acknowledged in time raises `StoreUnavailable`, so the gateway never
calls a provider on the strength of it. Such a write did happen on the primary: like any
`StoreUnavailable`, its outcome is unknown to the caller, who retries with the same key.

Reads are as in `RedisStore`, and so are the stream reads' delivery bookkeeping (consumer groups
and pending entries) and the pruning of long-gone consumers: losing those redelivers an entry, which
at-least-once delivery allows, or leaves a dead name to be pruned again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from gateway.domain.errors import StoreUnavailable
from gateway.domain.ratelimit import Reservation, check_rate
from gateway.store import redis_rates
from gateway.store.base import DEFAULT_PREFIX, check_score
from gateway.store.redis import RedisStore, ttl_ms
from gateway.store.redis_urls import Connection
from gateway.store.redis_wait import Command, ReplicaWait, script_then_wait, write_then_wait

# RedisStore adds a member and refreshes the TTL in MULTI; WAIT cannot follow an EXEC in the same
# pipeline's answer, so here the same two steps are one script. ARGV[3] is the TTL in ms or "".
_INDEX_ADD = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
"""

# XACK and XDEL as one step, as RedisStore's transaction does: 1 if the entry was pending.
_STREAM_ACK = """
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
"""


class ReplicatedRedisStore(RedisStore):
    """A `RedisStore` each of whose writes waits for `wait.replicas` replica acknowledgements."""

    def __init__(self, connection: Connection, *, prefix: str = DEFAULT_PREFIX, label: str = "redis") -> None:
        """Wrap `connection`, which must carry a `ReplicaWait` (a `?wait_replicas=` URL)."""
        if connection.wait is None:
            raise ValueError("a ReplicatedRedisStore needs a store URL with ?wait_replicas=")
        super().__init__(connection, prefix=prefix, label=label)
        self._wait: ReplicaWait = connection.wait
        self._index_add = self._redis.register_script(_INDEX_ADD)
        self._stream_ack = self._redis.register_script(_STREAM_ACK)

    def _acknowledged(self, operation: str, acked: int) -> None:
        if acked < self._wait.replicas:
            raise StoreUnavailable(
                f"State store {self._label} unavailable during {operation}: {acked} of {self._wait.replicas} "
                f"replicas acknowledged the write within {self._wait.timeout_ms} ms"
            )

    async def _write(self, operation: str, key: str, command: Command) -> Any:
        with self._translated(operation):
            answer, acked = await write_then_wait(self._redis, self._wait, key, command)
        self._acknowledged(operation, acked)
        return answer

    async def _script(self, operation: str, script: AsyncScript, name: str, args: Sequence[EncodableT]) -> Any:
        with self._translated(operation):
            answer, acked = await script_then_wait(self._redis, self._wait, script, name, args)
        self._acknowledged(operation, acked)
        return answer

    # --- plain keys ----------------------------------------------------------------------

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """SET, then WAIT."""
        px = ttl_ms(ttl_s)
        await self._write("set", self._kv(key), ("SET", self._kv(key), value, *_px(px)))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        """SET NX, then WAIT, whether or not it wrote (fails closed while replicas lag)."""
        px = ttl_ms(ttl_s)
        return bool(await self._write("set_if_absent", self._kv(key), ("SET", self._kv(key), value, "NX", *_px(px))))

    async def delete(self, key: str) -> bool:
        """DEL, then WAIT."""
        return bool(await self._write("delete", self._kv(key), ("DEL", self._kv(key))))

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """The compare-and-delete script, then WAIT."""
        return bool(await self._script("delete_if_equals", self._delete_if_equals, self._kv(key), [value]))

    async def set_if_equals(self, key: str, expected: bytes, value: bytes, ttl_s: float | None = None) -> bool:
        """The compare-and-set script, then WAIT."""
        args = [expected, value, _px_arg(ttl_ms(ttl_s))]
        return bool(await self._script("set_if_equals", self._set_if_equals, self._kv(key), args))

    # --- sorted indexes ------------------------------------------------------------------

    async def index_add(self, index: str, member: str, score: float, ttl_s: float | None = None) -> None:
        """ZADD (and PEXPIRE) in one script, then WAIT."""
        check_score(score)
        args = [repr(float(score)), member, _px_arg(ttl_ms(ttl_s))]
        await self._script("index_add", self._index_add, self._ix(index), args)

    async def index_remove(self, index: str, member: str) -> None:
        """ZREM, then WAIT."""
        await self._write("index_remove", self._ix(index), ("ZREM", self._ix(index), member))

    async def index_remove_below(self, index: str, score: float) -> int:
        """ZREMRANGEBYSCORE, then WAIT."""
        command = ("ZREMRANGEBYSCORE", self._ix(index), "-inf", f"({score!r}")
        return int(await self._write("index_remove_below", self._ix(index), command))

    # --- streams ---------------------------------------------------------------------------

    async def stream_add(self, stream: str, fields: dict[str, str]) -> str:
        """XADD, then WAIT; the new entry's id."""
        name = f"{self.prefix}st:{stream}"
        flat = [part for pair in fields.items() for part in pair]
        entry_id = await self._write("stream_add", name, ("XADD", name, "*", *flat))
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def stream_ack(self, stream: str, group: str, entry_id: str) -> bool:
        """XACK and XDEL in one script, then WAIT."""
        return bool(await self._script("stream_ack", self._stream_ack, f"{self.prefix}st:{stream}", [group, entry_id]))

    # --- rate gates --------------------------------------------------------------------------

    async def rate_reserve(self, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        """The GCRA reservation script, then WAIT: a granted slot another gateway could lose is not granted."""
        check_rate(per_s, burst, max_wait_s)
        args = redis_rates.arguments(per_s, burst, max_wait_s)
        answer = await self._script("rate_reserve", self._rate_script, f"{self.prefix}rl:{key}", args)
        return redis_rates.reservation(answer)


def _px(px: int | None) -> tuple[EncodableT, ...]:
    return () if px is None else ("PX", px)


def _px_arg(px: int | None) -> EncodableT:
    # The scripts take the TTL in ms as ARGV, "" meaning none.
    return "" if px is None else px
