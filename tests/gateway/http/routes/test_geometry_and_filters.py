"""Geometries and filters a provider cannot use: 422 with a place and a reason, before any call where possible."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.http.routes.test_opportunities import WINDOW
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, backend_of, build_provider

ROUTES = ["opportunities", "orders"]


def body(route: str, **fields: Any) -> dict[str, Any]:
    """A search or order body with the given fields."""
    out = {"datetime": WINDOW, "geometry": {"type": "Point", "coordinates": [9, 48]}, **fields}
    if route == "orders":
        out["order_parameters"] = {}
    return out


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("coordinates", "says"),
    [
        (["NaN", 48], "numbers"),
        (["Infinity", 48], "numbers"),
        (["1e999", 48], "numbers"),
        (["9", 48], "numbers"),
        ([True, 48], "numbers"),
        ([500, 48], "longitude 500"),
        ([-180.5, 48], "longitude"),
        ([9, 95], "latitude 95"),
    ],
)
async def test_coordinates_must_be_finite_numbers_in_range(route: str, coordinates: list[Any], says: str) -> None:
    """Strings, booleans and out-of-range degrees are 422 on geometry.coordinates; the provider is not called."""
    provider = build_provider([ProductSpec("eo")], name="acme")
    async with gateway_client({"acme": provider}) as client:
        await client.get("/readyz")
        before = len(backend_of(provider).requests)
        response = await client.post(
            f"/products/acme:eo/{route}", json=body(route, geometry={"type": "Point", "coordinates": coordinates})
        )
        calls = [r.path for r in backend_of(provider).requests[before:]]
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["loc"][:3] == ["body", "geometry", "coordinates"]
    assert says in error["msg"]
    assert not [p for p in calls if p.endswith(("/opportunities", "/orders"))]
    assert not backend_of(provider).orders


@pytest.mark.parametrize(
    ("filter_", "loc", "says"),
    [
        ({"op": "<<", "args": []}, ["body", "filter", "op"], "unknown operator"),
        ({"op": "<", "args": [{"property": "off_nadir"}, "ten"]}, ["body", "filter", "args", 1], "is a number"),
        (
            {
                "op": "and",
                "args": [{"op": "=", "args": [{"property": "off_nadir"}, True]}, {"op": "=", "args": [1, 1]}],
            },
            ["body", "filter", "args", 0, "args", 1],
            "not a boolean",
        ),
    ],
)
async def test_filters_the_gateway_can_judge_are_422_before_the_provider(
    filter_: dict[str, Any], loc: list[Any], says: str
) -> None:
    """Unknown operators (CQL2) and operands of the wrong type (the product's queryables) are found by the gateway."""
    provider = build_provider([ProductSpec("eo")], name="acme")
    async with gateway_client({"acme": provider}) as client:
        response = await client.post("/products/acme:eo/opportunities", json=body("opportunities", filter=filter_))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors[0]["loc"] == loc
    assert says in errors[0]["msg"]
    assert not [r for r in backend_of(provider).requests if r.path.endswith("/opportunities")]


async def test_a_filter_only_the_provider_can_judge_relays_its_reason() -> None:
    """`cloud_cover < "ten"` where the queryables allow other properties: the provider's 422, with its reason."""
    provider = build_provider([ProductSpec("eo")], name="acme")
    filter_ = {"op": "<", "args": [{"property": "cloud_cover"}, "ten"]}
    async with gateway_client({"acme": provider}) as client:
        response = await client.post("/products/acme:eo/opportunities", json=body("opportunities", filter=filter_))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors
    assert "cannot be evaluated" in errors[0]["msg"]
