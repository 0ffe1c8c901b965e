"""What a hostile or broken provider can't do through the gateway (issue 11, the provider side).

Real stapi-fastapi 0.8.0 upstreams, wrapped or replaced by the small hostile apps of
tests/hostile.py; where the gateway's own aiohttp transport matters, served over loopback.
Time ceilings are generous on purpose: they prove "bounded, not frozen", not a latency.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import structlog
from pydantic import BaseModel
from stapi_pydantic import OrderParameters

from adapters.schemas import check_schema
from gateway.settings.models import ProviderSettings, Settings
from gateway.upstream.providers import TOKEN_TRANSPORT_SUFFIX
from tests.gateways import gateway_client
from tests.hostile import ExplodingTransport, GzipBombApp, SchemaApp, listener
from tests.upstreams import DefaultOrderParameters, ProductSpec, backend_of, build_provider, serve
from tests.waiting import eventually

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
# What a normal request may take while a hostile one is being handled (it takes ~10 ms; an
# unbounded gzip bomb stalled every client for 6 s, a backtracking pattern for 3 s and more).
NORMAL_CEILING_S = 1.5


def good() -> Any:
    """A healthy provider."""
    return build_provider([ProductSpec("eo")], name="good")


def order(parameters: dict[str, Any]) -> dict[str, Any]:
    """An order request with these order parameters."""
    return {"datetime": WINDOW, "geometry": POINT, "order_parameters": parameters}


@asynccontextmanager
async def gateway_with(bad: Any, *, loopback: bool) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway in front of "good" (in-process) and "bad", in-process or over real loopback."""
    if not loopback:
        async with gateway_client({"good": good(), "bad": bad}) as client:
            yield client
        return
    async with serve(bad) as url:
        providers = [ProviderSettings(id="good", url="http://good.test"), ProviderSettings(id="bad", url=url)]
        settings = Settings.build(providers, secret="test-secret")
        async with gateway_client({"good": good()}, settings=settings) as client:
            yield client


async def while_serving_others(
    client: httpx.AsyncClient, hostile: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, float, float]:
    """Run the hostile request while a normal client keeps asking for good's product.

    Returns the hostile answer, how long it took, and the slowest normal answer meanwhile.
    """
    done = asyncio.Event()
    slowest = 0.0

    async def normal() -> None:
        nonlocal slowest
        while not done.is_set():
            started = time.perf_counter()
            response = await client.get("/products/good:eo")
            assert response.status_code == 200, response.text
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.005)

    others = asyncio.create_task(normal())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(hostile(), 30)
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        await others
    return response, elapsed, slowest


# --- gzip bomb (item 4) --------------------------------------------------------------------


@pytest.mark.parametrize("loopback", [False, True], ids=["in-process", "loopback-aiohttp"])
async def test_a_gzip_bomb_is_a_502_in_bounded_time_and_memory(loopback: bool) -> None:
    """1 MB of gzip that expands to 1 GiB: refused at the 32 MiB cap while others are served."""
    async with gateway_with(GzipBombApp(1024), loopback=loopback) as client:
        tracemalloc.start()
        try:
            response, elapsed, slowest = await while_serving_others(client, lambda: client.get("/products/bad:x"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        listing = await client.get("/products")
    assert response.status_code == 502
    assert response.json()["code"] == "provider_invalid_payload"
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert slowest < NORMAL_CEILING_S, f"a normal request took {slowest:.2f} s"
    # Decoded in full it would be 1 GiB; the cap (32 MiB) plus a slice, not more, is held.
    assert peak < 160 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert listing.json()["federation:missing"] == ["bad"]


# --- provider schemas (item 2) -------------------------------------------------------------


class RefOrderParameters(OrderParameters):
    """Order parameters with a free-text reference (the hostile schema adds a pattern to it)."""

    ref: str


async def test_a_backtracking_pattern_is_answered_in_bounded_time() -> None:
    """`^(a+)+$` against 40 a's and a '!' (days in Python's re) is a 422 at once, others served."""
    schema = {"type": "object", "properties": {"ref": {"type": "string", "pattern": "^(a+)+$"}}}
    provider = build_provider([ProductSpec("x", order_parameters=RefOrderParameters)])
    async with gateway_client({"good": good(), "bad": SchemaApp(provider, schema)}) as client:
        response, elapsed, slowest = await while_serving_others(
            client, lambda: client.post("/products/bad:x/orders", json=order({"ref": "a" * 40 + "!"}))
        )
        fine = await client.post("/products/bad:x/orders", json=order({"ref": "aaaa"}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "order_parameters", "ref"]
    assert elapsed < NORMAL_CEILING_S
    assert slowest < NORMAL_CEILING_S
    assert fine.status_code == 201, fine.text


SCHEMA_ROUTES = [
    ("GET", "/products/bad:x/queryables"),
    ("GET", "/products/bad:x/order-parameters"),
    ("POST", "/products/bad:x/orders"),
]


@pytest.mark.parametrize(("method", "path"), SCHEMA_ROUTES)
async def test_a_remote_ref_is_a_502_naming_it_and_the_gateway_makes_no_connection(method: str, path: str) -> None:
    """The `$ref` points at a local listener: the answer names it, the listener sees nothing."""
    async with listener() as (url, accepted):
        schema = {"type": "object", "properties": {"x": {"$ref": f"{url}/evil.json"}}}
        bad = SchemaApp(build_provider([ProductSpec("x")]), schema)
        async with gateway_client({"bad": bad}) as client:
            response = await client.request(method, path, json=order({}) if method == "POST" else None)
            health = await client.get("/healthz")
    assert response.status_code == 502
    assert response.json()["code"] == "provider_invalid_payload"
    assert f"{url}/evil.json" in response.json()["detail"]
    assert accepted == []
    assert health.status_code == 200


@pytest.mark.parametrize(
    "schema",
    [{"type": "no-such-type"}, {"$ref": "#/$defs/missing"}, ["not", "an", "object"], {"pattern": "(?=x)"}],
    ids=["bad-keyword", "missing-local-ref", "array", "lookahead"],
)
@pytest.mark.parametrize(("method", "path"), SCHEMA_ROUTES)
async def test_a_broken_provider_schema_is_a_502_never_a_500(schema: Any, method: str, path: str) -> None:
    """Malformed or unresolvable schemas are the provider's failure, on every route that reads them."""
    bad = SchemaApp(build_provider([ProductSpec("x")]), schema)
    async with gateway_client({"bad": bad}) as client:
        response = await client.request(method, path, json=order({}) if method == "POST" else None)
    assert response.status_code == 502
    assert response.json()["code"] == "provider_invalid_payload"


class Delivery(BaseModel):
    """A nested model: pydantic puts it in `$defs` and refers to it with `#/$defs/Delivery`."""

    bucket: str


class NestedOrderParameters(DefaultOrderParameters):
    """Order parameters whose schema has `$defs`."""

    delivery: Delivery | None = None


async def test_served_schemas_are_checked_json_schemas_federated_ones_too() -> None:
    """Every queryables and order-parameters document served compiles, with its local refs."""
    spec = ProductSpec("eo", order_parameters=NestedOrderParameters)
    upstreams = {"a": build_provider([spec], name="a"), "b": build_provider([spec], name="b")}
    async with gateway_client(upstreams, products=[{"id": "both", "members": ["a:eo", "b:eo"]}]) as client:
        for product in ("a:eo", "both"):
            for kind in ("queryables", "order-parameters"):
                response = await client.get(f"/products/{product}/{kind}")
                assert response.status_code == 200, response.text
                assert response.headers["content-type"].startswith("application/schema+json")
                served = check_schema("gateway", response.json(), len(response.content))
                if kind == "order-parameters":
                    # The federated product's order names its member (its $defs rebased under it).
                    named = {"member": "b:eo"} if product == "both" else {}
                    parameters = {**named, "delivery_format": "cog", "delivery": {"bucket": "b"}}
                    assert served.violations(parameters) == []
                    assert served.violations({**parameters, "delivery": {}}) != []


# --- ids on the way upstream (item 8) ------------------------------------------------------


@pytest.mark.parametrize("loopback", [False, True], ids=["in-process", "loopback-aiohttp"])
@pytest.mark.parametrize(
    "path",
    [
        "/products/alpha:optical%3Fx=/queryables",
        "/products/alpha:%2e%2e%23/queryables",
        "/products/alpha:%2e%2e/queryables",
        "/products/alpha:optical%2F..%2F..%2F/order-parameters",
        "/orders/alpha:%2e%2e",
        "/orders/alpha:x%3Flimit=1/statuses",
    ],
)
async def test_ids_cannot_choose_other_paths_on_the_provider(path: str, loopback: bool) -> None:
    """`?`, `#`, `/` and `..` in ids stay inside their path segment: no other document comes back."""
    alpha = build_provider([ProductSpec("optical")], name="alpha")
    async with contextlib_gateway(alpha, loopback) as client:
        # The gateway reads the landing page once at start (link bases); only what the id reaches counts.
        await eventually(lambda: any(r.path == "/" for r in backend_of(alpha).requests))
        before = len(backend_of(alpha).requests)
        response = await client.get(path)
        control = await client.get("/products/alpha:optical/queryables")
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    assert control.status_code == 200
    # What the ids used to reach instead: the landing page, the product itself, the order list.
    reached = {r.path for r in backend_of(alpha).requests[before:]}
    assert not reached & {"/", "/products/optical", "/products", "/orders", "/queryables"}, reached


@asynccontextmanager
async def contextlib_gateway(alpha: Any, loopback: bool) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway in front of provider "alpha", in-process or over loopback."""
    if not loopback:
        async with gateway_client({"alpha": alpha}) as client:
            yield client
        return
    async with serve(alpha) as url:
        settings = Settings.build([ProviderSettings(id="alpha", url=url)], secret="test-secret")
        async with gateway_client({}, settings=settings) as client:
            yield client


# --- one provider can't break a merged answer (item 7) --------------------------------------


async def test_an_unexpected_exception_in_one_provider_is_that_providers_failure() -> None:
    """An exception that is not the gateway's own becomes `federation:missing` (merged) or a 502."""
    error = UnicodeEncodeError("ascii", "caf\xe9", 3, 4, "ordinal not in range(128)")
    with structlog.testing.capture_logs() as logs:
        async with gateway_client({"good": good(), "bad": ExplodingTransport(error)}) as client:
            products = await client.get("/products")
            orders = await client.get("/orders")
            single = await client.get("/products/bad:x")
    assert products.status_code == 200
    assert products.json()["federation:missing"] == ["bad"]
    assert [p["id"] for p in products.json()["products"]] == ["good:eo"]
    assert orders.status_code == 200
    assert orders.json()["federation:missing"] == ["bad"]
    assert single.status_code == 502
    assert single.json()["code"] == "provider_error"
    failures = [e for e in logs if e["event"] == "provider_call_failed"]
    assert failures
    assert {(e["provider"], e["error"]) for e in failures} == {("bad", "UnicodeEncodeError")}
    assert not any(e["event"] == "unhandled_error" for e in logs)
    assert "exc_info" not in str(failures)
    assert "caf" not in orjson.dumps(failures, default=str).decode()


class DeepensProducts(httpx.AsyncBaseTransport):
    """A real provider whose product documents carry one field nested `depth` levels deep."""

    def __init__(self, app: Any, depth: int, padding: int = 0) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.deep: Any = 1
        for _ in range(depth):
            self.deep = [self.deep]
        self.padding = "x" * padding

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "GET" or not request.url.path.startswith("/products"):
            return response
        body = orjson.loads(await response.aread())
        for product in body.get("products", [body]):
            product["x-vendor-extra"] = self.deep
            if self.padding:
                product["x-vendor-padding"] = self.padding
        content = json.dumps(body).encode()  # the stdlib writes 300 levels, as a hostile server could
        return httpx.Response(response.status_code, content=content, headers={"content-type": "application/json"})


async def test_a_body_nested_deeper_than_the_gateway_writes_is_that_providers_502() -> None:
    """A product nested 300 levels deep (orjson reads 1024, writes 254) is a 502 for its provider and a
    missing provider in the merged list, never the 500 it was when the answer was rendered."""
    bad = DeepensProducts(build_provider([ProductSpec("eo")], name="bad"), depth=300)
    async with gateway_client({"good": good(), "bad": bad}) as client:
        single = await client.get("/products/bad:eo")
        merged = await client.get("/products")
    assert single.status_code == 502, single.text
    assert single.json()["code"] == "provider_invalid_payload"
    assert "nested deeper than 254 levels" in single.json()["detail"]
    assert merged.status_code == 200, merged.text
    assert merged.json()["federation:missing"] == ["bad"]
    assert [p["id"] for p in merged.json()["products"]] == ["good:eo"]


async def test_a_gzip_bomb_from_the_token_endpoint_is_refused_within_its_cap() -> None:
    """The OAuth token endpoint answers 1 MB of gzip that expands to 1 GiB: the token answer is read
    decoded within 64 KiB, so the call fails at once, in contract form, holding little memory."""
    oauth = {"token_url": "http://auth.test/token", "client_id": "cid-12345678", "client_secret": "sec-12345678"}
    providers = [ProviderSettings(id="bad", url="http://bad.test", oauth=oauth)]
    upstreams: dict[str, Any] = {"bad": build_provider([ProductSpec("x")], name="bad")}
    upstreams[f"bad{TOKEN_TRANSPORT_SUFFIX}"] = httpx.ASGITransport(app=GzipBombApp(1024))
    async with gateway_client(upstreams, settings=Settings.build(providers, secret="test-secret")) as client:
        tracemalloc.start()
        try:
            started = time.monotonic()
            response = await client.get("/products/bad:x")
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 502, response.text
    assert "sec-12345678" not in response.text
    assert elapsed < 10, f"{elapsed:.1f} s"
    # Decoded in full it would be 1 GiB; before the cap it was.
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


async def test_a_large_body_nested_that_deep_is_relayed_not_a_500() -> None:
    """Over 256 KiB a body is not checked for depth when parsed (that costs a whole dump): the
    answer is then written by the stdlib, nesting and all, instead of failing to render."""
    bad = DeepensProducts(build_provider([ProductSpec("eo")], name="bad"), depth=300, padding=300 * 1024)
    async with gateway_client({"good": good(), "bad": bad}) as client:
        single = await client.get("/products/bad:eo")
        merged = await client.get("/products")
    assert single.status_code == 200, single.text[:500]
    assert single.json()["x-vendor-extra"] == bad.deep
    assert merged.status_code == 200
    assert sorted(p["id"] for p in merged.json()["products"]) == ["bad:eo", "good:eo"]
