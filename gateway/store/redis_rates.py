"""A rate gate's reservation on Redis (GCRA, gateway/domain/ratelimit.py `gcra`) in one script.

The key holds the theoretical arrival time (TAT) of the gate's next call in microseconds of the
server's clock (TIME), so the replicas' clocks never matter, and expires once the gate is full
again (a missing key is a full gate). One key per call: safe on a Redis Cluster as it is.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript

from gateway.domain.ratelimit import Reservation
from gateway.store.redis_urls import RedisClient

# ARGV: the interval between calls, the burst tolerance ((burst - 1) x interval) and the longest
# wait the caller takes, all in µs. Answers {granted, wait in µs}; nothing is written when the wait
# is too long. Redis 5+ replicates a script's effects, not the script, so TIME is allowed before
# the write.
RATE_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval, tolerance, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 1 then wait = 0 end
if wait > max_wait then return {0, wait} end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return {1, wait}
"""


def script_of(client: RedisClient) -> AsyncScript:
    """The reservation script for `client` (register_script only hashes it: loaded on first use)."""
    return client.register_script(RATE_RESERVE)


def arguments(per_s: float, burst: float, max_wait_s: float) -> list[str]:
    """The script's ARGV for a gate of `per_s` calls a second, `burst` at once, and the caller's longest wait."""
    interval_us = 1_000_000 / per_s
    return [repr(interval_us), repr((burst - 1) * interval_us), repr(max_wait_s * 1_000_000)]


def reservation(answer: list[int]) -> Reservation:
    """The script's answer, {granted, wait in µs}, as a `Reservation`."""
    granted, wait_us = answer
    return Reservation(bool(granted), int(wait_us) / 1_000_000)


async def reserve(script: AsyncScript, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
    """Reserve the next slot of the gate at `key` if it comes within `max_wait_s`: one round trip."""
    return reservation(await script(keys=[key], args=arguments(per_s, burst, max_wait_s)))
