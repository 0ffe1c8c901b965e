"""Finding out what happened to orders whose outcome is unknown, in the background.

Every process runs a `Reconciler`. A pass loads the unresolved attempts from the journal and,
per provider that has an attempt due, scans the provider's order list once for all of them.
Provider calls are bounded whatever clients do: a scan of one provider starts at most once per
`scan_interval_s` across all replicas (a store key with that TTL), reads at most `max_pages`
pages, and resumes where the last one stopped. Attempts back off exponentially between
scans, wait while their provider's circuit is open, and are given up to the operator after
`horizon_s`. Matching tolerates provider defaults (`gateway.matching`); a found order is
claimed for its attempt atomically, so it can never be given to two attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from adapters.base import Page
from gateway import ids
from gateway.attempts import AttemptError, AttemptState, OrderAttempt, Resolution
from gateway.catalogue import Catalogue, Member
from gateway.errors import GatewayError, InvalidRequest, NotFound, ProviderBadStatus, StoreUnavailable
from gateway.fanout import Deadline, call_one
from gateway.journal import OrderJournal
from gateway.matching import created_at, same_order
from gateway.metrics import Metrics
from gateway.orders import placed_order
from gateway.providers import Provider

log = structlog.get_logger("gateway.orders")

# How far before an attempt a provider may stamp its order and still match it (clock skew).
SKEW_S = 120.0
_MAX_ATTEMPTS_PER_PASS = 500


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


@dataclass(frozen=True, slots=True)
class ScanPosition:
    """Where the next scan of a provider's order list starts.

    `token` resumes a scan cut short by the page budget; `checkpoint` skips pages whose orders
    are all older than `checkpoint_before`, which no attempt that is newer can match.
    """

    token: str | None = None
    checkpoint: str | None = None
    checkpoint_before: float = 0.0

    def start(self, threshold: float) -> str | None:
        """The token to start from for attempts no older than `threshold`."""
        if threshold < self.checkpoint_before:
            return None
        return self.token or self.checkpoint


def _placing(member: Member, order: dict[str, Any]) -> Callable[[OrderAttempt], OrderAttempt]:
    return lambda attempt: placed_order(attempt, member, order, Resolution.RECONCILED)


def _member(provider: Provider, attempt: OrderAttempt) -> Member:
    parts = ids.split(attempt.member)
    return Member(provider, parts[1] if parts else attempt.member)


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
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run passes in the background until `stop`."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the passes; try once more to write what the store refused."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._flush_deferred()
        except StoreUnavailable:
            log.error("order_journal_lost", attempts=sorted(self._deferred))

    def wake(self) -> None:
        """Run a pass soon (an attempt just became unknown, or a client is waiting)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.run_once()
            except StoreUnavailable as exc:
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
            await self.journal.record_placed(placed)
            del self._deferred[attempt_id]
            log.info("order_journal_written", attempt=attempt_id, order=placed.order_id)
        self.metrics.journal_deferred.set(len(self._deferred))

    async def run_once(self) -> None:
        """One pass over every unresolved attempt."""
        await self._flush_deferred()
        attempts = await self.journal.unresolved(_MAX_ATTEMPTS_PER_PASS)
        groups: dict[str, list[OrderAttempt]] = {}
        for attempt in attempts:
            groups.setdefault(attempt.provider, []).append(attempt)
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
        scan_lock = f"reconcile-scan:{pid}"
        if not await self.journal.store.set_if_absent(scan_lock, b"1", self.settings.scan_interval_s):
            return  # scanned moments ago, here or by another replica
        found = await self._scan(provider, live, threshold)
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

    # --- scanning a provider's orders ------------------------------------------------

    async def _position(self, pid: str) -> ScanPosition:
        raw = await self.journal.store.get(f"reconcile-position:{pid}")
        if raw is None:
            return ScanPosition()
        data = orjson.loads(raw)
        return ScanPosition(data.get("token"), data.get("checkpoint"), float(data.get("checkpoint_before", 0.0)))

    async def _save_position(self, pid: str, position: ScanPosition) -> None:
        body = {
            "token": position.token,
            "checkpoint": position.checkpoint,
            "checkpoint_before": position.checkpoint_before,
        }
        await self.journal.store.set(f"reconcile-position:{pid}", orjson.dumps(body), self.journal.retention.orders_s)

    async def _scan(self, provider: Provider, attempts: list[OrderAttempt], threshold: float) -> set[str]:
        """Read the provider's orders (within the page budget); the ids of attempts found."""
        s, pid = self.settings, provider.id
        position = await self._position(pid)
        token = position.start(threshold)
        pending = [a for a in attempts if a.state is AttemptState.UNKNOWN]
        found: set[str] = set()
        checkpoint = position.checkpoint if threshold >= position.checkpoint_before else None
        checkpoint_before = position.checkpoint_before if checkpoint else 0.0
        at_end = False
        for _ in range(s.max_pages):
            try:
                page = await call_one(pid, self._lister(provider, token), Deadline(s.deadline_s))
            except (InvalidRequest, NotFound, ProviderBadStatus) as exc:
                log.warning("order_reconcile_restart", provider=pid, code=exc.code)
                await self._save_position(pid, ScanPosition())
                return found
            except GatewayError as exc:
                log.warning("order_reconcile_failed", provider=pid, code=exc.code)
                return found
            finally:
                self.metrics.reconcile_calls.labels(pid).inc()
            for candidate in page.items:
                match = await self._claim(provider, candidate, pending)
                if match is not None:
                    pending.remove(match)
                    found.add(match.id)
            stamps = [t for t in (created_at(c) for c in page.items) if t is not None]
            descending = len(stamps) >= 2 and stamps[0] > stamps[-1]
            if stamps and max(stamps) < threshold and not descending and page.next_token:
                checkpoint, checkpoint_before = page.next_token, max(stamps)
            token = page.next_token
            if token is None or (descending and stamps and min(stamps) < threshold):
                at_end = True
                break
            if not pending:
                break
        resume = None if at_end else token
        await self._save_position(pid, ScanPosition(resume, checkpoint, checkpoint_before))
        return found

    def _lister(self, provider: Provider, token: str | None) -> Callable[[], Awaitable[Page]]:
        adapter, size = provider.adapter, self.settings.page_size
        return lambda: adapter.list_orders(token=token, limit=size)

    async def _claim(
        self, provider: Provider, candidate: dict[str, Any], pending: list[OrderAttempt]
    ) -> OrderAttempt | None:
        """The attempt this provider order belongs to, now placed with it; None if it is nobody's here."""
        for attempt in pending:
            member = _member(provider, attempt)
            if not same_order(candidate, member.product_id, attempt.sent, attempt.created - SKEW_S):
                continue
            order_id = ids.namespaced(provider.id, str(candidate.get("id")))
            if not await self.journal.claim(attempt, order_id):
                return None  # another attempt (or a direct answer) already has this order
            stored = await self.journal.transition(attempt.id, _placing(member, candidate))
            if stored is not None and stored.order_id == order_id:
                self.metrics.order_outcomes.labels("reconciled").inc()
                log.info("order_reconciled", attempt=attempt.id, order=order_id)
                return attempt
            await self.journal.unclaim(attempt, order_id)
            return None
        return None
