"""A token bucket: the one rate limiter, for providers' limits and clients' request rates."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

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
