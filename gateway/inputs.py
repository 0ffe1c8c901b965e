"""Limits on what a client may ask, shared by every route that takes a body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from gateway.errors import InvalidRequest, RequestValidationFailed


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Bounds on request bodies, from the gateway settings."""

    max_depth: int = 32
    max_vertices: int = 10_000
    max_area_deg2: float = 10_000.0
    max_interval_days: float = 366.0


def field_error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422's `errors`: where, what, and a machine word."""
    return {"loc": loc, "msg": msg, "type": kind}


def check_model(model: type[BaseModel], body: bytes, what: str) -> None:
    """A body against a stapi-pydantic model; 422 with a location per failing field."""
    try:
        model.model_validate_json(body)
    except ValidationError as exc:
        errors = [field_error(["body", *e["loc"]], e["msg"], e["type"]) for e in exc.errors()]
        raise RequestValidationFailed(f"The {what} is invalid.", errors) from None
    except Exception as exc:  # cql2 raises a bare Exception for a structurally invalid filter
        error = field_error(["body", "filter"], f"invalid CQL2 filter: {str(exc)[:200]}", "value_error")
        raise RequestValidationFailed(f"The {what} is invalid.", [error]) from None


def _depth(value: Any, limit: int) -> int:
    # Iterative, so a hostile body cannot exhaust the interpreter's stack.
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_object(body: bytes, limits: InputLimits) -> dict[str, Any]:
    """A JSON object body, not nested deeper than allowed."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise RequestValidationFailed(
            "The request body must be a JSON object.", [field_error(["body"], "not an object", "type")]
        )
    if _depth(raw, limits.max_depth) > limits.max_depth:
        error = field_error(["body"], f"nested deeper than {limits.max_depth} levels", "too_deep")
        raise RequestValidationFailed("The request body is nested too deeply.", [error])
    return raw


def _positions(coordinates: Any) -> list[list[float]]:
    out: list[list[float]] = []
    stack = [coordinates]
    while stack:
        item = stack.pop()
        if isinstance(item, list) and item and all(isinstance(n, int | float) for n in item):
            out.append(item)
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _points(geometry: dict[str, Any]) -> list[list[float]]:
    if geometry.get("type") == "GeometryCollection":
        return [p for g in geometry.get("geometries") or [] if isinstance(g, dict) for p in _points(g)]
    return _positions(geometry.get("coordinates"))


def check_geometry(geometry: Any, limits: InputLimits) -> list[dict[str, Any]]:
    """Too many vertices, or a bounding box larger than allowed (in square degrees)."""
    if not isinstance(geometry, dict):
        return []
    points = _points(geometry)
    errors = []
    if len(points) > limits.max_vertices:
        msg = f"has {len(points)} vertices; at most {limits.max_vertices} are accepted"
        errors.append(field_error(["body", "geometry"], msg, "too_many_vertices"))
    if points:
        lons, lats = [p[0] for p in points], [p[1] for p in points]
        area = (max(lons) - min(lons)) * (max(lats) - min(lats))
        if area > limits.max_area_deg2:
            msg = f"covers {area:.0f} square degrees; at most {limits.max_area_deg2:.0f} are accepted"
            errors.append(field_error(["body", "geometry"], msg, "area_too_large"))
    return errors


def check_interval(interval: Any, limits: InputLimits) -> list[dict[str, Any]]:
    """An interval longer than allowed (it is otherwise validated by stapi-pydantic)."""
    try:
        start, end = (datetime.fromisoformat(part.replace("Z", "+00:00")) for part in str(interval).split("/"))
    except ValueError:
        return []
    days = (end - start).total_seconds() / 86_400
    if days > limits.max_interval_days:
        msg = f"spans {days:.0f} days; at most {limits.max_interval_days:.0f} are accepted"
        return [field_error(["body", "datetime"], msg, "interval_too_long")]
    return []


def check_extent(raw: dict[str, Any], limits: InputLimits, what: str) -> None:
    """Geometry and interval limits of a validated body; 422 naming each field over its limit."""
    errors = check_geometry(raw.get("geometry"), limits) + check_interval(raw.get("datetime"), limits)
    if errors:
        raise RequestValidationFailed(f"The {what} is too large.", errors)
