"""Orders the gateway placed, as the status tracker follows them: typed records and their rules.

Pure data, no I/O. A tracked order remembers the event ids of the status entries it has
published (the latest `MAX_SEEN`, enough for any real history), so each poll publishes only the
entries it has not seen, in history order, and stops at a terminal STAPI status.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from gateway.domain.events import Event

# STAPI 0.1 order status codes after which nothing more happens to an order (stapi-pydantic's
# OrderStatusCode; `user_cancelled` is the extension spelling of a client's cancel).
TERMINAL_CODES = frozenset({"rejected", "completed", "cancelled", "user_cancelled", "expired", "failed"})
# Event ids kept per order: Umbra's walk has 11 steps and Planet's history a handful of events;
# entries older than the ones kept are recognised by their time (`seen_until`).
MAX_SEEN = 64
# A provider that answers "no such order" this many polls in a row is believed (a first 404
# may be a vendor's lag right after the create).
GONE_AFTER = 3
# Failed polls back off from the order's cadence up to this.
MAX_BACKOFF_S = 3600.0


class TrackingState(StrEnum):
    """Whether the tracker still polls an order, and if not, why."""

    TRACKING = "tracking"
    # The latest status is terminal: nothing more can happen.
    TERMINAL = "terminal"
    # The provider kept saying the order does not exist.
    GONE = "gone"
    # Tracked for longer than the gateway keeps orders (`order_retention_s`) without ending.
    EXPIRED = "expired"

    @property
    def open(self) -> bool:
        """Still polled."""
        return self is TrackingState.TRACKING


def timestamp_of(entry: dict[str, Any]) -> float | None:
    """A status entry's time in epoch seconds, None when it has none or it is unreadable."""
    stamp = entry.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def in_history_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Status entries oldest first, whichever way the provider lists them (Umbra newest first,
    Planet and stapi-fastapi oldest first). Entries without a readable time keep their place."""
    stamps = [timestamp_of(e) for e in entries]
    known = [s for s in stamps if s is not None]
    if len(known) >= 2 and known[0] > known[-1]:
        entries, stamps = entries[::-1], stamps[::-1]
    keyed: list[tuple[float, int]] = []
    last = float("-inf")
    for position, stamp in enumerate(stamps):
        last = stamp if stamp is not None else last
        keyed.append((last, position))
    return [entries[position] for _, position in sorted(keyed)]


@dataclass(frozen=True, slots=True)
class TrackedOrder:
    """One order placed through the gateway whose status history the tracker follows."""

    order_id: str
    provider: str
    upstream_id: str
    client: str
    registered: float
    # When it is next polled (also its score in the provider's due index).
    due: float
    state: TrackingState = TrackingState.TRACKING
    # Event ids of the published entries, oldest first, the latest MAX_SEEN.
    seen: tuple[str, ...] = ()
    # Entries at or before this time were published and have left `seen`.
    seen_until: float | None = None
    last_status: str | None = None
    # Consecutive failed polls (reset by a good one).
    errors: int = 0
    polls: int = 0

    def fresh(self, events: list[Event]) -> list[Event]:
        """The events (of one poll, in history order) not published before."""
        seen = set(self.seen)
        return [e for e in events if e.id not in seen and (self.seen_until is None or e.occurred > self.seen_until)]

    def observed(self, events: list[Event], now: float, poll_s: float, max_age_s: float) -> TrackedOrder:
        """The record after a good poll whose whole history is `events` (in history order): new
        entries noted, closed at a terminal status, next poll one cadence away."""
        seen = list(self.seen)
        for event in self.fresh(events):
            seen.append(event.id)
        kept, dropped = seen[-MAX_SEEN:], seen[:-MAX_SEEN]
        until = self.seen_until
        if dropped:
            by_id = {e.id: e.occurred for e in events}
            times = [by_id[i] for i in dropped if i in by_id]
            until = max([t for t in (until, *times) if t is not None], default=None)
        last = str(events[-1].data.get("status_code")) if events else self.last_status
        state = TrackingState.TERMINAL if last in TERMINAL_CODES else self._aged(now, max_age_s)
        return dataclasses.replace(
            self,
            seen=tuple(kept),
            seen_until=until,
            last_status=last,
            state=state,
            errors=0,
            polls=self.polls + 1,
            due=now + poll_s,
        )

    def failed(self, now: float, poll_s: float, max_age_s: float, *, not_found: bool) -> TrackedOrder:
        """The record after a failed poll: backed off; closed once the provider keeps saying it has no such order."""
        errors = self.errors + 1
        state = TrackingState.GONE if not_found and errors >= GONE_AFTER else self._aged(now, max_age_s)
        delay = min(poll_s * 2.0**errors, max(poll_s, MAX_BACKOFF_S))
        return dataclasses.replace(self, errors=errors, polls=self.polls + 1, state=state, due=now + delay)

    def _aged(self, now: float, max_age_s: float) -> TrackingState:
        return TrackingState.EXPIRED if now - self.registered > max_age_s else TrackingState.TRACKING

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> TrackedOrder:
        """A record as `to_json` wrote it."""
        data: dict[str, Any] = orjson.loads(raw)
        until = data.get("seen_until")
        last = data.get("last_status")
        return cls(
            order_id=str(data["order_id"]),
            provider=str(data["provider"]),
            upstream_id=str(data["upstream_id"]),
            client=str(data["client"]),
            registered=float(data["registered"]),
            due=float(data["due"]),
            state=TrackingState(data.get("state", TrackingState.TRACKING)),
            seen=tuple(str(i) for i in data.get("seen") or ()),
            seen_until=None if until is None else float(until),
            last_status=None if last is None else str(last),
            errors=int(data.get("errors", 0)),
            polls=int(data.get("polls", 0)),
        )
