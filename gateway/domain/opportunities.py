"""Opportunity searches as data: the client's request, the `Prefer` header, and opportunities
translated to the gateway's ids and links. No I/O here."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from stapi_pydantic import OpportunityPayload

from adapters.base import RequestValidationFailed
from gateway.domain import ids
from gateway.domain.inputs import InputLimits, check_body, field_error, parse_object
from gateway.domain.links import LinkRewriter
from gateway.domain.member_choice import MEMBER

Preference = Literal["wait", "respond-async"]
MAX_LIMIT = 100
SEARCH_FIELDS = ("datetime", "geometry", "filter")


def parse_prefer(header: str | None) -> Preference | None:
    """The search mode a `Prefer` header asks for (RFC 7240: any case, parameters ignored)."""
    if not header:
        return None
    tokens = {item.split(";")[0].split("=")[0].strip().lower() for item in header.split(",")}
    # `respond-async, wait=10` asks for async with a hint of how long the client would wait.
    if "respond-async" in tokens:
        return "respond-async"
    if "wait" in tokens:
        return "wait"
    return None


def validate_search(body: bytes, limits: InputLimits) -> dict[str, Any]:
    """The client's search request, checked before any provider is asked.

    Returns `datetime`, `geometry`, `filter` as the client sent them, plus `limit` (1 to
    MAX_LIMIT) and `next` (the gateway's cursor or None).
    """
    raw = parse_object(body, limits)
    check_body(OpportunityPayload, body, raw, limits, "opportunity search request")
    limit = raw.get("limit", 10)
    if limit < 1:
        error = field_error(["body", "limit"], "must be at least 1", "greater_than_equal")
        raise RequestValidationFailed("The opportunity search request is invalid.", [error])
    search = {key: raw.get(key) for key in SEARCH_FIELDS}
    return {**search, "limit": min(limit, MAX_LIMIT), "next": raw.get("next")}


def upstream_request(search: dict[str, Any], token: str | None, limit: int) -> dict[str, Any]:
    """The body sent to a provider: the client's search with the provider's own paging."""
    return {**{key: search[key] for key in SEARCH_FIELDS}, "limit": limit, "next": token}


def namespace_opportunity(opportunity: dict[str, Any], links: LinkRewriter) -> dict[str, Any]:
    """A provider's opportunity with namespaced id and product_id, and gateway links.

    An upstream gateway's federated opportunity names its member in its create-order link's
    `order_parameters.member` (that gateway's id of the opportunity's product): namespaced here
    like the product_id, which is the value this gateway's order-parameters schema shows.
    """
    pid = links.provider_id
    out = {**opportunity, "links": links.links(opportunity.get("links") or [])}
    if opportunity.get("id") is not None:
        out["id"] = ids.namespaced(pid, str(opportunity["id"]))
    properties = opportunity.get("properties")
    if isinstance(properties, dict) and properties.get("product_id") is not None:
        upstream_product = str(properties["product_id"])
        out["properties"] = {**properties, "product_id": ids.namespaced(pid, upstream_product)}
        out["links"] = [_member_namespaced(link, upstream_product, pid) for link in out["links"]]
    return out


def _member_namespaced(link: dict[str, Any], upstream_product: str, provider_id: str) -> dict[str, Any]:
    body = link.get("body")
    if link.get("rel") != "create-order" or not isinstance(body, dict):
        return link
    parameters = body.get("order_parameters")
    if not isinstance(parameters, dict) or parameters.get(MEMBER) != upstream_product:
        return link
    shown = {**parameters, MEMBER: ids.namespaced(provider_id, upstream_product)}
    return {**link, "body": {**body, "order_parameters": shown}}


def has_own_order_links(features: list[dict[str, Any]]) -> bool:
    """Whether opportunities carry their own create-order links (an upstream gateway's federated
    product): a collection-wide one without a member would then be wrong."""
    return any(
        isinstance(link, dict) and link.get("rel") == "create-order"
        for feature in features
        for link in feature.get("links") or []
    )


def order_link(href: str, search: dict[str, Any]) -> dict[str, Any]:
    """A `create-order` link whose body can be POSTed back to the gateway unchanged.

    stapi-fastapi 0.8.0 leaves `order_parameters` out of this body although ordering requires
    it; `{}` is what a product with only optional parameters accepts.
    """
    body = {**{key: search[key] for key in SEARCH_FIELDS}, "order_parameters": {}}
    return {"href": href, "rel": "create-order", "type": "application/json", "method": "POST", "body": body}


def next_link(href: str, search: dict[str, Any], cursor: str) -> dict[str, Any]:
    """The POST `next` link: the client's request again, with the gateway's cursor."""
    body = {**{key: search[key] for key in SEARCH_FIELDS}, "limit": search["limit"], "next": cursor}
    return {"href": href, "rel": "next", "type": "application/geo+json", "method": "POST", "body": body}


def with_member_order_links(features: list[dict[str, Any]], href: str) -> list[dict[str, Any]]:
    """Federated results: each opportunity gets a create-order link naming its member product.

    An order on a federated product goes to one member, so the collection as a whole has no
    order body that could be POSTed unchanged; each opportunity has one, naming its member in
    `order_parameters.member` (what a standard STAPI OrderPayload can carry), plus the order
    parameters of the opportunity's own create-order link if it has one (a Planet imaging window),
    which it replaces.
    """
    out = []
    for feature in features:
        properties = feature.get("properties") or {}
        own = _own_order_parameters(feature)
        body: dict[str, Any] = {
            "datetime": properties.get("datetime"),
            "geometry": feature.get("geometry"),
            "filter": None,
            "order_parameters": {**own, MEMBER: properties.get("product_id")},
        }
        order = {"href": href, "rel": "create-order", "type": "application/json", "method": "POST", "body": body}
        # It replaces the member's own create-order link: one way to order each opportunity here.
        kept = [link for link in feature.get("links") or [] if not _is_create_order(link)]
        out.append({**feature, "links": [*kept, order]})
    return out


def _is_create_order(link: Any) -> bool:
    return isinstance(link, dict) and link.get("rel") == "create-order"


def _own_order_parameters(feature: dict[str, Any]) -> dict[str, Any]:
    """The order parameters of an opportunity's own create-order link (empty without one)."""
    for link in feature.get("links") or []:
        body = link.get("body") if isinstance(link, dict) and link.get("rel") == "create-order" else None
        parameters = body.get("order_parameters") if isinstance(body, dict) else None
        if isinstance(parameters, dict):
            return parameters
    return {}


def collection_id_of(record: dict[str, Any]) -> str | None:
    """The collection id in a completed upstream search record's `opportunities` link."""
    for link in record.get("links") or []:
        if link.get("rel") == "opportunities":
            path = urlsplit(str(link.get("href", ""))).path.rstrip("/")
            return unquote(path.rsplit("/", 1)[-1]) or None
    return None
