"""STAPI requests as Umbra requests, and Umbra's answers as STAPI documents (pure functions).

Checks that Umbra would make, and that the client can fix, are 422s naming the client's field
before any call: the geometry each mode takes, a closed `datetime` interval, filters the
adapter can turn into constraints. Umbra's own 422 locations are mapped back to the client's
terms (`geometry`, `datetime`, `filter` or `order_parameters.<name>`) by `client_loc`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.base import JSONObject, RequestValidationFailed
from adapters.umbra import statuses
from adapters.umbra.products import TASK_FIELDS, UmbraProduct, product_of_mode

# Umbra's Opportunity fields, and the names they have on a STAPI opportunity's properties.
OPPORTUNITY_FIELDS = {
    "durationSec": "umbra:duration_seconds",
    "grazingAngleStartDegrees": "umbra:grazing_angle_start_degrees",
    "grazingAngleEndDegrees": "umbra:grazing_angle_end_degrees",
    "targetAzimuthAngleStartDegrees": "umbra:target_azimuth_angle_start_degrees",
    "targetAzimuthAngleEndDegrees": "umbra:target_azimuth_angle_end_degrees",
    "squintAngleEngineeringDegreesStart": "umbra:squint_angle_engineering_start_degrees",
    "squintAngleEngineeringDegreesEnd": "umbra:squint_angle_engineering_end_degrees",
    "slantRangeStartKm": "umbra:slant_range_start_km",
    "slantRangeEndKm": "umbra:slant_range_end_km",
    "groundRangeStartKm": "umbra:ground_range_start_km",
    "groundRangeEndKm": "umbra:ground_range_end_km",
    "satelliteId": "umbra:satellite_id",
}
NO_OPPORTUNITIES = "Umbra found no opportunities in this window (opportunities: null); search a longer window"


def invalid(loc: list[str | int], msg: str, kind: str = "value_error") -> RequestValidationFailed:
    """A 422 naming one field of the client's body."""
    return RequestValidationFailed("The request is not valid for Umbra", [{"loc": loc, "msg": msg, "type": kind}])


def check_geometry(product: UmbraProduct, geometry: Any) -> JSONObject:
    """The geometry if the product's imaging mode takes it (Spotlight: a Point; Scan: a two-point LineString)."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    two_points = kind == "LineString" and isinstance(coordinates, list) and len(coordinates) == 2
    if kind != product.geometry or (product.geometry == "LineString" and not two_points):
        shape = "a GeoJSON Point" if product.geometry == "Point" else "a GeoJSON LineString of exactly two points"
        raise invalid(["body", "geometry"], f"Umbra {product.imaging_mode.title()} needs {shape}", "geometry_type")
    assert isinstance(geometry, dict)
    return geometry


def window(interval: Any) -> tuple[str, str]:
    """A closed STAPI datetime interval as Umbra's windowStartAt and windowEndAt."""
    parts = interval.split("/") if isinstance(interval, str) else []
    try:
        start, end = (datetime.fromisoformat(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        start = end = None
    if start is None or end is None or start.tzinfo is None or end.tzinfo is None or end <= start:
        raise invalid(["body", "datetime"], "Umbra needs a closed interval 'start/end' with time zones, start first")
    return parts[0], parts[1]


def filter_constraints(product: UmbraProduct, cql2: Any) -> JSONObject:
    """The constraints a CQL2 JSON filter sets: `=` on a queryable, or an `and` of such."""
    if cql2 is None:
        return {}
    found: JSONObject = {}
    terms = cql2.get("args") if isinstance(cql2, dict) and cql2.get("op") == "and" else [cql2]
    for term in terms if isinstance(terms, list) else [None]:
        args = term.get("args") if isinstance(term, dict) and term.get("op") == "=" else None
        pair = args if isinstance(args, list) and len(args) == 2 and isinstance(args[0], dict) else [{}, None]
        prop, value = pair[0].get("property"), pair[1]
        if prop not in product.constraints or value is None or isinstance(value, dict | list):
            names = ", ".join(product.constraints)
            raise invalid(["body", "filter"], f"Umbra filters are '=' on one of {names}, or an 'and' of those")
        found[str(prop)] = value
    return found


def constraints(product: UmbraProduct, geometry: JSONObject, values: JSONObject) -> JSONObject:
    """Umbra's constraints object for the product."""
    return {"imagingMode": product.imaging_mode, "geometry": geometry, **values}


def feasibility_request(product: UmbraProduct, payload: JSONObject) -> JSONObject:
    """A STAPI opportunity search as Umbra's FeasibilityRequest."""
    geometry = check_geometry(product, payload.get("geometry"))
    start, end = window(payload.get("datetime"))
    values = filter_constraints(product, payload.get("filter"))
    return {"constraints": constraints(product, geometry, values), "windowStartAt": start, "windowEndAt": end}


def task_request(product: UmbraProduct, payload: JSONObject, reference: str) -> JSONObject:
    """A STAPI order as Umbra's CommercialTaskRequest, tagged with the gateway's attempt id."""
    geometry = check_geometry(product, payload.get("geometry"))
    start, end = window(payload.get("datetime"))
    parameters = payload.get("order_parameters") or {}
    values = {**filter_constraints(product, payload.get("filter"))}
    values.update({k: v for k, v in parameters.items() if k in product.constraints})
    task = {k: v for k, v in parameters.items() if k in TASK_FIELDS}
    task.setdefault("taskName", f"stapi-gateway {reference}")
    body = {"constraints": constraints(product, geometry, values), "windowStartAt": start, "windowEndAt": end}
    return {**body, **task, "userOrderId": reference}


def client_loc(loc: list[Any], order: bool) -> list[Any]:
    """An Umbra 422 location in the client's terms."""
    rest = list(loc[1:]) if loc[:1] == ["body"] else list(loc)
    if rest[:1] == ["constraints"]:
        rest = rest[1:]
        if rest[:1] in (["SPOTLIGHT"], ["SCAN"]):
            rest = rest[1:]  # the discriminator's tag, as pydantic/FastAPI report it
        if rest[:1] == ["geometry"]:
            return ["body", *rest]
        return ["body", "order_parameters", *rest] if order else ["body", "filter", *rest[:1]]
    if rest[:1] in (["windowStartAt"], ["windowEndAt"]):
        return ["body", "datetime"]
    if rest and rest[0] in TASK_FIELDS:
        return ["body", "order_parameters", *rest]
    return ["body"]


def search_record(base: str, feasibility: JSONObject) -> JSONObject:
    """Umbra's Feasibility as a STAPI opportunity search record."""
    request = feasibility.get("feasibilityRequest") or {}
    found = request.get("constraints") or {}
    product = product_of_mode(found.get("imagingMode"))
    product_id = product.id if product is not None else str(found.get("imagingMode") or "unknown").lower()
    raw = str(feasibility.get("status") or "RECEIVED")
    status: JSONObject = {
        "timestamp": feasibility.get("updatedAt") or feasibility.get("createdAt"),
        "status_code": statuses.FEASIBILITY_STATUSES.get(raw, "in_progress"),
        "links": [],
        statuses.PROVIDER_STATUS: raw,
    }
    links = [{"href": f"{base}/searches/opportunities/{feasibility['id']}", "rel": "self", "type": "application/json"}]
    if raw == "COMPLETED":
        href = f"{base}/products/{product_id}/opportunities/{feasibility['id']}"
        links.append({"href": href, "rel": "opportunities", "type": "application/geo+json"})
        if feasibility.get("opportunities") is None:
            status.update(reason_code="no_opportunities", reason_text=NO_OPPORTUNITIES)
    elif raw == "ERROR":
        status.update(reason_code="feasibility_error", reason_text="Umbra could not compute this feasibility")
    interval = f"{request.get('windowStartAt')}/{request.get('windowEndAt')}"
    opportunity_request = {"datetime": interval, "geometry": found.get("geometry"), "filter": None, "limit": 10}
    record = {"id": str(feasibility["id"]), "product_id": product_id, "opportunity_request": opportunity_request}
    return {**record, "status": status, "links": links}


def opportunities(base: str, product: UmbraProduct, feasibility: JSONObject) -> list[JSONObject]:
    """A completed feasibility's opportunities as STAPI opportunities: ids minted from the
    feasibility id and the position (Umbra's list for a feasibility does not change), the
    request's geometry, Umbra's fields under `umbra:` names, and a create-order link each."""
    request = feasibility.get("feasibilityRequest") or {}
    found = request.get("constraints") or {}
    geometry = found.get("geometry")
    searched = {k: v for k, v in found.items() if k in product.constraints}
    out = []
    for i, item in enumerate(feasibility.get("opportunities") or []):
        interval = f"{item.get('windowStartAt')}/{item.get('windowEndAt')}"
        properties: JSONObject = {"datetime": interval, "product_id": product.id}
        properties["umbra:imaging_mode"] = product.imaging_mode
        properties.update({name: item[key] for key, name in OPPORTUNITY_FIELDS.items() if key in item})
        parameters = {**searched}
        if item.get("satelliteId"):
            parameters["satelliteIds"] = [item["satelliteId"]]
        body = {"datetime": interval, "geometry": geometry, "filter": None, "order_parameters": parameters}
        order = {"href": f"{base}/products/{product.id}/orders", "rel": "create-order", "type": "application/json"}
        out.append(
            {
                "type": "Feature",
                "id": f"{feasibility['id']}-{i}",
                "geometry": geometry,
                "properties": properties,
                "links": [{**order, "method": "POST", "body": body}],
            }
        )
    return out


def order(base: str, task: JSONObject) -> JSONObject:
    """Umbra's Task as a STAPI Order, its statusHistory mapped through the status table."""
    p = task.get("properties") or {}
    found = p.get("constraints") or {}
    mode = found.get("imagingMode") or p.get("imagingMode")
    product = product_of_mode(mode)
    product_id = product.id if product is not None else str(mode or "unknown").lower()
    created = str(p.get("createdAt"))
    history = statuses.history(list(p.get("statusHistory") or []), str(p.get("updatedAt") or created))
    current = statuses.status_entry(p.get("status", "RECEIVED"), str(p.get("updatedAt") or created), None)
    if history and history[0][statuses.PROVIDER_STATUS] == current[statuses.PROVIDER_STATUS]:
        current = history[0]
    interval = f"{p.get('windowStartAt')}/{p.get('windowEndAt')}"
    names = product.constraints if product is not None else {}
    parameters = {k: v for k, v in found.items() if k in names and v is not None}
    parameters.update({k: p[k] for k in TASK_FIELDS if p.get(k) not in (None, [], "")})
    geometry = task.get("geometry") or found.get("geometry")
    href = f"{base}/orders/{task['id']}"
    properties = {
        "product_id": product_id,
        "created": created,
        "status": current,
        "search_parameters": {"datetime": interval, "geometry": geometry, "filter": None},
        "opportunity_properties": {"datetime": interval},
        "order_parameters": parameters,
        "umbra:user_order_id": p.get("userOrderId"),
        "umbra:collect_ids": list(p.get("collectIds") or []),
    }
    links = [
        {"href": href, "rel": "self", "type": "application/geo+json"},
        {"href": f"{href}/statuses", "rel": "monitor", "type": "application/json"},
    ]
    return {"type": "Feature", "id": str(task["id"]), "geometry": geometry, "properties": properties, "links": links}


def statuses_of(task: JSONObject) -> list[JSONObject]:
    """A task's status entries, newest first."""
    p = task.get("properties") or {}
    fallback = str(p.get("updatedAt") or p.get("createdAt"))
    found = statuses.history(list(p.get("statusHistory") or []), fallback)
    return found or [statuses.status_entry(p.get("status", "RECEIVED"), fallback, None)]
