"""The policy between an adapter and the network: circuit breaker, limits, retries, telemetry.

A transport wrapper, so every provider call passes through it whatever the adapter: it fails
fast while the provider's circuit is open, waits (within the request's deadline) for a
concurrency slot and a rate token, retries idempotent reads on connect errors and 429/502/503/504
with jittered exponential backoff (honouring Retry-After), and records one metric sample and one
log line per call.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import structlog

from adapters.transport import DEFAULT_MAX_BODY_BYTES, OPERATION_EXTENSION, BodyRefused, CircuitOpen, read_decoded
from gateway.context import deadline_remaining, upstream_calls
from gateway.health import STATE_VALUE, CircuitBreaker
from gateway.metrics import Metrics
from gateway.ratelimit import TokenBucket
from gateway.settings import ProviderSettings

log = structlog.get_logger("gateway.upstream")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_RETRY_AFTER_S = 30.0


def _remaining(fallback: float) -> float:
    remaining = deadline_remaining.get()
    return float(remaining()) if remaining is not None else fallback


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def _outcome(response: httpx.Response | None, exc: BaseException | None) -> str:
    if exc is not None:
        if isinstance(exc, CircuitOpen):
            return "circuit_open"
        if isinstance(exc, BodyRefused):
            return "invalid_body"
        if isinstance(exc, httpx.TimeoutException):
            return "timeout"
        return "connect_error" if isinstance(exc, httpx.ConnectError) else "network_error"
    assert response is not None
    return f"{response.status_code // 100}xx"


class GuardedTransport(httpx.AsyncBaseTransport):
    """Wraps one provider's transport with its circuit, limits, retries and telemetry."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, settings: ProviderSettings, breaker: CircuitBreaker, metrics: Metrics
    ) -> None:
        self.inner = inner
        self.settings = settings
        self.breaker = breaker
        self.metrics = metrics
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._rate = TokenBucket(settings.rate_per_s) if settings.rate_per_s else None
        self._order_rate = TokenBucket(settings.order_rate_per_s) if settings.order_rate_per_s else None

    def _backoff(self, attempt: int) -> float:
        base: float = self.settings.retry_backoff_s * 2.0**attempt
        return base * random.uniform(0.5, 1.5)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send with the provider's policy applied."""
        operation = str(request.extensions.get(OPERATION_EXTENSION, request.method.lower()))
        retries = self.settings.retries if request.method in IDEMPOTENT else 0
        attempt = 0
        while True:
            try:
                response = await self._attempt(request, operation, attempt)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                delay = self._backoff(attempt)
                if isinstance(exc, CircuitOpen) or attempt >= retries or delay >= _remaining(self.settings.timeout_s):
                    raise
            else:
                if attempt >= retries or response.status_code not in RETRY_STATUSES:
                    return response
                delay = _retry_after(response) or self._backoff(attempt)
                if delay >= _remaining(self.settings.timeout_s):
                    return response
                await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1
            self.metrics.upstream_retries.labels(self.settings.id, operation).inc()

    async def _attempt(self, request: httpx.Request, operation: str, attempt: int) -> httpx.Response:
        pid = self.settings.id
        if not self.breaker.allow():
            refused = CircuitOpen(f"the circuit of '{pid}' is open", request=request)
            self._record(operation, None, refused, 0.0, attempt)
            raise refused
        started = time.perf_counter()
        try:
            await self._admit(request)
            async with self._slots_within(request):
                response = await self.inner.handle_async_request(request)
                # Not response.aread(): httpx would decode content-encoding without any bound.
                response = await read_decoded(response, request, DEFAULT_MAX_BODY_BYTES)
        except httpx.TransportError as exc:
            # Waiting for our own limits says nothing about the provider's health.
            if not isinstance(exc, httpx.PoolTimeout):
                self.breaker.record(False, _outcome(None, exc))
            self._record(operation, None, exc, time.perf_counter() - started, attempt)
            raise
        self.breaker.record(response.status_code < 500, _outcome(response, None))
        self._record(operation, response, None, time.perf_counter() - started, attempt)
        return response

    async def _admit(self, request: httpx.Request) -> None:
        """Wait for rate tokens; waiting counts against the deadline."""
        budget = _remaining(self.settings.timeout_s)
        buckets = [self._rate]
        if request.method == "POST" and request.url.path.endswith("/orders"):
            buckets.append(self._order_rate)
        for bucket in buckets:
            if bucket is not None and not await bucket.acquire(budget):
                raise httpx.PoolTimeout(f"no rate token for '{self.settings.id}' before the deadline", request=request)

    def _slots_within(self, request: httpx.Request) -> _Slot:
        return _Slot(self._slots, _remaining(self.settings.timeout_s), request, self.settings.id)

    def _record(
        self,
        operation: str,
        response: httpx.Response | None,
        failure: BaseException | None,
        duration: float,
        attempt: int,
    ) -> None:
        pid = self.settings.id
        outcome = _outcome(response, failure)
        self.metrics.upstream_calls.labels(pid, operation, outcome).inc()
        self.metrics.upstream_seconds.labels(pid, operation).observe(duration)
        self.metrics.circuit_state.labels(pid).set(STATE_VALUE[self.breaker.state])
        entry = {
            "provider": pid,
            "operation": operation,
            "outcome": outcome,
            "status": response.status_code if response is not None else None,
            "duration_ms": round(duration * 1000, 2),
            "attempt": attempt,
        }
        calls = upstream_calls.get()
        if calls is not None:
            calls.append(entry)
        log.info("upstream_call", **entry)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()


class _Slot:
    """A concurrency slot, waited for no longer than the deadline allows."""

    def __init__(self, slots: asyncio.Semaphore, timeout: float, request: httpx.Request, pid: str) -> None:
        self.slots, self.timeout, self.request, self.pid = slots, timeout, request, pid

    async def __aenter__(self) -> None:
        if not self.slots.locked():
            await self.slots.acquire()  # a free slot is taken at once, no timer needed
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(
                f"no free slot for '{self.pid}' before the deadline", request=self.request
            ) from None

    async def __aexit__(self, *exc: object) -> None:
        self.slots.release()
