"""CLIENT spans: one per attempt, with the HTTP conventions' attributes and no credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.obs.tracing import Tracing
from gateway.upstream.policy import _outcome
from gateway.upstream.tracing import UpstreamSpans
from tests.faults import ThrottlingApp
from tests.gateways import gateway_client
from tests.tracing import RecordedSpans, traceparent_ids
from tests.upstreams import ProductSpec, build_provider


class TraceparentLog:
    """Wraps an app, noting the traceparent of every product request that reaches it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Note, then pass on."""
        if scope["type"] == "http" and scope["path"].startswith("/products"):
            self.seen.append(dict(scope["headers"]).get(b"traceparent", b"").decode())
        await self.app(scope, receive, send)


async def test_each_retry_is_a_span_of_its_own_with_its_own_traceparent() -> None:
    """A read answered 503 then 200: two CLIENT spans under the request's, the first an error,
    the second a resend; the provider saw a different traceparent each time, naming each span."""
    seen = TraceparentLog(ThrottlingApp(build_provider([ProductSpec("eo")], name="acme"), 1, status=503))
    recorded = RecordedSpans()
    async with gateway_client(
        {"acme": seen},
        tracing=True,
        tracer_provider=recorded.provider,
        provider_overrides={"retries": 1, "retry_backoff_s": 0.01},
    ) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 200
    spans = [s for s in recorded.all() if s.kind is SpanKind.CLIENT and s.name == "GET acme get_product"]
    assert [s.attributes and s.attributes["stapi.attempt"] for s in spans] == [0, 1]
    first, second = (dict(s.attributes or {}) for s in spans)
    assert (first["http.response.status_code"], first["error.type"], first["stapi.outcome"]) == (503, "503", "5xx")
    assert spans[0].status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in first
    assert (second["http.response.status_code"], second["http.request.resend_count"]) == (200, 1)
    assert spans[1].status.status_code is StatusCode.UNSET
    (server,) = [s for s in recorded.all() if s.kind is SpanKind.SERVER]
    assert server.context is not None
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in spans)
    sent = [traceparent_ids(header) for header in seen.seen]
    assert sent == [(server.context.trace_id, s.context.span_id) for s in spans if s.context is not None]


async def _answer() -> httpx.Response:
    return httpx.Response(204)


async def _refuse() -> httpx.Response:
    raise httpx.ConnectError("refused")


async def _time_out() -> httpx.Response:
    raise httpx.ReadTimeout("slow")


@pytest.mark.parametrize(
    ("send", "outcome", "status"),
    [
        (_answer, "2xx", StatusCode.UNSET),
        (_refuse, "connect_error", StatusCode.ERROR),
        (_time_out, "timeout", StatusCode.ERROR),
    ],
)
async def test_a_span_leaves_credentials_and_query_out_and_says_how_the_call_ended(
    send: Callable[[], Awaitable[httpx.Response]], outcome: str, status: StatusCode
) -> None:
    """url.full has no user, password or query (API keys travel there); the outcome and error.type
    are the policy's labels; a failure is the span's error and still propagates."""
    recorded = RecordedSpans()
    spans = UpstreamSpans(Tracing.of(recorded.provider), "acme", _outcome)
    request = httpx.Request("GET", "https://user:pa55word@api.acme.test:8443/tasks?api_key=k3y&page=2")
    if status is StatusCode.ERROR:
        with pytest.raises(httpx.TransportError):
            await spans.attempt(request, "list_orders", 2, send)
    else:
        assert (await spans.attempt(request, "list_orders", 2, send)).status_code == 204
    (span,) = recorded.all()
    attributes = dict(span.attributes or {})
    assert attributes["url.full"] == "https://api.acme.test:8443/tasks"
    assert (attributes["server.address"], attributes["server.port"]) == ("api.acme.test", 8443)
    assert (attributes["stapi.outcome"], attributes["http.request.resend_count"]) == (outcome, 2)
    assert attributes.get("error.type") == (outcome if status is StatusCode.ERROR else None)
    assert span.status.status_code is status
    assert "pa55word" not in str(attributes)
    assert "k3y" not in str(attributes)
    assert span.context is not None
    assert traceparent_ids(request.headers["traceparent"])[1] == span.context.span_id
