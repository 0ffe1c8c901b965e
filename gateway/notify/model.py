"""Subscriptions and deliveries as typed records, and the store keys that hold them. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from gateway.domain.events import Event, EventType, iso

JSONObject = dict[str, Any]

# One subscription per key, and per client an index of theirs (score: creation time).
SUBSCRIPTION_KEY = "webhook-sub:{id}"
SUBSCRIPTIONS_OF = "webhook-subs:{client}"
# One delivery (an event for one subscription) per key; per subscription an index of them.
DELIVERY_KEY = "webhook-delivery:{id}"
DELIVERIES_OF = "webhook-deliveries:{subscription}"
# The last delivery of one subject to one subscription: the next one waits for it.
LANE_TAIL_KEY = "webhook-lane:{subscription}:{subject}"
# Deliveries to make: a Redis stream read by the `deliverers` consumer group of every replica.
QUEUE_STREAM = "webhook-queue"
QUEUE_GROUP = "deliverers"
# Deliveries waiting for a later attempt (a retry, or a lane turn), scored by when they are due,
# and the short lock of the replica putting one back on the queue.
RETRY_INDEX = "webhook-retry-due"
REQUEUE_LOCK_KEY = "webhook-requeue:{id}:{due}"


class DeliveryState(StrEnum):
    """Where one delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """Delivered and failed never change again."""
        return self is not DeliveryState.PENDING


@dataclass(frozen=True, slots=True)
class Subscription:
    """A client's request to be told of events at a URL, and the secret deliveries are signed with."""

    id: str
    client: str
    url: str
    events: frozenset[EventType]
    # `whsec_` + base64: shown to the client once, in the answer that created it.
    secret: str
    created: float

    def wants(self, event: Event) -> bool:
        """Whether this subscription gets `event` (a test event goes to its own subscription only)."""
        if event.type is EventType.TEST:
            return event.subject == self.id
        return event.client == self.client and event.type in self.events

    def public(self) -> JSONObject:
        """The subscription as GET and list show it: never the secret."""
        return {
            "id": self.id,
            "url": self.url,
            "events": sorted(e.value for e in self.events),
            "created": iso(self.created),
        }

    def to_json(self) -> bytes:
        """The subscription as the store keeps it."""
        return orjson.dumps(
            {
                "id": self.id,
                "client": self.client,
                "url": self.url,
                "events": sorted(e.value for e in self.events),
                "secret": self.secret,
                "created": self.created,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Subscription:
        """A subscription as `to_json` wrote it."""
        data = orjson.loads(raw)
        return cls(
            id=str(data["id"]),
            client=str(data["client"]),
            url=str(data["url"]),
            events=frozenset(EventType(e) for e in data["events"]),
            secret=str(data["secret"]),
            created=float(data["created"]),
        )


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One try to deliver: when, what the receiver answered (or why nothing), how long it took."""

    at: float
    status: int | None
    error: str | None
    duration_ms: float

    def public(self) -> JSONObject:
        """The attempt as `GET /subscriptions/{id}/deliveries` shows it."""
        return {"at": iso(self.at), "status": self.status, "error": self.error, "duration_ms": self.duration_ms}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one subscription."""

    id: str
    subscription_id: str
    event: Event
    state: DeliveryState
    created: float
    next_attempt_at: float
    # The delivery of the same subject before this one: this one waits until that one is final.
    previous: str | None = None
    # The last few attempts, oldest first (bounded by whoever appends).
    attempts: tuple[DeliveryAttempt, ...] = field(default_factory=tuple)
    attempt_count: int = 0

    def public(self) -> JSONObject:
        """The delivery as `GET /subscriptions/{id}/deliveries` shows it."""
        return {
            "id": self.id,
            "event_id": self.event.id,
            "event_type": self.event.type.value,
            "subject": self.event.subject,
            "state": self.state.value,
            "created": iso(self.created),
            "next_attempt_at": None if self.state.final else iso(self.next_attempt_at),
            "attempt_count": self.attempt_count,
            "attempts": [a.public() for a in self.attempts],
        }

    def to_json(self) -> bytes:
        """The delivery as the store keeps it."""
        return orjson.dumps(
            {
                "id": self.id,
                "subscription_id": self.subscription_id,
                "event": orjson.loads(self.event.to_json()),
                "state": self.state.value,
                "created": self.created,
                "next_attempt_at": self.next_attempt_at,
                "previous": self.previous,
                "attempts": [[a.at, a.status, a.error, a.duration_ms] for a in self.attempts],
                "attempt_count": self.attempt_count,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Delivery:
        """A delivery as `to_json` wrote it."""
        data = orjson.loads(raw)
        return cls(
            id=str(data["id"]),
            subscription_id=str(data["subscription_id"]),
            event=Event.from_json(orjson.dumps(data["event"])),
            state=DeliveryState(data["state"]),
            created=float(data["created"]),
            next_attempt_at=float(data["next_attempt_at"]),
            previous=None if data.get("previous") is None else str(data["previous"]),
            attempts=tuple(DeliveryAttempt(float(a[0]), a[1], a[2], float(a[3])) for a in data.get("attempts", [])),
            attempt_count=int(data.get("attempt_count", 0)),
        )


def delivery_id(subscription_id: str, event_id: str) -> str:
    """The delivery of one event to one subscription: the same pair always names the same delivery."""
    return f"{subscription_id}.{event_id}"
