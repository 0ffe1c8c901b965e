"""Limits on what a client may ask, shared by every route that takes a body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ValidationError

from adapters.base import InvalidRequest, RequestValidationFailed
from gateway.domain.cql2_filter import check_filter
from gateway.domain.shapes import ShapeProblem, positions

if TYPE_CHECKING:
    from gateway.settings.models import GatewaySettings

MAX_ERRORS = 20


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Bounds on request bodies, from the gateway settings."""

    max_depth: int = 32
    max_vertices: int = 10_000
    max_area_deg2: float = 10_000.0
    max_interval_days: float = 366.0
    max_filter_depth: int = 10
    max_filter_nodes: int = 5_000
    max_json_values: int = 50_000


def limits_of(gateway: GatewaySettings) -> InputLimits:
    """The request-body bounds of the `gateway:` settings, as one value for the validators."""
    return InputLimits(
        gateway.max_json_depth,
        gateway.max_geometry_vertices,
        gateway.max_geometry_area_deg2,
        gateway.max_interval_days,
        max_filter_depth=gateway.max_filter_depth,
        max_filter_nodes=gateway.max_filter_nodes,
        max_json_values=gateway.max_json_values,
    )


def field_error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    """One entry of a 422's `errors`: where, what, and a machine word."""
    return {"loc": loc, "msg": msg, "type": kind}


def _model_errors(model: type[BaseModel], body: bytes) -> list[dict[str, Any]]:
    try:
        model.model_validate_json(body)
    except ValidationError as exc:
        # Bounded: the first errors say enough, and a 422 listing thousands helps no one.
        shown = exc.errors(include_url=False, include_context=False, include_input=False)[:MAX_ERRORS]
        return [field_error(["body", *e["loc"]], e["msg"], e["type"]) for e in shown]
    return []


def _problem(where: str, problem: ShapeProblem) -> dict[str, Any]:
    return field_error(["body", where, *problem.path], problem.message, problem.kind)


def check_body(model: type[BaseModel], body: bytes, raw: dict[str, Any], limits: InputLimits, what: str) -> None:
    """A parsed body against a stapi-pydantic model and the limits; 422 naming each failing field.

    Geometry and CQL2 filter are checked here first, at the cost of one pass each (`gateway.domain.shapes`,
    `gateway.domain.cql2_filter`), so that pydantic only sees well-shaped geometries and never the filter:
    stapi-pydantic would hand that to the cql2 library, too costly to run on what a client sends.
    """
    errors, points = [], []
    if isinstance(raw.get("geometry"), dict):
        try:
            points = positions(raw["geometry"])
        except ShapeProblem as problem:
            errors.append(_problem("geometry", problem))
        errors.extend(check_ranges(points))
    try:
        check_filter(raw.get("filter"), max_depth=limits.max_filter_depth, max_nodes=limits.max_filter_nodes)
    except ShapeProblem as problem:
        errors.append(_problem("filter", problem))
    if errors:
        raise RequestValidationFailed(f"The {what} is invalid.", errors)
    if errors := check_geometry(points, limits) + check_interval(raw.get("datetime"), limits):
        raise RequestValidationFailed(f"The {what} is too large.", errors)
    if raw.get("filter"):
        body = orjson.dumps({**raw, "filter": None})
    if errors := _model_errors(model, body):
        raise RequestValidationFailed(f"The {what} is invalid.", errors)


_CONTAINERS = (dict, list)


def _depth(value: Any, limit: int) -> int:
    # Level by level and iterative, so a hostile body can neither exhaust the interpreter's stack
    # nor cost more than one comprehension step per value.
    level, frontier = 0, [value] if isinstance(value, _CONTAINERS) else []
    while frontier and level <= limit:
        level += 1
        frontier = [
            child
            for c in frontier
            for child in (c.values() if type(c) is dict else c)
            if isinstance(child, _CONTAINERS)
        ]
    return level


def _values_at_most(body: bytes) -> int:
    """An upper bound on the JSON values in a body, counted at C speed before anything is parsed.

    Every value but the first follows a `,` or opens an array or object (separators inside
    strings are counted too, which only overestimates).
    """
    return body.count(b",") + body.count(b"[") + body.count(b"{") + 1


def parse_object(body: bytes, limits: InputLimits) -> dict[str, Any]:
    """A JSON object body, with no more values and no deeper nesting than allowed."""
    if _values_at_most(body) > limits.max_json_values:
        error = field_error(["body"], f"holds more than {limits.max_json_values} JSON values", "too_many_values")
        raise RequestValidationFailed("The request body holds too many values.", [error])
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


def check_ranges(points: list[list[Any]]) -> list[dict[str, Any]]:
    """The first position whose longitude or latitude is out of range (WGS 84 degrees)."""
    for point in points:
        lon, lat = point[0], point[1]
        if not -180 <= lon <= 180:
            return [
                field_error(["body", "geometry", "coordinates"], f"longitude {lon} is outside -180..180", "value_error")
            ]
        if not -90 <= lat <= 90:
            return [
                field_error(["body", "geometry", "coordinates"], f"latitude {lat} is outside -90..90", "value_error")
            ]
    return []


def check_geometry(points: list[list[Any]], limits: InputLimits) -> list[dict[str, Any]]:
    """Too many vertices, or a bounding box larger than allowed (in square degrees)."""
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
    if start.tzinfo is None or end.tzinfo is None:
        return []  # no length to judge: stapi-pydantic refuses a time without its offset
    days = (end - start).total_seconds() / 86_400
    if days > limits.max_interval_days:
        msg = f"spans {days:.0f} days; at most {limits.max_interval_days:.0f} are accepted"
        return [field_error(["body", "datetime"], msg, "interval_too_long")]
    return []
