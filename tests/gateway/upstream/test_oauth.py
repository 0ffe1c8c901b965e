"""OAuth2 client credentials against an in-process token server and a protected API."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.upstream.oauth import ClientCredentials, TokenError

TOKEN_URL = "https://auth.vendor.test/oauth2/token"
API_URL = "https://api.vendor.test"
# A ':' in the id and odd characters in the secret exercise the form-encoding of RFC 6749 §2.3.1.
CLIENT_ID = "gateway:prod"
SECRET = "s3cr3t/with:odd+chars é"


@dataclass
class Vendor:
    """A token server counting mints, and an API that accepts only the latest token."""

    mode: str = "ok"
    token_type: str = "Bearer"
    expires_in: Any = 3600
    delay_s: float = 0.0
    calls: int = 0
    forms: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    accepted: str | None = None
    api_hits: int = 0
    api_rejections: int = 0

    @property
    def mints(self) -> int:
        """Tokens issued so far."""
        return len(self.issued)

    def revoke(self) -> None:
        """Make the API reject every token issued so far."""
        self.accepted = None

    async def token(self, request: Request) -> Response:
        """The token endpoint: Basic client auth, form-encoded client_credentials grant."""
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        if scheme != "Basic" or (unquote_plus(client_id), unquote_plus(secret)) != (CLIENT_ID, SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        self.forms.append(form)
        if self.mode == "error":
            return PlainTextResponse(f"internal error handling {SECRET}", status_code=500)
        if self.mode == "not-json":
            return PlainTextResponse(f"<html>client {SECRET}</html>", status_code=200)
        value = f"tok{self.mints + 1}-{'x' * 24}"
        self.issued.append(value)
        if self.mode != "unaccepted":
            self.accepted = value
        payload: dict[str, Any] = {"access_token": value, "token_type": self.token_type}
        if self.expires_in is not None:
            payload["expires_in"] = self.expires_in
        if self.mode == "no-token":
            del payload["access_token"]
        return JSONResponse(payload)

    async def protected(self, request: Request) -> Response:
        """The provider's API: 401 unless the request carries the latest, unrevoked token."""
        self.api_hits += 1
        await asyncio.sleep(float(request.headers.get("x-delay", "0")))
        if self.accepted is None or request.headers.get("authorization") != f"Bearer {self.accepted}":
            self.api_rejections += 1
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        return JSONResponse({"token": self.accepted, "body": (await request.body()).decode()})


@asynccontextmanager
async def connect(
    vendor: Vendor, *, secret: str = SECRET, **kwargs: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, ClientCredentials]]:
    """A provider client authenticated by ClientCredentials, both apps served in process."""
    token_app = Starlette(routes=[Route("/oauth2/token", vendor.token, methods=["POST"])])
    api_app = Starlette(routes=[Route("/items", vendor.protected, methods=["GET", "POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=token_app)) as token_client:
        auth = ClientCredentials(TOKEN_URL, CLIENT_ID, secret, token_client=token_client, **kwargs)
        transport = httpx.ASGITransport(app=api_app)
        async with httpx.AsyncClient(transport=transport, base_url=API_URL, auth=auth) as client:
            yield client, auth


class Clock:
    """A hand-wound clock for ClientCredentials' `clock`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def assert_reveals_nothing(text: str, vendor: Vendor) -> None:
    """Neither the secret, its encodings, the Basic credentials nor any issued token appears in text."""
    encoded = f"{quote(CLIENT_ID, safe='')}:{quote(SECRET, safe='')}"
    basic = base64.b64encode(encoded.encode()).decode()
    for forbidden in (SECRET, "s3cr3t", quote(SECRET, safe=""), basic, *vendor.issued, "tok1-", "xxxxxxxx"):
        assert forbidden not in text


async def test_bearer_token_is_attached() -> None:
    """The token from the token endpoint goes out as a Bearer Authorization header."""
    vendor = Vendor()
    async with connect(vendor) as (client, _):
        response = await client.get("/items")
    assert response.status_code == 200
    assert response.json()["token"] == vendor.issued[0]
    assert vendor.forms == [{"grant_type": "client_credentials"}]


async def test_token_is_cached_across_requests() -> None:
    """Ten requests in a row use one minted token."""
    vendor = Vendor()
    async with connect(vendor) as (client, _):
        responses = [await client.get("/items") for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 10
    assert vendor.calls == vendor.mints == 1


async def test_concurrent_first_requests_share_one_mint() -> None:
    """Fifty concurrent requests without a token cause exactly one token request."""
    vendor = Vendor(delay_s=0.05)
    async with connect(vendor) as (client, _):
        responses = await asyncio.gather(*(client.get("/items") for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert vendor.calls == vendor.mints == 1


async def test_token_is_refreshed_a_margin_before_expiry() -> None:
    """A token is reused until expires_in minus the margin, then a new one is minted."""
    vendor, clock = Vendor(expires_in=100), Clock()
    async with connect(vendor, clock=clock, refresh_margin_s=30) as (client, _):
        await client.get("/items")
        clock.now = 69.9
        assert (await client.get("/items")).status_code == 200
        assert vendor.mints == 1
        clock.now = 70.0
        response = await client.get("/items")
    assert response.status_code == 200
    assert vendor.mints == 2
    assert response.json()["token"] == vendor.issued[1]


async def test_missing_expires_in_means_an_hour() -> None:
    """Without expires_in a token is taken to live 3600 s."""
    vendor, clock = Vendor(expires_in=None), Clock()
    async with connect(vendor, clock=clock) as (client, _):
        await client.get("/items")
        clock.now = 3569.0
        await client.get("/items")
        assert vendor.mints == 1
        clock.now = 3570.0
        await client.get("/items")
    assert vendor.mints == 2


async def test_margin_is_capped_for_short_lived_tokens() -> None:
    """A token living less than the margin is still reused for half its lifetime."""
    vendor, clock = Vendor(expires_in="20"), Clock()
    async with connect(vendor, clock=clock, refresh_margin_s=30) as (client, _):
        await client.get("/items")
        clock.now = 9.9
        await client.get("/items")
        assert vendor.mints == 1
        clock.now = 10.0
        await client.get("/items")
    assert vendor.mints == 2


async def test_revoked_token_is_refreshed_once_and_the_request_retried() -> None:
    """A 401 to a cached token triggers one new mint and one retry that carries the same body."""
    vendor = Vendor()
    async with connect(vendor) as (client, _):
        await client.get("/items")
        vendor.revoke()
        response = await client.post("/items", content=b'{"n": 1}')
    assert response.status_code == 200
    assert response.json() == {"token": vendor.issued[1], "body": '{"n": 1}'}
    assert [r.status_code for r in response.history] == [401]
    assert vendor.mints == 2
    assert vendor.api_rejections == 1


async def test_concurrent_401s_share_one_refresh() -> None:
    """Twenty requests refused with the same revoked token cause one new mint between them."""
    vendor = Vendor(delay_s=0.05)
    async with connect(vendor) as (client, _):
        await client.get("/items")
        vendor.revoke()
        responses = await asyncio.gather(*(client.get("/items") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert vendor.mints == 2


async def test_late_401_does_not_discard_the_successor_token() -> None:
    """A 401 to an old token that arrives after its successor was minted reuses the successor."""
    vendor = Vendor()
    async with connect(vendor) as (client, _):
        await client.get("/items")
        vendor.revoke()
        slow, fast = await asyncio.gather(client.get("/items", headers={"X-Delay": "0.1"}), client.get("/items"))
    assert (slow.status_code, fast.status_code) == (200, 200)
    assert slow.json()["token"] == fast.json()["token"] == vendor.issued[1]
    assert vendor.mints == 2


async def test_401_to_a_fresh_token_is_not_retried() -> None:
    """A 401 to a just-minted token is returned as is; a cached token is retried only once."""
    vendor = Vendor(mode="unaccepted")
    async with connect(vendor) as (client, _):
        first = await client.get("/items")
        assert (first.status_code, vendor.mints, vendor.api_hits) == (401, 1, 1)
        second = await client.get("/items")
    assert second.status_code == 401
    assert (vendor.mints, vendor.api_hits) == (2, 3)


@pytest.mark.parametrize(
    ("setup", "secret", "reason"),
    [
        ({"mode": "error"}, SECRET, "answered HTTP 500"),
        ({}, "wrong-secret", "answered HTTP 401"),
        ({"mode": "not-json"}, SECRET, "not JSON"),
        ({"token_type": "mac"}, SECRET, "token_type other than Bearer"),
        ({"mode": "no-token"}, SECRET, "without a usable access_token"),
        ({"expires_in": "soon"}, SECRET, "invalid expires_in"),
    ],
    ids=["http-500", "bad-client", "invalid-json", "wrong-token-type", "no-access-token", "bad-expires-in"],
)
async def test_token_endpoint_failure_raises_token_error(setup: dict[str, Any], secret: str, reason: str) -> None:
    """A failing token endpoint raises a ConnectError-kind TokenError naming host and reason only."""
    vendor = Vendor(**setup)
    async with connect(vendor, secret=secret) as (client, _):
        with pytest.raises(TokenError) as caught:
            await client.get("/items")
    error = caught.value
    assert isinstance(error, httpx.ConnectError)
    assert str(error).startswith("token endpoint auth.vendor.test ")
    assert reason in str(error)
    assert error.request.url == f"{API_URL}/items"
    assert vendor.api_hits == 0
    assert_reveals_nothing(str(error) + repr(error), vendor)


async def test_unreachable_token_endpoint_raises_token_error() -> None:
    """A transport error on the token request becomes a TokenError without the original message."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.headers['authorization']} {SECRET}", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as token_client:
        auth = ClientCredentials(TOKEN_URL, CLIENT_ID, SECRET, token_client=token_client)
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse), auth=auth) as client:
            with pytest.raises(TokenError, match=r"could not be reached \(ConnectError\)") as caught:
                await client.get(f"{API_URL}/items")
    assert_reveals_nothing(str(caught.value), Vendor())
    assert caught.value.__cause__ is None


async def test_failed_mint_is_shared_and_not_cached() -> None:
    """Concurrent requests share one failed token request; the next request tries again."""
    vendor = Vendor(mode="error", delay_s=0.05)
    async with connect(vendor) as (client, _):
        results = await asyncio.gather(*(client.get("/items") for _ in range(10)), return_exceptions=True)
        assert all(isinstance(r, TokenError) for r in results)
        assert vendor.calls == 1
        vendor.mode = "ok"
        response = await client.get("/items")
    assert response.status_code == 200
    assert vendor.calls == 2


async def test_scope_and_audience_are_sent() -> None:
    """scope and audience go in the token request's form."""
    vendor = Vendor()
    async with connect(vendor, scope="tasking:read tasking:order", audience="https://api.vendor.test") as (client, _):
        await client.get("/items")
    assert vendor.forms == [
        {
            "grant_type": "client_credentials",
            "scope": "tasking:read tasking:order",
            "audience": "https://api.vendor.test",
        }
    ]


async def test_repr_reveals_neither_secret_nor_token() -> None:
    """repr() names the token host and client id, not the secret or the cached token."""
    vendor = Vendor()
    async with connect(vendor) as (client, auth):
        await client.get("/items")
        text = repr(auth)
    assert "auth.vendor.test" in text
    assert CLIENT_ID in text
    assert_reveals_nothing(text, vendor)


def test_sync_client_is_refused() -> None:
    """A sync httpx.Client cannot use ClientCredentials."""
    token_client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    auth = ClientCredentials(TOKEN_URL, CLIENT_ID, SECRET, token_client=token_client)
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)), auth=auth) as client,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        client.get(f"{API_URL}/items")


def test_relative_token_url_is_rejected() -> None:
    """The token URL must be absolute."""
    token_client = httpx.AsyncClient()
    with pytest.raises(ValueError, match="absolute"):
        ClientCredentials("/oauth2/token", CLIENT_ID, SECRET, token_client=token_client)
