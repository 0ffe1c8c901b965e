"""Spacing the calls Umbra limits most (create task, create feasibility: 2 a second each), per process.

The default `RateGates` of an adapter built without the gateway's (tests, tools): the gateway
injects gates over its store, shared by replicas with redis://. Umbra's limits are per
organisation, so per-process pacing alone lets replicas together exceed them; a 429 then comes
back as an error (a feasibility is retried by the gateway's read policy, a task create never is)
and creates nothing, so nothing is ever placed twice.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Lets one call through every `1 / per_s` seconds, in arrival order (a `RateGate` that always waits)."""

    def __init__(self, per_s: float) -> None:
        self._interval = 1.0 / per_s
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when the next call may be sent."""
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


def local_gates(name: str, per_s: float) -> Pacer:
    """A gate of this process only: `RateGates` when the gateway injects none."""
    return Pacer(per_s)
