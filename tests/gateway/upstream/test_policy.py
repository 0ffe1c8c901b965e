"""The guarded transport: circuit breaker, limits and retries, against real and faulty upstreams."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import structlog
from starlette.types import Receive, Scope, Send

from gateway.domain.ratelimit import TokenBucket
from gateway.upstream.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, build_provider

ORDER = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
    "order_parameters": {},
}


class Flaky:
    """A real provider behind `failures` answers of `status` (with Retry-After) per request kind.

    Only product paths fail: the gateway's start-up look at the landing page must not use up
    the failures (or feed the circuit) before the test's own requests.
    """

    def __init__(self, app: Any, failures: int, status: int = 503, methods: tuple[str, ...] = ("GET",)) -> None:
        self.app, self.failures, self.status, self.methods = app, failures, status, methods
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fail the first `failures` matching requests, then forward."""
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
            if scope["method"] in self.methods and scope["path"].startswith("/products") and self.failures > 0:
                self.failures -= 1
                headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
                await send({"type": "http.response.start", "status": self.status, "headers": headers})
                await send({"type": "http.response.body", "body": b'{"detail":"try later"}'})
                return
        await self.app(scope, receive, send)


def provider() -> Any:
    """A real stapi-fastapi provider with one product."""
    return build_provider([ProductSpec("eo")], name="acme")


def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    """Consecutive failures open it; after the pause one probe goes out; success closes it."""
    now = [0.0]
    breaker = CircuitBreaker(failures=2, open_s=10, clock=lambda: now[0])
    breaker.record(False, "5xx")
    assert breaker.state == CLOSED
    breaker.record(False, "5xx")
    assert breaker.state == OPEN
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    assert breaker.state == HALF_OPEN
    assert not breaker.allow(), "only one probe while half-open"
    breaker.record(True)
    assert breaker.state == CLOSED
    assert breaker.allow()


def test_failed_probe_reopens_the_circuit() -> None:
    """A half-open circuit whose probe fails is open again."""
    now = [0.0]
    breaker = CircuitBreaker(failures=1, open_s=5, clock=lambda: now[0])
    breaker.record(False)
    now[0] = 5.0
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == OPEN
    assert not breaker.allow()


async def test_token_bucket_refuses_when_the_budget_is_too_short() -> None:
    """With the burst spent, a token that takes longer than the budget is refused."""
    bucket = TokenBucket(rate=0.01, burst=1)
    assert await bucket.acquire(0.0)
    assert not await bucket.acquire(0.05)


async def test_reads_are_retried_on_503_until_they_succeed() -> None:
    """Two 503s (Retry-After: 0) then success: the client sees the product."""
    flaky = Flaky(provider(), failures=2)
    async with gateway_client({"acme": flaky}, provider_overrides={"retries": 2}) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 200
    assert flaky.seen.count(("GET", "/products/eo")) == 3


async def test_retries_stop_at_the_configured_count() -> None:
    """More failures than retries: the error comes through as the provider's bad status."""
    flaky = Flaky(provider(), failures=5)
    async with gateway_client({"acme": flaky}, provider_overrides={"retries": 1}) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 502
    assert response.json()["code"] == "provider_bad_status"
    assert flaky.seen.count(("GET", "/products/eo")) == 2


async def test_order_creation_is_never_retried() -> None:
    """A 503 to an order creation is not retried: its outcome is unknown (504), and the provider saw one POST."""
    flaky = Flaky(provider(), failures=1, methods=("POST",))
    async with gateway_client({"acme": flaky}, provider_overrides={"retries": 3}) as client:
        response = await client.post("/products/acme:eo/orders", json=ORDER)
    assert response.status_code == 504
    assert response.json()["code"] == "order_outcome_unknown"
    assert [m for m, p in flaky.seen if m == "POST"] == ["POST"]


async def test_open_circuit_fails_fast_and_shows_everywhere() -> None:
    """After repeated 500s the provider is not called; readiness, landing page and metrics say so."""
    flaky = Flaky(provider(), failures=100, status=500)
    overrides = {"retries": 0, "circuit_failures": 2, "circuit_open_s": 60}
    async with gateway_client({"acme": flaky}, provider_overrides=overrides) as client:
        for _ in range(2):
            assert (await client.get("/products/acme:eo")).status_code == 502
        calls_before = len(flaky.seen)
        fast = await client.get("/products/acme:eo")
        ready = await client.get("/readyz")
        landing = (await client.get("/")).json()
        metrics = (await client.get("/metrics")).text
    assert fast.status_code == 503
    assert fast.json()["code"] == "provider_unavailable"
    assert len(flaky.seen) == calls_before
    assert ready.status_code == 503
    assert ready.json()["providers"]["acme"]["state"] == "open"
    assert landing["providers"][0]["state"] == "open"
    assert 'stapi_gateway_circuit_state{provider="acme"} 2.0' in metrics
    assert 'outcome="circuit_open"' in metrics


async def test_waiting_for_a_rate_token_counts_against_the_deadline() -> None:
    """With a rate of one call per minute, the second call cannot start before the deadline: it is
    not sent, and answered 503 with when a slot would be free (not 504: the provider was not slow)."""
    async with gateway_client({"acme": provider()}, provider_overrides={"rate_per_s": 1 / 60}, deadline_s=3) as c:
        first = await c.get("/products/acme:eo")
        second = await c.get("/products/acme:eo")
    assert first.status_code == 200
    assert second.status_code == 503
    assert second.json()["code"] == "provider_rate_limited"
    assert 1 <= int(second.headers["Retry-After"]) <= 60


async def test_readiness_and_metrics_on_a_healthy_gateway() -> None:
    """/healthz and /readyz answer 200; /metrics counts requests and upstream calls by operation."""
    async with gateway_client({"acme": provider()}) as client:
        await client.get("/products")
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["store"] == {"healthy": True, "durable": False, "reset_detected_at": None}
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'stapi_gateway_requests_total{operation="list_products",status="200"} 1.0' in metrics.text
    assert 'stapi_gateway_upstream_calls_total{operation="list_products",outcome="2xx",provider="acme"}' in metrics.text


async def test_readiness_fails_when_the_store_is_down() -> None:
    """A store that does not answer makes /readyz 503 while /healthz stays 200."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings: dict[str, Any] = {"store": f"redis://127.0.0.1:{port}/0", "secret": "s"}
    async with gateway_client({"acme": provider()}, **settings) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["store"]["healthy"] is False
    assert health.status_code == 200


@pytest.mark.parametrize("path", ["/products", "/products/acme:eo"])
async def test_one_log_line_per_request_and_per_upstream_call(path: str) -> None:
    """The request line names the operation and the providers asked; each upstream call has its own."""
    async with gateway_client({"acme": provider()}) as client:
        with structlog.testing.capture_logs() as logs:
            await client.get(path, headers={"X-Request-ID": "trace-1"})
    requests = [e for e in logs if e["event"] == "request"]
    # The gateway's start-up look at the landing page may still be under way; it is no part of the request.
    calls = [e for e in logs if e["event"] == "upstream_call" and e["operation"] != "landing_page"]
    assert len(requests) == 1
    assert requests[0]["providers"] == {"acme": "2xx"}
    assert requests[0]["status"] == 200
    assert len(calls) == 1
    assert calls[0]["provider"] == "acme"


def test_open_circuit_counts_as_healthy_once_its_pause_is_over() -> None:
    """Readiness lets traffic back when a probe is due, so open circuits can close again."""
    now = [0.0]
    breaker = CircuitBreaker(failures=1, open_s=5, clock=lambda: now[0])
    breaker.record(False)
    assert not breaker.healthy
    now[0] = 5.0
    assert breaker.healthy
