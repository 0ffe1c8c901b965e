"""Every STAPI route's body, as the gateway answers it, validates against the stapi-pydantic 0.1.0 models.

One gateway in front of two real stapi-fastapi upstreams and a federated product over both; the
fixture places an order and runs async searches (provider and federated) so that the routes that
read them have something to show. Error bodies are checked against the contract's error shape.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
from jsonschema.validators import validator_for
from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter
from stapi_pydantic import (
    Conformance,
    OpportunityCollection,
    OpportunitySearchRecord,
    OpportunitySearchRecords,
    OpportunitySearchStatus,
    Order,
    OrderCollection,
    OrderStatus,
    OrderStatuses,
    Product,
    ProductsCollection,
    RootResponse,
)
from starlette.routing import Route

from gateway.app import create_app
from gateway.settings.models import Settings
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, gateway_client, provider_settings
from tests.upstreams import ProductSpec, build_provider

SEARCH = {"datetime": WINDOW, "geometry": POINT, "limit": 5}
ORDER = {**SEARCH, "order_parameters": {"delivery_format": "cog"}}
ASYNC = {"Prefer": "respond-async"}
FEDERATED = [{"id": "fed", "title": "Federated", "members": ["acme:eo", "orbit:optical"]}]


class ErrorBody(BaseModel):
    """The contract's error shape: at least a machine word, a sentence and the request id."""

    model_config = ConfigDict(extra="allow")
    code: str
    detail: str
    request_id: str


def check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` if it is a valid JSON Schema (of the draft it names, else the latest)."""
    validator_for(schema).check_schema(schema)
    return schema


# stapi-pydantic's JsonSchemaModel serialises a model class into its schema and cannot read one
# back, so queryables and order parameters are held to what it renders: a valid JSON Schema object.
JsonSchema = Annotated[dict[str, Any], AfterValidator(check_schema)]


@dataclass(frozen=True)
class Case:
    """One request to the gateway, the status it must answer and the model its body must fit."""

    model: Any  # a model class or a generic alias of one, anything TypeAdapter takes
    path: str  # may name {order}, {record}, {collection}, {fed_record}, {fed_collection}
    method: str = "GET"
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


CASES = {
    "landing-page": Case(RootResponse, "/"),
    "conformance": Case(Conformance, "/conformance"),
    "products": Case(ProductsCollection, "/products"),
    "product": Case(Product, "/products/acme:eo"),
    "federated-product": Case(Product, "/products/fed"),
    "product-conformance": Case(Conformance, "/products/acme:eo/conformance"),
    "queryables": Case(JsonSchema, "/products/acme:eo/queryables"),
    "federated-queryables": Case(JsonSchema, "/products/fed/queryables"),
    "order-parameters": Case(JsonSchema, "/products/acme:eo/order-parameters"),
    "federated-order-parameters": Case(JsonSchema, "/products/fed/order-parameters"),
    "opportunities-sync": Case(OpportunityCollection, "/products/acme:eo/opportunities", "POST", body=SEARCH),
    "federated-opportunities-sync": Case(OpportunityCollection, "/products/fed/opportunities", "POST", body=SEARCH),
    "opportunities-async": Case(
        OpportunitySearchRecord, "/products/acme:sar/opportunities", "POST", 201, SEARCH, ASYNC
    ),
    "search-record": Case(OpportunitySearchRecord, "/searches/opportunities/{record}"),
    "search-record-statuses": Case(list[OpportunitySearchStatus], "/searches/opportunities/{record}/statuses"),
    "search-record-collection": Case(OpportunityCollection, "{collection}"),
    "federated-search-record": Case(OpportunitySearchRecord, "/searches/opportunities/{fed_record}"),
    "federated-search-record-collection": Case(OpportunityCollection, "{fed_collection}"),
    "search-records": Case(OpportunitySearchRecords, "/searches/opportunities"),
    "create-order": Case(Order[OrderStatus], "/products/acme:eo/orders", "POST", 201, ORDER),
    "orders": Case(OrderCollection[OrderStatus], "/orders"),
    "order": Case(Order[OrderStatus], "/orders/{order}"),
    "order-statuses": Case(OrderStatuses[OrderStatus], "/orders/{order}/statuses"),
    # A STAPI 0.1 provider has no cancel: the route answers the contract's error body.
    "cancel-not-supported": Case(ErrorBody, "/orders/{order}/cancel", "POST", 405),
    "unknown-product": Case(ErrorBody, "/products/acme:nope", status=404),
    "unknown-order": Case(ErrorBody, "/orders/acme:nope", status=404),
    "unknown-record": Case(ErrorBody, "/searches/opportunities/nope", status=404),
    "invalid-search": Case(ErrorBody, "/products/acme:eo/opportunities", "POST", 422, {"geometry": POINT}),
}


@dataclass(frozen=True)
class Walk:
    """The gateway's client and the ids that the fixture created for the routes that read them."""

    client: httpx.AsyncClient
    ids: dict[str, str]


async def completed_record(client: httpx.AsyncClient, product: str) -> tuple[str, str]:
    """Run an async search to completion: the record id and the path of its collection."""
    created = await client.post(f"/products/{product}/opportunities", json=SEARCH, headers=ASYNC)
    assert created.status_code == 201, created.text
    record = await settle(client, created.headers["location"])
    assert record["status"]["status_code"] == "completed", record
    href = next(link["href"] for link in record["links"] if link["rel"] == "opportunities")
    return record["id"], href.removeprefix(GATEWAY_URL)


@pytest.fixture(scope="module")
async def walk() -> AsyncIterator[Walk]:
    """A gateway over acme (eo: sync and async; sar: async only) and orbit, with state to read."""
    acme = build_provider([ProductSpec("eo", async_=True), ProductSpec("sar", sync=False, async_=True)], name="acme")
    orbit = build_provider([ProductSpec("optical")], name="orbit")
    upstreams = {"acme": acme, "orbit": orbit}
    async with gateway_client(upstreams, products=FEDERATED, search_refresh_s=0.05) as client:
        placed = await client.post("/products/acme:eo/orders", json=ORDER)
        assert placed.status_code == 201, placed.text
        record, collection = await completed_record(client, "acme:sar")
        fed_record, fed_collection = await completed_record(client, "fed")
        ids = {"order": placed.json()["id"], "record": record, "collection": collection}
        yield Walk(client, {**ids, "fed_record": fed_record, "fed_collection": fed_collection})


def test_every_stapi_route_of_the_gateway_has_a_case() -> None:
    """Each route the gateway serves, but for the operator ones and the webhook extension (no STAPI model:
    tests/gateway/http/routes/test_subscriptions.py checks those against the /api schemas), has a case."""
    app = create_app(Settings.build(provider_settings(["acme"]), secret="s"))
    operator = {"/healthz", "/readyz", "/metrics", "/api"}
    routes = {re.sub(r"\{[^}]+\}", "{}", route.path) for route in app.routes if isinstance(route, Route)}
    served = {path for path in routes if not path.startswith("/subscriptions")} - operator
    ids = {"order": "acme:o", "record": "r", "fed_record": "f"}
    ids |= {"collection": "/products/acme:eo/opportunities/c", "fed_collection": "/products/fed/opportunities/c"}
    fixed = {"products", "orders", "searches", "opportunities", "conformance", "queryables", "order-parameters"}
    fixed |= {"statuses", "cancel"}
    requested = set()
    for case in CASES.values():
        parts = case.path.format(**ids).split("/")
        requested.add("/".join(part if part in fixed or not part else "{}" for part in parts))
    assert served, "no routes found"
    assert served <= requested


@pytest.mark.parametrize("name", list(CASES))
async def test_body_validates_against_the_stapi_model(walk: Walk, name: str) -> None:
    """The route answers its status with a JSON body that the matching stapi-pydantic model accepts."""
    case = CASES[name]
    path = case.path.format(**walk.ids)
    response = await walk.client.request(case.method, path, json=case.body, headers=case.headers)
    assert response.status_code == case.status, response.text
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type == "application/json" or media_type.endswith("+json"), media_type  # geo+json, schema+json
    TypeAdapter(case.model).validate_json(response.content)
