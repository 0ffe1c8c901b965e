"""Planet's wire in STAPI terms: its error bodies, its orders, searches and imaging windows.

Pure functions on scrubbed JSON; the adapter does the I/O. A Planet 400 is Django REST
framework's `{"<field>": ["message"]}` (the simulator's choice, see adapters/planet/simulator_checks.py):
each field is mapped back to where the client wrote it in the STAPI request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from adapters.base import (
    DeliberateError,
    OrderNotCancellable,
    ProviderBadStatus,
    RequestValidationFailed,
    UpstreamNotFound,
)
from adapters.planet.products import BY_PLANET_NAME, PlanetProduct
from adapters.planet.statuses import CANCELLING, event_status, order_status, search_status
from adapters.scrub import Scrubber
from adapters.stapi.wire import upstream_detail

# Planet's request fields -> where they come from in the STAPI order or search request.
FIELD_LOC: dict[str, list[str]] = {
    "geometry": ["body", "geometry"],
    "start_time": ["body", "datetime"],
    "end_time": ["body", "datetime"],
    "imaging_window": ["body", "order_parameters", "imaging_window"],
    "sat_elevation_angle_min": ["body", "order_parameters", "sat_elevation_angle_min"],
    "sat_elevation_angle_max": ["body", "order_parameters", "sat_elevation_angle_max"],
}
_MAX_ERRORS = 20
# How Planet refuses `DELETE /orders/{id}/` for an order past cancelling (the docs name the
# cancellable states, not the refusal: 400 and 409 are both read as one).
CANCEL_REFUSED = (400, 409)
CANCEL_ANSWERS = (200, 202, 204, *CANCEL_REFUSED)


def drf_errors(body: Any, scrubber: Scrubber) -> list[dict[str, Any]]:
    """A Planet 400's field errors as the gateway's `errors` (never empty)."""
    found: list[dict[str, Any]] = []
    if isinstance(body, dict):
        for name, messages in list(body.items())[:_MAX_ERRORS]:
            texts = messages if isinstance(messages, list) else [messages]
            loc = FIELD_LOC.get(str(name), ["body"])
            for text in texts[:5]:
                message = scrubber.shown(f"{name}: {text}" if loc == ["body"] and name != "detail" else str(text))
                found.append({"loc": loc, "msg": message, "type": "provider_rejected"})
    return found or [{"loc": ["body"], "msg": "the provider gave no reason", "type": "provider_rejected"}]


def status_error(
    pid: str, response: httpx.Response, body: Any, client_payload: bool, scrubber: Scrubber
) -> DeliberateError:
    """An unexpected Planet status as the gateway's error (the body already parsed and scrubbed)."""
    status = response.status_code
    if status == 404:
        return UpstreamNotFound(pid, f"provider '{pid}': {upstream_detail(response, scrubber)}")
    if client_payload and status == 400:
        return RequestValidationFailed(f"provider '{pid}' rejected the request", drf_errors(body, scrubber))
    # 401/403 are this gateway's credentials, 429 Planet's limits, 5xx Planet: none the client's doing.
    return ProviderBadStatus(pid, f"provider '{pid}' answered HTTP {status}", status)


def history_statuses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order-history events as STAPI status entries, the event's own name kept too."""
    return [
        order_status(
            event_status(e.get("event_type")), str(e.get("created_time")), **{"planet:event_type": e.get("event_type")}
        )
        for e in events
    ]


def now_iso() -> str:
    """Now, as STAPI timestamps are written."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def product_of(order: dict[str, Any]) -> PlanetProduct | None:
    """The STAPI product of a Planet order (None for a Planet product this adapter does not offer)."""
    return BY_PLANET_NAME.get(str(order.get("product")))


def stapi_order(order: dict[str, Any]) -> dict[str, Any]:
    """A Planet tasking order as a STAPI Order (Planet's own fields kept under `planet:` names)."""
    product = product_of(order)
    window = order.get("imaging_window")
    if product is not None and product.searchable:
        parameters: dict[str, Any] = {"imaging_window": window}
    else:
        keys = ("sat_elevation_angle_min", "sat_elevation_angle_max")
        parameters = {key: order[key] for key in keys if order.get(key) is not None}
    timestamp = str(order.get("updated_time") or order.get("created_time") or now_iso())
    start, end = order.get("start_time"), order.get("end_time")
    return {
        "type": "Feature",
        "id": str(order["id"]),
        "geometry": order.get("geometry") or order.get("original_geometry"),
        "properties": {
            "product_id": product.id if product is not None else str(order.get("product")),
            "created": order.get("created_time"),
            "status": order_status(order.get("status"), timestamp),
            "search_parameters": {
                "datetime": f"{start or '..'}/{end or '..'}",
                "geometry": order.get("original_geometry") or order.get("geometry"),
                "filter": None,
            },
            "opportunity_properties": {"planet:imaging_window": window} if window else {},
            "order_parameters": parameters,
            "planet:name": order.get("name"),
            "planet:pl_number": order.get("pl_number"),
            "planet:product": order.get("product"),
            "planet:scheduling_type": order.get("scheduling_type"),
            "planet:capture_status_published_count": order.get("capture_status_published_count"),
        },
        "links": [],
    }


def search_record(search: dict[str, Any], product_id: str, base_url: str) -> dict[str, Any]:
    """An imaging-window search as a STAPI opportunity search record; DONE links its collection."""
    code = search_status(search.get("status"))
    status: dict[str, Any] = {
        "timestamp": str(search.get("updated_time") or search.get("created_time") or now_iso()),
        "status_code": code,
        "provider:status": str(search.get("status")),
        "links": [],
    }
    if code == "failed":
        status["reason_code"] = str(search.get("error_code") or "FAILED")
        status["reason_text"] = str(search.get("error_message") or "the imaging-window search failed")
    links = []
    if code == "completed":
        href = f"{base_url}/products/{product_id}/opportunities/{search['id']}"
        links.append({"href": href, "rel": "opportunities", "type": "application/geo+json"})
    start, end = search.get("start_time"), search.get("end_time")
    request = {"datetime": f"{start or '..'}/{end or '..'}", "geometry": search.get("geometry"), "filter": None}
    return {
        "id": str(search["id"]),
        "product_id": product_id,
        "opportunity_request": request,
        "status": status,
        "links": links,
    }


def opportunity(window: dict[str, Any], geometry: Any, product_id: str, base_url: str) -> dict[str, Any]:
    """An imaging window as a STAPI opportunity with its own create-order link.

    The link's body orders exactly this window (`order_parameters.imaging_window`); its href is
    under the provider's url, so the gateway rewrites it to its own product's orders.
    """
    window_id = str(window["id"])
    when = f"{window.get('start_time')}/{window.get('end_time')}"
    forecast = window.get("cloud_forecast")
    cloud = (
        forecast[0].get("prediction")
        if isinstance(forecast, list) and forecast and isinstance(forecast[0], dict)
        else None
    )
    body = {"datetime": when, "geometry": geometry, "filter": None, "order_parameters": {"imaging_window": window_id}}
    link = {
        "href": f"{base_url}/products/{product_id}/orders",
        "rel": "create-order",
        "type": "application/json",
        "method": "POST",
        "body": body,
    }
    return {
        "type": "Feature",
        "id": window_id,
        "geometry": geometry,
        "properties": {
            "datetime": when,
            "product_id": product_id,
            "planet:imaging_window": window_id,
            "planet:satellite_type": window.get("satellite_type"),
            "planet:off_nadir_angle_min": window.get("off_nadir_angle_min"),
            "planet:off_nadir_angle_max": window.get("off_nadir_angle_max"),
            "planet:cloud_forecast": cloud,
        },
        "links": [link],
    }


def cancel_outcome(pid: str, status: int, order: dict[str, Any]) -> dict[str, Any]:
    """The STAPI order after `DELETE /orders/{id}/` answered `status`; a refusal names Planet's status."""
    if status not in CANCEL_REFUSED:
        return order
    state = str(order["properties"]["status"].get("provider:status", ""))
    detail = f"provider '{pid}' cannot cancel an order that is {state}"
    raise OrderNotCancellable(pid, detail, state, order, cancelling=state in CANCELLING)


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased (hosts and schemes compare without case)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
