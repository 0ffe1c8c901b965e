"""Order attempts as typed records: what one try to place an order was, and where it stands.

Pure data and rules, no I/O. Serialised to the store in one place (`to_json`/`from_json`);
entries written by the earlier layout (plain dicts without the reconciliation fields) load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class AttemptState(StrEnum):
    """Where an order attempt stands."""

    SENDING = "sending"
    PLACED = "placed"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        """Placed and rejected never change again."""
        return self in (AttemptState.PLACED, AttemptState.REJECTED)

    def check_move(self, to: AttemptState, *, answered: bool = False) -> None:
        """Refuse moves the journal must never make: out of a final state, or unknown -> rejected
        unless the provider's own answer to the create says so (`answered`)."""
        if self.final and to is not self:
            raise ValueError(f"an order attempt that is {self} cannot become {to}")
        if self is AttemptState.UNKNOWN and to is AttemptState.REJECTED and not answered:
            raise ValueError("an unknown outcome is never turned into rejected by a guess")


class Resolution(StrEnum):
    """How a placed attempt's order became known."""

    ANSWER = "answer"
    RECONCILED = "reconciled"


@dataclass(frozen=True, slots=True)
class AttemptError:
    """The error an attempt met, as the gateway worded it (no provider text beyond its detail)."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class OrderAttempt:
    """One try to place an order at one provider product."""

    id: str
    client: str
    idempotency_key: str | None
    product_id: str
    member: str
    # The body sent upstream (the client's JSON, passed through).
    sent: dict[str, Any]
    fingerprint: str
    state: AttemptState
    created: float
    order_id: str | None = None
    # The provider's order with namespaced ids and placeholder-based links, as shown to clients.
    order: dict[str, Any] | None = None
    error: AttemptError | None = None
    resolution: Resolution | None = None
    # Reconciliation: how often the provider was searched for it, when next, and whether it gave up.
    checks: int = 0
    next_check: float = 0.0
    gave_up: bool = False
    history: list[tuple[float, str]] = field(default_factory=list)

    @property
    def provider(self) -> str:
        """The provider the attempt went to."""
        return self.member.partition(":")[0]

    def moved(self, state: AttemptState, now: float, **changes: Any) -> OrderAttempt:
        """A copy in `state`, with the move noted in its history."""
        history = [*self.history, (now, str(state))] if state is not self.state else self.history
        return dataclasses.replace(self, state=state, history=history, **changes)

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> OrderAttempt:
        """Load a stored attempt, including ones written before these fields existed."""
        raw: dict[str, Any] = orjson.loads(data)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["state"] = AttemptState(values["state"])
        if values.get("error") is not None:
            values["error"] = AttemptError(str(values["error"].get("code")), str(values["error"].get("detail")))
        if values.get("resolution") is not None:
            values["resolution"] = Resolution(values["resolution"])
        values["history"] = [(float(at), str(state)) for at, state in values.get("history") or []]
        return cls(**values)
