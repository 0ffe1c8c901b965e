"""What tracing costs: per upstream call attempt, and per request through the whole app, in process.

    python bench/tracing.py                        # this tree: tracing off, then on
    python bench/tracing.py --modes off            # off only (runs on a tree without tracing, too)
    PYTHONPATH=/tmp/main-src python bench/tracing.py --modes off    # the same on another checkout

Two focused loops, no network and no other process, so the difference between trees or modes is
the gateway's code and not the noise of a load generator on the same 2 cores:

- `call`: `GuardedTransport.handle_async_request` over a transport that answers at once (circuit,
  limits, the header stamp, metrics, one log line; with tracing, the CLIENT span and traceparent);
- `request`: `GET /products/p1:eo` through `create_app` (every middleware, the catalogue, the
  adapter) in front of a static stub, over httpx's ASGI transport.

Tracing "on" exports through a BatchSpanProcessor to an exporter that drops the spans: the cost
on the request path (span objects, attributes, the queue), not the collector's network time,
which is paid on the processor's own thread. Logging goes to a structlog ReturnLogger in every
mode. Each cell is the best of `--rounds` rounds (the least disturbed by other work on the box).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.client import OPERATION_EXTENSION
from bench.common import machine
from bench.stubs import _product
from gateway.app import create_app
from gateway.obs.metrics import Metrics
from gateway.settings.models import ProviderSettings, Settings
from gateway.upstream.breaker import CircuitBreaker
from gateway.upstream.policy import GuardedTransport
from tests.gateways import lifespan

PRODUCT = orjson.dumps(_product("eo", "http://p1.test"))
# The checkout whose gateway is measured (another one's, with PYTHONPATH and a copy of this script).
TREE = str(Path(create_app.__code__.co_filename).resolve().parents[1])


class Answering(httpx.AsyncBaseTransport):
    """Answers every request at once with the product document."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The canned answer."""
        return httpx.Response(200, headers={"content-type": "application/json"}, content=PRODUCT, request=request)


def tracer_provider() -> Any:
    """A tracer provider whose batch processor hands spans to an exporter that drops them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    return provider


async def best_of(rounds: int, count: int, once: Callable[[], Awaitable[None]]) -> float:
    """Microseconds per call of `once`, the best round of `rounds` rounds of `count` calls."""
    for _ in range(count // 10):
        await once()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            await once()
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


async def per_call(traced: bool, rounds: int, count: int) -> float:
    """µs per GuardedTransport call attempt."""
    settings = ProviderSettings(id="p1", url="http://p1.test")
    extra: dict[str, Any] = {}
    if traced:
        from gateway.obs.tracing import Tracing

        extra["tracing"] = Tracing.of(tracer_provider())
    guarded = GuardedTransport(Answering(), settings, CircuitBreaker(5, 30.0), Metrics(), **extra)

    async def once() -> None:
        request = httpx.Request("GET", "http://p1.test/products/eo", extensions={OPERATION_EXTENSION: "get_product"})
        await guarded.handle_async_request(request)

    return await best_of(rounds, count, once)


async def per_request(traced: bool, rounds: int, count: int) -> float:
    """µs per `GET /products/p1:eo` through the app."""
    # Only named when on, so that "off" runs on a tree that has no such setting.
    switch = {"tracing": True} if traced else {}
    settings = Settings.build([ProviderSettings(id="p1", url="http://p1.test")], secret="bench", **switch)
    extra: dict[str, Any] = {}
    if "tracer_provider" in inspect.signature(create_app).parameters:
        extra["tracer_provider"] = tracer_provider() if traced else None
    app = create_app(settings, transports={"p1": Answering()}, **extra)
    async with lifespan(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:

        async def once() -> None:
            response = await client.get("/products/p1:eo")
            assert response.status_code == 200, response.text

        return await best_of(rounds, count, once)


async def main(argv: list[str] | None = None) -> int:
    """Print one table row per mode."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="off,on", help="comma-separated: off, on")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000, help="GuardedTransport calls per round")
    parser.add_argument("--requests", type=int, default=2_000, help="app requests per round")
    args = parser.parse_args(argv)
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory(), cache_logger_on_first_use=True)
    print(machine(), file=sys.stderr)
    print("| tree | tracing | µs per upstream call | µs per request |")
    print("|---|---|---|---|")
    tree = TREE
    for mode in args.modes.split(","):
        traced = mode == "on"
        call = await per_call(traced, args.rounds, args.calls)
        request = await per_request(traced, args.rounds, args.requests)
        print(f"| {tree} | {mode} | {call:.1f} | {request:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
