"""Umbra's task statuses as STAPI order status codes: the one reviewed table (README: "Umbra Canopy").

Umbra's `TaskStatus` enum (Tasking OpenAPI 3.13.0) has 20 values; the docs' lifecycle is
RECEIVED -> SUBMITTED -> ACCEPTED -> ACTIVE -> SCHEDULED -> TASKED -> TRANSMITTED -> (INCOMPLETE)
-> PROCESSING -> PROCESSED -> DELIVERING -> DELIVERED. Umbra's SCHEDULED is still cancellable
(its cancel endpoint accepts SCHEDULED, SUBMITTED, ACCEPTED, ACTIVE) while STAPI's `scheduled`
reads as "no longer cancellable", so SCHEDULED maps to `accepted` and TASKED (the satellite is
commanded) to `tasked`. Every status entry keeps Umbra's own word in `provider:status`.
"""

from __future__ import annotations

from typing import Any

from stapi_pydantic import OrderStatusCode as Code

PROVIDER_STATUS = "provider:status"

TASK_STATUSES: dict[str, Code] = {
    "RECEIVED": Code.received,
    "REVIEW": Code.received,
    "SUBMITTED": Code.received,
    "ACCEPTED": Code.accepted,
    "ACTIVE": Code.accepted,
    "SCHEDULED": Code.accepted,
    "CANCEL_REQUESTED": Code.held,
    "TASKED": Code.tasked,
    "TRANSMITTED": Code.processing,
    "INCOMPLETE": Code.processing,
    "PROCESSING": Code.processing,
    "PROCESSED": Code.processing,
    "DELIVERING": Code.processing,
    "DELIVERED": Code.completed,
    "COMPLETED": Code.completed,
    "REJECTED": Code.rejected,
    "CANCELED": Code.cancelled,
    "EXPIRED": Code.expired,
    "ERROR": Code.failed,
    "ANOMALY": Code.failed,
}

# The statuses in which Umbra refuses a cancel because one was accepted already.
CANCELLING = frozenset({"CANCEL_REQUESTED", "CANCELED"})

# Feasibility statuses (`FeasibilityStatus`) as STAPI search record status codes.
FEASIBILITY_STATUSES = {"RECEIVED": "received", "COMPLETED": "completed", "ERROR": "failed"}


def status_entry(raw: Any, timestamp: str, previous: Code | None) -> dict[str, Any]:
    """One STAPI status entry for an Umbra status. An unknown status keeps the code before it
    (or `received`), says so in `reason_code`, and is never dropped."""
    word = str(raw)
    code = TASK_STATUSES.get(word)
    entry: dict[str, Any] = {"timestamp": timestamp, "links": [], PROVIDER_STATUS: word}
    if code is None:
        entry["status_code"] = (previous or Code.received).value
        entry["reason_code"] = "unknown_provider_status"
        entry["reason_text"] = f"Umbra status {word[:60]!r} is not in the adapter's table"
    else:
        entry["status_code"] = code.value
    return entry


def history(statuses: list[Any], fallback_timestamp: str) -> list[dict[str, Any]]:
    """Umbra's `statusHistory` as STAPI status entries, newest first (whatever order Umbra sent)."""
    items = [s for s in statuses if isinstance(s, dict) and isinstance(s.get("status"), str)]
    items.sort(key=lambda s: str(s.get("timestamp") or fallback_timestamp))
    out: list[dict[str, Any]] = []
    previous: Code | None = None
    for item in items:
        entry = status_entry(item["status"], str(item.get("timestamp") or fallback_timestamp), previous)
        previous = Code(entry["status_code"])
        out.append(entry)
    return list(reversed(out))
