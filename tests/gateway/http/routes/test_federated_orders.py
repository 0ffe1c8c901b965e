"""Federated orders as a standard STAPI client places them: the member named in `order_parameters`.

pystapi-client is not installable here (no distribution on the package index this project uses),
so `create_product_order` is emulated as that client does it: the `products` link of the landing
page, `{products}/{product_id}/orders`, and the body of an stapi-pydantic `OrderPayload`
(`model_dump()`, sent as JSON). OrderPayload has no top-level `product_id`, so the member can only
travel in `order_parameters`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import jsonschema
import jsonschema_rs
import orjson
import pytest
from geojson_pydantic import Point
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from stapi_pydantic import OpportunityCollection, Order, OrderParameters, OrderPayload

from gateway.domain.member_choice import federated_order_parameters, shown_schema, to_upstream
from tests.faults import RefusingTransport
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, follow_get, gateway_client
from tests.upstreams import DefaultOrderParameters, ProductSpec, backend_of, build_provider

CHOICES = ["a:eo", "b:eo", "c:sar"]


class Delivery(BaseModel):
    """A nested model: its schema is referenced as `#/$defs/Delivery` in the member's document."""

    bucket: str


class NestedOrderParameters(DefaultOrderParameters):
    """Order parameters with `$defs` (identical for two members)."""

    delivery: Delivery | None = None


class SarOrderParameters(OrderParameters):
    """Another member's parameters, with a required one."""

    polarisation: Literal["HH", "VV"]


class FederatedParameters(OrderParameters):
    """What a client declares for a federated product: the member and that member's parameters."""

    member: str
    delivery_format: Literal["cog", "geotiff"] = "cog"


def upstreams() -> dict[str, Any]:
    """Two members with identical schemas (with $defs) and one with different parameters."""
    eo = ProductSpec("eo", order_parameters=NestedOrderParameters)
    return {
        "a": build_provider([eo], name="a"),
        "b": build_provider([eo], name="b"),
        "c": build_provider([ProductSpec("sar", order_parameters=SarOrderParameters)], name="c"),
    }


PRODUCTS = [{"id": "any", "members": CHOICES}]


def payload(member: str, **parameters: Any) -> dict[str, Any]:
    """An OrderPayload's body, as pystapi-client sends it (`model_dump()`, then JSON)."""
    order = OrderPayload[FederatedParameters](
        datetime=(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC)),
        geometry=Point(type="Point", coordinates=(13.4, 52.5)),
        order_parameters=FederatedParameters(member=member, **parameters),
    )
    dumped = order.model_dump()
    assert "product_id" not in dumped  # what the reference client can send
    return dumped


async def create_product_order(client: httpx.AsyncClient, product_id: str, body: dict[str, Any]) -> httpx.Response:
    """pystapi-client's `Client.create_product_order`: the landing page's `products` link + `/{id}/orders`."""
    root = (await client.get("/")).json()
    products = next(link["href"] for link in root["links"] if link["rel"] == "products")
    url = httpx.URL(products)
    return await client.post(url.copy_with(path=f"{url.path}/{product_id}/orders").path, json=body)


def validators(schema: dict[str, Any]) -> list[Any]:
    """The schema in two independent validators: jsonschema (Python) and jsonschema-rs."""
    jsonschema.Draft202012Validator.check_schema(schema)
    return [jsonschema.Draft202012Validator(schema), jsonschema_rs.validator_for(schema)]


def valid(schema: dict[str, Any], instance: Any) -> bool:
    """Whether both validators accept `instance` (and agree)."""
    verdicts: set[bool] = {v.is_valid(instance) for v in validators(schema)}
    assert len(verdicts) == 1, f"validators disagree on {instance}"
    return verdicts.pop()


async def test_reference_client_order_names_its_member_in_order_parameters() -> None:
    """An OrderPayload with `member` in order_parameters is placed at that member, without `member`."""
    providers = upstreams()
    async with gateway_client(providers, products=PRODUCTS) as client:
        response = await create_product_order(client, "any", payload("b:eo", delivery_format="geotiff"))
    assert response.status_code == 201, response.text
    order: Order[Any] = Order.model_validate(response.json())
    assert order.properties.product_id == "b:eo"
    assert order.id.startswith("b:")
    placed = list(backend_of(providers["b"]).orders.values())
    # What the provider got: b's own parameters only (it fills in its default for `delivery`).
    assert [o.properties.order_parameters for o in placed] == [{"delivery_format": "geotiff", "delivery": None}]
    assert not backend_of(providers["a"]).orders
    assert not backend_of(providers["c"]).orders


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"delivery_format": "cog"}, "is required"),
        ({"member": "d:eo"}, "'d:eo' is not a member"),
        ({"member": "eo"}, "'eo' is not a member"),
        ({"member": 7}, "must be a string"),
    ],
    ids=["missing", "unknown", "not-namespaced", "not-a-string"],
)
async def test_order_without_a_known_member_is_a_422_listing_the_choices(parameters: dict[str, Any], says: str) -> None:
    """No member, or one that is not among the product's: 422 on order_parameters.member, before any call."""
    providers = upstreams()
    body = {"datetime": WINDOW, "geometry": POINT, "order_parameters": parameters}
    async with gateway_client(providers, products=PRODUCTS) as client:
        response = await client.post("/products/any/orders", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", "order_parameters", "member"]
    assert says in error["msg"]
    if says != "must be a string":
        assert "a:eo, b:eo, c:sar" in error["msg"]
    assert not any(backend_of(p).orders for p in providers.values())


async def test_top_level_product_id_still_names_the_member() -> None:
    """Back-compat: the older body with a top-level `product_id` is placed as before; one that
    contradicts its `member` is the client's mistake."""
    providers = upstreams()
    legacy = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}, "product_id": "a:eo"}
    both = {**legacy, "order_parameters": {"member": "b:eo"}}
    async with gateway_client(providers, products=PRODUCTS) as client:
        placed = await client.post("/products/any/orders", json=legacy)
        contradicting = await client.post("/products/any/orders", json=both)
    assert placed.status_code == 201, placed.text
    assert placed.json()["properties"]["product_id"] == "a:eo"
    assert contradicting.status_code == 422
    assert contradicting.json()["errors"][0]["loc"] == ["body", "order_parameters", "member"]


async def test_member_parameters_are_checked_against_that_members_schema() -> None:
    """Once the member is known, its own schema judges the rest (c:sar requires `polarisation`)."""
    providers = upstreams()
    async with gateway_client(providers, products=PRODUCTS) as client:
        lacking = await client.post(
            "/products/any/orders",
            json={"datetime": WINDOW, "geometry": POINT, "order_parameters": {"member": "c:sar"}},
        )
        complete = await client.post(
            "/products/any/orders",
            json={"datetime": WINDOW, "geometry": POINT, "order_parameters": {"member": "c:sar", "polarisation": "VV"}},
        )
    assert lacking.status_code == 422
    assert lacking.json()["errors"][0]["loc"][:2] == ["body", "order_parameters"]
    assert complete.status_code == 201, complete.text
    assert [o.properties.order_parameters for o in backend_of(providers["c"]).orders.values()] == [
        {"polarisation": "VV"}
    ]


async def test_served_schema_is_discriminated_on_member_and_its_refs_resolve() -> None:
    """The federated schema validates `{member}` + that member's parameters in two validators,
    unambiguously although two members' schemas are identical, with members' `$defs` rebased."""
    async with gateway_client(upstreams(), products=PRODUCTS) as client:
        response = await client.get("/products/any/order-parameters")
    assert response.status_code == 200
    schema = response.json()
    assert schema["properties"]["member"]["enum"] == CHOICES
    assert "federation:missing" not in schema
    cases = [
        ({}, False),  # no member
        ({"member": "a:eo"}, True),  # the member's defaults
        ({"member": "b:eo", "delivery_format": "cog", "delivery": {"bucket": "x"}}, True),
        ({"member": "b:eo", "delivery": {}}, False),  # the rebased $ref to Delivery applies
        ({"member": "a:eo", "bogus": 1}, False),  # the member's additionalProperties: false
        ({"member": "c:sar"}, False),  # c's required parameter
        ({"member": "c:sar", "polarisation": "HH"}, True),
        ({"member": "a:eo", "polarisation": "HH"}, False),  # not a's parameter
        ({"member": "z:eo"}, False),
    ]
    assert [valid(schema, instance) for instance, _ in cases] == [expected for _, expected in cases]


async def test_served_schema_lists_members_that_did_not_answer_as_missing() -> None:
    """A member whose schema could not be had is not offered, and is named in federation:missing."""
    providers = {**upstreams(), "c": RefusingTransport()}
    async with gateway_client(providers, products=PRODUCTS) as client:
        schema = (await client.get("/products/any/order-parameters")).json()
    assert schema["properties"]["member"]["enum"] == ["a:eo", "b:eo"]
    assert schema["federation:missing"] == ["c"]


def order_links(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every opportunity's create-order link."""
    return [link for f in features for link in f["links"] if link["rel"] == "create-order"]


async def test_every_federated_opportunity_link_names_its_member_and_can_be_posted() -> None:
    """Sync and async collections: each create-order body carries order_parameters.member (its
    product_id) and is an OrderPayload; POSTed unchanged, it orders at that member."""
    providers = upstreams()
    search = {"datetime": WINDOW, "geometry": POINT, "limit": 50}
    async with gateway_client(
        providers, products=[{"id": "eo", "members": ["a:eo", "b:eo"]}], search_refresh_s=0.05
    ) as client:
        sync = (await client.post("/products/eo/opportunities", json=search)).json()
        created = await client.post("/products/eo/opportunities", json=search, headers={"Prefer": "respond-async"})
        record = await settle(client, created.headers["location"])
        pages = await follow_get(client, f"/products/eo/opportunities/{record['id']}", OpportunityCollection)
        features = sync["features"] + [f for page in pages for f in page["features"]]
        links = order_links(features)
        assert len(links) == len(features) == 100
        for feature, link in zip(features, links, strict=True):
            assert link["body"]["order_parameters"] == {"member": feature["properties"]["product_id"]}
            assert "product_id" not in link["body"]
            OrderPayload[FederatedParameters].model_validate_json(orjson.dumps(link["body"]))
        from_a = next(link for link in links if link["body"]["order_parameters"]["member"] == "a:eo")
        response = await client.post(from_a["href"].removeprefix(GATEWAY_URL), json=from_a["body"])
    assert response.status_code == 201, response.text
    assert response.json()["properties"]["product_id"] == "a:eo"
    assert len(backend_of(providers["a"]).orders) == 1


# --- the schema itself, for any member ids -------------------------------------------------------

MEMBER_SCHEMA = NestedOrderParameters.model_json_schema()
member_ids = st.lists(
    st.builds(
        lambda p, q: f"{p}:{q}", st.from_regex(r"[a-z][a-z0-9-]{0,5}", fullmatch=True), st.text(min_size=1, max_size=8)
    ),
    min_size=1,
    max_size=4,
    unique=True,
)


@settings(max_examples=40, deadline=None)
@given(members=member_ids)
# A trailing newline once passed for a plain `$defs` key (`$` matches before it); kept as a case.
@example(members=["a:\n", "b:x"])
def test_each_member_validates_with_its_own_parameters_whatever_its_id(members: list[str]) -> None:
    """Members with identical schemas and any ids (`/`, `~`, `%`, spaces): `{member} + parameters`
    is valid for each, its `$defs` apply, and only the listed ids are accepted."""
    schema = federated_order_parameters("t", dict.fromkeys(members, MEMBER_SCHEMA))
    for member in members:
        assert valid(schema, {"member": member, "delivery": {"bucket": "x"}})
        assert not valid(schema, {"member": member, "delivery": {}})
    assert not valid(schema, {"member": "\x00not-a-member"})


def test_a_member_of_another_draft_keeps_its_meaning_as_a_resource_of_its_own() -> None:
    """A draft-07 member (`definitions`, `$schema`) is embedded with an `$id`, its refs unchanged."""
    draft7 = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"size": {"$ref": "#/definitions/size"}},
        "additionalProperties": False,
        "definitions": {"size": {"type": "integer", "minimum": 1}},
    }
    schema = federated_order_parameters("t", {"a:x": draft7, "b:y": MEMBER_SCHEMA})
    assert valid(schema, {"member": "a:x", "size": 3})
    assert not valid(schema, {"member": "a:x", "size": 0})
    assert not valid(schema, {"member": "a:x", "delivery_format": "cog"})
    assert valid(schema, {"member": "b:y", "delivery_format": "cog"})


def test_an_upstream_gateways_schema_is_shown_and_ordered_in_this_gateways_namespace() -> None:
    """Chaining: G1's member values appear as `g1:...` here; an order's value goes back as G1's."""
    upstream = federated_order_parameters("t", {"alpha:optical": MEMBER_SCHEMA, "bravo:optical": MEMBER_SCHEMA})
    shown = shown_schema("g1", upstream)
    assert shown["properties"]["member"]["enum"] == ["g1:alpha:optical", "g1:bravo:optical"]
    assert valid(shown, {"member": "g1:bravo:optical", "delivery_format": "cog"})
    assert not valid(shown, {"member": "bravo:optical"})
    order = {"datetime": WINDOW, "order_parameters": {"member": "g1:bravo:optical"}}
    assert to_upstream("g1", "g1:fed", upstream, order)["order_parameters"] == {"member": "bravo:optical"}
    assert shown_schema("g1", MEMBER_SCHEMA) is MEMBER_SCHEMA
