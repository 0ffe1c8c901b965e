"""Inbound API keys, client scopes and rates; credentials that never leak."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.settings.models import ProviderSettings, Settings
from gateway.upstream.providers import TOKEN_TRANSPORT_SUFFIX
from tests.clients import KEY_A, KEY_B, two_clients
from tests.faults import StaticApp
from tests.gateways import gateway_client, provider_settings
from tests.hostile import HeaderEchoApp
from tests.upstreams import ProductSpec, backend_of, build_provider
from tests.waiting import eventually

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
ORDER = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}


def upstreams() -> dict[str, Any]:
    """Two real providers."""
    return {"a": build_provider([ProductSpec("eo")], name="a"), "b": build_provider([ProductSpec("eo")], name="b")}


CLIENTS = two_clients(a_providers=("a",), a_products=())
PRODUCTS = [{"id": "both", "members": ["a:eo", "b:eo"]}]


def as_a() -> dict[str, str]:
    """Headers of client A."""
    return {"Authorization": f"Bearer {KEY_A}"}


def as_b() -> dict[str, str]:
    """Headers of client B (through X-API-Key)."""
    return {"X-API-Key": KEY_B}


async def test_without_a_valid_key_requests_are_401() -> None:
    """No key or a wrong key is 401 with WWW-Authenticate, in contract form."""
    async with gateway_client(upstreams(), clients=CLIENTS) as client:
        missing = await client.get("/products")
        wrong = await client.get("/products", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_operational_routes_need_no_key() -> None:
    """Health, readiness and the OpenAPI document stay reachable for tools; metrics need an operator's key."""
    async with gateway_client(upstreams(), clients=CLIENTS) as client:
        statuses = [(await client.get(path)).status_code for path in ("/healthz", "/readyz", "/metrics", "/api")]
    assert statuses == [200, 200, 401, 200]


async def test_a_key_sees_and_reaches_only_its_providers() -> None:
    """Client A (provider a only) lists a's products only and gets 403 on b's and the federated one."""
    async with gateway_client(upstreams(), clients=CLIENTS, products=PRODUCTS) as client:
        listing = (await client.get("/products", headers=as_a())).json()
        landing = (await client.get("/", headers=as_a())).json()
        other = await client.get("/products/b:eo", headers=as_a())
        search = await client.post(
            "/products/b:eo/opportunities", json={"datetime": WINDOW, "geometry": POINT}, headers=as_a()
        )
        federated = await client.get("/products/both", headers=as_a())
        everything = (await client.get("/products", headers=as_b())).json()
    assert [p["id"] for p in listing["products"]] == ["a:eo"]
    assert [p["id"] for p in landing["providers"]] == ["a"]
    assert [other.status_code, search.status_code, federated.status_code] == [403, 403, 403]
    assert other.json()["code"] == "forbidden"
    assert sorted(p["id"] for p in everything["products"]) == ["a:eo", "b:eo", "both"]


async def test_orders_and_records_are_listed_only_to_the_client_that_made_them() -> None:
    """Client B does not see client A's order or search record, and cannot fetch them."""
    providers = upstreams()
    async with gateway_client(providers, clients=CLIENTS, search_refresh_s=0.05) as client:
        order = (await client.post("/products/a:eo/orders", json=ORDER, headers=as_a())).json()
        record = await client.post(
            "/products/a:eo/opportunities",
            json={"datetime": WINDOW, "geometry": POINT},
            headers={**as_a(), "Prefer": "respond-async"},
        )
        own = (await client.get("/orders", headers=as_a())).json()
        theirs = (await client.get("/orders", headers=as_b())).json()
        fetched = await client.get(f"/orders/{order['id']}", headers=as_b())
        own_records = (await client.get("/searches/opportunities", headers=as_a())).json()
        their_records = (await client.get("/searches/opportunities", headers=as_b())).json()
        their_record = await client.get(f"/searches/opportunities/{record.json()['id']}", headers=as_b())
    assert [o["id"] for o in own["features"]] == [order["id"]]
    assert theirs["features"] == []
    assert fetched.status_code == 404
    assert [r["id"] for r in own_records["search_records"]] == [record.json()["id"]]
    assert their_records["search_records"] == []
    assert their_record.status_code == 404
    assert len(backend_of(providers["a"]).orders) == 1


async def test_client_rate_limit_is_429_with_retry_after() -> None:
    """Past its rate a client gets 429 and Retry-After; another client is unaffected."""
    clients = [{**CLIENTS[0], "rate_per_s": 0.01, "burst": 2}, CLIENTS[1]]
    async with gateway_client(upstreams(), clients=clients) as client:
        statuses = [(await client.get("/conformance", headers=as_a())).status_code for _ in range(3)]
        limited = await client.get("/conformance", headers=as_a())
        other = await client.get("/conformance", headers=as_b())
    assert statuses == [200, 200, 429]
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 200


def token_server(secret: str, token: str) -> Starlette:
    """An OAuth2 token endpoint that checks the client's Basic credentials."""

    async def mint(request: Request) -> JSONResponse:
        expected = httpx.BasicAuth("gw", secret)._auth_header
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client", "echo": secret}, status_code=401)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    return Starlette(routes=[Route("/token", mint, methods=["POST"])])


class RequiresToken:
    """A provider that accepts only requests carrying the expected bearer token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Check the token, then forward."""
        headers = dict(scope.get("headers", []))
        if scope["type"] == "http" and headers.get(b"authorization") != f"Bearer {self.token}".encode():
            await StaticApp(401, b'{"detail":"bad token"}')(scope, receive, send)
            return
        await self.app(scope, receive, send)


# Every route, and every way provider text reaches a client: bodies passed through (products,
# orders, schemas), 400/404 details, 422 messages, a failed search member's reason.
HYGIENE_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/", None),
    ("GET", "/conformance", None),
    ("GET", "/products?limit=100", None),
    ("GET", "/products/both", None),
    ("GET", "/products/b:eo", None),
    ("GET", "/products/a:eo/conformance", None),
    ("GET", "/products/c:eo", None),
    ("GET", "/products/a:eo/queryables", None),
    ("GET", "/products/b:eo/order-parameters", None),
    ("GET", "/products/both/queryables", None),
    ("GET", "/products/both/order-parameters", None),
    ("GET", "/products/a:e404", None),
    ("GET", "/products/b:e404/queryables", None),
    ("GET", "/orders/a:e404", None),
    ("GET", "/orders/b:e404/statuses", None),
    ("POST", "/products/a:eo/opportunities", {"datetime": WINDOW, "geometry": POINT}),
    ("POST", "/products/both/opportunities", {"datetime": WINDOW, "geometry": POINT}),
    ("POST", "/products/b:e400/opportunities", {"datetime": WINDOW, "geometry": POINT}),
    ("POST", "/products/a:e422/opportunities", {"datetime": WINDOW, "geometry": POINT}),
    ("POST", "/products/c:eo/opportunities", {"datetime": WINDOW, "geometry": POINT}),
    ("POST", "/products/a:eo/orders", ORDER),
    ("POST", "/products/b:eo/orders", ORDER),
    ("POST", "/products/b:e400/orders", ORDER),
    ("POST", "/products/a:e422/orders", ORDER),
    ("GET", "/orders?limit=100", None),
    ("GET", "/searches/opportunities", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
    ("GET", "/api", None),
]


async def _failed_search(client: httpx.AsyncClient, product: str) -> list[str]:
    """An async search whose member fails with the provider's reason; every answer about it."""
    seen = []
    created = await client.post(
        f"/products/{product}/opportunities",
        json={"datetime": WINDOW, "geometry": POINT},
        headers={**as_b(), "Prefer": "respond-async"},
    )
    seen.append(f"{created.status_code} {created.headers} {created.text}")
    record = created.json()
    location = f"/searches/opportunities/{record['id']}"
    response = await eventually(
        lambda: client.get(location, headers=as_b()),
        until=lambda r: r.json()["status"]["status_code"] == "failed",
        what="the search failed",
    )
    record = response.json()
    assert record["status"]["status_code"] == "failed", record
    statuses = await client.get(f"/searches/opportunities/{record['id']}/statuses", headers=as_b())
    seen += [f"{response.status_code} {response.headers} {response.text}", statuses.text]
    return seen


async def test_credentials_never_appear_in_anything_a_client_or_an_operator_sees(
    caplog: Any,
) -> None:
    """Header secrets, OAuth secrets and tokens are absent from bodies, headers, links, logs and metrics,
    even when the providers echo every request header into every answer and error."""
    header_secret, oauth_secret, token = "hdr-s3cr3t-value-1234", "oauth-s3cr3t-value-5678", "tok-s3cr3t-value-9012"
    providers = [
        ProviderSettings(id="a", url="http://a.test", headers={"Authorization": f"Bearer {header_secret}"}),
        ProviderSettings(
            id="b",
            url="http://b.test",
            oauth={"token_url": "http://auth.test/token", "client_id": "gw", "client_secret": oauth_secret},
        ),
        *provider_settings(["c"]),
    ]
    settings = Settings.build(
        providers,
        secret="cursor-s3cr3t-value-3456",
        clients=[CLIENTS[1]],
        products=PRODUCTS,
        search_refresh_s=0.02,
    )
    specs = [ProductSpec(p) for p in ("eo", "e400", "e422")] + [ProductSpec("failing", async_=True)]
    upstream: dict[str, ASGIApp | httpx.AsyncBaseTransport] = {
        "a": HeaderEchoApp(build_provider(specs, name="a")),
        "b": RequiresToken(HeaderEchoApp(build_provider(specs, name="b")), token),
        "c": StaticApp(500, f"boom {header_secret}".encode(), "text/plain"),
        f"b{TOKEN_TRANSPORT_SUFFIX}": httpx.ASGITransport(app=token_server(oauth_secret, token)),
    }
    produced: list[str] = []
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        async with gateway_client(upstream, settings=settings) as client:
            for method, path, body in HYGIENE_ROUTES:
                response = await client.request(method, path, headers=as_b(), json=body)
                produced.append(f"{method} {path} -> {response.status_code} {response.headers} {response.text}")
            produced += await _failed_search(client, "a:failing")
            produced += await _failed_search(client, "b:failing")
    statuses = {line.split(" -> ")[0]: int(line.split(" -> ")[1][:3]) for line in produced if " -> " in line}
    produced.extend(str(entry) for entry in logs)
    produced.extend(record.getMessage() for record in caplog.records)
    produced.append(repr(settings))
    everything = "\n".join(produced)
    assert statuses["GET /products/b:eo"] == 200, "the OAuth-protected provider was reached with the minted token"
    assert statuses["POST /products/b:e400/opportunities"] == 400
    assert statuses["POST /products/a:e422/orders"] == 422
    assert statuses["GET /products/b:e404/queryables"] == 404
    assert "[redacted]" in everything, "the providers did echo the credentials"
    assert "authorization: [redacted]" in everything.lower()
    for secret in (header_secret, oauth_secret, token, "cursor-s3cr3t-value-3456", KEY_B):
        assert secret not in everything, f"{secret} leaked"
