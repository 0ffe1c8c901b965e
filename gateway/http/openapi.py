"""The gateway's OpenAPI 3.1 description (served at `GET /api`), built from the operations table
(gateway/http/operations.py), with the components in openapi_schemas.py."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.http.openapi_schemas import RESPONSE_SCHEMAS, Schema, ref, request_schemas

if TYPE_CHECKING:
    from gateway.http.operations import Operation, Reply

JSON, GEOJSON, SCHEMA_JSON, TEXT = "application/json", "application/geo+json", "application/schema+json", "text/plain"

# status: (component response name, description); every error body is the `Error` schema.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Malformed request: not JSON, a bad header value, or a foreign or tampered cursor."),
    401: ("Unauthorized", "No valid API key (clients are configured); /metrics: no operator's key."),
    403: ("Forbidden", "The API key does not cover this provider or product; /metrics: not an operator's key."),
    404: ("NotFound", "No such product, collection, order, search record or subscription."),
    405: ("MethodNotAllowed", "The order's provider cannot cancel orders (`cancel_not_supported`)."),
    409: ("Conflict", "Another request with this Idempotency-Key is still in progress, the provider refuses "
          "to cancel the order in its state (`order_not_cancellable`, its own status as `provider:status`), "
          "or the client holds as many subscriptions as it may (`subscription_limit_reached`)."),
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
    "subscriptionId": {"in": "path", "required": True, "schema": ID,
                       "description": "A webhook subscription's id."},
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


def _response(reply: Reply) -> Schema:
    headers = {name: ref("headers", name) for name in ("X-Request-ID", *reply.headers)}
    out: Schema = {"description": reply.description, "headers": headers}
    if reply.schema:
        out["content"] = {reply.media: {"schema": ref("schemas", reply.schema)}}
    return out


def _operation(op: Operation) -> Schema:
    by_status = {status: _response(reply) for status, reply in op.replies.items()}
    by_status |= {status: ref("responses", ERRORS[status][0]) for status in op.errors}
    responses = {str(status): by_status[status] for status in sorted(by_status)}
    responses["default"] = ref("responses", "UnexpectedError")
    out: Schema = {"operationId": op.operation_id, "tags": [op.tag], "summary": op.summary, "responses": responses}
    if op.params:
        out["parameters"] = [ref("parameters", name) for name in op.params]
    if op.body:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": ref("schemas", op.body)}}}
    return out


def _path_item(path: str) -> Schema:
    """The parameters shared by every operation on `path`: its path parameters and X-Request-ID."""
    return {"parameters": [ref("parameters", name) for name in (*re.findall(r"{(\w+)}", path), "X-Request-ID")]}


def openapi_document(title: str, operations: Sequence[Operation], version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of these operations (a fresh dict on every call)."""
    paths: dict[str, Schema] = {}
    for op in operations:
        paths.setdefault(op.path, _path_item(op.path))[op.method.lower()] = _operation(op)
    error = {
        "content": {JSON: {"schema": ref("schemas", "Error")}},
        "headers": {"X-Request-ID": ref("headers", "X-Request-ID")},
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
            "schemas": {**request_schemas(), **RESPONSE_SCHEMAS},
            "responses": responses,
            "parameters": {name: {"name": name, **spec} for name, spec in PARAMETERS.items()},
            "headers": HEADERS,
        },
    }
    return copy.deepcopy(document)
