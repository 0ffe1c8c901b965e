"""Per-request context that reaches the transport layer without threading it through every call.

Tasks copy the context they are created in, so a deadline or call log set before a fan-out is
seen by every provider call it spawns.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# Seconds-left function of the request being served (None outside a request).
deadline_remaining: ContextVar[Any] = ContextVar("deadline_remaining", default=None)


def remaining_s(fallback: float) -> float:
    """Seconds left of the request being served; `fallback` outside a request (background work)."""
    remaining = deadline_remaining.get()
    return float(remaining()) if remaining is not None else fallback


# One dict per upstream call, for the request's canonical log line.
upstream_calls: ContextVar[list[dict[str, Any]] | None] = ContextVar("upstream_calls", default=None)
# The id of the request being served (or of a background job), sent upstream as X-Request-ID.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
