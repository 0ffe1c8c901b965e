"""The policy between an adapter and the network: circuit breaker, limits, retries, telemetry.

A transport wrapper, so every provider call passes through it whatever the adapter: it fails
fast while the provider's circuit is open, waits (within the request's deadline) for a
concurrency slot and a rate token, retries safe reads on connect errors and 429/502/503/504
with jittered exponential backoff (or the provider's Retry-After), and records one metric sample
and one log line per call. What a call is comes from the adapter operation it carries
(`OPERATION_EXTENSION`), not from its HTTP method or path: an opportunity search is a POST that
reads, and a vendor's order path need not end in `/orders`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import structlog

from adapters.client import (
    CREATE_OPERATIONS,
    OPERATION_EXTENSION,
    READ_OPERATIONS,
    BodyRefused,
    CircuitOpen,
    NoRateSlot,
    failures_behind,
)
from gateway.obs.metrics import Metrics
from gateway.settings.models import ProviderSettings
from gateway.upstream.breaker import STATE_VALUE, CircuitBreaker
from gateway.upstream.context import remaining_s, upstream_calls
from gateway.upstream.rate_gates import Gate, Gates
from gateway.upstream.stamp import stamp
from gateway.upstream.transport import DEFAULT_MAX_BODY_BYTES, read_decoded

if TYPE_CHECKING:  # OpenTelemetry is loaded only when tracing is on
    from gateway.obs.tracing import Tracing
    from gateway.upstream.tracing import UpstreamSpans

log = structlog.get_logger("gateway.upstream")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_RETRY_AFTER_S = 30.0


def may_retry(request: httpx.Request) -> bool:
    """Whether a call is a safe read: by its adapter operation, or by its HTTP method when it names none.

    An operation the gateway does not know as a read (order creation, or anything a future
    adapter adds) is never retried: sending it twice could act twice.
    """
    operation = request.extensions.get(OPERATION_EXTENSION)
    if operation is None:
        return request.method in IDEMPOTENT
    return operation in READ_OPERATIONS


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds a 429/503 asks to wait (RFC 9110: delta-seconds or an HTTP-date), at most 30; None if unusable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            # HTTP-dates are GMT; "-0000" parses as naive.
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def _outcome(response: httpx.Response | None, exc: BaseException | None) -> str:
    if exc is not None:
        if isinstance(exc, asyncio.CancelledError):
            return "cancelled"
        if isinstance(exc, CircuitOpen):
            return "circuit_open"
        if isinstance(exc, NoRateSlot):
            return "rate_limited"
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
        self,
        inner: httpx.AsyncBaseTransport,
        settings: ProviderSettings,
        breaker: CircuitBreaker,
        metrics: Metrics,
        gates: Gates | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """`gates`: the gateway's rate gates (over its store); None keeps this provider's in this transport."""
        self.inner = inner
        # None when tracing is off: then no span is made, no traceparent sent, OpenTelemetry not loaded.
        self.spans: UpstreamSpans | None = None
        if tracing is not None:
            from gateway.upstream.tracing import UpstreamSpans

            self.spans = UpstreamSpans(tracing, settings.id, _outcome)
        self.settings = settings
        self.breaker = breaker
        self.metrics = metrics
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        gates = gates or Gates(None, metrics)
        pid, budget = settings.id, settings.timeout_s
        self._rate = (
            gates.gate(f"{pid}:rate", settings.rate_per_s, fallback_budget_s=budget) if settings.rate_per_s else None
        )
        self._order_rate: Gate | None = None
        if settings.order_rate_per_s:
            self._order_rate = gates.gate(f"{pid}:order-rate", settings.order_rate_per_s, fallback_budget_s=budget)

    def _backoff(self, attempt: int) -> float:
        base: float = self.settings.retry_backoff_s * 2.0**attempt
        return base * random.uniform(0.5, 1.5)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send with the provider's policy applied."""
        operation = str(request.extensions.get(OPERATION_EXTENSION, request.method.lower()))
        retries = self.settings.retries if may_retry(request) else 0
        stamp(request)
        attempt = 0
        while True:
            try:
                if self.spans is None:
                    response = await self._attempt(request, operation, attempt)
                else:
                    send = functools.partial(self._attempt, request, operation, attempt)
                    response = await self.spans.attempt(request, operation, attempt, send)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                delay = self._backoff(attempt)
                if isinstance(exc, CircuitOpen) or attempt >= retries or delay >= remaining_s(self.settings.timeout_s):
                    raise
            else:
                # An upstream gateway's answer that a provider behind it failed: that gateway
                # already applied its retry policy towards the provider; another round is wasted.
                if attempt >= retries or response.status_code not in RETRY_STATUSES or failures_behind(response):
                    return response
                asked = retry_after(response)
                delay = self._backoff(attempt) if asked is None else asked
                # A wait the deadline cannot afford is not waited: the answer goes back now.
                if delay >= remaining_s(self.settings.timeout_s):
                    return response
                await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1
            self.metrics.upstream_retries.labels(self.settings.id, operation).inc()

    async def _attempt(self, request: httpx.Request, operation: str, attempt: int) -> httpx.Response:
        pid = self.settings.id
        permit = self.breaker.allow()
        if permit is None:
            refused = CircuitOpen(f"the circuit of '{pid}' is open", request=request)
            self._record(operation, None, refused, 0.0, attempt)
            raise refused
        started = time.perf_counter()
        judged, sent = False, False
        try:
            await self._admit(request, operation)
            async with self._slots_within(request):
                sent = True
                response = await self.inner.handle_async_request(request)
                # Not response.aread(): httpx would decode content-encoding without any bound.
                response = await read_decoded(response, request, DEFAULT_MAX_BODY_BYTES)
        except httpx.TransportError as exc:
            # Waiting for our own limits says nothing about the provider's health.
            if not isinstance(exc, httpx.PoolTimeout):
                self.breaker.record(False, _outcome(None, exc))
                judged = True
            self._record(operation, None, exc, time.perf_counter() - started, attempt)
            raise
        except asyncio.CancelledError as exc:
            # The deadline ended the call while the provider had it. For the probe that is as
            # good as a timeout: the half-open circuit needs a verdict, and one that never came
            # in the time left is a failure. Other calls stay unjudged (a sibling's deadline,
            # not the provider, may have ended them; their own timeout_s is the health signal).
            if sent and permit.probe:
                self.breaker.record(False, "cancelled")
                judged = True
            self._record(operation, None, exc, time.perf_counter() - started, attempt)
            raise
        else:
            # A 5xx that an upstream gateway says is the failure of a provider behind it is an
            # answer from a working gateway: one dead provider there must not open the circuit
            # of all of it (its own circuit towards that provider fails those calls fast).
            ok = response.status_code < 500 or bool(failures_behind(response))
            self.breaker.record(ok, _outcome(response, None))
            judged = True
        finally:
            if not judged:
                # Never sent (no slot or token in time, cancelled while waiting) or failed in a
                # way that says nothing of the provider: free the probe's turn for the next call.
                self.breaker.release(permit)
        self._record(operation, response, None, time.perf_counter() - started, attempt)
        return response

    async def _admit(self, request: httpx.Request, operation: str) -> None:
        """Wait for a slot of each rate limit the call falls under; waiting counts against the deadline."""
        gates = [self._rate, self._order_rate if operation in CREATE_OPERATIONS else None]
        for gate in gates:
            if gate is None:
                continue
            try:
                await gate.wait()
            except NoRateSlot as exc:
                exc.request = request
                raise

    def _slots_within(self, request: httpx.Request) -> _Slot:
        return _Slot(self._slots, remaining_s(self.settings.timeout_s), request, self.settings.id)

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
