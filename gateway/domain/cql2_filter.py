"""CQL2 JSON filters checked against the grammar of OGC 21-065r2 in one linear pass.

Why not `cql2.Expr(...).validate()` (what stapi-pydantic calls): measured with cql2 0.6, it costs
30-50 ms of CPU for `a = 1` (its JSON Schema is compiled on every call), and its `oneOf` error
collection grows exponentially with nesting on invalid input: three nested `casei` around a
number took 5-9 s and gigabytes. This check accepts a subset of what that schema accepts (the
standard operators, no function calls, no extra keys), costs microseconds per node, and is
bounded by `max_depth` (nested operations) and `max_nodes` (JSON values in the filter), so no
filter reaches the cql2 library from a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway.domain import shapes
from gateway.domain.shapes import ShapeProblem

# What a position in an expression accepts.
BOOL_EXPR, BOOLEAN, CHAR, NUMBER, INSTANT, INTERVAL = "bool_expr", "boolean", "char", "number", "instant", "interval"
GEOMETRY, BBOX, PROPERTY, ARRAY, PATTERN = "geometry", "bbox", "property", "array", "pattern"

_PREDICATE = frozenset({BOOL_EXPR, BOOLEAN})
_SCALAR = frozenset({CHAR, NUMBER, BOOLEAN, INSTANT, PROPERTY})
_CHARACTER = frozenset({CHAR, PROPERTY})
_NUMERIC = frozenset({NUMBER, PROPERTY})
_SPATIAL = frozenset({GEOMETRY, BBOX, PROPERTY})
_TEMPORAL = frozenset({INSTANT, INTERVAL, PROPERTY})
_ARRAY_OPERAND = frozenset({ARRAY, PROPERTY})
_ANY_VALUE = frozenset({CHAR, NUMBER, BOOL_EXPR, BOOLEAN, GEOMETRY, BBOX, INSTANT, INTERVAL, PROPERTY})
_ARRAY_ITEM = _ANY_VALUE | {ARRAY}
_PATTERN = frozenset({PATTERN})
# `in`'s second operand: a list of scalars (a marker, not a kind a value can have).
_SCALAR_LIST = frozenset({"scalar_list"})

_SPATIAL_OPS = [
    "s_contains",
    "s_crosses",
    "s_disjoint",
    "s_equals",
    "s_intersects",
    "s_overlaps",
    "s_touches",
    "s_within",
]
_TEMPORAL_OPS = [
    "t_after",
    "t_before",
    "t_contains",
    "t_disjoint",
    "t_during",
    "t_equals",
    "t_finishedBy",
    "t_finishes",
    "t_intersects",
    "t_meets",
    "t_metBy",
    "t_overlappedBy",
    "t_overlaps",
    "t_startedBy",
    "t_starts",
]
_ARRAY_OPS = ["a_containedBy", "a_contains", "a_equals", "a_overlaps"]


class Signature(NamedTuple):
    """An operator's result kind and what each operand accepts (`at_least`: variadic, all `operands[0]`)."""

    result: str
    operands: tuple[frozenset[str], ...]
    at_least: int | None = None


_OPERATORS: dict[str, Signature] = {
    "and": Signature(BOOL_EXPR, (_PREDICATE,), at_least=2),
    "or": Signature(BOOL_EXPR, (_PREDICATE,), at_least=2),
    "not": Signature(BOOL_EXPR, (_PREDICATE,)),
    **{op: Signature(BOOL_EXPR, (_SCALAR, _SCALAR)) for op in ("=", "<>", "<", ">", "<=", ">=")},
    "like": Signature(BOOL_EXPR, (_CHARACTER, _PATTERN)),
    "between": Signature(BOOL_EXPR, (_NUMERIC, _NUMERIC, _NUMERIC)),
    "in": Signature(BOOL_EXPR, (_SCALAR, _SCALAR_LIST)),
    "isNull": Signature(BOOL_EXPR, (_ANY_VALUE,)),
    **{op: Signature(BOOL_EXPR, (_SPATIAL, _SPATIAL)) for op in _SPATIAL_OPS},
    **{op: Signature(BOOL_EXPR, (_TEMPORAL, _TEMPORAL)) for op in _TEMPORAL_OPS},
    **{op: Signature(BOOL_EXPR, (_ARRAY_OPERAND, _ARRAY_OPERAND)) for op in _ARRAY_OPS},
    **{op: Signature(NUMBER, (_NUMERIC, _NUMERIC)) for op in ("+", "-", "*", "/", "^", "%", "div")},
    # Character operands; as (part of) a `like` pattern, pattern operands instead.
    "casei": Signature(CHAR, (_CHARACTER,)),
    "accenti": Signature(CHAR, (_CHARACTER,)),
}
_AS_PATTERN = Signature(PATTERN, (_PATTERN,))
_WORDS = {
    BOOL_EXPR: "predicate",
    BOOLEAN: "boolean",
    CHAR: "string",
    NUMBER: "number",
    INSTANT: "date or timestamp",
    INTERVAL: "interval",
    GEOMETRY: "geometry",
    BBOX: "bbox",
    PROPERTY: "property",
    ARRAY: "array",
    PATTERN: "pattern string",
    "scalar_list": "list of scalars",
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
# One kind of problem for filters and geometries, so a caller handles one exception.
FilterProblem = ShapeProblem


@dataclass
class _Walk:
    max_depth: int
    max_nodes: int
    nodes: int = 0

    def count(self, path: list[Any], n: int = 1) -> None:
        """Add `n` visited values; a problem once there are more than allowed."""
        self.nodes += n
        if self.nodes > self.max_nodes:
            raise FilterProblem(path, f"has more than {self.max_nodes} values", "filter_too_large")

    def expression(self, value: Any, accepts: frozenset[str], path: list[Any], depth: int) -> None:
        """Check one operand, whose kind must be one of `accepts`."""
        self.count(path)
        kind = self._kind(value, accepts, path, depth)
        if kind not in accepts:
            raise FilterProblem(path, f"a {_WORDS[kind]} is not allowed here (expected {_names(accepts)})")

    def _kind(self, value: Any, accepts: frozenset[str], path: list[Any], depth: int) -> str:
        if isinstance(value, bool):
            return BOOLEAN
        if isinstance(value, int | float):
            return NUMBER
        if isinstance(value, str):
            return PATTERN if PATTERN in accepts else CHAR
        if isinstance(value, list):
            if accepts is _SCALAR_LIST:
                self.items(value, _SCALAR, path, depth)
                return "scalar_list"
            self.items(value, _ARRAY_ITEM, path, depth)
            return ARRAY
        if not isinstance(value, dict):
            raise FilterProblem(path, "null is not a CQL2 value")
        if "op" in value:
            return self.operation(value, accepts, path, depth + 1)
        return _literal(value, path, self)

    def items(self, values: list[Any], accepts: frozenset[str], path: list[Any], depth: int) -> None:
        """Check each item of a list literal."""
        for index, item in enumerate(values):
            self.expression(item, accepts, [*path, index], depth)

    def operation(self, node: dict[str, Any], accepts: frozenset[str], path: list[Any], depth: int) -> str:
        """Check an `{"op", "args"}` node: known operator, arity, operand kinds; its result kind."""
        op, args = node.get("op"), node.get("args")
        if set(node) != {"op", "args"}:
            raise FilterProblem(path, "an operation has exactly the keys 'op' and 'args'")
        if not isinstance(op, str) or op not in _OPERATORS:
            shown = repr(op)[:40]
            raise FilterProblem([*path, "op"], f"unknown operator {shown}; the standard CQL2 operators are accepted")
        if depth > self.max_depth:
            raise FilterProblem(path, f"operations nested deeper than {self.max_depth} levels", "filter_too_deep")
        if not isinstance(args, list):
            raise FilterProblem([*path, "args"], "must be a list")
        signature = _OPERATORS[op]
        if op in ("casei", "accenti") and PATTERN in accepts:
            signature = _AS_PATTERN
        fewest = signature.at_least or len(signature.operands)
        if len(args) < fewest or (signature.at_least is None and len(args) > fewest):
            wanted = f"at least {fewest}" if signature.at_least else str(fewest)
            raise FilterProblem([*path, "args"], f"'{op}' takes {wanted} operand(s), got {len(args)}")
        for index, arg in enumerate(args):
            kinds = signature.operands[0] if signature.at_least else signature.operands[index]
            self.expression(arg, kinds, [*path, "args", index], depth)
        return signature.result


def _literal(value: dict[str, Any], path: list[Any], walk: _Walk) -> str:
    """The kind of a non-operation object: a property, an instant, an interval, a bbox or a geometry."""
    keys = set(value)
    if keys == {"property"} and isinstance(value["property"], str) and value["property"]:
        return PROPERTY
    if keys == {"date"} and isinstance(value["date"], str) and _DATE.fullmatch(value["date"]):
        return INSTANT
    if keys == {"timestamp"} and isinstance(value["timestamp"], str) and _TIMESTAMP.fullmatch(value["timestamp"]):
        return INSTANT
    if keys == {"interval"}:
        _interval(value["interval"], [*path, "interval"], walk)
        return INTERVAL
    if keys == {"bbox"}:
        _bbox(value["bbox"], [*path, "bbox"], walk)
        return BBOX
    if "type" in value:
        _geometry(value, path, walk)
        return GEOMETRY
    raise FilterProblem(path, "not a CQL2 expression, property, instant, interval, bbox or geometry")


def _interval(bounds: Any, path: list[Any], walk: _Walk) -> None:
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise FilterProblem(path, "an interval is a list of two instants")
    for index, bound in enumerate(bounds):
        walk.count(path)
        text_ok = isinstance(bound, str) and (bound == ".." or _DATE.fullmatch(bound) or _TIMESTAMP.fullmatch(bound))
        prop_ok = isinstance(bound, dict) and set(bound) == {"property"} and isinstance(bound["property"], str)
        if not (text_ok or prop_ok):
            message = "an interval bound is a date, a timestamp ending in Z, '..' or a property"
            raise FilterProblem([*path, index], message)


def _bbox(values: Any, path: list[Any], walk: _Walk) -> None:
    shapes.numbers(values, path, 4, walk.count)
    if len(values) not in (4, 6):
        raise FilterProblem(path, "a bbox has 4 or 6 numbers")


def _geometry(value: dict[str, Any], path: list[Any], walk: _Walk) -> None:
    members = value.get("geometries")
    if value.get("type") == shapes.COLLECTION and (not isinstance(members, list) or len(members) < 2):
        raise FilterProblem(path, "a GeometryCollection in a filter has at least two geometries")
    shapes.positions(value, path, strict=True, nested_collections=False, count=walk.count)


def _names(accepts: frozenset[str]) -> str:
    return " or ".join(sorted(_WORDS[a] for a in accepts))


def check_filter(value: Any, *, max_depth: int, max_nodes: int) -> None:
    """Raise `FilterProblem` unless `value` is a CQL2 JSON boolean expression within the bounds.

    `None` and `{}` mean "no filter" (stapi-pydantic accepts both).
    """
    if value is None or value == {}:
        return
    if not isinstance(value, dict):
        raise FilterProblem([], "must be a CQL2 JSON object")
    _Walk(max_depth, max_nodes).expression(value, _PREDICATE, [], 0)
