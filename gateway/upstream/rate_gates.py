"""The gateway's rate limits: providers' `rate_per_s` and `order_rate_per_s`, vendors' per-endpoint
limits (the adapters' `RateGates`) and clients' `rate_per_s`, all as gates of the store.

With a `redis://` store a gate is one key that every replica reserves from (one round trip per
limited call, gateway/store/redis_rates.py), so a limit holds for the deployment; with `memory://`
it holds per process, as the store does. When the store fails, reservations fall back to a
ledger of this process (logged, and counted in `stapi_gateway_rate_gate_local`) for a few
seconds before the store is tried again: a limit then holds per process, but no call fails
because Redis did, and no call waits for Redis's timeout twice in a row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from adapters.client import NoRateSlot, RateGate, RateGates
from gateway.domain.errors import StoreUnavailable
from gateway.domain.ratelimit import RateLedger, Reservation
from gateway.obs.metrics import Metrics
from gateway.upstream.context import remaining_s

log = structlog.get_logger("gateway.rate_gates")

# How long reservations stay in this process after the store failed, before it is tried again.
STORE_RETRY_S = 5.0


class SharedRates(Protocol):
    """Rate gates every replica shares (the gateway's `Store`, gateway/store/base.py)."""

    async def rate_reserve(self, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        """Reserve the next slot of gate `key` if it comes within `max_wait_s`."""
        ...


class Gates:
    """Every rate gate of one gateway; `shared` None keeps them all in this process."""

    def __init__(
        self, shared: SharedRates | None, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._shared = shared
        self._metrics = metrics
        self._clock = clock
        self._local = RateLedger()
        self._local_until = 0.0

    async def reserve(self, scope: str, key: str, per_s: float, burst: float, max_wait_s: float) -> Reservation:
        """Reserve a slot of gate `scope:key` (see `Store.rate_reserve`), in this process while the store fails."""
        name = f"{scope}:{key}"
        if self._shared is not None and self._clock() >= self._local_until:
            try:
                answer = await self._shared.rate_reserve(name, per_s, burst, max_wait_s)
            except StoreUnavailable as exc:
                self._local_until = self._clock() + STORE_RETRY_S
                log.warning("rate_gates_local", reason=str(exc), retry_store_in_s=STORE_RETRY_S)
            else:
                if self._local_until:
                    self._local_until = 0.0
                    log.info("rate_gates_shared_again")
                return answer
        if self._shared is not None:
            self._metrics.rate_gate_local.labels(scope).inc()
        return self._local.reserve(name, per_s, burst, max_wait_s)

    def gate(self, key: str, per_s: float, *, burst: float = 1.0, fallback_budget_s: float) -> Gate:
        """A provider's gate: its calls wait for a slot within the request's deadline (else `fallback_budget_s`)."""
        return Gate(self, key, per_s, burst, fallback_budget_s)

    def for_provider(self, provider_id: str, fallback_budget_s: float) -> RateGates:
        """The `RateGates` an adapter of this provider gets for its vendor's per-endpoint limits."""

        def gates(name: str, per_s: float) -> RateGate:
            return self.gate(f"{provider_id}:{name}", per_s, fallback_budget_s=fallback_budget_s)

        return gates

    async def client_wait_s(self, client_id: str, per_s: float, burst: float) -> float:
        """0 when the client may send a request now (its slot taken), else seconds until it may."""
        answer = await self.reserve("client", client_id, per_s, burst, 0.0)
        return 0.0 if answer.granted else max(answer.wait_s, 1e-3)


class Gate:
    """One provider rate gate: a `RateGate` whose wait counts against the request's deadline."""

    def __init__(self, gates: Gates, key: str, per_s: float, burst: float, fallback_budget_s: float) -> None:
        self.gates, self.key, self.per_s, self.burst = gates, key, per_s, burst
        self.fallback_budget_s = fallback_budget_s

    async def wait(self) -> None:
        """Return when this call's slot comes; NoRateSlot when it would come too late in the deadline.

        A call waits for its slot at most half the time it has left, keeping the other half for the
        call itself: a slot taken just before the deadline would send a create the deadline then
        cuts off, an outcome unknown (504) instead of a clean refusal (503) that placed nothing.
        """
        left = remaining_s(self.fallback_budget_s)
        answer = await self.gates.reserve("provider", self.key, self.per_s, self.burst, max(0.0, left / 2))
        if not answer.granted:
            raise NoRateSlot(f"no slot of rate limit '{self.key}' before the deadline", retry_after_s=answer.wait_s)
        if answer.wait_s > 0:
            await asyncio.sleep(answer.wait_s)
