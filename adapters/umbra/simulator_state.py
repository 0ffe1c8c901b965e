"""The simulated Umbra Canopy's state: tokens, feasibilities, tasks and their status walk.

Timing follows Umbra's documents: a feasibility is RECEIVED, then COMPLETED "within a few
minutes" (here after `feasibility_delay_s`), with `opportunities: null` when the window is too
short ("resubmit with a longer time window", task lifecycle tutorial); a task walks the
documented lifecycle RECEIVED -> SUBMITTED -> ACCEPTED -> ACTIVE -> SCHEDULED -> TASKED ->
TRANSMITTED -> PROCESSING -> PROCESSED -> DELIVERING -> DELIVERED, one step every
`status_step_s` (the sandbox walks a step every few seconds).
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.umbra.simulator_models import FeasibilityRequest, Point, TaskQuery, TaskRequest
from adapters.umbra.simulator_search import matches

WALK = (
    "RECEIVED", "SUBMITTED", "ACCEPTED", "ACTIVE", "SCHEDULED", "TASKED", "TRANSMITTED",
    "PROCESSING", "PROCESSED", "DELIVERING", "DELIVERED",
)  # fmt: skip
# "Cancel a task: only from SCHEDULED, SUBMITTED, ACCEPTED, ACTIVE" (Umbra's task docs).
CANCELLABLE = frozenset({"SCHEDULED", "SUBMITTED", "ACCEPTED", "ACTIVE"})
SORTABLE = frozenset({"createdAt", "updatedAt", "windowStartAt", "windowEndAt", "taskName", "status"})
ORGANIZATION = "org-simulated"
USER = "client-credentials|simulated"
CONTRACT = "9c4d1c52-5d2e-4a7b-9a39-0d7c1a3c8e11"


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What the simulated vendor allows and how fast it moves."""

    client_id: str = "umbra-sim-client"
    client_secret: str = "umbra-sim-secret"
    audience: str = "https://api.canopy.umbra.space"
    token_lifetime_s: int = 86400
    # "~50 client credentials exchanges per day" (authentication via client credentials).
    token_exchanges_per_day: int = 50
    feasibility_delay_s: float = 0.2
    status_step_s: float = 3.0
    # Windows shorter than this complete with `opportunities: null`.
    min_window_s: float = 6 * 3600.0
    # One opportunity per this much of the window (at most `max_opportunities`).
    opportunity_every_s: float = 12 * 3600.0
    max_opportunities: int = 40
    # Per-second limits of the rate limiting page (create task 2/s, create feasibility 2/s).
    create_task_per_s: int = 2
    feasibility_per_s: int = 2
    latency_s: float = 0.0


def iso(moment: float) -> str:
    """A clock reading as Umbra's date-time (UTC, `Z`)."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Window:
    """A rolling one-second window of calls to one endpoint."""

    per_s: int
    calls: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> bool:
        """Whether one more call fits in the last second (counted only when it does)."""
        while self.calls and now - self.calls[0] >= 1.0:
            self.calls.popleft()
        if len(self.calls) >= self.per_s:
            return False
        self.calls.append(now)
        return True


@dataclass(slots=True)
class Feasibility:
    """One feasibility request and when it was received."""

    id: str
    request: FeasibilityRequest
    created: float


@dataclass(slots=True)
class Task:
    """One task: the request, when it arrived, and a status list replacing the walk (tests)."""

    id: str
    request: TaskRequest
    created: float
    forced: list[str] | None = None


@dataclass(slots=True)
class SimState:
    """Everything the simulated vendor remembers."""

    config: SimConfig
    clock: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)
    token_exchanges: int = 0
    feasibilities: dict[str, Feasibility] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)

    def admit(self, endpoint: str, per_s: int) -> bool:
        """Whether a call to `endpoint` is within its per-second limit."""
        window = self.windows.setdefault(endpoint, Window(per_s))
        return window.admit(self.clock())

    def mint(self) -> str | None:
        """A new access token, None once the day's exchanges are spent."""
        if self.token_exchanges >= self.config.token_exchanges_per_day:
            return None
        self.token_exchanges += 1
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + self.config.token_lifetime_s
        return token

    def authorised(self, header: str | None) -> bool:
        """Whether an Authorization header carries a live token."""
        scheme, _, token = (header or "").partition(" ")
        expires = self.tokens.get(token) if scheme.lower() == "bearer" else None
        return expires is not None and self.clock() < expires

    # --- feasibilities ------------------------------------------------------------

    def add_feasibility(self, request: FeasibilityRequest) -> Feasibility:
        """Receive a feasibility request."""
        found = Feasibility(str(uuid.uuid4()), request, self.clock())
        self.feasibilities[found.id] = found
        return found

    def feasibility_body(self, found: Feasibility) -> dict[str, Any]:
        """Umbra's `Feasibility` as it stands now."""
        request = found.request
        done = self.clock() >= found.created + self.config.feasibility_delay_s
        status, opportunities = "RECEIVED", None
        if done:
            # Simulated: the constellation cannot see near the poles, so such requests fail.
            status = "ERROR" if abs(_latitude(request)) > 82 else "COMPLETED"
            opportunities = self.opportunities(found) if status == "COMPLETED" else None
        constraints = request.constraints.model_dump(mode="json")
        mode = constraints["imagingMode"]
        output = {
            **request.model_dump(mode="json"),
            "imagingMode": mode,
            "spotlightConstraints": constraints if mode == "SPOTLIGHT" else None,
            "scanConstraints": constraints if mode == "SCAN" else None,
        }
        updated = found.created + (self.config.feasibility_delay_s if done else 0)
        return {
            "id": found.id,
            "createdAt": iso(found.created),
            "updatedAt": iso(updated),
            "opportunities": opportunities,
            "feasibilityRequest": output,
            "organizationId": ORGANIZATION,
            "status": status,
            "userId": USER,
        }

    def opportunities(self, found: Feasibility) -> list[dict[str, Any]] | None:
        """Umbra's `Opportunity` list for the request (stable per feasibility), or None."""
        request = found.request
        start, end = request.windowStartAt.timestamp(), request.windowEndAt.timestamp()
        if end - start < self.config.min_window_s:
            return None
        rng = random.Random(hashlib.sha256(found.id.encode()).digest())
        count = min(self.config.max_opportunities, max(1, int((end - start) // self.config.opportunity_every_s)))
        c = request.constraints
        out = []
        for i in range(count):
            duration = round(rng.uniform(8, 110), 1)
            at = start + (end - start) * (i + rng.uniform(0.1, 0.8)) / count
            grazing = rng.uniform(c.grazingAngleMinDegrees, max(c.grazingAngleMinDegrees, c.grazingAngleMaxDegrees))
            azimuth = rng.uniform(0, 360)
            slant = 550 / max(0.2, abs(_sin_deg(grazing)))
            out.append(
                {
                    "windowStartAt": iso(at),
                    "windowEndAt": iso(min(end, at + duration)),
                    "durationSec": duration,
                    "grazingAngleStartDegrees": round(grazing, 3),
                    "grazingAngleEndDegrees": round(grazing - rng.uniform(0, 0.5), 3),
                    "targetAzimuthAngleStartDegrees": round(azimuth, 3),
                    "targetAzimuthAngleEndDegrees": round((azimuth + rng.uniform(0, 3)) % 360, 3),
                    "squintAngleEngineeringDegreesStart": round(rng.uniform(-180, 180), 3),
                    "squintAngleEngineeringDegreesEnd": round(rng.uniform(-180, 180), 3),
                    "slantRangeStartKm": round(slant, 3),
                    "slantRangeEndKm": round(slant + rng.uniform(-2, 2), 3),
                    "groundRangeStartKm": round(slant * 0.8, 3),
                    "groundRangeEndKm": round(slant * 0.8 + rng.uniform(-2, 2), 3),
                    "satelliteId": f"UMBRA_{rng.choice([4, 5, 6, 7, 8, 9, 10]):02d}",
                }
            )
        return out

    # --- tasks --------------------------------------------------------------------

    def add_task(self, request: TaskRequest) -> Task:
        """Receive a task."""
        task = Task(str(uuid.uuid4()), request, self.clock())
        self.tasks[task.id] = task
        return task

    def cancel(self, task: Task) -> bool:
        """Cancel a task in a cancellable status (its walk stops at CANCELED); False: Umbra's 422."""
        reached = [entry["status"] for entry in self.history(task)]
        if reached[-1] not in CANCELLABLE:
            return False
        task.forced = [*reached, "CANCELED"]
        return True

    def history(self, task: Task) -> list[dict[str, Any]]:
        """The statuses a task has reached so far, oldest first."""
        step = self.config.status_step_s
        if task.forced is not None:
            return [{"status": s, "timestamp": iso(task.created + i * step)} for i, s in enumerate(task.forced)]
        reached = min(len(WALK) - 1, int((self.clock() - task.created) // step)) if step > 0 else len(WALK) - 1
        return [{"status": WALK[i], "timestamp": iso(task.created + i * step)} for i in range(reached + 1)]

    def task_body(self, task: Task) -> dict[str, Any]:
        """Umbra's `Task` (a GeoJSON Feature) as it stands now."""
        request = task.request.model_dump(mode="json")
        history = self.history(task)
        constraints = request["constraints"]
        properties = {
            **{k: v for k, v in request.items() if k != "contractId"},
            "createdAt": iso(task.created),
            "updatedAt": history[-1]["timestamp"],
            "organizationId": ORGANIZATION,
            "userId": USER,
            "userEmail": None,
            "contractId": request.get("contractId") or CONTRACT,
            "taskType": "STANDARD",
            "status": history[-1]["status"],
            "statusHistory": list(reversed(history)),
            "collectIds": [],
            "acceptableWindowStartAt": request["windowStartAt"],
            "acceptableWindowEndAt": request["windowEndAt"],
            "imagingMode": constraints["imagingMode"],
            "spotlightConstraints": constraints if constraints["imagingMode"] == "SPOTLIGHT" else None,
            "scanConstraints": constraints if constraints["imagingMode"] == "SCAN" else None,
            "contractSnapshot": None,
        }
        return {"id": task.id, "type": "Feature", "geometry": constraints["geometry"], "properties": properties}

    def search(self, query: TaskQuery, sort: list[tuple[str, bool]]) -> list[dict[str, Any]]:
        """Every task body matching the query, sorted (default: oldest first)."""
        bodies = [self.task_body(task) for task in self.tasks.values()]
        found = [b for b in bodies if matches(query, b)]
        for name, descending in reversed(sort or [("createdAt", False)]):
            found.sort(key=lambda b: str(b["properties"].get(name) or ""), reverse=descending)
        return found


def _sin_deg(degrees: float) -> float:
    return math.sin(math.radians(degrees))


def _latitude(request: FeasibilityRequest) -> float:
    geometry = request.constraints.geometry
    if isinstance(geometry, Point):
        return geometry.coordinates[1]
    return geometry.coordinates[0][1]
