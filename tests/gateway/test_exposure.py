"""What the gateway shows outward: forwarded headers only from trusted proxies, host-free slash
redirects, operator-only detail on /readyz and /metrics, no store address, disconnects logged as such."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from starlette.types import Message

from gateway.app import create_app
from gateway.settings.models import Settings
from tests.gateways import GATEWAY_URL, hrefs, lifespan, provider_settings
from tests.upstreams import ProductSpec, build_provider

CLIENT_KEY = "key-of-a-plain-client-01234"
OPERATOR_KEY = "key-of-the-operator-0123456"
CLIENTS = [
    {"id": "client", "key": CLIENT_KEY, "providers": ["acme"]},
    {"id": "ops", "key": OPERATOR_KEY, "operator": True},
]
FORWARDED = {"Host": "gw.internal:8000", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"}


@asynccontextmanager
async def gateway(peer: str = "127.0.0.1", **gateway_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway in front of two real providers, reached from `peer` (the connecting address)."""
    upstreams = {pid: build_provider([ProductSpec("eo")], name=pid) for pid in ("acme", "hidden")}
    gateway_settings.setdefault("secret", "test-secret")
    settings = Settings.build(provider_settings(list(upstreams)), **gateway_settings)
    app = create_app(settings, transports={pid: httpx.ASGITransport(app=up) for pid, up in upstreams.items()})
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url=GATEWAY_URL) as client:
        yield client


@pytest.mark.parametrize(
    ("peer", "trusted", "expected"),
    [
        ("203.0.113.7", None, "http://gw.internal:8000"),  # not a proxy: the Host header, not the forwarded one
        ("127.0.0.1", None, "https://evil.example.com"),  # loopback is trusted by default
        ("::1", None, "https://evil.example.com"),
        ("10.1.2.3", ["10.0.0.0/8"], "https://evil.example.com"),
        ("127.0.0.1", ["10.0.0.0/8"], "http://gw.internal:8000"),
        ("198.51.100.1", ["*"], "https://evil.example.com"),
    ],
)
async def test_forwarded_headers_count_only_from_trusted_proxies(peer: str, trusted: Any, expected: str) -> None:
    """X-Forwarded-Proto/-Host shape the links only when the connecting peer is a trusted proxy."""
    settings = {} if trusted is None else {"trusted_proxies": trusted}
    async with gateway(peer, **settings) as client:
        landing = (await client.get("/", headers=FORWARDED)).json()
    assert {h.split("/")[0] + "//" + h.split("/")[2] for h in hrefs(landing)} == {expected}


async def test_public_url_wins_over_any_header() -> None:
    """With `public_url`, neither Host nor forwarded headers matter, even from a trusted proxy."""
    async with gateway(public_url="https://stapi.example.org/v1") as client:
        landing = (await client.get("/", headers=FORWARDED)).json()
    assert {h.rsplit("/v1", 1)[0] for h in hrefs(landing)} == {"https://stapi.example.org"}


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/products/", 307, "/products"),
        ("/products/?limit=5", 307, "/products?limit=5"),
        ("/products/acme:eo/", 307, "/products/acme:eo"),
        ("/orders//", 307, "/orders"),
        ("//evil.example.com/", 404, None),
        ("/\\evil.example.com/", 404, None),
        ("/nothing-here/", 404, None),
    ],
)
async def test_trailing_slash_redirects_name_no_host(path: str, status: int, location: str | None) -> None:
    """The 307 for a trailing slash is relative, whatever Host says; `//host/` is never redirected."""
    async with gateway() as client:
        response = await client.get(GATEWAY_URL + path, headers={"Host": "evil.example.com"})
    assert response.status_code == status
    assert response.headers.get("location") == location
    assert not hrefs(response.json() if response.content else {})


async def test_readiness_shows_only_aggregates_to_clients_and_detail_to_operators() -> None:
    """Without a key, or with a plain client's, /readyz counts providers; an operator's key names them."""
    async with gateway(clients=CLIENTS) as client:
        anonymous = await client.get("/readyz")
        plain = await client.get("/readyz", headers={"X-API-Key": CLIENT_KEY})
        operator = await client.get("/readyz", headers={"X-API-Key": OPERATOR_KEY})
    for response in (anonymous, plain):
        assert response.status_code == 200
        assert response.json()["providers"] == {"healthy": 2, "total": 2}
        assert "hidden" not in response.text
    assert sorted(operator.json()["providers"]) == ["acme", "hidden"]


async def test_metrics_need_an_operator_key_once_clients_are_configured() -> None:
    """401 without a key, 403 with a plain client's, 200 with an operator's; `public_metrics` opens it."""
    async with gateway(clients=CLIENTS) as client:
        missing = await client.get("/metrics")
        plain = await client.get("/metrics", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        operator = await client.get("/metrics", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    async with gateway(clients=CLIENTS, public_metrics=True) as client:
        public = await client.get("/metrics")
    async with gateway() as client:
        without_clients = await client.get("/metrics")
    assert (missing.status_code, missing.json()["code"]) == (401, "unauthorized")
    assert (plain.status_code, plain.json()["code"]) == (403, "forbidden")
    assert operator.status_code == public.status_code == without_clients.status_code == 200
    assert "stapi_gateway_requests_total" in operator.text


async def test_a_store_that_is_down_is_reported_without_its_address_or_error() -> None:
    """/readyz and any error caused by the store say only that it is unavailable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with gateway(store=f"redis://127.0.0.1:{port}/7") as client:
        ready = await client.get("/readyz")
        records = await client.get("/searches/opportunities")
    assert ready.status_code == 503
    assert ready.json()["store"] == {"healthy": False, "durable": False, "reset_detected_at": None}
    assert records.status_code == 503
    for response in (ready, records):
        assert str(port) not in response.text
        assert "127.0.0.1" not in response.text
        assert "Error" not in response.text


async def test_a_client_gone_mid_body_is_a_499_and_client_disconnected() -> None:
    """The request line says 499, a `client_disconnected` line says why; no unhandled_error."""
    upstream = build_provider([ProductSpec("eo")], name="acme")
    app = create_app(
        Settings.build(provider_settings(["acme"]), secret="s"), transports={"acme": httpx.ASGITransport(app=upstream)}
    )
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"datetime": ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        await asyncio.sleep(0)
        return messages.pop(0)

    async def send(message: Message) -> None:
        return None

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/products/acme:eo/opportunities",
        "raw_path": b"/products/acme:eo/opportunities",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gw"), (b"content-type", b"application/json"), (b"content-length", b"300")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    with structlog.testing.capture_logs() as logs:
        async with lifespan(app):
            await app(scope, receive, send)
    events = [e["event"] for e in logs]
    assert "client_disconnected" in events
    assert next(e for e in logs if e["event"] == "request")["status"] == 499
    assert "unhandled_error" not in events
