"""Delivery attempts over real sockets: a uvicorn receiver on 127.0.0.1, the SSRF checks, timeouts, body limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.domain.events import probe_event
from gateway.notify.model import Subscription
from gateway.notify.sender import EXCERPT_BYTES, Sender
from gateway.notify.subscriptions import new_secret
from gateway.settings.models import WebhookSettings
from tests.gateway.notify.receivers import Receiver
from tests.upstreams import serve

CHUNK = b"x" * 16_384
CHUNKS = 4096


class Hostile:
    """Receivers that misbehave: slow, endless bodies, redirects. Counts what the endless one produced."""

    def __init__(self) -> None:
        self.chunks_made = 0
        self.app = Starlette(
            routes=[
                Route("/slow", self.slow, methods=["POST"]),
                Route("/huge", self.huge, methods=["POST"]),
                Route("/redirect", self.redirect, methods=["POST"]),
            ]
        )

    async def slow(self, request: Request) -> Response:
        """Never answers; ends when the client goes away."""
        await request.body()
        # With the body read, the next message is the client's disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return Response(status_code=200)

    async def huge(self, request: Request) -> Response:
        """A 500 whose body would be 64 MiB; Starlette stops the stream when the client disconnects."""

        def chunks() -> Iterator[bytes]:
            for _ in range(CHUNKS):
                self.chunks_made += 1
                yield CHUNK

        return StreamingResponse(chunks(), status_code=500)

    async def redirect(self, request: Request) -> Response:
        """Points elsewhere."""
        return Response(status_code=307, headers={"location": "http://127.0.0.1:9/elsewhere"})


def _subscription(url: str) -> Subscription:
    return Subscription(id="sub1", client="alice", url=url, events=frozenset(), secret=new_secret(), created=0.0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client like the notifier's."""
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as opened:
        yield opened


def _sender(client: httpx.AsyncClient, **settings: object) -> Sender:
    return Sender(client, WebhookSettings.model_validate({"allow_private": True, "timeout_s": 5, **settings}))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_real_receiver_gets_a_signed_event(client: httpx.AsyncClient, host: str) -> None:
    """Over a real socket, by address or by a name resolved at send time, the request verifies and names its host."""
    receiver = Receiver()
    async with serve(receiver) as base:
        url = base.replace("127.0.0.1", host) + "/hook?k=v"
        sub = _subscription(url)
        event = probe_event("alice", sub.id)
        result = await _sender(client).send(sub, event)
    assert (result.status, result.error, result.refused) == (204, None, False)
    (got,) = receiver.got
    assert got.headers["host"] == urlsplit(url).netloc
    assert Webhook(sub.secret).verify(got.body, got.headers)["type"] == "subscription.test"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_non_public_receivers_are_refused_unless_allowed(client: httpx.AsyncClient, host: str) -> None:
    """With allow_private off, a loopback receiver, by address or by a name resolving to it, gets nothing."""
    receiver = Receiver()
    async with serve(receiver) as base:
        port = urlsplit(base).port
        result = await _sender(client, allow_private=False).send(
            _subscription(f"http://{host}:{port}/hook"), probe_event("alice", "sub1")
        )
    assert result.refused is True
    assert result.status is None
    assert result.error is not None
    assert "allow_private" in result.error
    assert receiver.got == []


async def test_any_non_public_address_refuses_and_the_checked_address_is_the_one_used(
    client: httpx.AsyncClient,
) -> None:
    """A name resolving to a public and a private address is refused; an allowed name is sent to what was resolved."""
    receiver = Receiver()
    resolved: list[str] = []

    async def mixed(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["93.184.216.34", "10.0.0.1"]

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with serve(receiver) as base:
        port = urlsplit(base).port
        sub = _subscription(f"http://hooks.example.com:{port}/hook")
        strict = Sender(client, WebhookSettings(allow_private=False), mixed)
        refused = await strict.send(sub, probe_event("alice", "sub1"))
        allowed = await Sender(client, WebhookSettings(allow_private=True), loopback).send(
            sub, probe_event("alice", "sub1")
        )
    assert resolved == ["hooks.example.com"]
    assert refused.refused is True
    assert allowed.status == 204
    assert [r.headers["host"] for r in receiver.got] == [f"hooks.example.com:{port}"]


async def test_a_host_name_resolution_cannot_encode_is_a_failed_attempt(client: httpx.AsyncClient) -> None:
    """A label over 63 characters (a subscription stored before URLs were checked for it) fails its
    attempt like an unknown name, instead of crashing the worker at every claim."""
    url = "http://" + "a" * 64 + ".example.com/hook"
    result = await _sender(client).send(_subscription(url), probe_event("a", "sub1"))
    assert result.status is None
    assert result.refused is False
    assert result.error is not None
    assert result.error.startswith("UnicodeError")


async def test_a_slow_receiver_is_cut_at_the_timeout(client: httpx.AsyncClient) -> None:
    """A receiver that never answers costs one timeout and an attempt that says so."""
    hostile = Hostile()
    async with serve(hostile.app) as base:
        result = await _sender(client, timeout_s=0.3).send(_subscription(base + "/slow"), probe_event("a", "sub1"))
    assert result.status is None
    assert result.error == "timed out after 0.3 s"


async def test_a_huge_error_body_is_not_read_past_the_limit(client: httpx.AsyncClient) -> None:
    """Only the first bytes of a failed answer are read; the receiver stops well before its 64 MiB."""
    hostile = Hostile()
    async with serve(hostile.app) as base:
        result = await _sender(client).send(_subscription(base + "/huge"), probe_event("a", "sub1"))
    assert result.status == 500
    assert result.error is not None
    assert result.error.startswith("HTTP 500: xxx")
    assert len(result.error) <= EXCERPT_BYTES
    assert hostile.chunks_made < CHUNKS


async def test_redirects_are_not_followed_and_other_schemes_refused(client: httpx.AsyncClient) -> None:
    """A 3xx is a failed attempt (not followed); a non-http URL is refused without a request."""
    hostile = Hostile()
    async with serve(hostile.app) as base:
        redirected = await _sender(client).send(_subscription(base + "/redirect"), probe_event("a", "sub1"))
    assert redirected.status == 307
    assert redirected.refused is False
    refused = await _sender(client).send(_subscription("ftp://127.0.0.1/x"), probe_event("a", "sub1"))
    assert refused.refused is True


async def test_a_closed_port_is_an_error_without_the_query(client: httpx.AsyncClient) -> None:
    """Nothing listening: the attempt records a connection error that never repeats the URL's query."""
    result = await _sender(client).send(_subscription("http://127.0.0.1:9/hook?token=s3cret"), probe_event("a", "s"))
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("ConnectError")
    assert "s3cret" not in result.error
