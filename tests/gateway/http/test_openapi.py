"""The OpenAPI document: valid 3.1, complete against the routes, and true to what the gateway sends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from gateway.app import create_app
from gateway.http.operations import api_document
from gateway.http.responses import error_body
from gateway.settings.models import Settings
from tests.gateway.http.routes.test_opportunities import acme, settle
from tests.gateway.http.routes.test_orders import ORDER
from tests.gateways import GATEWAY_URL, gateway_client, provider_settings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Failure statuses whose body is a report rather than an Error.
NOT_ERRORS = {("GET", "/readyz", "503")}
COMPONENT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document as `GET /api` serves it."""
    return api_document("Test Gateway", "9.9.9")


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` and discriminator mapping target in a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            elif key == "mapping" and isinstance(value, dict):
                yield from value.values()
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _validator(document: dict[str, Any], schema_name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]})


def test_document_validates_as_openapi_3_1(document: dict[str, Any]) -> None:
    """openapi-spec-validator accepts the document as OpenAPI 3.1 with the given title and version."""
    validate(document)
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] == "Test Gateway"
    assert document["info"]["version"] == "9.9.9"


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for method, path, _ in _operations(document)}


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    """The app's routes and the documented operations are the same methods on the same paths."""
    app = create_app(Settings.build(provider_settings(["acme"]), secret="test-secret"))
    routed = set()
    for route in app.routes:
        assert isinstance(route, Route)
        routed |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    assert routed - _documented(document) == set()
    assert _documented(document) - routed == set()


def test_component_refs_resolve_and_names_are_valid(document: dict[str, Any]) -> None:
    """Every internal reference points at an existing component whose name OpenAPI accepts."""
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert _resolve(document, ref) is not None
    for kind, components in document["components"].items():
        for name in components:
            assert COMPONENT_NAME.match(name), (kind, name)
    assert "$defs" not in str(document)


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    """No two operations share an operationId."""
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))


def test_every_response_declares_request_id_and_errors_use_error(document: dict[str, Any]) -> None:
    """Each response carries X-Request-ID; every 4xx, 5xx and default one (bar readiness) is an Error."""
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            resolved = _resolve(document, response["$ref"]) if "$ref" in response else response
            assert "X-Request-ID" in resolved["headers"], (method, path, status)
            if (status == "default" or int(status) >= 400) and (method, path, status) not in NOT_ERRORS:
                schemas = [media["schema"] for media in resolved["content"].values()]
                assert schemas == [{"$ref": "#/components/schemas/Error"}], (method, path, status)


def test_error_schema_accepts_the_handlers_bodies(document: dict[str, Any]) -> None:
    """Bodies built like the error handlers' (with `errors` or `federation:missing`) match `Error`."""
    validator = _validator(document, "Error")
    loc: list[str | int] = ["body", "geometry", 0]
    failed = error_body("validation_failed", "bad", "rid", {"errors": [{"loc": loc, "msg": "m", "type": "t"}]})
    validator.validate(failed)
    validator.validate(error_body("providers_failed", "down", "rid", {"federation:missing": ["acme"]}))
    assert not validator.is_valid({"code": "x", "detail": "no request id"})


def test_request_bodies_match_the_gateways_validation(document: dict[str, Any]) -> None:
    """The payload schemas accept the README's requests and reject what the gateway rejects."""
    search = {
        "datetime": "2026-12-01T00:00:00Z/2026-12-03T00:00:00Z",
        "geometry": {"type": "Point", "coordinates": [9, 48]},
    }
    searches = _validator(document, "OpportunityPayload")
    searches.validate(search)
    assert not searches.is_valid({**search, "limit": 0})
    assert not searches.is_valid({"datetime": search["datetime"]})
    orders = _validator(document, "OrderPayload")
    orders.validate({**search, "order_parameters": {"delivery": "cog"}, "product_id": "acme:optical"})
    assert not orders.is_valid(search)
    assert not orders.is_valid({**search, "order_parameters": {}, "product_id": 7})


def _conforms(document: dict[str, Any], method: str, template: str, response: httpx.Response) -> None:
    """A real response has a documented status, its documented media type, headers and schema."""
    where = (method, template, response.status_code)
    spec = document["paths"][template][method.lower()]["responses"].get(str(response.status_code))
    assert spec is not None, where
    spec = _resolve(document, spec["$ref"]) if "$ref" in spec else spec
    sent = {name.lower() for name in response.headers}
    assert {name.lower() for name in spec["headers"]} - {"preference-applied"} <= sent, where
    if response.status_code == 204:
        assert "content" not in spec, where
        assert not response.content, where
        return
    media = response.headers["content-type"].split(";")[0]
    assert media in spec["content"], where
    if media != "text/plain":
        schema = spec["content"][media]["schema"]
        Draft202012Validator({**schema, "components": document["components"]}).validate(response.json())


async def test_live_responses_match_the_document(document: dict[str, Any]) -> None:
    """The gateway's real answers, successes and errors, match their operation's documented response."""
    search = {"datetime": ORDER["datetime"], "geometry": ORDER["geometry"]}
    async with gateway_client({"acme": acme()}, search_refresh_s=0.05) as client:

        async def check(method: str, template: str, url: str, status: int, **kwargs: Any) -> httpx.Response:
            response = await client.request(method, url, **kwargs)
            assert response.status_code == status, response.text
            _conforms(document, method, template, response)
            return response

        await check("GET", "/", "/", 200)
        await check("GET", "/healthz", "/healthz", 200)
        await check("GET", "/readyz", "/readyz", 200)
        await check("GET", "/metrics", "/metrics", 200)
        served = (await check("GET", "/api", "/api", 200)).json()
        validate(served)
        assert _documented(served) == _documented(document)
        await check("GET", "/conformance", "/conformance", 200)
        await check("GET", "/products", "/products?limit=1", 200)
        await check("GET", "/products", "/products?limit=0", 422)
        await check("GET", "/products", "/products?next=forged", 400)
        for suffix in ("", "/conformance", "/queryables", "/order-parameters"):
            await check("GET", f"/products/{{productId}}{suffix}", f"/products/acme:eo{suffix}", 200)
        await check("GET", "/products/{productId}", "/products/nobody:eo", 404)

        searches = "/products/{productId}/opportunities"
        await check("POST", searches, "/products/acme:eo/opportunities", 200, json=search)
        await check("POST", searches, "/products/acme:eo/opportunities", 400, content=b"{")
        text = {"Content-Type": "text/plain"}
        await check("POST", searches, "/products/acme:eo/opportunities", 415, content=b"{}", headers=text)
        await check("POST", searches, "/products/acme:eo/opportunities", 422, json={"geometry": search["geometry"]})
        prefer = {"Prefer": "respond-async"}
        created = await check("POST", searches, "/products/acme:sar/opportunities", 201, json=search, headers=prefer)
        record_path = created.headers["location"].removeprefix(GATEWAY_URL)
        record = await settle(client, created.headers["location"])
        await check("GET", "/searches/opportunities/{searchRecordId}", record_path, 200)
        await check("GET", "/searches/opportunities/{searchRecordId}/statuses", f"{record_path}/statuses", 200)
        await check("GET", "/searches/opportunities/{searchRecordId}", "/searches/opportunities/none", 404)
        await check("GET", "/searches/opportunities", "/searches/opportunities", 200)
        collection = f"/products/acme:sar/opportunities/{record['id']}"
        await check("GET", "/products/{productId}/opportunities/{collectionId}", collection, 200)

        orders = "/products/{productId}/orders"
        key = {"Idempotency-Key": "openapi-test"}
        order = (await check("POST", orders, "/products/acme:eo/orders", 201, json=ORDER, headers=key)).json()
        await check("POST", orders, "/products/acme:eo/orders", 400, json=ORDER, headers={"Idempotency-Key": "k" * 256})
        await check("POST", orders, "/products/acme:eo/orders", 422, json={**ORDER, "order_parameters": 1})
        await check("GET", "/orders", "/orders", 200)
        await check("GET", "/orders/{orderId}", f"/orders/{order['id']}", 200)
        await check("GET", "/orders/{orderId}/statuses", f"/orders/{order['id']}/statuses", 200)
        await check("GET", "/orders/{orderId}", "/orders/no-provider-prefix", 404)

        subs, one = "/subscriptions", "/subscriptions/{subscriptionId}"
        hook = {"url": "https://hooks.example.com/stapi", "events": ["order.status"]}
        made = (await check("POST", subs, subs, 201, json=hook)).json()
        await check("POST", subs, subs, 422, json={**hook, "url": "http://127.0.0.1/hook"})
        await check("GET", subs, subs, 200)
        await check("GET", one, f"{subs}/{made['id']}", 200)
        await check("POST", f"{one}/test", f"{subs}/{made['id']}/test", 202)
        await check("GET", f"{one}/deliveries", f"{subs}/{made['id']}/deliveries", 200)
        await check("GET", f"{one}/deliveries", f"{subs}/{made['id']}/deliveries?next=forged", 400)
        await check("POST", f"{one}/test", f"{subs}/nobody/test", 404)
        await check("DELETE", one, f"{subs}/{made['id']}", 204)
        await check("GET", one, f"{subs}/{made['id']}", 404)
    async with gateway_client({"acme": acme()}, max_body_bytes=64) as client:
        response = await client.post("/products/acme:eo/orders", json=ORDER)
    assert response.status_code == 413
    _conforms(document, "POST", "/products/{productId}/orders", response)
