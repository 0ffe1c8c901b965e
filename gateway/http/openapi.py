"""The gateway's OpenAPI 3.1 description, built from one table of its operations (served at `GET /api`).

Request bodies come from stapi-pydantic's models, with their `$defs` hoisted into `components/schemas`;
response bodies are permissive objects naming the fields clients can rely on.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any, NamedTuple

from stapi_pydantic import OpportunityPayload, OrderParameters, OrderPayload

JSON, GEOJSON, SCHEMA_JSON, TEXT = "application/json", "application/geo+json", "application/schema+json", "text/plain"
Schema = dict[str, Any]


class Reply(NamedTuple):
    """A success response: description, component schema name, media type, response header names."""

    description: str
    schema: str
    media: str = JSON
    headers: tuple[str, ...] = ()


class Op(NamedTuple):
    """One operation. `errors` are HTTP statuses from ERRORS; `params` names from PARAMETERS."""

    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    replies: dict[int, Reply]
    errors: tuple[int, ...] = ()
    params: tuple[str, ...] = ()
    body: str | None = None


UPSTREAM = (502, 503, 504)  # a provider failed, is shunned (circuit open) or timed out; or the store is down
PAGED = (400, 422)  # a foreign or tampered `next` cursor; `limit` below 1
BODY = (400, 413, 415, 422)  # not JSON, too large, not declared as JSON, invalid
OBJ = {"type": "object", "additionalProperties": True}

OPERATIONS = [
    Op("get", "/", "getLandingPage", "Core", "Landing page: links, conformance and the configured providers",
       {200: Reply("The landing page.", "LandingPage")}),
    Op("get", "/conformance", "getConformance", "Core", "The conformance classes the gateway itself serves",
       {200: Reply("The gateway's classes.", "Conformance")}),
    Op("get", "/products", "listProducts", "Products", "Every provider's products and the federated products",
       {200: Reply("One page of products (`federation:missing` names providers left out).", "ProductCollection")},
       (*PAGED, *UPSTREAM), ("limit", "next")),
    Op("get", "/products/{productId}", "getProduct", "Products", "One product",
       {200: Reply("The product, with gateway links.", "Product")}, (404, *UPSTREAM)),
    Op("get", "/products/{productId}/conformance", "getProductConformance", "Products", "A product's classes",
       {200: Reply("The product's classes as the gateway serves them.", "Conformance")}, (404, *UPSTREAM)),
    Op("get", "/products/{productId}/queryables", "getProductQueryables", "Products", "A product's queryables",
       {200: Reply("A JSON Schema (for a federated product, what every member shares).", "JSONSchema", SCHEMA_JSON)},
       (404, *UPSTREAM)),
    Op("get", "/products/{productId}/order-parameters", "getProductOrderParameters", "Products",
       "A product's order parameters",
       {200: Reply("A JSON Schema (for a federated product, discriminated on `member`).", "JSONSchema", SCHEMA_JSON)},
       (404, *UPSTREAM)),
    Op("post", "/products/{productId}/opportunities", "searchOpportunities", "Opportunities",
       "Search opportunities, synchronously (200) or asynchronously (201)",
       {200: Reply("Opportunities found (sync); `Preference-Applied: wait` when asked for.", "OpportunityCollection",
                   GEOJSON, ("Preference-Applied",)),
        201: Reply("The search runs in the background: its record.", "OpportunitySearchRecord",
                   headers=("Location", "Preference-Applied"))},
       (*BODY, 404, *UPSTREAM), ("Prefer",), "OpportunityPayload"),
    Op("get", "/products/{productId}/opportunities/{collectionId}", "getOpportunityCollection", "Opportunities",
       "The results of a completed asynchronous search, paged (the search's `limit` unless `limit` is given)",
       {200: Reply("One page of the opportunity collection.", "OpportunityCollection", GEOJSON)},
       (*PAGED, 404, *UPSTREAM), ("limit", "next")),
    Op("post", "/products/{productId}/orders", "createOrder", "Orders", "Place an order, at most once per key",
       {201: Reply("The order placed (or the original one, for a repeated Idempotency-Key).", "Order", GEOJSON,
                   ("Location",))},
       (*BODY, 404, 409, *UPSTREAM), ("Idempotency-Key",), "OrderPayload"),
    Op("get", "/orders", "listOrders", "Orders", "Every provider's orders, newest first",
       {200: Reply("One page of orders (`federation:missing` names providers left out).", "OrderCollection",
                   GEOJSON)},
       (*PAGED, *UPSTREAM), ("limit", "next")),
    Op("get", "/orders/{orderId}", "getOrder", "Orders", "One order",
       {200: Reply("The order, with gateway links.", "Order", GEOJSON)}, (404, *UPSTREAM)),
    Op("get", "/orders/{orderId}/statuses", "listOrderStatuses", "Orders", "An order's status history",
       {200: Reply("One page of statuses.", "OrderStatuses")}, (*PAGED, 404, *UPSTREAM), ("limit", "next")),
    Op("get", "/searches/opportunities", "listOpportunitySearchRecords", "Searches",
       "The gateway's asynchronous searches, newest first",
       {200: Reply("One page of search records.", "OpportunitySearchRecords")}, (*PAGED, 503), ("limit", "next")),
    Op("get", "/searches/opportunities/{searchRecordId}", "getOpportunitySearchRecord", "Searches",
       "One asynchronous search", {200: Reply("The search record.", "OpportunitySearchRecord")}, (404, 503)),
    Op("get", "/searches/opportunities/{searchRecordId}/statuses", "listOpportunitySearchRecordStatuses", "Searches",
       "An asynchronous search's status history",
       {200: Reply("Every status, oldest first, as a bare array.", "OpportunitySearchStatuses")}, (404, 503)),
    Op("get", "/healthz", "getHealth", "Operations", "Liveness: the process answers",
       {200: Reply("The gateway is alive.", "Health")}),
    Op("get", "/readyz", "getReadiness", "Operations", "Readiness: the store and the providers' circuits",
       {200: Reply("The store answers and some provider is healthy.", "Readiness"),
        503: Reply("Not ready: the store is down or every provider's circuit is open.", "Readiness")}),
    Op("get", "/metrics", "getMetrics", "Operations", "Prometheus metrics",
       {200: Reply("The Prometheus text exposition format.", "PrometheusText", TEXT)}, (401, 403)),
    Op("get", "/api", "getOpenAPI", "Operations", "This OpenAPI document",
       {200: Reply("The OpenAPI 3.1 description of the gateway.", "OpenAPIDocument")}),
]  # fmt: skip

# status: (component response name, description); every error body is the `Error` schema.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Malformed request: not JSON, a bad header value, or a foreign or tampered cursor."),
    401: ("Unauthorized", "No valid API key (clients are configured); /metrics: no operator's key."),
    403: ("Forbidden", "The API key does not cover this provider or product; /metrics: not an operator's key."),
    404: ("NotFound", "No such product, collection, order or search record."),
    409: ("Conflict", "Another request with this Idempotency-Key is still in progress."),
    413: ("PayloadTooLarge", "The request body exceeds `gateway.max_body_bytes`."),
    415: ("UnsupportedMediaType", "The request body is declared as something other than JSON."),
    422: ("ValidationFailed", "The request fails validation (`errors` lists each location), or the "
          "Idempotency-Key was used with another body."),
    502: ("BadGateway", "Every provider needed failed or answered something that is not STAPI."),
    503: ("ServiceUnavailable", "A provider's circuit is open or the store is unavailable."),
    504: ("GatewayTimeout", "Every provider needed timed out, or an order's outcome is unknown."),
}  # fmt: skip

ID = {"type": "string", "pattern": "^[^/]+$"}
PARAMETERS: dict[str, Schema] = {
    "productId": {"in": "path", "required": True, "schema": ID,
                  "description": "A provider's product as `provider:product`, or a federated product's id."},
    "collectionId": {"in": "path", "required": True, "schema": ID,
                     "description": "An opportunity collection: the search record id, or `provider:collection`."},
    "orderId": {"in": "path", "required": True, "schema": ID, "description": "An order as `provider:order`."},
    "searchRecordId": {"in": "path", "required": True, "schema": ID,
                       "description": "An asynchronous search record's id."},
    "limit": {"in": "query", "description": "Page size; values above 100 are clamped to 100.",
              "schema": {"type": "integer", "minimum": 1, "default": 10}},
    "next": {"in": "query", "description": "The opaque cursor of a `next` link.", "schema": {"type": "string"}},
    "Prefer": {"in": "header", "description": "RFC 7240: `wait` (sync) or `respond-async`; other tokens and "
               "parameters are ignored.", "schema": {"type": "string"}},
    "Idempotency-Key": {"in": "header", "description": "The same key with the same body returns the original order.",
                        "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"}},
    "X-Request-ID": {"in": "header", "description": "Kept and echoed if sane; otherwise the gateway mints one.",
                     "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:\\-]{1,128}$"}},
}  # fmt: skip

HEADERS: dict[str, Schema] = {
    "X-Request-ID": {"description": "This request's id (also in error bodies and logs).", "schema": {"type": "string"}},
    "Location": {"description": "Where the created resource lives.", "schema": {"type": "string", "format": "uri"}},
    "Preference-Applied": {"description": "The `Prefer` token honoured, if any.",
                           "schema": {"type": "string", "enum": ["wait", "respond-async"]}},
}  # fmt: skip


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _object(required: list[str], properties: Schema | None = None) -> Schema:
    """A permissive object: the fields named are described, any other field is allowed."""
    return {"type": "object", "required": required, "properties": properties or {}, "additionalProperties": True}


STRINGS = _array({"type": "string"})
LINKS = _array(_ref("schemas", "Link"))
MISSING = {**STRINGS, "description": "Providers whose answer is missing from this merged or failed response."}
STATUS = {"timestamp": {"type": "string", "format": "date-time"}, "status_code": {"type": "string"}}
SEARCH_STATES = ["received", "in_progress", "completed", "failed", "cancelled"]

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "Error": _object(["code", "detail", "request_id"], {
        "code": {"type": "string", "examples": ["not_found", "validation_failed", "providers_failed"]},
        "detail": {"type": "string"}, "request_id": {"type": "string"}, "provider": {"type": "string"},
        "errors": _array(_object(["loc", "msg", "type"], {
            "loc": _array({"type": ["string", "integer"]}), "msg": {"type": "string"}, "type": {"type": "string"}})),
        "federation:missing": MISSING}),
    "Link": _object(["href", "rel"], {"href": {"type": "string"}, "rel": {"type": "string"},
                                      "type": {"type": "string"}, "method": {"type": "string"}, "body": {}}),
    "LandingPage": _object(["id", "conformsTo", "links"], {
        "id": {"type": "string"}, "title": {"type": "string"}, "conformsTo": STRINGS, "links": LINKS,
        "providers": _array(_object(["id", "title"], {"id": {"type": "string"}, "title": {"type": "string"}}))}),
    "Conformance": _object(["conformsTo"], {"conformsTo": STRINGS}),
    "Product": _object(["id", "links"], {"id": {"type": "string"}, "conformsTo": STRINGS, "links": LINKS}),
    "ProductCollection": _object(["products", "links"], {
        "type": {"const": "ProductCollection"}, "products": _array(_ref("schemas", "Product")), "links": LINKS,
        "federation:missing": MISSING}),
    "JSONSchema": {"type": ["object", "boolean"]},
    "Opportunity": _object(["type", "geometry", "properties"], {
        "type": {"const": "Feature"}, "id": {"type": "string"}, "geometry": {"type": ["object", "null"]},
        "properties": _object(["datetime", "product_id"]), "links": LINKS}),
    "OpportunityCollection": _object(["type", "features", "links"], {
        "type": {"const": "FeatureCollection"}, "id": {"type": ["string", "null"]},
        "features": _array(_ref("schemas", "Opportunity")), "links": LINKS, "federation:missing": MISSING}),
    "OpportunitySearchStatus": _object(["timestamp", "status_code"], {
        **STATUS, "status_code": {"type": "string", "enum": SEARCH_STATES}}),
    "OpportunitySearchStatuses": _array(_ref("schemas", "OpportunitySearchStatus")),
    "OpportunitySearchRecord": _object(["id", "product_id", "opportunity_request", "status", "links"], {
        "id": {"type": "string"}, "product_id": {"type": "string"},
        "opportunity_request": _ref("schemas", "OpportunityPayload"),
        "status": _ref("schemas", "OpportunitySearchStatus"), "links": LINKS,
        "federation:members": _array(_object(["product_id", "status"], {
            "product_id": {"type": "string"}, "status": {"type": "string"},
            "reason_text": {"type": ["string", "null"]}})),
        "federation:missing": MISSING}),
    "OpportunitySearchRecords": _object(["search_records", "links"], {
        "search_records": _array(_ref("schemas", "OpportunitySearchRecord")), "links": LINKS}),
    "Order": _object(["id", "type", "properties", "links"], {
        "id": {"type": "string"}, "type": {"const": "Feature"}, "geometry": {"type": "object"},
        "properties": _object(["product_id", "status"], {
            "product_id": {"type": "string"}, "status": _ref("schemas", "OrderStatus")}),
        "links": LINKS}),
    "OrderCollection": _object(["type", "features", "links"], {
        "type": {"const": "FeatureCollection"}, "features": _array(_ref("schemas", "Order")), "links": LINKS,
        "federation:missing": MISSING}),
    "OrderStatus": _object(["timestamp", "status_code"], STATUS),
    "OrderStatuses": _object(["statuses", "links"], {"statuses": _array(_ref("schemas", "OrderStatus")),
                                                     "links": LINKS}),
    "Health": _object(["status"], {"status": {"const": "ok"}}),
    "Readiness": _object(["status", "store", "providers"], {
        "status": {"enum": ["ready", "not_ready"]}, "store": _object(["healthy"], {"healthy": {"type": "boolean"}}),
        "providers": {"anyOf": [
            {"type": "object", "description": "Each provider's circuit breaker, by provider id (operators, or "
             "everyone while no clients are configured).", "additionalProperties": _object(["state", "healthy"])},
            _object(["healthy", "total"], {"healthy": {"type": "integer"}, "total": {"type": "integer"}}),
        ]}}),
    "PrometheusText": {"type": "string"},
    "OpenAPIDocument": _object(["openapi", "info", "paths"]),
}  # fmt: skip

_NAME = re.compile(r"[^A-Za-z0-9._-]")
_DEFS = "#/$defs/"


def schema_name(name: str) -> str:
    """A component name OpenAPI accepts (`^[A-Za-z0-9._-]+$`), e.g. from a pydantic generic."""
    return _NAME.sub("_", name) or "_"


def _rewrite(node: Any) -> Any:
    """A copy of a pydantic schema with `#/$defs/X` refs (and discriminator mappings) pointing at components."""
    if isinstance(node, dict):
        return {key: _rewrite(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if isinstance(node, str) and node.startswith(_DEFS):
        return f"#/components/schemas/{schema_name(node[len(_DEFS) :])}"
    return node


def hoist(name: str, schema: Schema, into: dict[str, Schema]) -> None:
    """Add `schema` to `into` under `name`, with its `$defs` as sibling components."""
    body = dict(schema)
    for def_name, definition in body.pop("$defs", {}).items():
        key, value = schema_name(def_name), _rewrite(definition)
        if into.setdefault(key, value) != value:
            raise ValueError(f"two different schemas named {key!r}")
    into[schema_name(name)] = _rewrite(body)


@functools.cache
def _request_schemas() -> dict[str, Schema]:
    """The request bodies as the gateway validates them (stapi-pydantic 0.1.0, plus the gateway's rules)."""
    search = OpportunityPayload.model_json_schema()
    search["properties"]["limit"].update(minimum=1, description="Page size; values above 100 are clamped to 100.")
    search["properties"]["next"]["description"] = "The gateway's cursor from a `next` link's body."
    order = OrderPayload[OrderParameters].model_json_schema()
    order["title"] = "OrderPayload"
    order["$defs"].pop("OrderParameters")
    order["properties"]["order_parameters"] = {**OBJ, "description": "Per the product's order-parameters schema."}
    order["properties"]["product_id"] = {"type": "string", "description": "Older form of `order_parameters.member`."}
    out: dict[str, Schema] = {}
    hoist("OpportunityPayload", search, out)
    hoist("OrderPayload", order, out)
    return out


def _response(reply: Reply) -> Schema:
    headers = {name: _ref("headers", name) for name in ("X-Request-ID", *reply.headers)}
    return {
        "description": reply.description,
        "headers": headers,
        "content": {reply.media: {"schema": _ref("schemas", reply.schema)}},
    }


def _operation(op: Op) -> Schema:
    by_status = {status: _response(reply) for status, reply in op.replies.items()}
    by_status |= {status: _ref("responses", ERRORS[status][0]) for status in op.errors}
    responses = {str(status): by_status[status] for status in sorted(by_status)}
    responses["default"] = _ref("responses", "UnexpectedError")
    out: Schema = {"operationId": op.operation_id, "tags": [op.tag], "summary": op.summary, "responses": responses}
    if op.params:
        out["parameters"] = [_ref("parameters", name) for name in op.params]
    if op.body:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref("schemas", op.body)}}}
    return out


def _path_item(path: str) -> Schema:
    """The parameters shared by every operation on `path`: its path parameters and X-Request-ID."""
    return {"parameters": [_ref("parameters", name) for name in (*re.findall(r"{(\w+)}", path), "X-Request-ID")]}


def openapi_document(title: str, version: str = "0.1.0") -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document (a fresh dict on every call)."""
    paths: dict[str, Schema] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, _path_item(op.path))[op.method] = _operation(op)
    error = {
        "content": {JSON: {"schema": _ref("schemas", "Error")}},
        "headers": {"X-Request-ID": _ref("headers", "X-Request-ID")},
    }
    responses = {name: {"description": text, **error} for name, text in ERRORS.values()}
    responses["UnexpectedError"] = {"description": "An unexpected failure (logged under the request id).", **error}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "One STAPI 0.1.0 endpoint in front of many providers. Errors are JSON "
            "`{code, detail, request_id}`; every response carries `X-Request-ID`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": {**_request_schemas(), **RESPONSE_SCHEMAS},
            "responses": responses,
            "parameters": {name: {"name": name, **spec} for name, spec in PARAMETERS.items()},
            "headers": HEADERS,
        },
    }
    return copy.deepcopy(document)
