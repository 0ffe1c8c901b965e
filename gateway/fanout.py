"""The one primitive behind every merged route: ask N providers at once, under one deadline.

Successes and failures are collected per provider; stragglers still running at the deadline
are cancelled and counted as timed out. Failures become `federation:missing` in the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.context import deadline_remaining
from gateway.errors import AllProvidersFailed, GatewayError, ProviderError, ProviderInvalidPayload, ProviderTimeout

T = TypeVar("T")


class Deadline:
    """The time budget of one incoming request, passed down to every provider call."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._ends = time.monotonic() + budget_s

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._ends - time.monotonic())


@dataclass
class Fanout(Generic[T]):
    """What a fan-out gathered: results and failures by provider id, in the order asked."""

    results: dict[str, T] = field(default_factory=dict)
    failures: dict[str, ProviderError] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Provider ids that gave no result."""
        return list(self.failures)

    def require_any(self, what: str) -> None:
        """Raise AllProvidersFailed when providers were asked and none answered."""
        if self.failures and not self.results:
            raise AllProvidersFailed(f"No provider answered the request for {what}.", self.failures)


def _as_provider_error(provider_id: str, exc: GatewayError) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    # In a merged list even a 404 from one provider means that provider's part is missing.
    return ProviderInvalidPayload(provider_id, exc.detail)


async def call_one(provider_id: str, call: Callable[[], Awaitable[T]], deadline: Deadline) -> T:
    """One provider call bounded by the deadline; errors propagate as the gateway's own."""
    deadline_remaining.set(deadline.remaining)
    try:
        return await asyncio.wait_for(call(), timeout=deadline.remaining())
    except TimeoutError:
        detail = f"provider '{provider_id}' did not answer before the deadline"
        raise ProviderTimeout(provider_id, detail, maybe_received=True) from None


async def gather(calls: Mapping[str, Callable[[], Awaitable[T]]], deadline: Deadline) -> Fanout[T]:
    """Run every call in parallel; collect results and failures within the deadline."""
    out: Fanout[T] = Fanout()
    if not calls:
        return out
    deadline_remaining.set(deadline.remaining)
    tasks = {pid: asyncio.ensure_future(call()) for pid, call in calls.items()}
    _, pending = await asyncio.wait(tasks.values(), timeout=deadline.remaining())
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for pid, task in tasks.items():
        if task in pending:
            out.failures[pid] = ProviderTimeout(pid, f"provider '{pid}' did not answer before the deadline")
            continue
        exc = task.exception()
        if exc is None:
            out.results[pid] = task.result()
        elif isinstance(exc, GatewayError):
            out.failures[pid] = _as_provider_error(pid, exc)
        else:
            raise exc
    return out
