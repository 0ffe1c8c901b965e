"""The order status tracker's cost: store operations and CPU per tracked order per minute.

    python bench/tracking.py                 # 10,000 open orders over 3 providers, 3 simulated minutes
    python bench/tracking.py --quick         # the same orders, 1 simulated minute (about a minute here)
    python bench/tracking.py --orders 1000 --providers 5 --redis redis://127.0.0.1:6379/15

The providers are bench/stubs.py in a process of their own (real HTTP on loopback): every order's
history is `received` then `accepted`, never terminal, so every order stays tracked. The tracker
is the gateway's own (gateway/services/order_tracker.py) on a real Redis under a unique prefix
(deleted afterwards), in this process, on a clock the bench moves one simulated second per tick,
each tick draining what is due. Orders are registered with due times spread over the first
minute, `status_poll_s` 60. The first simulated minute publishes every history (two events an
order) and is reported apart; the minutes after it are the steady state: one poll per order per
minute, nothing new. Store operations are every call the tracker makes on the store; CPU is this
process's (tracker, httpx, redis-py) and the Redis server's (INFO cpu), per order per minute.
Logging is the gateway's default (info, one JSON line per provider call), written to `--log-file`
(default /dev/null: rendered, not kept); progress goes to stderr and the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

import redis
from common import CountingStore, drop_keys, machine

from gateway.domain.attempts import AttemptState, OrderAttempt
from gateway.domain.events import Event
from gateway.obs.logging import configure_logging
from gateway.obs.metrics import Metrics
from gateway.services.catalogue import Catalogue
from gateway.services.order_tracker import OrderTracker, TrackerSettings
from gateway.services.tracked_orders import TrackedOrders, due_index
from gateway.settings.models import ProviderSettings, Settings
from gateway.store import Store, open_store
from gateway.upstream.providers import build_providers

STUBS = Path(__file__).resolve().parent / "stubs.py"
POLL_S = 60.0


class Clock:
    """Simulated wall-clock seconds."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        """The current simulated time."""
        return self.now


class CountingSink:
    """Counts the events the tracker publishes (the outbox's cost is not the tracker's)."""

    def __init__(self) -> None:
        self.events = 0

    async def publish(self, events: list[Event]) -> None:
        """Count."""
        self.events += len(events)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the stub providers exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the stub providers did not start")


def _redis_cpu(client: redis.Redis) -> float:
    info = cast("dict[str, Any]", client.info("cpu"))
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _drain(tracker: OrderTracker, inner: Store, pids: list[str], clock: Clock) -> int:
    """Poll everything due at the current simulated second (waiting for budget when it runs out)."""
    polls = 0
    while True:
        polls += await tracker.run_due()
        pending = False
        for pid in pids:
            page = await inner.index_page(due_index(pid), limit=1)
            pending = pending or bool(page and page[0][1] <= clock.now)
        if not pending:
            return polls
        await asyncio.sleep(0.005)


async def bench(args: argparse.Namespace, origins: list[str]) -> dict[str, Any]:
    """Register the orders, then simulate the minutes; the measurements."""
    pids = [f"p{i + 1}" for i in range(args.providers)]
    prefix = f"stapi-gw-bench-tracking:{uuid.uuid4().hex}:"
    providers = [
        # rate_per_s is what the operator would declare; the tracker takes a quarter of it.
        ProviderSettings(id=pid, url=origin, status_poll_s=POLL_S, rate_per_s=2000.0, max_concurrent=64)
        for pid, origin in zip(pids, origins, strict=True)
    ]
    settings = Settings.build(providers, store=args.redis, store_prefix=prefix, secret="bench")
    clock = Clock()
    inner = open_store(args.redis, prefix=prefix)
    counting = CountingStore(inner)
    store = cast("Store", counting)
    metrics = Metrics()
    built = build_providers(settings, metrics)
    tracked = TrackedOrders(inner, settings.gateway.order_retention_s, clock=clock)
    sink = CountingSink()
    tracker = OrderTracker(
        TrackedOrders(store, settings.gateway.order_retention_s, clock=clock),
        Catalogue(settings, built),
        sink,
        metrics,
        TrackerSettings(deadline_s=settings.gateway.deadline_s),
    )
    server = redis.Redis.from_url(args.redis)
    start = clock.now
    try:
        for i in range(args.orders):
            pid = pids[i % len(pids)]
            clock.now = start + POLL_S * i / args.orders
            attempt = OrderAttempt(
                id=f"{i:032x}",
                client="bench",
                idempotency_key=None,
                product_id=f"{pid}:product-1",
                member=f"{pid}:product-1",
                sent={},
                fingerprint="",
                state=AttemptState.PLACED,
                created=clock.now,
                order_id=f"{pid}:order-{i}",
            )
            await tracked.register(attempt)
        clock.now = start
        minutes: list[dict[str, Any]] = []
        for minute in range(args.minutes + 1):
            counting.ops.clear()
            cpu, redis_cpu, wall, polls = time.process_time(), _redis_cpu(server), time.monotonic(), 0
            for _ in range(int(POLL_S)):
                clock.now += 1.0
                polls += await _drain(tracker, inner, pids, clock)
            minutes.append(
                {
                    "minute": minute + 1,
                    "polls": polls,
                    "ops": dict(counting.ops),
                    "cpu_s": time.process_time() - cpu,
                    "redis_cpu_s": _redis_cpu(server) - redis_cpu,
                    "wall_s": time.monotonic() - wall,
                    "events": sink.events,
                }
            )
            print(f"minute {minute + 1}: {polls} polls in {minutes[-1]['wall_s']:.1f} s", file=args.progress)
        return {"orders": args.orders, "providers": args.providers, "minutes": minutes}
    finally:
        await tracker.stop()
        await built.aclose()
        drop_keys(server, prefix)
        server.close()
        await inner.aclose()


def table(result: dict[str, Any]) -> str:
    """The Markdown table of per-order-per-minute costs."""
    n = result["orders"]
    lines = [
        "| minute | polls | store ops / order / min | of which | tracker CPU µs / order / min "
        "| Redis CPU µs / order / min | wall s for the minute |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for m in result["minutes"]:
        ops = sum(m["ops"].values())
        parts = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(m["ops"].items(), key=lambda kv: -kv[1]))
        label = f"{m['minute']} (first polls)" if m["minute"] == 1 else f"{m['minute']} (steady)"
        lines.append(
            f"| {label} | {m['polls']:,} | {ops / n:.2f} | {parts} | {m['cpu_s'] / n * 1e6:.0f} "
            f"| {m['redis_cpu_s'] / n * 1e6:.0f} | {m['wall_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=2, help="steady simulated minutes after the first")
    parser.add_argument("--quick", action="store_true", help="one steady minute")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--log-file", default=os.devnull, help="where the gateway's JSON log lines go")
    args = parser.parse_args(argv)
    # The gateway logs to fd 2: point it at the log file and keep the terminal for progress.
    args.progress = os.fdopen(os.dup(2), "w", buffering=1)
    with open(args.log_file, "ab") as log:
        os.dup2(log.fileno(), 2)
    configure_logging("info", json=True)
    if args.quick:
        args.minutes = 1
    ports = [_free_port() for _ in range(args.providers)]
    stubs = subprocess.Popen([sys.executable, str(STUBS), "--ports", ",".join(map(str, ports))])
    try:
        _wait_for(ports[0], stubs)
        result = asyncio.run(bench(args, [f"http://127.0.0.1:{p}" for p in ports]))
    finally:
        stubs.terminate()
        stubs.wait(timeout=10)
    print(f"{machine()}; {result['orders']:,} orders over {result['providers']} providers, status_poll_s {POLL_S:.0f}")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
