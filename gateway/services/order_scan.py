"""Scanning a provider's order list for orders whose answer was lost, within a page budget.

One scan serves every unresolved attempt of a provider. It resumes where the previous scan of
that provider stopped (the position is in the store, so any replica continues it) and skips
pages older than every attempt. A matching order is claimed for its attempt atomically.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
import structlog

from adapters.base import DeliberateError, InvalidRequest, NotFound, Page, ProviderBadStatus
from gateway.domain import ids
from gateway.domain.attempts import AttemptState, OrderAttempt, Resolution
from gateway.domain.federation import Member
from gateway.domain.matching import created_at, same_order
from gateway.domain.orders import placed_order
from gateway.obs.metrics import Metrics
from gateway.services.fanout import Deadline, call_one
from gateway.services.journal import OrderJournal
from gateway.upstream.providers import Provider

log = structlog.get_logger("gateway.orders")

# How far before an attempt a provider may stamp its order and still match it (clock skew).
SKEW_S = 120.0


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


class OrderListScan:
    """Reads providers' order lists for the reconciler and claims the orders it recognises."""

    def __init__(self, journal: OrderJournal, metrics: Metrics, *, pages: int, page_size: int, deadline_s: float):
        self.journal, self.metrics = journal, metrics
        self.pages, self.page_size, self.deadline_s = pages, page_size, deadline_s

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

    async def scan(self, provider: Provider, attempts: list[OrderAttempt], threshold: float) -> set[str]:
        """Read the provider's orders (within the page budget); the ids of attempts found."""
        pid = provider.id
        position = await self._position(pid)
        token = position.start(threshold)
        pending = [a for a in attempts if a.state is AttemptState.UNKNOWN]
        found: set[str] = set()
        checkpoint = position.checkpoint if threshold >= position.checkpoint_before else None
        checkpoint_before = position.checkpoint_before if checkpoint else 0.0
        at_end = False
        for _ in range(self.pages):
            try:
                page = await call_one(pid, self._lister(provider, token), Deadline(self.deadline_s))
            except (InvalidRequest, NotFound, ProviderBadStatus) as exc:
                log.warning("order_reconcile_restart", provider=pid, code=exc.code)
                await self._save_position(pid, ScanPosition())
                return found
            except DeliberateError as exc:
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
        adapter, size = provider.adapter, self.page_size
        return lambda: adapter.list_orders(token=token, limit=size)

    async def _claim(
        self, provider: Provider, candidate: dict[str, Any], pending: list[OrderAttempt]
    ) -> OrderAttempt | None:
        """The attempt this provider order belongs to, now placed with it; None if it is nobody's here."""
        for attempt in pending:
            member = _member(provider, attempt)
            if same_order(candidate, member.product_id, attempt.sent, attempt.created - SKEW_S):
                return attempt if await self._place(provider, candidate, attempt) else None
        return None

    async def look_up(self, provider: Provider, attempts: list[OrderAttempt]) -> set[str]:
        """Ask a provider that keeps the gateway's reference for each attempt's order by it (its id):
        exact, no listing, no guessing. The ids of attempts found."""
        found: set[str] = set()
        for attempt in attempts:
            try:
                lookup = partial(provider.adapter.find_order, attempt.id)
                candidate = await call_one(provider.id, lookup, Deadline(self.deadline_s))
            except DeliberateError as exc:
                log.warning("order_reconcile_failed", provider=provider.id, code=exc.code)
                return found
            finally:
                self.metrics.reconcile_calls.labels(provider.id).inc()
            if candidate is not None and await self._place(provider, candidate, attempt):
                found.add(attempt.id)
        return found

    async def _place(self, provider: Provider, candidate: dict[str, Any], attempt: OrderAttempt) -> bool:
        """Claim the provider order for the attempt and journal it placed; False if another has it."""
        member = _member(provider, attempt)
        order_id = ids.namespaced(provider.id, str(candidate.get("id")))
        if not await self.journal.claim(attempt, order_id):
            return False  # another attempt (or a direct answer) already has this order
        stored = await self.journal.transition(attempt.id, _placing(member, candidate))
        if stored is not None and stored.order_id == order_id:
            self.metrics.order_outcomes.labels("reconciled").inc()
            log.info("order_reconciled", attempt=attempt.id, order=order_id)
            return True
        await self.journal.unclaim(attempt, order_id)
        return False
