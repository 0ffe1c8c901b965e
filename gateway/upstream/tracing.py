"""One CLIENT span per upstream call attempt, with `traceparent` naming it sent to the provider.

Imported only when tracing is on (gateway/upstream/providers.py), as it loads OpenTelemetry.
Attributes follow the OpenTelemetry HTTP client conventions (http.request.method, server.address,
server.port, url.full, http.response.status_code, http.request.resend_count, error.type), plus
the gateway's own: stapi.provider, stapi.operation, stapi.attempt and stapi.outcome (the outcome
label of the upstream metrics).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.obs.tracing import Tracing

# The policy's outcome of a call: from its response, or from the exception that ended it.
Outcome = Callable[[httpx.Response | None, BaseException | None], str]


def _url_full(url: httpx.URL) -> str:
    """The URL without credentials or query: a password in the URL, or an API key in the query,
    must not reach the trace backend (the conventions ask for credentials to be left out)."""
    # From its parts: copy_with() parses the URL again, a third of the span's cost (bench/tracing.py).
    # netloc is host and port, without userinfo; raw_path is the path as sent, with its query.
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.raw_path.partition(b'?')[0].decode('ascii')}"


class UpstreamSpans:
    """Makes the CLIENT span of each call attempt to one provider."""

    def __init__(self, tracing: Tracing, provider_id: str, outcome: Outcome) -> None:
        self.tracing = tracing
        self.provider_id = provider_id
        self.outcome = outcome

    async def attempt(
        self, request: httpx.Request, operation: str, attempt: int, send: Callable[[], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        """Run one attempt (`send`) inside its span, with its `traceparent` on the request."""
        url = request.url
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "url.full": _url_full(url),
            "stapi.provider": self.provider_id,
            "stapi.operation": operation,
            "stapi.attempt": attempt,
        }
        if attempt:
            attributes["http.request.resend_count"] = attempt
        name = f"{request.method} {self.provider_id} {operation}"
        with self.tracing.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            # Replaces the previous attempt's traceparent: each attempt is a span of its own.
            self.tracing.propagator.inject(request.headers)
            try:
                response = await send()
            except BaseException as exc:
                outcome = self.outcome(None, exc)
                span.set_attributes({"stapi.outcome": outcome, "error.type": outcome})
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200] or outcome))
                raise
            status = response.status_code
            span.set_attributes({"stapi.outcome": self.outcome(response, None), "http.response.status_code": status})
            if status >= 400:
                # A client span's 4xx is an error too (the conventions): the call did not do its job.
                span.set_attributes({"error.type": str(status)})
                span.set_status(Status(StatusCode.ERROR))
            return response


def inject_current(tracing: Tracing, request: httpx.Request) -> None:
    """Send the current span's `traceparent` (calls made outside GuardedTransport: OAuth tokens)."""
    if trace.get_current_span().get_span_context().is_valid:
        tracing.propagator.inject(request.headers)
