"""Cancel requests as typed records: one client's try to call one order off, and how it ended. No I/O."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

import orjson


class CancelState(StrEnum):
    """Where a cancel request stands."""

    SENDING = "sending"
    # The vendor accepted it (or the order was cancelled already).
    ACCEPTED = "accepted"
    # The vendor refused it, or it never reached the vendor.
    REFUSED = "refused"
    # The call was lost after it was sent: the vendor may have acted on it (the client may ask again).
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CancelAttempt:
    """One cancel request the gateway sent (or was about to send) for a client."""

    id: str
    order_id: str
    client: str
    state: CancelState
    created: float
    finished: float | None = None
    # The error the gateway answered with, and the vendor's own state when it refused.
    error_code: str | None = None
    vendor_state: str | None = None

    def ended(
        self, state: CancelState, now: float, *, error_code: str | None = None, vendor_state: str | None = None
    ) -> CancelAttempt:
        """A copy in its final state."""
        return dataclasses.replace(self, state=state, finished=now, error_code=error_code, vendor_state=vendor_state)

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> CancelAttempt:
        """A cancel attempt as `to_json` wrote it."""
        raw = orjson.loads(data)
        return cls(**{**raw, "state": CancelState(raw["state"])})
