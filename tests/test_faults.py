"""One fault suite: every provider fault against every kind of route, beside a healthy provider.

Each case runs a gateway with two providers: "good", a real stapi-fastapi 0.8.0 app, and "bad",
a provider with one fault, reached over real loopback sockets through the gateway's own aiohttp
transport (nothing is injected for it). Merged routes must still answer 200 with everything
"good" has and `"federation:missing": ["bad"]`; routes that need only "bad" must answer a
502/503/504 in the contract's error format; every answer must come within the deadline.

The table of (fault, route, status, elapsed) is printed at the end of the session and written
to FAULT_TABLE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings.models import ProviderSettings, Settings
from tests.faults import FlappingApp, HugeBodyApp, StallingApp, StaticApp, resetting_server, unused_port
from tests.gateways import GATEWAY_URL, lifespan
from tests.hostile import ExtraHeaderApp, GzipBombApp
from tests.upstreams import ProductSpec, build_provider, provider_client, serve

DEADLINE_S = 2.0
BAD_TIMEOUT_S = 0.3
# The "hang" fault: a provider timeout longer than the deadline, so only the deadline bounds the wait.
HANG_TIMEOUT_S = 60.0
# Faults whose "bad" provider serves real answers (a stapi-fastapi app in this process) besides its
# fault: a timeout a loaded 2-core CI machine meets, so that only the fault itself is tested.
SERVED = ("latin1-header", "flapping")
SERVED_TIMEOUT_S = 3.0
# Their deadline leaves room for a retry at that timeout: these cases test that the provider's
# answer is used (retried past a flap), and the in-process provider shares one loaded event loop.
SERVED_DEADLINE_S = 8.0
# The contract says answers come within the deadline; the margin absorbs a loaded CI machine.
MARGIN_S = 1.5
# A request that never ends fails its case instead of stalling the session.
GIVE_UP_S = SERVED_DEADLINE_S + 20
FAULT_TABLE = Path("/tmp/stapi-gateway-fault-table.md")

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
SEARCH = {"datetime": WINDOW, "geometry": POINT, "limit": 100}
ORDER = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {"delivery_format": "cog"}}
GOOD_OPPORTUNITIES = 6
BAD_OPPORTUNITIES = 4
GOOD_ORDERS = 3
FEDERATED = {"id": "fed", "title": "Good and bad", "members": ["good:eo", "bad:x"]}

FAULTS = [
    "down",
    "slow",
    "hang",
    "http-500-text",
    "invalid-json",
    "not-stapi",
    "huge-body",
    "gzip-bomb",
    "latin1-header",
    "reset",
    "flapping",
]
# What a route that needs only "bad" answers, per fault: the (status, error code) pairs allowed.
SINGLE_ERROR: dict[str, set[tuple[int, str]]] = {
    # Refused connections are retried (default `retries`), so the start-up check of the federated
    # member and this request together may reach `circuit_failures` and open the circuit: a 503.
    "down": {(502, "provider_unreachable"), (503, "provider_unavailable")},
    "slow": {(504, "provider_timeout")},
    "hang": {(504, "provider_timeout")},
    "http-500-text": {(502, "provider_bad_status")},
    "invalid-json": {(502, "provider_invalid_payload")},
    "not-stapi": {(502, "provider_invalid_payload")},
    "huge-body": {(502, "provider_invalid_payload")},
    # 1 MB on the wire, 1 GiB decoded: refused at the cap after decompression.
    "gzip-bomb": {(502, "provider_invalid_payload")},
    "reset": {(502, "provider_unreachable")},
    # The flapping provider's failure is a 503, which the gateway reports as a bad status.
    "flapping": {(502, "provider_bad_status")},
}
# A flapping provider fails every other request to each resource. Reads are retried (default
# `retries`), opportunity searches too (a POST that only reads), so they always succeed.
FLAP = ["ok", "ok", "ok"]


@dataclass
class Row:
    """One line of the fault table."""

    fault: str
    route: str
    statuses: list[int]
    outcomes: list[str]
    elapsed_ms: list[float]

    def add(self, response: httpx.Response, elapsed_s: float) -> None:
        """Record one request: its status, what it says about "bad" (error code or missing), its duration."""
        self.statuses.append(response.status_code)
        self.elapsed_ms.append(elapsed_s * 1000)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 400:
            self.outcomes.append(str(body.get("code", "?")))
        elif body.get("federation:missing"):
            self.outcomes.append("missing " + ",".join(body["federation:missing"]))
        else:
            self.outcomes.append("complete")


class FaultTable:
    """Rows collected by every case; shown in pytest's terminal summary and written to FAULT_TABLE."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}

    def lines(self) -> list[str]:
        """The table as Markdown, faults and routes in suite order."""
        order = {key: i for i, key in enumerate((f, r) for f in FAULTS for r in ROUTES)}
        lines = [
            f"Fault table (deadline {DEADLINE_S} s; timeout of bad {BAD_TIMEOUT_S} s, {HANG_TIMEOUT_S} s for hang; "
            f"deadline {SERVED_DEADLINE_S} s, timeout {SERVED_TIMEOUT_S} s for {' and '.join(SERVED)})",
            "",
            "| fault | route | status | outcome | elapsed ms |",
            "|---|---|---|---|---|",
        ]
        for key in sorted(self.rows, key=lambda k: order.get(k, len(order))):
            row = self.rows[key]
            statuses = " / ".join(str(s) for s in row.statuses)
            elapsed = " / ".join(f"{ms:.0f}" for ms in row.elapsed_ms)
            lines.append(f"| {row.fault} | {row.route} | {statuses} | {' / '.join(row.outcomes)} | {elapsed} |")
        return lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Pytest hook (this object is registered as a plugin): print the table and write the file."""
        if not self.rows:
            return
        lines = self.lines()
        FAULT_TABLE.write_text("\n".join(lines) + "\n")
        terminalreporter.section("fault table")
        for line in lines:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(written to {FAULT_TABLE})")


@pytest.fixture(scope="session")
def fault_table(request: pytest.FixtureRequest) -> dict[tuple[str, str], Row]:
    """The rows of the session's fault table, printed at the end of the run."""
    table = FaultTable()
    request.config.pluginmanager.register(table, "stapi-gateway-fault-table")
    return table.rows


# --- the providers ---------------------------------------------------------------------------


def good_provider() -> FastAPI:
    """The healthy provider: a real stapi-fastapi app with two products."""
    return build_provider(
        [ProductSpec("eo"), ProductSpec("sar")], name="good", opportunities_per_search=GOOD_OPPORTUNITIES
    )


async def place_orders(app: FastAPI) -> list[str]:
    """Place GOOD_ORDERS orders directly at the provider; their gateway ids."""
    ids = []
    async with provider_client(app, "good") as client:
        for _ in range(GOOD_ORDERS):
            response = await client.post("/products/eo/orders", json=ORDER)
            assert response.status_code == 201, response.text
            ids.append(f"good:{response.json()['id']}")
    return ids


@asynccontextmanager
async def bad_provider(fault: str) -> AsyncIterator[str]:
    """The faulty provider's base URL, served for real on loopback (or nothing at all: down)."""
    if fault == "down":
        yield f"http://127.0.0.1:{unused_port()}"
        return
    if fault == "reset":
        async with resetting_server() as url:
            yield url
        return
    apps: dict[str, Any] = {
        "slow": lambda: StallingApp(delay_s=30),
        "hang": lambda: StallingApp(delay_s=30),
        "http-500-text": lambda: StaticApp(500, b"Internal Server Error", "text/plain"),
        "invalid-json": lambda: StaticApp(200, b'{"type": "ProductCollection", "products": [{"id": '),
        "not-stapi": lambda: StaticApp(200, b'{"status": "ok", "data": [1, 2, 3]}'),
        "huge-body": lambda: HugeBodyApp(50 * 1024 * 1024),
        "gzip-bomb": lambda: GzipBombApp(1024),
        "latin1-header": lambda: ExtraHeaderApp(
            build_provider([ProductSpec("x")], name="bad", opportunities_per_search=BAD_OPPORTUNITIES),
            b"x-vendor-note",
            "Qualit\xe4t gepr\xfcft \xa9".encode("latin-1"),
        ),
        "flapping": lambda: FlappingApp(
            build_provider([ProductSpec("x")], name="bad", opportunities_per_search=BAD_OPPORTUNITIES)
        ),
    }
    async with serve(apps[fault]()) as url:
        yield url


@asynccontextmanager
async def gateway(
    good: FastAPI, bad_url: str, bad_timeout_s: float, deadline_s: float
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway; "good" is in-process, "bad" is reached through the real transport.

    Unlike `tests.gateways.gateway_client`, an unhandled error reaches the test as the 500 response a
    server would send, not as the exception itself, so a case shows what a client would see.
    """
    settings = settings_for(bad_url, bad_timeout_s, deadline_s)
    app = create_app(settings, transports={"good": httpx.ASGITransport(app=good)})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with lifespan(app), httpx.AsyncClient(transport=transport, base_url=GATEWAY_URL) as client:
        yield client


def settings_for(bad_url: str, bad_timeout_s: float, deadline_s: float) -> Settings:
    """Both providers and the federated product; only "bad" has a timeout other than the default."""
    return Settings.build(
        [
            ProviderSettings(id="good", url="http://good.test", title="Good"),
            ProviderSettings(id="bad", url=bad_url, title="Bad", timeout_s=bad_timeout_s),
        ],
        products=[FEDERATED],
        deadline_s=deadline_s,
        secret="test-secret",
    )


# --- the routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A request, whether it merges both providers, and the same request aimed at "good" alone."""

    method: str
    path: str
    merged: bool
    body: dict[str, Any] | None = None
    control_path: str | None = None

    async def send(self, client: httpx.AsyncClient, path: str | None = None) -> httpx.Response:
        """Send this route's request (to `path` instead, for the control request)."""
        return await client.request(self.method, path or self.path, json=self.body)


ROUTES: dict[str, Route] = {
    "GET /products": Route("GET", "/products?limit=100", merged=True),
    "GET /products/bad:x": Route("GET", "/products/bad:x", merged=False, control_path="/products/good:eo"),
    "POST /products/bad:x/opportunities": Route(
        "POST",
        "/products/bad:x/opportunities",
        merged=False,
        body=SEARCH,
        control_path="/products/good:eo/opportunities",
    ),
    "GET /orders": Route("GET", "/orders?limit=100", merged=True),
    "POST /products/fed/opportunities": Route("POST", "/products/fed/opportunities", merged=True, body=SEARCH),
}


def expected_outcomes(fault: str, route: Route) -> list[str]:
    """What each request of the case should show: "fault" or "ok"."""
    if fault == "latin1-header":
        # Header bytes are carried as received (RFC 9110 §5.5: obs-text is opaque data), so the
        # provider's answer is used, and nothing about it can break the merged answer.
        return ["ok"]
    if fault != "flapping":
        return ["fault"]
    return FLAP


# --- checks ----------------------------------------------------------------------------------


def check_error_body(response: httpx.Response, allowed: set[tuple[int, str]]) -> None:
    """A contract error: an allowed status and code, JSON with code, detail and request_id, the X-Request-ID."""
    assert response.status_code in {status for status, _ in allowed}, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert (response.status_code, body["code"]) in allowed, body
    for key in ("detail", "request_id"):
        assert isinstance(body[key], str), body
        assert body[key], body
    assert response.headers["x-request-id"] == body["request_id"]
    # The gateway names the failed provider in `provider`: its id, not a product's.
    assert body.get("provider", "bad") == "bad", body


def check_merged(name: str, response: httpx.Response, expect: str, orders: list[str]) -> None:
    """A merged answer: 200, everything "good" has, and "bad" either missing or complete."""
    assert response.status_code == 200, response.text
    body = response.json()
    if expect == "fault":
        assert body.get("federation:missing") == ["bad"], body
    else:
        assert not body.get("federation:missing"), body
    if name == "GET /products":
        found = {p["id"] for p in body["products"]}
        assert {"good:eo", "good:sar", "fed"} <= found, found
        assert ("bad:x" in found) == (expect == "ok"), found
    elif name == "GET /orders":
        found = {o["id"] for o in body["features"]}
        assert set(orders) <= found, found
        assert not {i for i in found if not i.startswith("good:")}, found
    else:
        features = body["features"]
        good = [f for f in features if f["properties"]["product_id"] == "good:eo"]
        bad = [f for f in features if f["properties"]["product_id"] == "bad:x"]
        assert len(good) == GOOD_OPPORTUNITIES, features
        assert len(bad) == (BAD_OPPORTUNITIES if expect == "ok" else 0), features
        assert len(features) == len(good) + len(bad)


def check_single(fault: str, response: httpx.Response, expect: str, method: str) -> None:
    """A route that needs only "bad": the contract error on a fault, bad's own answer otherwise."""
    if expect == "fault":
        check_error_body(response, SINGLE_ERROR[fault])
        return
    assert response.status_code == 200, response.text
    body = response.json()
    if method == "GET":
        assert body["id"] == "bad:x"
    else:
        assert [f["properties"]["product_id"] for f in body["features"]] == ["bad:x"] * BAD_OPPORTUNITIES


async def check_control(client: httpx.AsyncClient, route: Route) -> None:
    """The same request aimed at "good" alone is answered completely."""
    assert route.control_path is not None
    response = await route.send(client, route.control_path)
    assert response.status_code == 200, response.text
    body = response.json()
    if route.method == "GET":
        assert body["id"] == "good:eo"
    else:
        assert [f["properties"]["product_id"] for f in body["features"]] == ["good:eo"] * GOOD_OPPORTUNITIES
        assert "federation:missing" not in body


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    """The response and how long it took, failing (not hanging) if it never comes."""
    started = time.monotonic()
    response = await asyncio.wait_for(call(), GIVE_UP_S)
    return response, time.monotonic() - started


# --- the suite -------------------------------------------------------------------------------


@pytest.mark.parametrize("route_name", list(ROUTES))
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault(fault: str, route_name: str, fault_table: dict[tuple[str, str], Row]) -> None:
    """A faulty provider costs only its own part of the answer, in contract form, within the deadline."""
    route = ROUTES[route_name]
    good = good_provider()
    orders = await place_orders(good)
    bad_timeout_s = {"hang": HANG_TIMEOUT_S, **dict.fromkeys(SERVED, SERVED_TIMEOUT_S)}.get(fault, BAD_TIMEOUT_S)
    deadline_s = SERVED_DEADLINE_S if fault in SERVED else DEADLINE_S
    async with bad_provider(fault) as bad_url, gateway(good, bad_url, bad_timeout_s, deadline_s) as client:
        row = fault_table[(fault, route_name)] = Row(fault, route_name, [], [], [])
        for expect in expected_outcomes(fault, route):
            response, elapsed = await timed(lambda: route.send(client))
            row.add(response, elapsed)
            if route.merged:
                check_merged(route_name, response, expect, orders)
            else:
                check_single(fault, response, expect, route.method)
            assert elapsed <= deadline_s + MARGIN_S, f"{elapsed:.2f} s is past the deadline of {deadline_s} s"
        if not route.merged:
            await check_control(client, route)
