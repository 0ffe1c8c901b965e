"""A CQL2 filter against a product's queryables: properties it names, and the types of what they are compared with.

The CQL2 grammar check (`gateway.domain.cql2_filter`) knows nothing of the product. A filter such as
`off_nadir < "ten"` is grammatical, yet cannot be evaluated where `off_nadir` is a number; and a
property the queryables do not list cannot be filtered on when they forbid others
(`additionalProperties: false`). Found here, before any provider call, with the place in the
filter (pure functions over JSON, linear in the filter's size).
"""

from __future__ import annotations

from typing import Any

from gateway.domain.inputs import field_error

# Operators whose arguments are compared with each other.
_COMPARING = frozenset({"=", "<>", "<", ">", "<=", ">=", "like", "between", "in"})
_KINDS = {"number": "number", "integer": "number", "string": "string", "boolean": "boolean"}


def _kind(literal: Any) -> str | None:
    if isinstance(literal, bool):
        return "boolean"
    if isinstance(literal, int | float):
        return "number"
    if isinstance(literal, str):
        return "string"
    return None  # timestamps, geometries, expressions, arrays: not judged here


def _declared(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    names = declared if isinstance(declared, list) else [declared]
    return {_KINDS[name] for name in names if isinstance(name, str) and name in _KINDS}


def problems(filter_: Any, queryables: dict[str, Any]) -> list[dict[str, Any]]:
    """What in `filter_` the queryables say cannot be evaluated; each with its `loc`."""
    properties = queryables.get("properties")
    if not isinstance(properties, dict) or not isinstance(filter_, dict):
        return []
    closed = queryables.get("additionalProperties") is False
    found: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[Any]]] = [(filter_, ["body", "filter"])]
    while stack:
        node, loc = stack.pop()
        if not isinstance(node, dict):
            continue
        args = node.get("args")
        if not isinstance(args, list):
            continue
        names = [a.get("property") if isinstance(a, dict) else None for a in args]
        for i, name in enumerate(names):
            if not isinstance(name, str):
                continue
            if name not in properties:
                if closed:
                    found.append(
                        field_error([*loc, "args", i], f"'{name}' is not a queryable of this product", "value_error")
                    )
                continue
            wanted = _declared(properties[name]) if isinstance(properties[name], dict) else set()
            if node.get("op") not in _COMPARING or not wanted:
                continue
            for j, other in enumerate(args):
                kind = _kind(other) if j != i else None
                if kind is not None and kind not in wanted:
                    message = f"'{name}' is a {'/'.join(sorted(wanted))} in this product's queryables, not a {kind}"
                    found.append(field_error([*loc, "args", j], message, "type_error"))
        stack.extend((arg, [*loc, "args", i]) for i, arg in enumerate(args) if isinstance(arg, dict))
    return found
