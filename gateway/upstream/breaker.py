"""What the gateway knows of each provider's health: a circuit breaker fed by real calls.

Readiness and the landing page read this state instead of calling every provider on each probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave for one call; `probe` when it is the half-open circuit's single trial call."""

    probe: bool


_CALL, _PROBE = Permit(probe=False), Permit(probe=True)


class CircuitBreaker:
    """Opens after `failures` consecutive failures, fails fast while open, then lets one probe through."""

    def __init__(self, failures: int, open_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.last_success: float | None = None
        self.last_failure: float | None = None
        self.last_error: str | None = None

    def allow(self) -> Permit | None:
        """Leave for a call to go out now, or None (a half-open circuit admits a single probe).

        Whoever gets a permit must end it with `record` (a verdict) or `release` (none), in a
        `finally`: a probe that is never ended would keep the circuit half-open for good.
        """
        if self.state == CLOSED:
            return _CALL
        if self.state == OPEN and self._clock() - self._opened_at >= self._open_s:
            self.state = HALF_OPEN
            self._probe_in_flight = False
        if self.state == HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return _PROBE
        return None

    def release(self, permit: Permit) -> None:
        """End an allowed call without a verdict (it never reached the provider): a probe's turn is freed."""
        if permit.probe:
            self._probe_in_flight = False

    def record(self, ok: bool, error: str | None = None) -> None:
        """Feed the outcome of a call that was allowed (this ends its permit)."""
        now = time.time()
        self._probe_in_flight = False
        if ok:
            self.state, self.consecutive_failures, self.last_success = CLOSED, 0, now
            return
        self.consecutive_failures += 1
        self.last_failure, self.last_error = now, error
        if self.state == HALF_OPEN or (self._threshold and self.consecutive_failures >= self._threshold):
            self.state, self._opened_at = OPEN, self._clock()

    @property
    def healthy(self) -> bool:
        """False while the circuit is open and its pause is not over.

        Once the pause is over the next call is a probe, so readiness must not keep traffic
        (and with it the probe) away: all circuits open would otherwise never close again.
        """
        return self.state != OPEN or self._clock() - self._opened_at >= self._open_s

    def snapshot(self) -> dict[str, Any]:
        """The state for /readyz and the landing page (no error details that could leak secrets)."""
        return {
            "state": self.state,
            "healthy": self.healthy,
            "consecutive_failures": self.consecutive_failures,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
        }
