"""How the simulated Planet API judges request bodies, in Django REST framework's error shape.

Planet's published docs do not show an error body. The API pages like Django REST framework
(`{count, next, previous, results}`, `__icontains` filters), so the simulator answers as DRF does:
400 with `{"<field>": ["message", ...]}` (`non_field_errors` for the body as a whole), and
`{"detail": "..."}` for 401, 404 and 429. The adapter reads exactly this shape.
"""

from __future__ import annotations

from typing import Any

from adapters.planet.simulator_world import ASSURED, FLEXIBLE, MAX_AHEAD, PlanetWorld, parse_time

Errors = dict[str, list[str]]
PRODUCTS = (ASSURED, FLEXIBLE)


def _position(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (2, 3)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and -180 <= value[0] <= 180
        and -90 <= value[1] <= 90
    )


def geometry_problem(geometry: Any, kinds: tuple[str, ...]) -> str | None:
    """Why a GeoJSON geometry is not one of `kinds` (a LineString must have exactly two points)."""
    if not isinstance(geometry, dict) or geometry.get("type") not in kinds:
        return f"Geometry must be a GeoJSON {' or '.join(kinds)}."
    coordinates = geometry.get("coordinates")
    kind = geometry["type"]
    if kind == "Point" and _position(coordinates):
        return None
    if kind == "LineString" and isinstance(coordinates, list) and len(coordinates) == 2:
        if all(_position(p) for p in coordinates):
            return None
        return "Invalid LineString coordinates."
    if kind == "LineString":
        return "A LineString must have exactly two points."
    if kind == "Polygon" and isinstance(coordinates, list) and coordinates and isinstance(coordinates[0], list):
        ring = coordinates[0]
        if len(ring) >= 4 and all(_position(p) for p in ring) and ring[0] == ring[-1]:
            return None
    return f"Invalid {kind} coordinates."


def _times(body: dict[str, Any], errors: Errors) -> tuple[float | None, float | None]:
    found: list[float | None] = []
    for key in ("start_time", "end_time"):
        value = body.get(key)
        if value is None:
            found.append(None)
            continue
        try:
            found.append(parse_time(str(value)))
        except ValueError:
            errors.setdefault(key, []).append("Datetime has wrong format. Use ISO 8601 with a time zone.")
            found.append(None)
    start, end = found
    if start is not None and end is not None and end <= start:
        errors.setdefault("end_time", []).append("end_time must be after start_time.")
    return start, end


def _angles(body: dict[str, Any], errors: Errors) -> None:
    values = {}
    for key in ("sat_elevation_angle_min", "sat_elevation_angle_max"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 90:
            errors.setdefault(key, []).append("Ensure this value is between 0 and 90.")
        else:
            values[key] = value
    if len(values) == 2 and values["sat_elevation_angle_min"] > values["sat_elevation_angle_max"]:
        errors.setdefault("non_field_errors", []).append("sat_elevation_angle_min must not exceed the maximum.")


def _contract(body: dict[str, Any], errors: Errors, required: bool) -> None:
    for key, allowed in (("pl_number", None), ("product", PRODUCTS)):
        value = body.get(key)
        if value is None:
            if required:
                errors.setdefault(key, []).append("This field is required.")
            continue
        if not isinstance(value, str) or (allowed is None and not value.startswith("PL-")):
            errors.setdefault(key, []).append("Not a contract number of this API key.")
        elif allowed is not None and value not in allowed:
            errors.setdefault(key, []).append(f'"{value}" is not a product of this contract.')


def search_errors(body: dict[str, Any], world: PlanetWorld) -> tuple[Errors, float, float]:
    """The problems of an imaging-window search request, and its time span."""
    errors: Errors = {}
    problem = geometry_problem(body.get("geometry"), ("Point", "LineString"))
    if problem:
        errors["geometry"] = [problem]
    _contract(body, errors, required=True)
    if body.get("product") == FLEXIBLE:
        errors.setdefault("product", []).append("Imaging windows exist for Assured Tasking only.")
    _angles(body, errors)
    start, end = _times(body, errors)
    span_start, span_end = world.default_span()
    limit = world.clock() + MAX_AHEAD.total_seconds()
    for key, value in (("start_time", start), ("end_time", end)):
        if value is not None and value > limit:
            errors.setdefault(key, []).append("Cannot be more than 7 days in the future.")
    return errors, start if start is not None else span_start, end if end is not None else span_end


def order_errors(body: dict[str, Any], world: PlanetWorld) -> Errors:
    """The problems of a create-order request (the key's defaults fill `pl_number` and `product`)."""
    errors: Errors = {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["This field is required."]
    elif len(name) > 255:
        errors["name"] = ["Ensure this field has no more than 255 characters."]
    problem = geometry_problem(body.get("geometry"), ("Point", "LineString", "Polygon"))
    if problem:
        errors["geometry"] = [problem]
    _contract(body, errors, required=False)
    _angles(body, errors)
    _times(body, errors)
    window = body.get("imaging_window")
    if body.get("product") == ASSURED:
        if not isinstance(window, str) or not window:
            errors["imaging_window"] = ["Assured Tasking orders require an imaging window."]
        elif not world.window_usable(window):
            errors["imaging_window"] = ["Unknown or expired imaging window."]
    elif window is not None:
        errors["imaging_window"] = ["Only Assured Tasking orders take an imaging window."]
    return errors
