"""The SERVER span of each request and the CLIENT spans of its provider calls, over real providers."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from gateway.upstream.stamp import USER_AGENT
from tests.gateways import gateway_client
from tests.tracing import RecordedSpans, traceparent_ids
from tests.upstreams import RecordedRequest, backend_of, build_providers

INCOMING_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
INCOMING_PARENT = 0xB7AD6B7169203331


def product_lists(apps: Mapping[str, FastAPI]) -> dict[str, list[RecordedRequest]]:
    """Each provider's `GET /products` requests as it received them."""
    return {pid: [r for r in backend_of(app).requests if r.path == "/products"] for pid, app in apps.items()}


def server_span(spans: list[ReadableSpan]) -> ReadableSpan:
    """The one SERVER span among `spans`."""
    (found,) = [s for s in spans if s.kind is SpanKind.SERVER]
    return found


async def test_a_product_list_over_three_providers_is_one_trace_with_a_client_span_per_call() -> None:
    """GET /products: one SERVER span, one CLIENT span per provider call under it, each call's
    traceparent naming its CLIENT span, and X-Request-ID and User-Agent at every provider."""
    apps = build_providers(3, 2)
    recorded = RecordedSpans()
    async with gateway_client(apps, tracing=True, tracer_provider=recorded.provider) as client:
        response = await client.get("/products")
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    server = server_span([s for s in recorded.all() if s.attributes and s.attributes.get("url.path") == "/products"])
    assert server.context is not None
    trace = recorded.of_trace(server.context.trace_id)
    assert server.parent is None, "no traceparent came in: the request starts the trace"
    assert server.name == "GET /products"
    assert server.attributes is not None
    assert dict(server.attributes) == {
        "http.request.method": "GET",
        "url.path": "/products",
        "url.scheme": "http",
        "stapi.request_id": request_id,
        "http.route": "/products",
        "stapi.operation": "listProducts",
        "http.response.status_code": 200,
    }
    calls = [s for s in trace if s.kind is SpanKind.CLIENT]
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in calls)
    assert sorted(str(s.attributes["stapi.provider"]) for s in calls if s.attributes) == ["p1", "p2", "p3"]
    for span in calls:
        assert span.attributes is not None
        assert span.context is not None
        pid = str(span.attributes["stapi.provider"])
        assert span.name == f"GET {pid} list_products"
        assert {
            "http.request.method": "GET",
            "server.address": f"{pid}.test",
            "server.port": 80,
            "url.full": f"http://{pid}.test/products",
            "stapi.operation": "list_products",
            "stapi.attempt": 0,
            "stapi.outcome": "2xx",
            "http.response.status_code": 200,
        }.items() <= dict(span.attributes).items()
        assert span.status.status_code is StatusCode.UNSET
    for pid, seen in product_lists(apps).items():
        (call,) = seen
        (span,) = [s for s in calls if s.attributes and s.attributes["stapi.provider"] == pid]
        assert span.context is not None
        assert traceparent_ids(call.headers["traceparent"]) == (server.context.trace_id, span.context.span_id)
        assert call.headers["x-request-id"] == request_id
        assert call.headers["user-agent"] == USER_AGENT


async def test_an_incoming_traceparent_is_continued() -> None:
    """A client's traceparent makes the request's SERVER span a child of the client's span, in its trace."""
    apps = build_providers(1, 1)
    recorded = RecordedSpans()
    incoming = f"00-{INCOMING_TRACE:032x}-{INCOMING_PARENT:016x}-01"
    async with gateway_client(apps, tracing=True, tracer_provider=recorded.provider) as client:
        response = await client.get("/products", headers={"traceparent": incoming})
    assert response.status_code == 200
    server = server_span(recorded.of_trace(INCOMING_TRACE))
    assert server.parent is not None
    assert server.parent.span_id == INCOMING_PARENT
    (call,) = product_lists(apps)["p1"]
    assert traceparent_ids(call.headers["traceparent"])[0] == INCOMING_TRACE


@pytest.mark.parametrize(
    ("path", "name", "status"),
    [
        ("/products/p1:nope", "GET /products/{productId}", 404),
        ("/no/such/route", "GET", 404),
    ],
)
async def test_the_server_span_names_the_route_template_not_the_path(path: str, name: str, status: int) -> None:
    """The span's name and http.route are the template (low cardinality), none for an unrouted path; 4xx is no error."""
    recorded = RecordedSpans()
    async with gateway_client(build_providers(1, 1), tracing=True, tracer_provider=recorded.provider) as client:
        response = await client.get(path)
    assert response.status_code == status
    server = server_span([s for s in recorded.all() if s.attributes and s.attributes.get("url.path") == path])
    assert server.name == name
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == status
    assert server.attributes.get("http.route") == (None if name == "GET" else name.removeprefix("GET "))
    assert server.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("client_id", ["client-chosen.id:42", None, "has spaces"])
async def test_without_tracing_no_span_is_made_and_no_traceparent_sent(client_id: str | None) -> None:
    """Tracing off (the default), even with a tracer provider at hand: no span, no traceparent; the
    request id (the client's if sane, else the gateway's) and the User-Agent still reach providers."""
    apps = build_providers(2, 1)
    recorded = RecordedSpans()
    headers = {"X-Request-ID": client_id} if client_id else {}
    async with gateway_client(apps, tracer_provider=recorded.provider) as client:
        response = await client.get("/products", headers=headers)
    assert response.status_code == 200
    assert recorded.all() == []
    request_id = response.headers["x-request-id"]
    if client_id == "client-chosen.id:42":
        assert request_id == client_id
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), "an unusable client id is replaced by the gateway's"
    for calls in product_lists(apps).values():
        (call,) = calls
        assert "traceparent" not in call.headers
        assert call.headers["x-request-id"] == request_id
        assert call.headers["user-agent"] == USER_AGENT


async def test_otel_sdk_disabled_turns_tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true overrides `gateway.tracing: true`: no span, no traceparent."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    apps = build_providers(1, 1)
    recorded = RecordedSpans()
    async with gateway_client(apps, tracing=True, tracer_provider=recorded.provider) as client:
        assert (await client.get("/products")).status_code == 200
    assert recorded.all() == []
    (call,) = product_lists(apps)["p1"]
    assert "traceparent" not in call.headers
