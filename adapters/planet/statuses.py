"""The reviewed mapping tables from Planet's statuses to STAPI's (the README's "Planet Tasking"
section shows the same tables). Planet's own value is kept on every status entry as
`provider:status`; a status not in a table is kept and mapped to the table's default.
"""

from __future__ import annotations

from typing import Any

# Tasking-order statuses: the docs' flexible_tasking state list (RECEIVED, REJECTED, PENDING,
# IN_PROGRESS, FULFILLED, CANCELLED, EXPIRED) and the further ones in Planet staff's
# stapi-fastapi-planet (REQUESTED, FINALIZING, PENDING_CANCELLATION, FAILED).
ORDER_STATUS = {
    "REQUESTED": "received",
    "RECEIVED": "received",
    "PENDING": "accepted",  # passed Planet's checks, waiting for a slot: accepted, not yet scheduled
    "IN_PROGRESS": "tasked",  # satellites are attempting captures
    "FINALIZING": "processing",
    "FULFILLED": "completed",
    "REJECTED": "rejected",
    "CANCELLED": "cancelled",
    "PENDING_CANCELLATION": "user_cancelled",
    "EXPIRED": "expired",
    "FAILED": "failed",
}
# The statuses in which Planet refuses a cancel because one was accepted already.
CANCELLING = frozenset({"PENDING_CANCELLATION", "CANCELLED"})
# Planet staff's code maps unknown statuses to `held`: the order exists, its state is not one we read.
ORDER_DEFAULT = "held"

# Order-history events: the docs show ORDER_CREATED and ORDER_FULFILLED; the others are
# `ORDER_<STATUS>` by the simulator's choice. Unknown events keep their name as the status.
EVENT_STATUS = {"ORDER_CREATED": "RECEIVED"}

# Imaging-window searches: the docs name DONE and FAILED; PENDING and IN_PROGRESS are chosen.
SEARCH_STATUS = {
    "PENDING": "received",
    "IN_PROGRESS": "in_progress",
    "DONE": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
SEARCH_DEFAULT = "in_progress"


def order_status(planet_status: Any, timestamp: str, **extra: Any) -> dict[str, Any]:
    """A STAPI order status entry for a Planet order status, Planet's own value kept."""
    raw = str(planet_status)
    return {
        "timestamp": timestamp,
        "status_code": ORDER_STATUS.get(raw, ORDER_DEFAULT),
        "provider:status": raw,
        "links": [],
        **extra,
    }


def event_status(event_type: Any) -> str:
    """The Planet order status an order-history event stands for (`ORDER_PENDING` -> PENDING)."""
    raw = str(event_type)
    return EVENT_STATUS.get(raw, raw.removeprefix("ORDER_"))


def search_status(planet_status: Any) -> str:
    """The STAPI search status code of a Planet imaging-window search status."""
    return SEARCH_STATUS.get(str(planet_status), SEARCH_DEFAULT)
