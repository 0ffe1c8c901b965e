"""A provider wrapper that notes when order creations reach it, and the most of them in any second."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send


class CreateClock:
    """A provider that notes when each order creation reaches it (on its own clock)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrivals: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Note a create's arrival, then serve it."""
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/orders"):
            self.arrivals.append(time.monotonic())
        await self.app(scope, receive, send)


def most_in_a_second(arrivals: list[float]) -> int:
    """The most arrivals in any closed 1 s window."""
    times = sorted(arrivals)
    return max((sum(1 for t in times[i:] if t - start <= 1.0) for i, start in enumerate(times)), default=0)
