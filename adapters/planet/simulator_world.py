"""The simulated Planet Tasking API's state: imaging-window searches, windows and orders, and the
timing of their status walks (computed from creation time, so nothing needs a background task).

Field names follow Planet's Tasking v2 docs (docs.planet.com/develop/apis/tasking: assured_tasking,
flexible_tasking) and the notebooks in planetlabs/notebooks/jupyter-notebooks/tasking-api/; where
those are silent (search states before DONE, order-history event names) the choice is written in
the README's "Planet Tasking" section and held by tests/adapters/planet/test_documents.py.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The order walk of a tasking order that succeeds (docs: flexible_tasking's state diagram).
ORDER_WALK = ("RECEIVED", "PENDING", "IN_PROGRESS", "FULFILLED")
# "Cancel: allowed in PENDING, IN_PROGRESS, RECEIVED, REQUESTED" (Planet's tasking docs).
CANCELLABLE = frozenset({"PENDING", "IN_PROGRESS", "RECEIVED", "REQUESTED"})
# The docs name DONE and FAILED only; PENDING and IN_PROGRESS before them are this simulator's choice.
SEARCH_WALK = ("PENDING", "IN_PROGRESS")
# Order-history event types (the docs show ORDER_CREATED and ORDER_FULFILLED; the rest are chosen).
EVENT_OF_STATUS = {status: f"ORDER_{status}" for status in ORDER_WALK} | {"RECEIVED": "ORDER_CREATED"}
MAX_AHEAD = timedelta(days=7)
ASSURED = "Assured Tasking"
FLEXIBLE = "Flexible Tasking"
# Out of every constellation's reach: a search there FAILS (how Planet fails a search is not documented).
MAX_REACHABLE_LATITUDE = 82.0


def iso(moment: float) -> str:
    """A Unix time as Planet writes it (UTC, `Z`)."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> float:
    """An ISO 8601 time as a Unix time (ValueError when it is not one, or has no zone)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed.timestamp()


def _step(created: float, now: float, step_s: float, last: int) -> int:
    if step_s <= 0:
        return last
    return min(int((now - created) / step_s), last)


def expanded(geometry: dict[str, Any]) -> dict[str, Any]:
    """The server-expanded Polygon Planet answers an order with: the input's bounds plus ~500 m."""
    coordinates = geometry["coordinates"]
    points = [coordinates] if geometry["type"] == "Point" else coordinates
    if geometry["type"] == "Polygon":
        points = coordinates[0]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    pad = 0.005
    west, south, east, north = min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad
    west, south, east, north = (round(v, 6) for v in (west, south, east, north))
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclass(slots=True)
class SimSearch:
    """One imaging-window search and what it found (decided at creation, shown once DONE)."""

    id: str
    request: dict[str, Any]
    created: float
    windows: list[dict[str, Any]]
    error: tuple[str, str] | None = None

    def status(self, now: float, step_s: float) -> str:
        """Where the search stands now."""
        index = _step(self.created, now, step_s, len(SEARCH_WALK))
        if index < len(SEARCH_WALK):
            return SEARCH_WALK[index]
        return "FAILED" if self.error else "DONE"

    def body(self, now: float, step_s: float) -> dict[str, Any]:
        """The search as `GET /imaging-windows/search/{id}/` shows it."""
        status = self.status(now, step_s)
        return {
            "id": self.id,
            "status": status,
            "created_time": iso(self.created),
            **self.request,
            "imaging_windows": self.windows if status == "DONE" else [],
            "error_code": self.error[0] if status == "FAILED" and self.error else None,
            "error_message": self.error[1] if status == "FAILED" and self.error else None,
        }


@dataclass(slots=True)
class SimOrder:
    """One tasking order."""

    id: str
    fields: dict[str, Any]
    created: float
    cancelled: float | None = None  # when `DELETE /orders/{id}/` stopped its walk

    def status_index(self, now: float, step_s: float) -> int:
        """How far along ORDER_WALK the order is (or was, when it was cancelled)."""
        at = now if self.cancelled is None else min(now, self.cancelled)
        return _step(self.created, at, step_s, len(ORDER_WALK) - 1)

    def status(self, now: float, step_s: float) -> str:
        """The order's status now."""
        return "CANCELLED" if self.cancelled is not None else ORDER_WALK[self.status_index(now, step_s)]

    def cancel(self, now: float, step_s: float) -> bool:
        """Cancel an order in a cancellable status; False when it is past that (or already cancelled)."""
        if self.status(now, step_s) not in CANCELLABLE:
            return False
        self.cancelled = now
        return True

    def body(self, now: float, step_s: float) -> dict[str, Any]:
        """The order as `GET /orders/{id}/` shows it."""
        index = self.status_index(now, step_s)
        updated = self.created + index * step_s if step_s > 0 else self.created
        fulfilled = self.status(now, step_s) == "FULFILLED"
        return {
            "id": self.id,
            **self.fields,
            "status": self.status(now, step_s),
            "created_time": iso(self.created),
            "updated_time": iso(updated),
            "capture_status_published_count": 1 if fulfilled else 0,
            "capture_assessment_success_count": 1 if fulfilled else 0,
        }

    def history(self, now: float, step_s: float) -> list[dict[str, Any]]:
        """The order's history events so far, oldest first."""
        events = []
        for i in range(self.status_index(now, step_s) + 1):
            at = self.created + i * step_s if step_s > 0 else self.created
            event = EVENT_OF_STATUS[ORDER_WALK[i]]
            events.append({"id": f"{self.id}-{i}", "order_id": self.id, "event_type": event, "created_time": iso(at)})
        if self.cancelled is not None:
            when, event = iso(self.cancelled), "ORDER_CANCELLED"
            events.append({"id": f"{self.id}-c", "order_id": self.id, "event_type": event, "created_time": when})
        return events


@dataclass(slots=True)
class PlanetWorld:
    """Everything the simulated API holds; tests read it (e.g. how many orders exist)."""

    clock: Callable[[], float] = time.time
    searches: dict[str, SimSearch] = field(default_factory=dict)
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)

    def new_search(self, request: dict[str, Any], start: float, end: float) -> SimSearch:
        """Record a search; its windows are computed now and shown once it is DONE."""
        now = self.clock()
        search_id = str(uuid.uuid4())
        geometry = request["geometry"]
        first = geometry["coordinates"] if geometry["type"] == "Point" else geometry["coordinates"][0]
        if abs(first[1]) > MAX_REACHABLE_LATITUDE:
            message = "No satellite of the contract's constellations reaches this geometry."
            search = SimSearch(search_id, request, now, [], ("GEOMETRY_OUT_OF_REACH", message))
        else:
            search = SimSearch(search_id, request, now, self._windows(search_id, max(start, now), end))
        self.searches[search_id] = search
        return search

    def _windows(self, seed: str, start: float, end: float) -> list[dict[str, Any]]:
        """About two passes a day, each a few minutes long, with deterministic angles and clouds."""
        found: list[dict[str, Any]] = []
        at, i = start + 3600.0, 0
        while at + 300.0 <= end and len(found) < 50:
            digest = hashlib.sha256(f"{seed}:{i}".encode()).digest()
            window_id = str(uuid.uuid4())
            window: dict[str, Any] = {
                "id": window_id,
                "start_time": iso(at),
                "end_time": iso(at + 240.0),
                "satellite_type": ("SKYSAT", "PELICAN")[digest[0] % 2],
                "off_nadir_angle_min": round(digest[1] / 255 * 20.0, 2),
                "off_nadir_angle_max": round(20.0 + digest[2] / 255 * 10.0, 2),
                "cloud_forecast": [{"prediction": round(digest[3] / 255, 2)}],
            }
            self.windows[window_id] = window
            found.append(window)
            at += 43_200.0 + digest[4] * 30.0
            i += 1
        return found

    def new_order(self, fields: dict[str, Any]) -> SimOrder:
        """Record an order (its fields already checked)."""
        order = SimOrder(str(uuid.uuid4()), fields, self.clock())
        self.orders[order.id] = order
        return order

    def window_usable(self, window_id: str) -> bool:
        """Whether an imaging window exists and has not started yet."""
        window = self.windows.get(window_id)
        return window is not None and parse_time(window["start_time"]) > self.clock()

    def default_span(self) -> tuple[float, float]:
        """A search's time span when the request gives none: now to seven days ahead."""
        now = self.clock()
        return now, now + MAX_AHEAD.total_seconds()
