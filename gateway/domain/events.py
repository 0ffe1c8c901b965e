"""Events the gateway notifies clients of: what happened to one of their orders or searches.

Pure data, no I/O. An event's id is derived from the facts it reports, so the tracker that finds
the same status twice (a replica killed between publishing and saving its progress) publishes
the same event again, and the outbox and receivers drop the copy by its id.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson

JSONObject = dict[str, Any]


# The gateway's own conformance class for subscriptions and signed webhooks (not STAPI's namespace).
WEBHOOKS_CLASS = "https://stapi-gateway.dev/conformance/webhooks"


class EventType(StrEnum):
    """The kinds of event a subscription can ask for."""

    ORDER_STATUS = "order.status"
    SEARCH_COMPLETED = "search.completed"
    SEARCH_FAILED = "search.failed"
    # Sent by `POST /subscriptions/{id}/test` only; every subscription gets it when asked.
    TEST = "subscription.test"


SUBSCRIBABLE = frozenset({EventType.ORDER_STATUS, EventType.SEARCH_COMPLETED, EventType.SEARCH_FAILED})


def _event_id(*facts: str) -> str:
    digest = hashlib.sha256("\x1f".join(facts).encode()).hexdigest()
    return f"evt_{digest[:32]}"


def iso(epoch_s: float) -> str:
    """An RFC 3339 UTC timestamp with milliseconds."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a client's order or search, as receivers get it."""

    id: str
    type: EventType
    # The client whose order or search it is ("anonymous" when authentication is off).
    client: str
    # The order or search record it is about: one subject's events are delivered in order.
    subject: str
    occurred: float
    data: JSONObject

    def body(self) -> bytes:
        """The JSON a receiver gets (Standard Webhooks' recommended `type`/`timestamp`/`data`)."""
        return orjson.dumps({"type": self.type.value, "timestamp": iso(self.occurred), "data": self.data})

    def to_json(self) -> bytes:
        """The event as the store keeps it."""
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type.value,
                "client": self.client,
                "subject": self.subject,
                "occurred": self.occurred,
                "data": self.data,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Event:
        """An event as `to_json` wrote it."""
        data = orjson.loads(raw)
        return cls(
            id=str(data["id"]),
            type=EventType(data["type"]),
            client=str(data["client"]),
            subject=str(data["subject"]),
            occurred=float(data["occurred"]),
            data=dict(data["data"]),
        )


def order_status_event(client: str, order_id: str, status: JSONObject) -> Event:
    """A new entry in an order's status history (a STAPI OrderStatus, with `provider:status` if known)."""
    code = str(status.get("status_code"))
    vendor = status.get("provider:status")
    stamp = str(status.get("timestamp"))
    data: JSONObject = {
        "order_id": order_id,
        "status_code": code,
        "provider:status": vendor,
        "status": status,
    }
    return Event(
        id=_event_id("order.status", order_id, stamp, code, str(vendor)),
        type=EventType.ORDER_STATUS,
        client=client,
        subject=order_id,
        occurred=_epoch_of(stamp),
        data=data,
    )


def search_event(client: str, record_id: str, product_id: str, status: JSONObject) -> Event:
    """An asynchronous opportunity search that ended (`status` is the record's STAPI status)."""
    code = str(status.get("status_code"))
    kind = EventType.SEARCH_COMPLETED if code == "completed" else EventType.SEARCH_FAILED
    return Event(
        id=_event_id(kind.value, record_id),
        type=kind,
        client=client,
        subject=record_id,
        occurred=_epoch_of(str(status.get("timestamp"))),
        data={"search_record_id": record_id, "product_id": product_id, "status": status},
    )


def probe_event(client: str, subscription_id: str) -> Event:
    """The event `POST /subscriptions/{id}/test` sends: a fresh id every time."""
    now = time.time()
    return Event(
        id=_event_id("subscription.test", subscription_id, repr(now), str(time.perf_counter_ns())),
        type=EventType.TEST,
        client=client,
        subject=subscription_id,
        occurred=now,
        data={"subscription_id": subscription_id},
    )


def _epoch_of(stamp: str) -> float:
    """A status timestamp in seconds; now when it is missing or unreadable (a provider's doing)."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


class EventSink(Protocol):
    """Where events go: the webhook outbox, which stores them before anything is sent."""

    async def publish(self, events: list[Event]) -> None:
        """Store the events durably (a repeated id is dropped); raise StoreUnavailable if not stored."""


class NoEvents:
    """A sink that drops every event (for parts run without notifications)."""

    async def publish(self, events: list[Event]) -> None:
        """Drop the events."""
