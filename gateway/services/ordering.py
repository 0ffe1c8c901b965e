"""Placing orders safely: idempotency keys, the journal, and orders whose outcome is unknown.

An order is never sent twice for one Idempotency-Key: the key is claimed in the store before
the provider is called; concurrent requests with it wait for the first one's outcome; a create
that may have reached the provider (5xx, lost connection, timeout, unreadable answer) is
`unknown`, keeps its key, and is looked up at the provider by the `Reconciler`, never placed again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from adapters.base import DeliberateError
from gateway.domain.attempts import AttemptError, AttemptState, OrderAttempt, Resolution
from gateway.domain.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, OrderOutcomeUnknown
from gateway.domain.federation import Member, Target
from gateway.domain.matching import create_outcome
from gateway.domain.member_choice import to_upstream
from gateway.domain.orders import check_order_parameters, fingerprint, member_for, placed_order, upstream_order
from gateway.obs.metrics import Metrics
from gateway.services.cancel_journal import CancelJournal
from gateway.services.catalogue import Catalogue
from gateway.services.fanout import Deadline, call_one
from gateway.services.journal import OrderJournal, attempt_age_s, new_attempt_id
from gateway.services.reconcile import Reconciler

log = structlog.get_logger("gateway.orders")

_POLL_S = 0.05
# A `sending` attempt older than the deadline plus this has lost its request (crash, lost write).
STALE_MARGIN_S = 5.0


class OrderDesk:
    """Places orders through the journal; unknown outcomes go to the reconciler."""

    def __init__(
        self, journal: OrderJournal, catalogue: Catalogue, reconciler: Reconciler, metrics: Metrics, deadline_s: float
    ) -> None:
        self.journal = journal
        self.cancels = CancelJournal(journal.store, journal.retention)
        self.catalogue = catalogue
        self.reconciler = reconciler
        self.metrics = metrics
        self._deadline_s = deadline_s

    async def place(
        self, *, client: str, target: Target, order: dict[str, Any], idempotency_key: str | None, deadline: Deadline
    ) -> OrderAttempt:
        """The placed attempt (its `order` carries the placeholder base); raises on failure."""
        member, order = member_for(target, order)
        schema = await self.catalogue.order_schema(member, deadline)
        # An upstream gateway's federated product: its `member` goes back into that gateway's ids.
        order = to_upstream(member.provider.id, target.product_id, schema.document, order)
        check_order_parameters(schema, order["order_parameters"])
        sent = upstream_order(order)
        attempt = OrderAttempt(
            id=new_attempt_id(),
            client=client,
            idempotency_key=idempotency_key,
            product_id=target.product_id,
            member=member.gateway_id,
            sent=sent,
            fingerprint=fingerprint(target.product_id, {**sent, "product_id": member.gateway_id}),
            state=AttemptState.SENDING,
            created=time.time(),
        )
        if idempotency_key is not None:
            existing = await self.journal.claim_key(client, idempotency_key, attempt.id)
            if existing is not None:
                return await self._replay(existing, attempt, member, deadline)
        return await self._send(attempt, member, deadline)

    async def _send(self, attempt: OrderAttempt, member: Member, deadline: Deadline) -> OrderAttempt:
        await self.journal.create(attempt)
        adapter = member.provider.adapter
        try:
            created = await call_one(
                member.provider.id,
                lambda: adapter.create_order(member.product_id, attempt.sent, reference=attempt.id),
                deadline,
            )
        except Exception as exc:
            found = await self._failed(attempt, member, exc)
            if found is not None:
                return found
            raise
        placed = placed_order(attempt, member, created.body, Resolution.ANSWER)
        self.metrics.order_outcomes.labels("placed").inc()
        # The provider placed it: the client gets its order even if the store fails right now.
        return await self.reconciler.record_placed(placed)

    async def _failed(self, attempt: OrderAttempt, member: Member, exc: Exception) -> OrderAttempt | None:
        """Journal a failed create; raise OrderOutcomeUnknown when it may have been placed.

        Returns the placed attempt when the reconciler found the order meanwhile: the client gets
        it (201), as the contract says, not the provider's error (which would read as rejected).
        """
        code = exc.code if isinstance(exc, DeliberateError) else "internal_error"
        detail = exc.detail if isinstance(exc, DeliberateError) else type(exc).__name__
        error = AttemptError(code, detail)
        now = time.time()
        if create_outcome(exc) is AttemptState.REJECTED:
            self.metrics.order_outcomes.labels("rejected").inc()
            # The provider refused this very create: evidence, even if a reconciler (this replica's
            # or another's, with a shorter deadline) has called the outcome unknown meanwhile.
            await self.journal.transition(
                attempt.id, lambda a: a.moved(AttemptState.REJECTED, now, error=error), answered=True
            )
            return None
        self.metrics.order_outcomes.labels("unknown").inc()
        if not isinstance(exc, DeliberateError):
            log.error("order_create_crashed", attempt=attempt.id, member=attempt.member, exc_info=exc)
        unknown = await self.journal.transition(
            attempt.id, lambda a: a.moved(AttemptState.UNKNOWN, now, error=error, next_check=now)
        )
        await self.journal.keep_key(attempt)
        self.reconciler.wake()
        log.warning("order_outcome_unknown", attempt=attempt.id, member=attempt.member, code=code)
        if unknown is not None and unknown.state is AttemptState.PLACED:
            return unknown  # the reconciler found it already
        raise self._unknown(attempt, member, detail) from None

    def _unknown(self, attempt: OrderAttempt, member: Member, detail: str) -> OrderOutcomeUnknown:
        pid = member.provider.id
        if attempt.gave_up:
            advice = (
                f"The gateway could not find out whether '{pid}' placed this order and has stopped looking. It "
                "will never place it again under this Idempotency-Key; the operator can see the attempt. Check "
                "GET /orders before ordering anew."
            )
        elif attempt.idempotency_key is None:
            advice = (
                f"'{pid}' may or may not have placed the order ({detail}). The request had no Idempotency-Key, so "
                "re-sending it may place a second order: check GET /orders first; the gateway is looking it up."
            )
        else:
            advice = (
                f"'{pid}' may or may not have placed the order ({detail}). Retry with the same Idempotency-Key: the "
                "gateway is looking the order up and never places it again under this key."
            )
        retry_after = max(1, round(self.reconciler.settings.scan_interval_s))
        extra = {"provider": pid, "attempt": attempt.id}
        return OrderOutcomeUnknown(advice, extra=extra, headers={"Retry-After": str(retry_after)})

    async def _replay(self, existing_id: str, fresh: OrderAttempt, member: Member, deadline: Deadline) -> OrderAttempt:
        """Answer a repeated key from the first attempt's outcome, waiting while it is in flight."""
        key = fresh.idempotency_key
        assert key is not None
        while True:
            previous = await self.journal.load(existing_id)
            if previous is None:
                # The key names an attempt never written: its request failed before anything was sent
                # (or the store lost it). Once it is surely over, the key may start this attempt instead.
                age = attempt_age_s(existing_id)
                if age is None or age > self._deadline_s + STALE_MARGIN_S:
                    holder = await self._take_key(existing_id, fresh)
                    if holder is None:
                        return await self._send(fresh, member, deadline)
                    existing_id = holder
                    continue
            else:
                if previous.fingerprint != fresh.fingerprint:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with a different request; use a new key for a new order."
                    )
                if previous.state is AttemptState.PLACED:
                    return previous
                if previous.state is AttemptState.REJECTED:
                    # Nothing was placed, so trying again is safe; the key now names this attempt.
                    holder = await self._take_key(existing_id, fresh)
                    if holder is None:
                        return await self._send(fresh, member, deadline)
                    existing_id = holder
                    continue
                stale = time.time() - previous.created > self._deadline_s + STALE_MARGIN_S
                if previous.state is AttemptState.UNKNOWN or stale:
                    return await self._await_resolution(previous, member, deadline)
            if deadline.remaining() <= _POLL_S:
                raise IdempotencyKeyInProgress(
                    "A request with this Idempotency-Key is still being processed; retry shortly."
                )
            await asyncio.sleep(_POLL_S)

    async def _take_key(self, previous_id: str, fresh: OrderAttempt) -> str | None:
        """Move the key from an attempt that placed nothing to `fresh`; None if it now names `fresh`,
        else the attempt it names instead (another request took it meanwhile)."""
        assert fresh.idempotency_key is not None
        if await self.journal.take_over(fresh.client, fresh.idempotency_key, previous_id, fresh.id):
            return None
        return await self.journal.claim_key(fresh.client, fresh.idempotency_key, fresh.id)

    async def _await_resolution(self, attempt: OrderAttempt, member: Member, deadline: Deadline) -> OrderAttempt:
        """Ask the reconciler to look now (again each scan interval), and wait within most of the deadline."""
        waited = deadline.fraction(0.8)
        every = self.reconciler.settings.scan_interval_s
        hurried = -every
        while not attempt.gave_up and waited.remaining() > _POLL_S:
            if waited.remaining() < every or time.monotonic() - hurried >= every:
                await self.reconciler.hurry(attempt)
                hurried = time.monotonic()
            await asyncio.sleep(min(_POLL_S * 4, waited.remaining()))
            current = await self.journal.load(attempt.id)
            if current is not None and current.state is AttemptState.PLACED:
                return current
            attempt = current or attempt
        detail = attempt.error.detail if attempt.error is not None else "no answer"
        raise self._unknown(attempt, member, detail)
