"""User-Agent and X-Request-ID on every upstream call, OAuth token requests included."""

from __future__ import annotations

import contextvars
import re
from importlib import metadata

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.settings.models import ProviderSettings, Settings
from gateway.upstream.context import request_id
from gateway.upstream.providers import TOKEN_TRANSPORT_SUFFIX
from gateway.upstream.stamp import USER_AGENT, new_request_id, stamp
from tests.gateways import gateway_client
from tests.tracing import RecordedSpans, traceparent_ids
from tests.upstreams import ProductSpec, backend_of, build_provider


def test_the_user_agent_names_the_installed_version() -> None:
    """`stapi-gateway/<version>`, the version from the package metadata."""
    assert metadata.version("stapi-gateway") in USER_AGENT
    assert f"stapi-gateway/{metadata.version('stapi-gateway')}" == USER_AGENT


@pytest.mark.parametrize("current", ["req-1", None])
def test_stamp_replaces_whatever_the_request_carried(current: str | None) -> None:
    """An adapter's or a configuration's User-Agent and X-Request-ID give way to the gateway's own;
    outside any request or job a call still gets a fresh id."""
    request = httpx.Request("GET", "http://p.test/", headers={"user-agent": "evil/1", "X-Request-ID": "forged"})

    def run() -> None:
        request_id.set(current)
        stamp(request)

    contextvars.copy_context().run(run)
    assert request.headers.get_list("user-agent") == [USER_AGENT]
    (sent,) = request.headers.get_list("x-request-id")
    if current is None:
        assert re.fullmatch(r"call-[0-9a-f]{32}", sent)
    else:
        assert sent == current


def test_background_ids_are_fresh_and_say_their_kind() -> None:
    """Each background id is new, and valid as an X-Request-ID (letters, digits, `-`)."""
    first, second = new_request_id("track"), new_request_id("track")
    assert first != second
    assert re.fullmatch(r"track-[0-9a-f]{32}", first)


class TokenServer:
    """An OAuth token endpoint that records the headers of every token request."""

    def __init__(self) -> None:
        self.seen: list[httpx.Headers] = []
        self.app = Starlette(routes=[Route("/token", self.token, methods=["POST"])])

    async def token(self, request: Request) -> Response:
        """Mint a token, noting who asked."""
        self.seen.append(httpx.Headers(request.headers.raw))
        return JSONResponse({"access_token": f"tok-{len(self.seen)}", "token_type": "Bearer", "expires_in": 3600})


@pytest.mark.parametrize("tracing", [False, True])
async def test_token_requests_carry_the_request_id_user_agent_and_trace(tracing: bool) -> None:
    """The token exchange a request causes is stamped like the call it serves; with tracing it
    carries the request's trace, without it no traceparent."""
    app = build_provider([ProductSpec("eo")], name="acme")
    tokens = TokenServer()
    oauth = {"token_url": "http://auth.test/token", "client_id": "gw", "client_secret": "s3cr3t-value"}
    settings = Settings.build(
        [ProviderSettings(id="acme", url="http://acme.test", oauth=oauth)], secret="test-secret", tracing=tracing
    )
    upstreams: dict[str, ASGIApp | httpx.AsyncBaseTransport] = {
        "acme": app,
        f"acme{TOKEN_TRANSPORT_SUFFIX}": httpx.ASGITransport(app=tokens.app),
    }
    recorded = RecordedSpans()
    async with gateway_client(upstreams, settings=settings, tracer_provider=recorded.provider) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 200, response.text
    (asked,) = [h for h in tokens.seen if h.get("x-request-id") == response.headers["x-request-id"]]
    assert asked.get_list("user-agent") == [USER_AGENT]
    (call,) = [r for r in backend_of(app).requests if r.path == "/products/eo"]
    assert call.headers["authorization"].startswith("Bearer tok-")
    if tracing:
        (trace_id, _) = traceparent_ids(asked["traceparent"])
        assert trace_id == traceparent_ids(call.headers["traceparent"])[0]
    else:
        assert "traceparent" not in asked


async def test_background_calls_carry_ids_of_their_own() -> None:
    """Calls no client request made (the start-up look at each landing page) carry a fresh id each,
    never a stale request's; the calls of a request carry that request's."""
    app = build_provider([ProductSpec("eo")], name="acme")
    async with gateway_client({"acme": app}) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 200
    requests = backend_of(app).requests
    background = [r.headers["x-request-id"] for r in requests if r.path == "/"]
    assert background, "the gateway looked at the landing page at start-up"
    assert all(re.fullmatch(r"call-[0-9a-f]{32}", rid) for rid in background)
    (call,) = [r for r in requests if r.path == "/products/eo"]
    assert call.headers["x-request-id"] == response.headers["x-request-id"]
    assert all(r.headers["user-agent"] == USER_AGENT for r in requests)
