"""The component schemas of the /api document: request bodies from stapi-pydantic's models (their
`$defs` hoisted into `components/schemas`), response bodies as permissive objects naming the fields
clients can rely on."""

from __future__ import annotations

import functools
import re
from typing import Any

from stapi_pydantic import OpportunityPayload, OrderParameters, OrderPayload

from gateway.domain.events import SUBSCRIBABLE

Schema = dict[str, Any]
OBJ = {"type": "object", "additionalProperties": True}


def ref(kind: str, name: str) -> Schema:
    """A reference to a component of the document."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _object(required: list[str], properties: Schema | None = None) -> Schema:
    """A permissive object: the fields named are described, any other field is allowed."""
    return {"type": "object", "required": required, "properties": properties or {}, "additionalProperties": True}


STRINGS = _array({"type": "string"})
LINKS = _array(ref("schemas", "Link"))
MISSING = {**STRINGS, "description": "Providers whose answer is missing from this merged or failed response."}
STATUS = {"timestamp": {"type": "string", "format": "date-time"}, "status_code": {"type": "string"}}
SEARCH_STATES = ["received", "in_progress", "completed", "failed", "cancelled"]
EVENT_TYPES = {"type": "string", "enum": sorted(e.value for e in SUBSCRIBABLE)}

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
        "type": {"const": "ProductCollection"}, "products": _array(ref("schemas", "Product")), "links": LINKS,
        "federation:missing": MISSING}),
    "JSONSchema": {"type": ["object", "boolean"]},
    "Opportunity": _object(["type", "geometry", "properties"], {
        "type": {"const": "Feature"}, "id": {"type": "string"}, "geometry": {"type": ["object", "null"]},
        "properties": _object(["datetime", "product_id"]), "links": LINKS}),
    "OpportunityCollection": _object(["type", "features", "links"], {
        "type": {"const": "FeatureCollection"}, "id": {"type": ["string", "null"]},
        "features": _array(ref("schemas", "Opportunity")), "links": LINKS, "federation:missing": MISSING}),
    "OpportunitySearchStatus": _object(["timestamp", "status_code"], {
        **STATUS, "status_code": {"type": "string", "enum": SEARCH_STATES}}),
    "OpportunitySearchStatuses": _array(ref("schemas", "OpportunitySearchStatus")),
    "OpportunitySearchRecord": _object(["id", "product_id", "opportunity_request", "status", "links"], {
        "id": {"type": "string"}, "product_id": {"type": "string"},
        "opportunity_request": ref("schemas", "OpportunityPayload"),
        "status": ref("schemas", "OpportunitySearchStatus"), "links": LINKS,
        "federation:members": _array(_object(["product_id", "status"], {
            "product_id": {"type": "string"}, "status": {"type": "string"},
            "reason_text": {"type": ["string", "null"]}})),
        "federation:missing": MISSING}),
    "OpportunitySearchRecords": _object(["search_records", "links"], {
        "search_records": _array(ref("schemas", "OpportunitySearchRecord")), "links": LINKS}),
    "Order": _object(["id", "type", "properties", "links"], {
        "id": {"type": "string"}, "type": {"const": "Feature"}, "geometry": {"type": "object"},
        "properties": _object(["product_id", "status"], {
            "product_id": {"type": "string"}, "status": ref("schemas", "OrderStatus")}),
        "links": LINKS}),
    "OrderCollection": _object(["type", "features", "links"], {
        "type": {"const": "FeatureCollection"}, "features": _array(ref("schemas", "Order")), "links": LINKS,
        "federation:missing": MISSING}),
    "OrderStatus": _object(["timestamp", "status_code"], STATUS),
    "OrderStatuses": _object(["statuses", "links"], {"statuses": _array(ref("schemas", "OrderStatus")),
                                                     "links": LINKS}),
    "Subscription": _object(["id", "url", "events", "created", "links"], {
        "id": {"type": "string"}, "url": {"type": "string", "format": "uri"}, "events": _array(EVENT_TYPES),
        "created": {"type": "string", "format": "date-time"}, "links": LINKS}),
    "NewSubscription": {"allOf": [ref("schemas", "Subscription"), _object(["secret"], {
        "secret": {"type": "string", "pattern": "^whsec_", "description": "The Standard Webhooks signing secret; "
                   "shown only in this answer."}})]},
    "Subscriptions": _object(["subscriptions", "links"], {
        "subscriptions": _array(ref("schemas", "Subscription")), "links": LINKS}),
    "SubscriptionRequest": {"type": "object", "required": ["url", "events"], "additionalProperties": False,
                            "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2048},
                                           "events": {**_array(EVENT_TYPES), "minItems": 1}}},
    "Delivery": _object(["id", "event_id", "event_type", "subject", "state", "created", "attempt_count", "attempts"], {
        "id": {"type": "string"}, "event_id": {"type": "string"}, "event_type": {"type": "string"},
        "subject": {"type": "string"}, "state": {"enum": ["pending", "delivered", "failed"]},
        "created": {"type": "string", "format": "date-time"},
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "attempt_count": {"type": "integer"},
        "attempts": _array(_object(["at", "status", "error", "duration_ms"], {
            "at": {"type": "string", "format": "date-time"}, "status": {"type": ["integer", "null"]},
            "error": {"type": ["string", "null"]}, "duration_ms": {"type": "number"}}))}),
    "Deliveries": _object(["deliveries", "links"], {"deliveries": _array(ref("schemas", "Delivery")), "links": LINKS}),
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
def request_schemas() -> dict[str, Schema]:
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
