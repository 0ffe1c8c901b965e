"""Input limits: body size, media type, nesting, geometry and interval bounds, in contract form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, backend_of, build_provider

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}


def provider() -> Any:
    """A real provider with one product."""
    return build_provider([ProductSpec("eo")], name="acme")


async def test_declared_body_over_the_limit_is_413_and_never_forwarded() -> None:
    """A Content-Length above max_body_bytes is refused before the body is read."""
    upstream = provider()
    async with gateway_client({"acme": upstream}, max_body_bytes=1000) as client:
        response = await client.post(
            "/products/acme:eo/opportunities",
            content=b"{" + b" " * 2000 + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert not [r for r in backend_of(upstream).requests if r.method == "POST"]


async def test_streamed_body_over_the_limit_is_413() -> None:
    """A chunked body without Content-Length is cut off once it passes the limit."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 500

    async with gateway_client({"acme": provider()}, max_body_bytes=1000) as client:
        response = await client.post(
            "/products/acme:eo/orders", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_body_that_is_not_json_is_415(content_type: str) -> None:
    """Only JSON bodies are accepted."""
    async with gateway_client({"acme": provider()}) as client:
        response = await client.post(
            "/products/acme:eo/opportunities", content=b"a=b", headers={"Content-Type": content_type}
        )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/geo+json"]
)
async def test_json_media_types_are_accepted(content_type: str) -> None:
    """JSON and +json types pass the media type check."""
    body = (
        b'{"datetime": "2026-12-01T00:00:00Z/2026-12-02T00:00:00Z",'
        b' "geometry": {"type": "Point", "coordinates": [1, 2]}}'
    )
    async with gateway_client({"acme": provider()}) as client:
        response = await client.post(
            "/products/acme:eo/opportunities", content=body, headers={"Content-Type": content_type}
        )
    assert response.status_code == 200, response.text


def nested(depth: int) -> Any:
    """A filter nested `depth` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"op": "not", "args": [value]}
    return value


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"datetime": WINDOW, "geometry": POINT, "filter": nested(40)}, ["body"], "too_deep"),
        (
            {
                "datetime": WINDOW,
                "geometry": {"type": "LineString", "coordinates": [[0.001 * i, 0] for i in range(12_000)]},
            },
            ["body", "geometry"],
            "too_many_vertices",
        ),
        (
            {"datetime": WINDOW, "geometry": POINT, "x": [[]] * 60_000},
            ["body"],
            "too_many_values",
        ),
        (
            {"datetime": WINDOW, "geometry": {"type": "LineString", "coordinates": [[[0, 0]]] * 5_000}},
            ["body", "geometry", "coordinates", 0],
            "value_error",
        ),
        (
            {"datetime": WINDOW, "geometry": {"type": "LineString", "coordinates": [[-170, -80], [170, 80]]}},
            ["body", "geometry"],
            "area_too_large",
        ),
        (
            {"datetime": "2026-01-01T00:00:00Z/2028-01-01T00:00:00Z", "geometry": POINT},
            ["body", "datetime"],
            "interval_too_long",
        ),
    ],
)
async def test_requests_beyond_the_limits_are_422(body: dict[str, Any], loc: list[str], kind: str) -> None:
    """Values, nesting, geometry shape, vertices, area and interval length each have a bound, named in the error."""
    upstream = provider()
    async with gateway_client({"acme": upstream}) as client:
        response = await client.post("/products/acme:eo/opportunities", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["loc"], error["type"]) == (loc, kind)
    assert not [r for r in backend_of(upstream).requests if r.method == "POST"]


@pytest.mark.parametrize("path", ["/products/acme:eo/opportunities", "/products/acme:eo/orders"])
@pytest.mark.parametrize(
    "interval", ["2026-01-01T00:00:00Z/2026-02-01T00:00:00", "2026-01-01T00:00:00/2026-02-01T00:00Z"]
)
async def test_an_interval_with_an_offset_at_one_end_only_is_422(path: str, interval: str) -> None:
    """Times are RFC 3339, with offsets: one end without is a 422 on `datetime` (it once was a 500)."""
    body = {"datetime": interval, "geometry": POINT, "order_parameters": {}}
    async with gateway_client({"acme": provider()}) as client:
        response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert [e["loc"][:2] for e in response.json()["errors"]] == [["body", "datetime"]]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
async def test_malformed_json_is_a_client_error(body: bytes) -> None:
    """Invalid JSON is 400, JSON that is not an object 422, both in contract form."""
    async with gateway_client({"acme": provider()}) as client:
        response = await client.post(
            "/products/acme:eo/orders", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code in (400, 422)
    assert response.json()["code"] in ("invalid_request", "validation_failed")
