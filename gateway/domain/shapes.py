"""GeoJSON geometries checked for shape (nesting, numbers, sizes) in one pass, first problem only.

Run before geojson-pydantic sees a client's geometry: measured, pydantic collects every error of
a malformed geometry (60,000 for a 12,000-position LineString nested one level too deep) and
spends ~400 ms doing it, where this check stops at the first. What passes here has the right
structure, so pydantic's remaining checks (ring closure, 2 or 3 numbers) report few errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

# GeoJSON type -> how deeply its coordinates nest positions, and the fewest items per level.
NESTING = {
    "Point": (0, ()),
    "LineString": (1, (2,)),
    "Polygon": (2, (0, 4)),
    "MultiPoint": (1, (0,)),
    "MultiLineString": (2, (0, 2)),
    "MultiPolygon": (3, (0, 0, 4)),
}
COLLECTION = "GeometryCollection"


class ShapeProblem(Exception):
    """Where in a value (a path of keys and indexes) and what is wrong; `kind` is a machine word."""

    def __init__(self, path: list[Any], message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.path, self.message, self.kind = path, message, kind


_NUMBERS = frozenset({int, float})


def _no_count(path: list[Any], n: int) -> None:
    return None


def numbers(values: Any, path: list[Any], fewest: int, count: Callable[[list[Any], int], None] = _no_count) -> None:
    """A list of at least `fewest` numbers (booleans are not numbers)."""
    if type(values) is not list or len(values) < fewest:
        raise ShapeProblem(path, f"must be a list of at least {fewest} numbers")
    count(path, len(values))
    # `map(type, ...)` and the set run at C speed: geometries have thousands of positions.
    if not set(map(type, values)) <= _NUMBERS:
        raise ShapeProblem(path, "must hold numbers only")


def _position_list(value: list[Any], path: list[Any], count: Callable[[list[Any], int], None]) -> None:
    """A list of positions, checked in bulk; the first bad one is looked for only on failure."""
    if set(map(type, value)) <= {list} and min(map(len, value), default=2) >= 2:
        flat = list(itertools.chain.from_iterable(value))
        count(path, len(value) + len(flat))
        if set(map(type, flat)) <= _NUMBERS:
            return
    for index, item in enumerate(value):
        numbers(item, [*path, index], 2)


def _coordinates(
    value: Any, levels: int, fewest: tuple[int, ...], path: list[Any], out: list[list[Any]], count: Any
) -> None:
    if levels == 0:
        numbers(value, path, 2, count)
        out.append(value)
        return
    if type(value) is not list or len(value) < fewest[0]:
        raise ShapeProblem(path, f"must be a list of at least {fewest[0]} items")
    if levels == 1:
        _position_list(value, path, count)
        out.extend(value)
        return
    count(path, 1)
    for index, item in enumerate(value):
        _coordinates(item, levels - 1, fewest[1:], [*path, index], out, count)


def positions(
    value: Any,
    path: list[Any] | None = None,
    *,
    strict: bool = False,
    nested_collections: bool = True,
    count: Callable[[list[Any], int], None] = _no_count,
) -> list[list[Any]]:
    """Every position of a well-shaped geometry; `ShapeProblem` at the first flaw.

    `strict` refuses keys other than `type`, `coordinates`/`geometries` and `bbox`; `count` is
    told how many values each step visits (to bound a caller's budget).
    """
    path = path or []
    if not isinstance(value, dict):
        raise ShapeProblem(path, "must be a GeoJSON geometry object")
    kind, out = value.get("type"), list[list[Any]]()
    if kind == COLLECTION:
        members = value.get("geometries")
        if (strict and not set(value) <= {"type", "geometries", "bbox"}) or not isinstance(members, list):
            raise ShapeProblem(path, "a GeometryCollection has `geometries`, a list of geometries")
        for index, member in enumerate(members):
            where = [*path, "geometries", index]
            if not nested_collections and isinstance(member, dict) and member.get("type") == COLLECTION:
                raise ShapeProblem(where, "a GeometryCollection cannot hold another here")
            out += positions(member, where, strict=strict, nested_collections=nested_collections, count=count)
    elif kind in NESTING and not (strict and not set(value) <= {"type", "coordinates", "bbox"}):
        levels, fewest = NESTING[str(kind)]
        _coordinates(value.get("coordinates"), levels, fewest, [*path, "coordinates"], out, count)
    else:
        names = ", ".join([*NESTING, COLLECTION])
        raise ShapeProblem(path, f"not a GeoJSON geometry (`type` one of {names}, and its members)")
    if value.get("bbox") is not None:
        numbers(value["bbox"], [*path, "bbox"], 4, count)
    return out
