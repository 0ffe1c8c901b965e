"""Finding out what happened to orders whose outcome is unknown, in the background.

Every process runs a `Reconciler`. A pass loads the unresolved attempts from the journal and,
per provider that has an attempt due, scans the provider's order list once for all of them.
Provider calls are bounded whatever clients do: a scan of one provider starts at most once per
`scan_interval_s` across all replicas (a store key with that TTL), reads at most `max_pages`
pages, and resumes where the last one stopped. Attempts back off exponentially between
scans, wait while their provider's circuit is open, and are given up to the operator after
`horizon_s`. Matching tolerates provider defaults (`gateway.domain.matching`); a found order is
claimed for its attempt atomically, so it can never be given to two attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog

from adapters.base import NotFound, ProviderInvalidPayload
from gateway.aio.tasks import stop_task, wait_event
from gateway.domain.attempts import AttemptError, AttemptState, OrderAttempt
from gateway.domain.errors import StoreUnavailable
from gateway.obs.metrics import Metrics
from gateway.services.catalogue import Catalogue
from gateway.services.journal import OrderJournal
from gateway.services.order_scan import SKEW_S, OrderListScan
from gateway.upstream.context import request_id
from gateway.upstream.stamp import new_request_id

log = structlog.get_logger("gateway.orders")

# Attempts of one provider a pass looks at (the oldest first).
_MAX_ATTEMPTS_PER_PROVIDER = 200


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """How hard and how long the gateway looks for orders of unknown outcome."""

    deadline_s: float
    # A `sending` attempt this old has lost its request (crash, or the journal write failed).
    stale_after_s: float
    interval_s: float = 2.0
    scan_interval_s: float = 5.0
    max_pages: int = 10
    page_size: int = 100
    backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    horizon_s: float = 86_400.0

    @property
    def max_calls_per_minute(self) -> float:
        """The most list calls one provider can get from reconciliation in a minute, all replicas together."""
        return 60.0 / self.scan_interval_s * self.max_pages


class Reconciler:
    """Resolves unknown order outcomes at their providers; also keeps journal writes the store refused."""

    def __init__(self, journal: OrderJournal, catalogue: Catalogue, metrics: Metrics, settings: ReconcileSettings):
        self.journal = journal
        # Swapped by a reload, like the search runner's.
        self.catalogue = catalogue
        self.metrics = metrics
        self.settings = settings
        self._wake = asyncio.Event()
        self._deferred: dict[str, OrderAttempt] = {}
        self._counted: set[str] = set()
        # Whether this process has made sure every unresolved attempt is in its provider's index.
        self._indexed = False
        self._task: asyncio.Task[None] | None = None
        self._scanner = OrderListScan(
            journal, metrics, pages=settings.max_pages, page_size=settings.page_size, deadline_s=settings.deadline_s
        )

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run passes in the background until `stop`."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the passes; try once more to write what the store refused."""
        await stop_task(self._task)
        try:
            await self._flush_deferred()
        except StoreUnavailable:
            log.error("order_journal_lost", attempts=sorted(self._deferred))

    def wake(self) -> None:
        """Run a pass soon (an attempt just became unknown, or a client is waiting)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await wait_event(self._wake, self.settings.interval_s)
            self._wake.clear()
            request_id.set(new_request_id("reconcile"))  # one per pass: its upstream calls' X-Request-ID
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                self.metrics.store_errors.labels("order_reconcile").inc()
                log.warning("order_reconcile_store_unavailable", detail=exc.detail)
            except Exception:
                log.exception("order_reconcile_crashed")

    # --- what the order desk asks ----------------------------------------------------

    async def record_placed(self, placed: OrderAttempt) -> OrderAttempt:
        """Journal a placed order; if the store refuses, keep it and retry, and answer anyway."""
        try:
            return await self.journal.record_placed(placed)
        except StoreUnavailable as exc:
            self._deferred[placed.id] = placed
            self.metrics.journal_deferred.set(len(self._deferred))
            log.error("order_journal_deferred", attempt=placed.id, order=placed.order_id, detail=exc.detail)
            return placed

    async def hurry(self, attempt: OrderAttempt) -> None:
        """Make an attempt due now (a client retried it) and wake the loop."""
        now = time.time()
        await self.journal.transition(
            attempt.id, lambda a: None if a.next_check <= now else a.moved(a.state, now, next_check=now)
        )
        self.wake()

    # --- one pass --------------------------------------------------------------------

    async def _flush_deferred(self) -> None:
        for attempt_id, placed in list(self._deferred.items()):
            with contextlib.suppress(ProviderInvalidPayload):  # another client's order: rejected, and logged
                await self.journal.record_placed(placed)
            del self._deferred[attempt_id]
            log.info("order_journal_written", attempt=attempt_id, order=placed.order_id)
        self.metrics.journal_deferred.set(len(self._deferred))

    async def run_once(self) -> None:
        """One pass over every unresolved attempt."""
        await self._flush_deferred()
        if not self._indexed:
            if moved := await self.journal.index_by_provider():
                log.info("order_attempts_indexed_by_provider", attempts=moved)
            self._indexed = True
        groups: dict[str, list[OrderAttempt]] = {}
        for provider in self.catalogue.providers:
            # Each provider's oldest: a provider down with a backlog can't keep others' waiting.
            if attempts := await self.journal.unresolved(_MAX_ATTEMPTS_PER_PROVIDER, provider=provider.id):
                groups[provider.id] = attempts
        for pid in self._counted | set(groups):
            self.metrics.order_attempts_unresolved.labels(pid).set(len(groups.get(pid, [])))
        self._counted = set(groups)
        await asyncio.gather(*(self._provider_pass(pid, group) for pid, group in groups.items()))

    async def _provider_pass(self, pid: str, group: list[OrderAttempt]) -> None:
        try:
            provider = self.catalogue.providers.get(pid)
        except NotFound:
            return  # no longer configured: the attempts wait for the operator
        now = time.time()
        threshold = min(a.created for a in group) - SKEW_S
        live: list[OrderAttempt] = []
        for attempt in group:
            current = await self._settle_age(attempt, now)
            if current is not None:
                live.append(current)
        due = [a for a in live if a.next_check <= now]
        if not due or not provider.breaker.healthy:
            return  # nothing to do, or the circuit is open: wait until it may probe again
        if provider.adapter.finds_orders_by_reference:
            # One exact lookup per due attempt (each backs off on its own): no scan, no scan budget.
            found = await self._scanner.look_up(provider, [a for a in due if a.state is AttemptState.UNKNOWN])
        else:
            scan_lock = f"reconcile-scan:{pid}"
            if not await self.journal.store.set_if_absent(scan_lock, b"1", self.settings.scan_interval_s):
                return  # scanned moments ago, here or by another replica
            found = await self._scanner.scan(provider, live, threshold)
        for attempt in due:
            if attempt.id not in found:
                await self._back_off(attempt, now)

    async def _settle_age(self, attempt: OrderAttempt, now: float) -> OrderAttempt | None:
        """Give up on attempts past the horizon; turn `sending` ones whose request is lost into unknown."""
        s = self.settings
        if now - attempt.created > s.horizon_s:
            await self.journal.transition(attempt.id, lambda a: a.moved(AttemptState.UNKNOWN, now, gave_up=True))
            self.metrics.order_outcomes.labels("abandoned").inc()
            log.error("order_outcome_abandoned", attempt=attempt.id, member=attempt.member, client=attempt.client)
            return None
        if attempt.state is not AttemptState.SENDING:
            return attempt
        if now - attempt.created <= s.stale_after_s:
            return None  # its own request may still answer
        lost = AttemptError("order_outcome_unknown", "the gateway lost the provider's answer")

        def to_unknown(a: OrderAttempt) -> OrderAttempt | None:
            return (
                a.moved(AttemptState.UNKNOWN, now, error=lost, next_check=now)
                if a.state is AttemptState.SENDING
                else None
            )

        current = await self.journal.transition(attempt.id, to_unknown)
        if current is None or current.state.final:
            return None
        await self.journal.keep_key(current)
        return current

    async def _back_off(self, attempt: OrderAttempt, now: float) -> None:
        s = self.settings

        def later(a: OrderAttempt) -> OrderAttempt | None:
            if a.state is not AttemptState.UNKNOWN:
                return None
            delay = min(s.backoff_s * 2.0**a.checks, s.max_backoff_s)
            return a.moved(a.state, now, checks=a.checks + 1, next_check=now + delay)

        await self.journal.transition(attempt.id, later)
