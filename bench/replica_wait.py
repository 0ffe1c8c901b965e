"""What `?wait_replicas=1` costs a store write: the same writes with and without WAIT, measured.

    python bench/replica_wait.py                 # 5,000 writes per cell, c=1 and c=32
    python bench/replica_wait.py --calls 2000 --off-only   # e.g. on a checkout of main

Starts its own `redis-server` primary and replica on free loopback ports (no persistence, so the
time is replication's, not the disk's), then times `set`, `set_if_absent` (a fresh key each) and
`index_add` of a store opened on the primary's URL as is (a plain RedisStore) and with
`?wait_replicas=1&wait_timeout_ms=100` (a ReplicatedRedisStore). N coroutines in one process,
closed loop. Per write: latency in µs (p50, p99), writes/s, and the commands the primary executed
(INFO commandstats, a script's own calls included, the replica's REPLCONF ACKs left out), which
shows that without the option a write is the same commands as before, and with it one WAIT more,
sent in the same round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import redis
from common import machine

from gateway.store import Store, open_store

Write = Callable[[Store, int], Awaitable[object]]
WRITES: dict[str, Write] = {
    "set": lambda store, n: store.set("k", b"v"),
    "set_if_absent": lambda store, n: store.set_if_absent(f"k{n}", b"v", ttl_s=60),
    "index_add": lambda store, n: store.index_add("i", f"m{n}", float(n), ttl_s=60),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _info(port: int, section: str) -> dict[str, object]:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        info: dict[str, object] = client.info(section)
        return info
    except (redis.RedisError, OSError):
        return {}
    finally:
        client.close()


@contextmanager
def primary_and_replica() -> Iterator[int]:
    """A primary with one synced replica on free ports; the primary's port. Both stopped afterwards."""
    binary = shutil.which("redis-server") or sys.exit("redis-server is not on PATH")
    primary, replica = _free_port(), _free_port()
    procs = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
                args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", ""]
                args += ["--appendonly", "no", "--dbfilename", f"{port}.rdb", "--repl-diskless-sync-delay", "0"]
                procs.append(subprocess.Popen([*args, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            _until(lambda: _info(replica, "replication").get("master_link_status") == "up", "the replica to sync")
            yield primary
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()


async def cell(store: Store, write: Write, calls: int, concurrency: int) -> tuple[float, float, float]:
    """p50 and p99 in µs, and writes/s, of `calls` writes made by `concurrency` coroutines."""
    samples: list[float] = []
    numbers = itertools.count()

    async def worker(share: int) -> None:
        for _ in range(share):
            started = time.perf_counter()
            await write(store, next(numbers))
            samples.append((time.perf_counter() - started) * 1e6)

    for _ in range(200):
        await write(store, next(numbers))  # warm-up: connections open, scripts loaded
    began = time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))], len(samples) / elapsed


def _commands(port: int) -> dict[str, int]:
    # Per command name; the replica's REPLCONF ACKs, this script's INFO and the pool's connection
    # handshakes (HELLO, PING, CLIENT, SELECT) are not the writes'.
    stats = _info(port, "commandstats")
    found = {}
    for name, value in stats.items():
        command = name.removeprefix("cmdstat_")
        if command not in ("replconf", "info", "hello", "ping", "client", "select") and isinstance(value, dict):
            found[command] = int(value["calls"])
    return found


def _per_write(before: dict[str, int], after: dict[str, int], writes: int) -> str:
    spent = {name: calls - before.get(name, 0) for name, calls in after.items() if calls > before.get(name, 0)}
    # A script's first EVAL (NOSCRIPT fallback) is one call in thousands: below the table's precision.
    return " ".join(
        f"{name.upper()} {calls / writes:.2f}" for name, calls in sorted(spent.items()) if calls / writes >= 0.005
    )


OPTIONS = {"off": "", "wait_replicas=1": "?wait_replicas=1&wait_timeout_ms=100"}


async def run(port: int, calls: int, options: list[str]) -> list[str]:
    """The table's rows, one per (option, write, concurrency)."""
    url = f"redis://127.0.0.1:{port}/0"
    rows = []
    for option in options:
        query = OPTIONS[option]
        for name, write in WRITES.items():
            for concurrency in (1, 32):
                store = open_store(url + query, prefix=f"bench:{uuid.uuid4().hex}:")
                before = _commands(port)
                p50, p99, rate = await cell(store, write, calls, concurrency)
                # The warm-up writes are in the count, so divide by all.
                per_write = _per_write(before, _commands(port), calls // concurrency * concurrency + 200)
                await store.aclose()
                cells = [option, name, str(concurrency), f"{p50:.0f}", f"{p99:.0f}", f"{rate:,.0f}", per_write]
                rows.append("| " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    """Parse the arguments, start the servers, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000, help="writes per cell (default 5000)")
    # `--off-only` runs on a checkout from before the option existed, for the "nothing changes" row.
    parser.add_argument("--off-only", action="store_true", help="only the stores without the option")
    args = parser.parse_args()
    with primary_and_replica() as port:
        rows = asyncio.run(run(port, args.calls, ["off"] if args.off_only else list(OPTIONS)))
    print(machine())
    print("| option | write | c | p50 µs | p99 µs | writes/s | primary's commands per write |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
