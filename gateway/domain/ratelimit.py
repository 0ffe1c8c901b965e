"""Rate limits: the arithmetic of a shared rate gate (GCRA), a per-process ledger of gates, and
the token bucket the order tracker paces its polls with.

A gate lets `per_s` calls through a second with at most `burst` at once. It is kept as GCRA (the
generic cell rate algorithm): one number per gate, the theoretical arrival time (TAT) of the next
call, which is what lets Redis keep it in one key and reserve a slot in one script. A reservation
may be for a slot in the future: the caller is told how long to wait and sleeps without asking
again; a caller that cannot wait that long reserves nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer of a rate gate: `granted` (a slot is this caller's), and the wait before using it;
    when not granted, the wait until a slot would be free (for a Retry-After), nothing reserved."""

    granted: bool
    wait_s: float


_ROUNDING_S = 1e-6


def check_rate(per_s: float, burst: float, max_wait_s: float) -> None:
    """Refuse a gate no store can keep: every implementation fails the same way."""
    if not (math.isfinite(per_s) and per_s > 0):
        raise ValueError(f"per_s must be a positive finite number, got {per_s!r}")
    if not (math.isfinite(burst) and burst >= 1):
        raise ValueError(f"burst must be a finite number >= 1, got {burst!r}")
    if not (math.isfinite(max_wait_s) and max_wait_s >= 0):
        raise ValueError(f"max_wait_s must be a finite number >= 0, got {max_wait_s!r}")


def gcra(tat: float, now: float, per_s: float, burst: float, max_wait_s: float) -> tuple[float, Reservation]:
    """One reservation at a gate whose next theoretical arrival is `tat`: the new TAT and the answer.

    A call may go at `tat - (burst - 1) / per_s`; granting it moves the TAT one interval on. A full
    gate (TAT in the past) counts from now, so idle time saves up no more than `burst` calls.
    """
    interval = 1.0 / per_s
    start = max(tat, now)
    wait = start - (burst - 1.0) * interval - now
    # Under a microsecond is rounding (the TAT is a sum of intervals), not a wait: the Redis
    # script, which counts whole microseconds, agrees.
    wait = 0.0 if wait < _ROUNDING_S else wait
    if wait > max_wait_s:
        return tat, Reservation(False, wait)
    return start + interval, Reservation(True, wait)


class RateLedger:
    """Rate gates kept in this process (memory://, and the fallback when the store is unreachable)."""

    # Gates are named by configuration (providers, clients), so few; past this many the idle ones go.
    _PRUNE_ABOVE = 1024

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}

    def reserve(self, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        """Reserve the next slot of gate `key` if it comes within `max_wait_s` (see `gcra`)."""
        check_rate(per_s, burst, max_wait_s)
        now = time.monotonic()
        tat, answer = gcra(self._tats.get(key, now), now, per_s, burst, max_wait_s)
        self._tats[key] = tat
        if len(self._tats) > self._PRUNE_ABOVE:
            # A TAT in the past is a full gate: forgetting it changes no answer.
            self._tats = {k: t for k, t in self._tats.items() if t > now}
        return answer


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up (the order tracker's pace, per process)."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate, self.burst = rate, max(burst, 1.0)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def take(self) -> float:
        """Take a token now if there is one (0.0), else say how many seconds until there is."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    async def acquire(self, budget_s: float) -> bool:
        """Take a token, waiting at most `budget_s` seconds; False if none came in time."""
        ends = time.monotonic() + budget_s
        async with self._lock:
            while (wait := self.take()) > 0:
                if time.monotonic() + wait > ends:
                    return False
                await asyncio.sleep(wait)
            return True
