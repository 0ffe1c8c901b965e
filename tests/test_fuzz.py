"""Schemathesis against the running gateway: no 500s, and every error in the contract's format.

`stapi-gateway serve` runs as a subprocess in front of two real stapi-fastapi 0.8.0 providers served
by this test's event loop; schemathesis (synchronous, via `requests`) runs in a worker thread so the
loop keeps serving the providers meanwhile. Every operation of the OpenAPI document at /api gets a
bounded, derandomised number of examples drawn from:

- schemathesis' schema-valid and schema-violating cases, with generated path parameters;
- schema-valid cases aimed at real products, orders, search records and collections, so fuzzed
  queries and headers reach the providers;
- for the two POST operations, cases on real products whose body is a near-valid STAPI search or
  order (odd intervals, geometries, limits, filters, order parameters), so fuzzed bodies pass the
  gateway's validation and reach the providers too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from tests.gateways import gateway_client
from tests.served import free_port, served
from tests.upstreams import ProductSpec, build_provider, serve
from tests.waiting import eventually

EXAMPLES_PER_OPERATION = 25
# The POST operations carry bodies, where most of the input space is: they get more examples.
EXAMPLES_PER_BODY_OPERATION = 75
REQUEST_TIMEOUT_S = 30
WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
SEARCH = {"datetime": WINDOW, "geometry": POINT}
ERROR_FIELDS = ("code", "detail", "request_id")
PRODUCTS = ["acme:optical", "acme:optical-hd", "acme:radar", "orbit:sar", "vhr"]


# --- near-valid bodies -------------------------------------------------------------------------


def _interval(start: datetime, length: timedelta) -> str:
    return f"{start.isoformat().replace('+00:00', 'Z')}/{(start + length).isoformat().replace('+00:00', 'Z')}"


INTERVALS = st.one_of(
    st.just(WINDOW),
    st.builds(
        _interval,
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
        st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=800)),
    ),
    st.sampled_from(["2026-12-01T00:00:00Z/..", "../2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-13-01/x"]),
)
LON, LAT = st.floats(-180, 180), st.floats(-90, 90)
POINTS = st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]}, LON, LAT)


def _box(x: float, y: float, size: float) -> dict[str, Any]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


GEOMETRIES = st.one_of(
    st.just(POINT),
    POINTS,
    st.builds(_box, LON, LAT, st.floats(0, 200)),
    st.sampled_from(
        [
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
            {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            {"type": "Point", "coordinates": [0, 0, 0]},
        ]
    ),
)
FILTERS = st.sampled_from(
    [
        None,
        {"op": "<=", "args": [{"property": "off_nadir"}, 20]},
        {"op": ">", "args": [{"property": "off_nadir"}, "twenty"]},
        {"op": "=", "args": [{"property": "no_such_property"}, 1]},
        {"op": "and", "args": []},
        {"op": "no-such-op", "args": [1]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, POINT]},
        {"op": "like", "args": [{"property": "product_id"}, "%"]},
    ]
)
SEARCH_BODIES = st.fixed_dictionaries(
    {"datetime": INTERVALS, "geometry": GEOMETRIES, "filter": FILTERS},
    optional={
        "limit": st.integers(-3, 1000),
        "next": st.one_of(st.none(), st.text(max_size=40), st.integers()),
    },
)
ORDER_PARAMETERS: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"delivery_format": st.sampled_from(["cog", "geotiff", "png", ""])}),
    st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=10), st.none()), max_size=3),
)
ORDER_BODIES = st.fixed_dictionaries(
    {"datetime": INTERVALS, "geometry": GEOMETRIES, "order_parameters": ORDER_PARAMETERS},
    optional={
        "filter": FILTERS,
        "product_id": st.sampled_from(["acme:optical", "orbit:sar", "acme:radar", "nobody:x", "vhr", ""]),
    },
)
BODIES = {"/products/{productId}/opportunities": SEARCH_BODIES, "/products/{productId}/orders": ORDER_BODIES}


# --- checking ----------------------------------------------------------------------------------


@dataclass
class Findings:
    """What the fuzzing saw: examples sent, statuses, and contract violations (first example of each)."""

    examples: int = 0
    unsendable: int = 0
    per_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[tuple[str, int]] = field(default_factory=Counter)
    violations: dict[tuple[str, int, str], str] = field(default_factory=dict)

    def violate(self, operation: str, status: int, kind: str, example: str) -> None:
        """Remember a violation; the first example of each (operation, status, kind) is kept."""
        self.violations.setdefault((operation, status, kind), example)


def describe(response: requests.Response) -> str:
    """A reproducible description of one example: the request sent and the start of the answer."""
    request = response.request
    body = request.body.decode(errors="replace") if isinstance(request.body, bytes) else request.body
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("user-agent", "accept-encoding")}
    return (
        f"{request.method} {request.url}\n  headers: {headers}\n  body: {str(body)[:600]}\n"
        f"  -> {response.status_code} {response.headers.get('content-type')}: {response.text[:600]}"
    )


def check(findings: Findings, operation: str, response: requests.Response) -> None:
    """The contract: no 500; every error is JSON with code, detail and request_id; X-Request-ID always.

    Both providers are healthy, so a 502/503/504 blames a provider for what is the client's input.
    """
    status = response.status_code
    findings.statuses[status] += 1
    findings.by_operation[(operation, status)] += 1
    if status == 500:
        findings.violate(operation, status, "status 500", describe(response))
    elif status > 500 and not (operation == "GET /readyz" and status == 503):
        findings.violate(operation, status, "provider blamed although both are healthy", describe(response))
    if "x-request-id" not in response.headers:
        findings.violate(operation, status, "no X-Request-ID header", describe(response))
    if status < 400 or (operation == "GET /readyz" and status == 503):
        return
    try:
        body = response.json()
    except ValueError:
        findings.violate(operation, status, "error body is not JSON", describe(response))
        return
    if not isinstance(body, dict) or not all(isinstance(body.get(key), str) for key in ERROR_FIELDS):
        findings.violate(operation, status, "error body lacks code/detail/request_id", describe(response))


def with_body(pair: tuple[Any, Any]) -> Any:
    """A schemathesis case whose body is replaced by a near-valid one."""
    case, body = pair
    case.body = body
    return case


def strategy_for(op: Any, fixed: list[dict[str, str]]) -> st.SearchStrategy[Any]:
    """Every kind of example for one operation (see the module docstring)."""
    strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
    params = {p.name for p in op.path_parameters}
    for values in (v for v in fixed if params and set(v) == params):
        strategies.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters=values))
        if op.path in BODIES:
            case = op.as_strategy(GenerationMode.POSITIVE, path_parameters=values)
            strategies.append(st.tuples(case, BODIES[op.path]).map(with_body))
    return st.one_of(strategies)


def run_operation(
    name: str, strategy: st.SearchStrategy[Any], examples: int, base_url: str, session: requests.Session, f: Findings
) -> None:
    """Send `examples` derandomised examples of one operation and check each answer."""

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        # Violations are collected rather than raised, so there is nothing to shrink.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_S)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError):
            f.unsendable += 1  # requests itself refuses to send it: nothing reached the gateway
            return
        f.examples += 1
        f.per_operation[name] += 1
        check(f, name, response)

    run()


def fuzz(base_url: str, fixed: list[dict[str, str]]) -> Findings:
    """Run every operation's examples against the gateway (blocking: call it in a worker thread)."""
    # Loaded from a dict, not `from_url`: schemathesis skips the operation serving the schema itself.
    document = requests.get(f"{base_url}/api", timeout=REQUEST_TIMEOUT_S).json()
    schema = schemathesis.openapi.from_dict(document)
    findings = Findings()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                findings.violate("OpenAPI document", 0, "operation schemathesis cannot use", repr(result.err()))
                continue
            op = result.ok()
            examples = EXAMPLES_PER_BODY_OPERATION if op.path in BODIES else EXAMPLES_PER_OPERATION
            name = f"{op.method.upper()} {op.path}"
            run_operation(name, strategy_for(op, fixed), examples, base_url, session, findings)
    return findings


# --- the test ----------------------------------------------------------------------------------


async def seed(client: httpx.AsyncClient) -> list[dict[str, str]]:
    """Create an order and a completed async search through the gateway; real path parameter values."""
    order = await client.post(
        "/products/acme:optical/orders",
        json={"datetime": WINDOW, "geometry": POINT, "order_parameters": {"delivery_format": "cog"}},
    )
    assert order.status_code == 201, order.text
    search = await client.post(
        "/products/vhr/opportunities", json={"datetime": WINDOW, "geometry": POINT}, headers={"Prefer": "respond-async"}
    )
    assert search.status_code == 201, search.text
    record = search.json()["id"]
    await eventually(
        lambda: client.get(f"/searches/opportunities/{record}"),
        until=lambda r: r.json()["status"]["status_code"] == "completed",
        every_s=0.05,
        what="the search completed",
    )
    return [
        *({"productId": p} for p in PRODUCTS),
        {"orderId": order.json()["id"]},
        {"searchRecordId": record},
        {"productId": "vhr", "collectionId": record},
    ]


async def test_schemathesis_finds_no_500_and_only_contract_errors(tmp_path: Path) -> None:
    """Every operation, fuzzed against the running gateway, never answers 500 or a non-contract error."""
    acme = build_provider(
        [ProductSpec("optical"), ProductSpec("optical-hd", async_=True), ProductSpec("radar", sync=False, async_=True)],
        name="acme",
        opportunities_per_search=5,
    )
    orbit = build_provider([ProductSpec("sar")], name="orbit", opportunities_per_search=5)
    async with serve(acme) as acme_url, serve(orbit) as orbit_url:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            "gateway:\n  deadline_s: 5\n  search_refresh_s: 0.05\n"
            f"providers:\n  acme:\n    url: {acme_url}\n  orbit:\n    url: {orbit_url}\n"
            "products:\n  vhr:\n    members: [acme:optical, orbit:sar]\n"
        )
        port = free_port()
        async with served(port, config=config) as running:
            fixed = await seed(running.client)
            started = time.monotonic()
            findings = await asyncio.to_thread(fuzz, f"http://127.0.0.1:{port}", fixed)
            elapsed = time.monotonic() - started
    summary = {
        "examples": findings.examples,
        "unsendable": findings.unsendable,
        "seconds": round(elapsed, 1),
        "operations": len(findings.per_operation),
        "statuses": dict(sorted(findings.statuses.items())),
    }
    print("fuzz summary:", json.dumps(summary))
    for (operation, status), count in sorted(findings.by_operation.items()):
        print(f"  {operation:60} {status} x{count}")
    report = "\n\n".join(f"[{op} -> {status}] {kind}\n{ex}" for (op, status, kind), ex in findings.violations.items())
    assert len(findings.per_operation) == 27, sorted(findings.per_operation)
    assert findings.examples >= 20 * 10
    assert not findings.violations, f"{len(findings.violations)} contract violations:\n\n{report}"


@pytest.mark.parametrize("product", ["acme:optical", "vhr"])
@pytest.mark.parametrize(
    "cql2",
    [{"op": "no-such-op", "args": [1]}, {"op": "=", "args": [{"property": "no_such_property"}, 1]}],
    ids=["unknown-operator", "unknown-property"],
)
async def test_a_filter_every_provider_rejects_is_the_clients_mistake(product: str, cql2: dict[str, Any]) -> None:
    """A filter the providers answer 422 to is a 422 for the client (found by fuzzing), not a 502 blaming them."""
    upstreams = {
        "acme": build_provider([ProductSpec("optical")], name="acme"),
        "orbit": build_provider([ProductSpec("sar")], name="orbit"),
    }
    federated = [{"id": "vhr", "members": ["acme:optical", "orbit:sar"]}]
    async with gateway_client(upstreams, products=federated) as client:
        response = await client.post(f"/products/{product}/opportunities", json={**SEARCH, "filter": cql2})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_failed", body
    assert body["request_id"], body
