"""What Planet would refuse, checked before any call: geometries per product, and time spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import RequestValidationFailed
from adapters.planet.products import PlanetProduct

# Planet's imaging windows can be searched at most seven days ahead (assured_tasking docs).
MAX_AHEAD = timedelta(days=7)


def invalid(loc: list[str], msg: str) -> RequestValidationFailed:
    """A 422 naming one field of the client's request."""
    return RequestValidationFailed(
        "The request is invalid for Planet.", [{"loc": loc, "msg": msg, "type": "value_error"}]
    )


def instant(value: str) -> datetime:
    """An RFC 3339 instant (UTC when it names no zone)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def span(value: Any, latest: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """A STAPI `datetime` interval (`start/end`, `..` open) as two instants, the end no later than
    `latest` when given; 422 naming `datetime`."""
    if value is None:
        return None, None
    parts = str(value).split("/")
    try:
        start, end = (None if p in ("", "..") else instant(p) for p in (parts[0], parts[-1]))
    except ValueError:
        raise invalid(["body", "datetime"], "must be an RFC 3339 interval start/end") from None
    if end is not None and latest is not None and end > latest:
        raise invalid(["body", "datetime"], "Planet's imaging windows can be searched at most 7 days ahead")
    return start, end


def stamp(moment: datetime) -> str:
    """An instant as Planet takes it (UTC, `Z`)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def geometry_for(product: PlanetProduct, geometry: Any) -> dict[str, Any]:
    """The request's geometry if Planet takes it for the product (422 naming `geometry` otherwise)."""
    kinds = " or ".join(product.geometries)
    if not isinstance(geometry, dict) or geometry.get("type") not in product.geometries:
        raise invalid(["body", "geometry"], f"Planet {product.planet_name} takes a {kinds}")
    if geometry["type"] == "LineString" and len(geometry.get("coordinates") or []) != 2:
        raise invalid(["body", "geometry"], "a LineString must have exactly two points")
    return {"type": geometry["type"], "coordinates": geometry.get("coordinates")}
