"""Closed-loop HTTP load generator: N keep-alive workers GET one URL as fast as it answers.

Run it as its own process (`python bench/loadgen.py URL --concurrency 32 --duration 10`) so its
event loop never competes with the server under test's loop; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from typing import Any

import aiohttp
import uvloop
from yarl import URL


def _percentile(ordered: list[float], q: float) -> float:
    # Nearest rank, so every reported percentile is a latency that was actually observed.
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


async def run_load(
    url: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 2.0,
    *,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Drive `url` with `concurrency` looping workers; summarise the window after the warm-up."""
    # Parsed once: re-parsing the URL on every request is measurable client overhead at 10k req/s.
    target = URL(url)
    clock = time.perf_counter
    latencies: list[float] = []
    window = {"requests": 0, "errors": 0, "non_2xx": 0}
    sent_total = 0

    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60.0)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
    )
    cpu_start = time.process_time()
    started = clock()
    measure_from = started + warmup_s
    measure_to = measure_from + duration_s

    async def worker() -> None:
        nonlocal sent_total
        while True:
            t0 = clock()
            if t0 >= measure_to:
                return
            status = 0
            try:
                async with session.get(target) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = -1
            t1 = clock()
            sent_total += 1
            # Counted by completion time, so the window holds exactly duration_s of throughput.
            if not measure_from <= t1 < measure_to:
                continue
            if status < 0:
                window["errors"] += 1
                continue
            window["requests"] += 1
            latencies.append(t1 - t0)
            if not 200 <= status < 300:
                window["non_2xx"] += 1

    try:
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        # Workers stop on their own at the deadline; one stuck on a dead server must not hang us.
        _, pending = await asyncio.wait(tasks, timeout=warmup_s + duration_s + timeout_s + 1.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await session.close()
    wall = clock() - started
    cpu = time.process_time() - cpu_start

    latencies.sort()
    ms = 1000.0
    return {
        "url": url,
        "concurrency": concurrency,
        "duration_s": duration_s,
        "requests": window["requests"],
        "errors": window["errors"],
        "non_2xx": window["non_2xx"],
        "rps": round(window["requests"] / duration_s, 1),
        "p50_ms": round(_percentile(latencies, 50) * ms, 3),
        "p90_ms": round(_percentile(latencies, 90) * ms, 3),
        "p99_ms": round(_percentile(latencies, 99) * ms, 3),
        "max_ms": round((latencies[-1] if latencies else 0.0) * ms, 3),
        # Lets the caller relate server CPU to all the work done, warm-up included.
        "sent_total": sent_total,
        # Near 100 means the load generator itself was the bottleneck.
        "loadgen_cpu_pct": round(100.0 * cpu / wall, 1) if wall > 0 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the load and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("concurrency must be >= 1, duration > 0, warmup >= 0")
    result = uvloop.run(run_load(args.url, args.concurrency, args.duration, args.warmup, timeout_s=args.timeout))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
