"""The one primitive behind every merged route: ask N providers at once, under one deadline.

Successes and failures are collected per provider; stragglers still running at the deadline
are cancelled and counted as timed out. Failures become `federation:missing` in the answer.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

from adapters.base import (
    DeliberateError,
    NotFound,
    ProviderError,
    ProviderFailedBehind,
    ProviderInvalidPayload,
    ProviderTimeout,
)
from gateway.domain.errors import AllProvidersFailed
from gateway.upstream.context import deadline_remaining

T = TypeVar("T")

log = structlog.get_logger("gateway.fanout")


class Deadline:
    """The time budget of one incoming request, passed down to every provider call."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._ends = time.monotonic() + budget_s

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._ends - time.monotonic())

    def fraction(self, share: float) -> Deadline:
        """A deadline ending after `share` of the time left, for a step that must leave room for others."""
        return Deadline(self.remaining() * share)

    def inner(self, margin_s: float) -> Deadline:
        """A deadline `margin_s` earlier, for a fan-out nested in another: it ends first and reports."""
        return Deadline(max(0.0, self.remaining() - margin_s))


def provider_of(key: str) -> str:
    """The provider behind a fan-out key: a provider id, or a `provider:product` member id."""
    return key.partition(":")[0] or key


@dataclass
class Fanout(Generic[T]):
    """What a fan-out gathered: results and errors by key (provider or member id), in the order asked."""

    results: dict[str, T] = field(default_factory=dict)
    failures: dict[str, DeliberateError] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Provider ids that gave no result (each once); for an upstream gateway that answered that
        providers behind it failed, those (`g1:bravo`)."""
        found: list[str] = []
        for key, error in self.failures.items():
            found.extend(error.behind if isinstance(error, ProviderFailedBehind) else [provider_of(key)])
        return list(dict.fromkeys(found))

    def require_any(self, what: str) -> None:
        """When providers were asked and none answered: the client's own mistake if a provider
        said so (a 422 from every member is still a 422), else AllProvidersFailed."""
        if not self.failures or self.results:
            return
        for error in self.failures.values():
            if not isinstance(error, ProviderError | NotFound):
                raise error
        raise AllProvidersFailed(
            f"No provider answered the request for {what}.",
            {key: _as_provider_error(key, error) for key, error in self.failures.items()},
        )


def _as_provider_error(key: str, exc: DeliberateError) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    # In a merged answer even a 404 from one provider means that provider's part is missing.
    return ProviderInvalidPayload(provider_of(key), exc.detail)


def unexpected_failure(provider_id: str, exc: BaseException) -> ProviderError:
    """An exception that is not the gateway's own, raised inside one provider's call, as that
    provider's failure: whatever the transport or the adapter tripped over (a latin-1 header,
    a bug), one provider must not break an answer that others contribute to.

    Logged with the exception's type and where it was raised; not its message, which may quote
    what the provider sent or was sent.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    log.error("provider_call_failed", provider=provider_id, error=exc.__class__.__name__, where=where)
    detail = f"provider '{provider_id}' failed unexpectedly ({exc.__class__.__name__})"
    return ProviderError(provider_id, detail, maybe_received=True)


async def call_one(provider_id: str, call: Callable[[], Awaitable[T]], deadline: Deadline) -> T:
    """One provider call bounded by the deadline; errors propagate as the gateway's own."""
    deadline_remaining.set(deadline.remaining)
    try:
        # asyncio.timeout, unlike wait_for, does not wrap the call in a task of its own.
        async with asyncio.timeout(deadline.remaining()):
            return await call()
    except TimeoutError:
        detail = f"provider '{provider_id}' did not answer before the deadline"
        raise ProviderTimeout(provider_id, detail, maybe_received=True) from None
    except DeliberateError:
        raise
    except Exception as exc:
        raise unexpected_failure(provider_id, exc) from None


async def gather(calls: Mapping[str, Callable[[], Awaitable[T]]], deadline: Deadline) -> Fanout[T]:
    """Run every call in parallel; collect results and errors within the deadline."""
    out: Fanout[T] = Fanout()
    if not calls:
        return out
    deadline_remaining.set(deadline.remaining)
    tasks = {key: asyncio.ensure_future(call()) for key, call in calls.items()}
    try:
        _, pending = await asyncio.wait(tasks.values(), timeout=deadline.remaining())
    finally:
        # Also when this fan-out is itself cancelled: no provider call may outlive it.
        pending = {task for task in tasks.values() if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    for key, task in tasks.items():
        if task in pending:
            pid = provider_of(key)
            out.failures[key] = ProviderTimeout(pid, f"provider '{pid}' did not answer before the deadline")
            continue
        exc = task.exception()
        if exc is None:
            out.results[key] = task.result()
        elif isinstance(exc, DeliberateError):
            out.failures[key] = exc
        else:
            out.failures[key] = unexpected_failure(provider_of(key), exc)
    return out
