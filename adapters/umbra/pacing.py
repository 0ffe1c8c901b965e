"""Spacing the calls Umbra limits most (create task, create feasibility: 2 a second each).

Per process: Umbra's limits are per organisation, so replicas together can still exceed them;
a 429 then comes back as an error (a feasibility is retried by the gateway's read policy, a task
create never is) and creates nothing, so nothing is ever placed twice.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Lets one call through every `1 / per_s` seconds, in arrival order."""

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
