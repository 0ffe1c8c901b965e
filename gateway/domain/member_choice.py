"""Which member a federated order goes to: the `member` order parameter and its schema (pure).

A federated product's order names its member inside `order_parameters` (`member`, the member's
namespaced product id), so a standard STAPI `OrderPayload` carries it; the gateway takes it out
before the member's provider sees the order. The order-parameters schema is discriminated on it:
one `if`/`then` per member, so members with identical schemas stay unambiguous, and each
member's schema lives under `$defs` with its own `#/...` references rebased to where it now is.

Behind another gateway (chaining), an upstream gateway's federated product shows the same
schema, marked with `federation:discriminator`. Its member values are that gateway's ids
(`alpha:optical`); this gateway shows them in its own namespace (`g1:alpha:optical`, the id under
which that product exists here) and translates the chosen value back before ordering.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from adapters.base import RequestValidationFailed
from gateway.domain.inputs import field_error

MEMBER = "member"
# Marks a schema as a gateway's federated order parameters, discriminated on the named property.
DISCRIMINATOR = "federation:discriminator"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
MEMBER_LOC = ["body", "order_parameters", MEMBER]
# Member ids usable as `$defs` keys and in `#/$defs/...` fragments as they are.
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}\Z")
# Keywords whose values are data, not subschemas: a `$ref` inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _invalid(msg: str, kind: str = "value_error") -> RequestValidationFailed:
    return RequestValidationFailed("The order request is invalid.", [field_error(MEMBER_LOC, msg, kind)])


def _choices_text(choices: list[str]) -> str:
    return ", ".join(choices) if choices else "(none)"


def named_member(order: dict[str, Any]) -> str | None:
    """The member the client named: `order_parameters.member`, else the older top-level `product_id`.

    Both given and different is the client's contradiction, not a choice for the gateway to make.
    """
    parameters = order.get("order_parameters")
    chosen = parameters.get(MEMBER) if isinstance(parameters, dict) else None
    if chosen is not None and not isinstance(chosen, str):
        raise _invalid("must be a string: the namespaced id of the member product to order", "string_type")
    legacy = order.get("product_id")
    if chosen is not None and legacy is not None and chosen != legacy:
        raise _invalid(f"names '{chosen}' but the body's product_id names '{legacy}'; give one member")
    return chosen if chosen is not None else legacy


def choose(product_id: str, named: str | None, choices: list[str]) -> str:
    """The member id the client named, if it is one of `choices`; 422 listing them otherwise."""
    if named is not None and named in choices:
        return named
    what = "is required" if named is None else f"'{named}' is not a member"
    raise _invalid(
        f"{what}: a federated order names the member product of '{product_id}' to order, one of: "
        f"{_choices_text(choices)}"
    )


def without_member(order: dict[str, Any]) -> dict[str, Any]:
    """The order as its member's provider gets it: no `member` parameter, no top-level `product_id`."""
    parameters = order.get("order_parameters")
    if isinstance(parameters, dict) and MEMBER in parameters:
        parameters = {key: value for key, value in parameters.items() if key != MEMBER}
    return {**{key: value for key, value in order.items() if key != "product_id"}, "order_parameters": parameters}


# --- the federated schema --------------------------------------------------------------------


def _rebased(node: Any, base: str) -> Any:
    """`node` with every `#`-relative pointer `$ref` moved under `base` (a fragment like
    `#/$defs/a:eo`). Subschemas with an `$id` of their own are separate resources: their
    references are relative to them and stay as they are."""
    if isinstance(node, list):
        return [_rebased(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and (value == "#" or value.startswith("#/")):
            out[key] = base + value[1:]
        elif key in _DATA_KEYWORDS or (isinstance(value, dict) and "$id" in value):
            out[key] = value
        else:
            out[key] = _rebased(value, base)
    return out


def _with_member_property(schema: dict[str, Any]) -> dict[str, Any]:
    # Members' schemas usually forbid unknown properties (stapi-pydantic's OrderParameters does):
    # declaring `member` in them lets the discriminator through. Its value is judged at the top.
    properties = schema.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    properties[MEMBER] = True
    return {**schema, "properties": properties}


def _embedded(schema: dict[str, Any], key: str, member_id: str) -> dict[str, Any]:
    dialect = schema.get("$schema")
    if "$id" in schema or (dialect is not None and dialect.rstrip("#") != DRAFT_2020_12):
        # Its own base URI or another draft: kept as an embedded resource of its own (`$id`), so its
        # `#` references resolve inside it and its keywords keep their draft's meaning. The `$id` is
        # the gateway's, one per member: two members may well share their vendor's `$id`.
        resource = {**schema, "$id": f"urn:stapi-gateway:order-parameters:{quote(member_id, safe='')}"}
        return _with_member_property(resource)
    moved = _rebased({k: v for k, v in schema.items() if k != "$schema"}, "#/$defs/" + key)
    return _with_member_property(moved)


def federated_order_parameters(title: str, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The order-parameters schema of a federated product over members' `schemas` (by member id)."""
    choices = list(schemas)
    defs: dict[str, Any] = {}
    branches: list[dict[str, Any]] = []
    for index, (member_id, schema) in enumerate(schemas.items()):
        key = member_id if _PLAIN_KEY.match(member_id) else f"member-{index}"
        defs[key] = _embedded(schema, key, member_id)
        branches.append(
            {
                "if": {"properties": {MEMBER: {"const": member_id}}, "required": [MEMBER]},
                "then": {"$ref": f"#/$defs/{key}"},
            }
        )
    return {
        "$schema": DRAFT_2020_12,
        "title": title,
        "description": f"Name the member product to order in '{MEMBER}'; the other parameters are that member's.",
        "type": "object",
        DISCRIMINATOR: MEMBER,
        "required": [MEMBER],
        "properties": {MEMBER: {"type": "string", "enum": choices, "description": "The member product to order"}},
        "allOf": branches,
        "$defs": defs,
    }


# --- chaining: an upstream gateway's federated product ---------------------------------------


def upstream_choices(document: dict[str, Any]) -> list[str] | None:
    """The member values of an upstream gateway's federated schema; None for any other schema."""
    if document.get(DISCRIMINATOR) != MEMBER:
        return None
    properties = document.get("properties")
    member = properties.get(MEMBER) if isinstance(properties, dict) else None
    enum = member.get("enum") if isinstance(member, dict) else None
    if not isinstance(enum, list) or not all(isinstance(value, str) for value in enum):
        return None
    return list(enum)


def _namespaced_branch(branch: Any, provider_id: str) -> Any:
    try:
        const = branch["if"]["properties"][MEMBER]["const"]
    except (KeyError, TypeError):
        return branch
    if not isinstance(const, str):
        return branch
    condition = {
        **branch["if"],
        "properties": {**branch["if"]["properties"], MEMBER: {"const": f"{provider_id}:{const}"}},
    }
    return {**branch, "if": condition}


def shown_schema(provider_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """A provider's order-parameters schema as this gateway shows it: an upstream gateway's
    federated schema gets its member values (the enum and each branch's `const`) in this
    gateway's namespace; any other is unchanged. Orders are checked against the provider's own
    schema after their value is translated back (`to_upstream`).
    """
    choices = upstream_choices(document)
    if choices is None:
        return document
    properties = document["properties"]
    member = {**properties[MEMBER], "enum": [f"{provider_id}:{value}" for value in choices]}
    branches = document.get("allOf")
    shown = {**document, "properties": {**properties, MEMBER: member}}
    missing = document.get("federation:missing")
    if isinstance(missing, list):
        shown["federation:missing"] = [f"{provider_id}:{m}" for m in missing if isinstance(m, str)]
    if isinstance(branches, list):
        shown["allOf"] = [_namespaced_branch(branch, provider_id) for branch in branches]
    return shown


def to_upstream(provider_id: str, product_id: str, document: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """An order for an upstream gateway's federated product with its `member` in that gateway's
    namespace (`g1:alpha:optical` becomes `alpha:optical`); other products' orders are unchanged."""
    choices = upstream_choices(document)
    if choices is None:
        return order
    shown = {f"{provider_id}:{value}": value for value in choices}
    named = choose(product_id, named_member(order), list(shown))
    parameters = dict(order.get("order_parameters") or {})
    parameters[MEMBER] = shown[named]
    return {**{key: value for key, value in order.items() if key != "product_id"}, "order_parameters": parameters}
