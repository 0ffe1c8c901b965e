"""Closed-loop load generator: N keep-alive workers send one request as fast as it is answered.

Run it as its own process so its event loop never competes with the server under test's loop;
it prints one JSON line:

    python bench/loadgen.py URL --concurrency 32 --duration 10
    python bench/loadgen.py URL --method POST --body '{"limit": 10}' --header 'Prefer: wait'
    python bench/loadgen.py URL_A URL_B --concurrency 32            # workers split across the URLs
    python bench/loadgen.py URL_A URL_B --mode all --concurrency 1  # each request hits every URL at once
    python bench/loadgen.py redis://127.0.0.1:6379/15 --redis-key KEY --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import uvloop
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from yarl import URL

MODES = ("split", "all")

# One request: resolves to an HTTP-like status, or -1 for a transport error or a timeout.
OneRequest = Callable[[], Awaitable[int]]


def _percentile(ordered: list[float], q: float) -> float:
    # Nearest rank, so every reported percentile is a latency that was actually observed.
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


async def _drive(
    requests: Sequence[OneRequest], concurrency: int, duration_s: float, warmup_s: float, timeout_s: float
) -> dict[str, Any]:
    """Run `concurrency` looping workers (worker i sends requests[i % len]) and summarise the window."""
    clock = time.perf_counter
    latencies: list[float] = []
    window = {"requests": 0, "errors": 0, "non_2xx": 0}
    sent_total = 0
    cpu_start = time.process_time()
    started = clock()
    measure_from = started + warmup_s
    measure_to = measure_from + duration_s

    async def worker(send: OneRequest) -> None:
        nonlocal sent_total
        while True:
            t0 = clock()
            if t0 >= measure_to:
                return
            try:
                # Bounded by the client's own timeouts: a wait_for task per request would cost more.
                status = await send()
            except (aiohttp.ClientError, TimeoutError, OSError, RedisError):
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

    tasks = [asyncio.create_task(worker(requests[i % len(requests)])) for i in range(concurrency)]
    # Workers stop on their own at the deadline; one stuck on a dead server must not hang us.
    _, pending = await asyncio.wait(tasks, timeout=warmup_s + duration_s + timeout_s + 1.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall = clock() - started
    cpu = time.process_time() - cpu_start

    latencies.sort()
    ms = 1000.0
    return {
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


async def run_load(
    url: str | Sequence[str],
    concurrency: int,
    duration_s: float,
    warmup_s: float = 2.0,
    *,
    timeout_s: float = 10.0,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    mode: str = "split",
) -> dict[str, Any]:
    """Drive one or more URLs with `concurrency` looping workers; summarise the window after the warm-up.

    With several URLs, `mode="split"` spreads the workers over them round-robin, and `mode="all"`
    makes every request a parallel call to each URL, timed until the slowest one has answered.
    """
    urls = [url] if isinstance(url, str) else list(url)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    # Parsed once: re-parsing the URL on every request is measurable client overhead at 10k req/s.
    targets = [URL(u) for u in urls]
    parallel = len(targets) if mode == "all" else 1
    connector = aiohttp.TCPConnector(limit=concurrency * parallel, keepalive_timeout=60.0)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
        headers=headers or {},
    )

    def sender(target: URL) -> OneRequest:
        async def send() -> int:
            async with session.request(method, target, data=body) as response:
                await response.read()
                return response.status

        return send

    async def send_all() -> int:
        statuses = await asyncio.gather(*(sender(t)() for t in targets))
        # The worst answer stands for the whole parallel request.
        return min(statuses) if min(statuses) < 0 else max(statuses)

    requests: list[OneRequest] = [send_all] if mode == "all" else [sender(t) for t in targets]
    try:
        result = await _drive(requests, concurrency, duration_s, warmup_s, timeout_s)
    finally:
        await session.close()
    return {"url": urls[0] if len(urls) == 1 else urls, "method": method, "mode": mode, **result}


async def run_redis_load(
    redis_url: str, key: str, concurrency: int, duration_s: float, warmup_s: float = 2.0, *, timeout_s: float = 10.0
) -> dict[str, Any]:
    """The same closed loop, each request a Redis GET of `key` (a missing key counts as a 404)."""
    pool = BlockingConnectionPool.from_url(
        redis_url, max_connections=concurrency, timeout=timeout_s, socket_timeout=timeout_s
    )
    client = Redis(connection_pool=pool)

    async def send() -> int:
        value = await client.get(key)
        return 404 if value is None else 200

    try:
        result = await _drive([send], concurrency, duration_s, warmup_s, timeout_s)
    finally:
        await client.aclose()
        await pool.disconnect()
    return {"url": redis_url, "method": "redis GET", "mode": "split", **result}


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"header must look like 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the load and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="+", help="one or more URLs (a redis:// URL with --redis-key)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", help="request body, sent as is (JSON: add a Content-Type header)")
    parser.add_argument("--header", type=_header, action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--mode", choices=MODES, default="split", help="with several URLs: split workers or hit all")
    parser.add_argument("--redis-key", help="GET this key from the Redis at URL instead of HTTP")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("concurrency must be >= 1, duration > 0, warmup >= 0")
    if args.redis_key is not None:
        if len(args.url) != 1:
            parser.error("--redis-key takes exactly one redis:// URL")
        load = run_redis_load(
            args.url[0], args.redis_key, args.concurrency, args.duration, args.warmup, timeout_s=args.timeout
        )
    else:
        load = run_load(
            args.url,
            args.concurrency,
            args.duration,
            args.warmup,
            timeout_s=args.timeout,
            method=args.method.upper(),
            body=args.body.encode() if args.body is not None else None,
            headers=dict(args.header),
            mode=args.mode,
        )
    result = uvloop.run(load)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
