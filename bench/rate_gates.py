"""The cost of a shared rate limit: one store round trip per limited call, measured.

    python bench/rate_gates.py                   # 20,000 reservations per cell, c=1 and c=32
    python bench/rate_gates.py --calls 5000 --redis redis://127.0.0.1:6379/15

Each cell times `Gates.reserve` (gateway/upstream/rate_gates.py, what every limited provider call
and every rate-limited client request makes) on a gate too wide ever to make anyone wait, so the
time is the reservation's alone: on `memory://` (the per-process ledger) and on a real Redis under
a unique prefix (deleted afterwards), beside a plain Redis GET on the same connection pool as the
round trip it costs at least. Concurrency is N coroutines in this one process, in a closed loop.
Per call latency in µs (p50, p99) and calls/s; Redis server CPU (INFO cpu) per call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import redis
from common import drop_keys, machine

from gateway.obs.metrics import Metrics
from gateway.store import open_store
from gateway.upstream.rate_gates import Gates

Call = Callable[[], Awaitable[object]]


async def cell(call: Call, calls: int, concurrency: int) -> tuple[float, float, float]:
    """p50 and p99 in µs, and calls/s, of `calls` calls made by `concurrency` coroutines."""
    samples: list[float] = []
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - started) * 1e6)

    for _ in range(200):
        await call()  # warm-up: connections open, script loaded
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))], calls / elapsed


def redis_cpu_s(client: redis.Redis) -> float:
    """The Redis server's user + system CPU seconds so far."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def main() -> None:
    """Run every cell and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    prefix = f"bench-rate-gates:{uuid.uuid4().hex}:"
    memory, shared = open_store("memory://"), open_store(args.redis, prefix=prefix)
    sync = redis.Redis.from_url(args.redis)
    rows = []
    try:
        local_gates, shared_gates = Gates(memory, Metrics()), Gates(shared, Metrics())
        subjects: list[tuple[str, Call, bool]] = [
            ("memory:// reserve", lambda: local_gates.reserve("provider", "p:rate", 1e6, 1e6, 0.0), False),
            ("redis:// reserve (1 EVALSHA)", lambda: shared_gates.reserve("provider", "p:rate", 1e6, 1e6, 0.0), True),
            ("redis:// GET (baseline)", lambda: shared.get("absent"), True),
        ]
        for name, call, on_redis in subjects:
            for concurrency in (1, 32):
                print(f"{name} c={concurrency} ...", file=sys.stderr)
                cpu_before = redis_cpu_s(sync)
                p50, p99, rate = await cell(call, args.calls, concurrency)
                cpu = (redis_cpu_s(sync) - cpu_before) / (args.calls + 200) * 1e6 if on_redis else 0.0
                rows.append((name, concurrency, p50, p99, rate, cpu))
    finally:
        await memory.aclose()
        await shared.aclose()
        drop_keys(sync, prefix)
        sync.close()
    print(machine())
    print()
    print("| call | c | p50 µs | p99 µs | calls/s | Redis CPU µs/call |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, concurrency, p50, p99, rate, cpu in rows:
        print(f"| {name} | {concurrency} | {p50:,.0f} | {p99:,.0f} | {rate:,.0f} | {cpu:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
