"""Orders as data: the client's order request checked, fingerprinted, and provider orders
translated to the gateway's ids and links. No I/O here."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from pydantic import ConfigDict
from stapi_pydantic import OrderParameters, OrderPayload

from adapters.base import RequestValidationFailed
from adapters.schemas import CheckedSchema
from gateway.domain import ids
from gateway.domain.attempts import AttemptState, OrderAttempt, Resolution
from gateway.domain.federation import Member, Target
from gateway.domain.inputs import InputLimits, check_body, field_error, parse_object
from gateway.domain.links import LinkRewriter
from gateway.domain.member_choice import choose, named_member, without_member
from gateway.domain.records import BASE_PLACEHOLDER

ORDER_FIELDS = ("datetime", "geometry", "filter", "order_parameters")


class _AnyOrderParameters(OrderParameters):
    """Order parameters before the product's own schema is applied."""

    model_config = ConfigDict(extra="allow")


def _invalid(errors: list[dict[str, Any]]) -> RequestValidationFailed:
    return RequestValidationFailed("The order request is invalid.", errors)


def validate_order(body: bytes, limits: InputLimits) -> dict[str, Any]:
    """The client's order request (STAPI 0.1.0 OrderPayload), plus the optional `product_id`."""
    raw = parse_object(body, limits)
    check_body(OrderPayload[_AnyOrderParameters], body, raw, limits, "order request")
    order = {key: raw.get(key) for key in ORDER_FIELDS}
    product_id = raw.get("product_id")
    if product_id is not None and not isinstance(product_id, str):
        raise _invalid([field_error(["body", "product_id"], "must be a string", "string_type")])
    return {**order, "product_id": product_id}


def member_for(target: Target, order: dict[str, Any]) -> tuple[Member, dict[str, Any]]:
    """The provider product an order goes to, and the order as that product gets it.

    A federated product's order names its member in `order_parameters.member` (or, as before, in
    a top-level `product_id`); the member's provider gets the order without it.
    """
    if target.federated is None:
        return target.members[0], order
    chosen = choose(target.product_id, named_member(order), [m.gateway_id for m in target.members])
    member = next(m for m in target.members if m.gateway_id == chosen)
    return member, without_member(order)


def check_order_parameters(schema: CheckedSchema, parameters: Any) -> None:
    """The order parameters against the product's checked JSON Schema, before the provider sees them."""
    errors = sorted(schema.violations(parameters), key=lambda v: [str(part) for part in v.path])
    if errors:
        raise _invalid([field_error(["body", "order_parameters", *v.path], v.message[:300], v.keyword) for v in errors])


def upstream_order(order: dict[str, Any]) -> dict[str, Any]:
    """The body sent to the provider: the OrderPayload fields only."""
    return {key: order[key] for key in ORDER_FIELDS}


def fingerprint(product_id: str, order: dict[str, Any]) -> str:
    """A stable digest of what an order asks for, to recognise a retried request."""
    canonical = orjson.dumps({"product": product_id, "order": order}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def namespace_status(status: Any, links: LinkRewriter) -> Any:
    """A status entry with its links rewritten like the order's (a provider's own hrefs would
    otherwise reach clients and webhook receivers as the provider wrote them, signed queries too)."""
    if not isinstance(status, dict) or not isinstance(status.get("links"), list):
        return status
    return {**status, "links": links.links(status["links"])}


def namespace_order(order: dict[str, Any], links: LinkRewriter) -> dict[str, Any]:
    """A provider's order with namespaced ids, gateway links, and a `monitor` link."""
    pid = links.provider_id
    order_id = ids.namespaced(pid, str(order["id"]))
    properties = dict(order.get("properties") or {})
    if properties.get("product_id") is not None:
        properties["product_id"] = ids.namespaced(pid, str(properties["product_id"]))
    if "status" in properties:
        properties["status"] = namespace_status(properties["status"], links)
    rewritten = links.links(order.get("links") or [], drop_rels=frozenset({"next"}))
    href = f"{links.gateway_base}/orders/{order_id}"
    if not any(link.get("rel") == "self" for link in rewritten):
        rewritten.append({"href": href, "rel": "self", "type": "application/geo+json"})
    if not any(link.get("rel") == "monitor" for link in rewritten):
        rewritten.append({"href": f"{href}/statuses", "rel": "monitor", "type": "application/json"})
    return {**order, "id": order_id, "properties": properties, "links": rewritten}


def placed_order(attempt: OrderAttempt, member: Member, order: dict[str, Any], how: Resolution) -> OrderAttempt:
    """The attempt as placed, holding the provider's order in the gateway's ids and placeholder links."""
    links = member.provider.rewriter(BASE_PLACEHOLDER)
    shown = namespace_order(order, links)
    return attempt.moved(
        AttemptState.PLACED, time.time(), order_id=shown["id"], order=shown, error=None, resolution=how
    )
