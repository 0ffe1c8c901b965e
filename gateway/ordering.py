"""Placing orders safely: idempotency keys, the journal, and reconciling unknown outcomes.

An order is never sent twice for one Idempotency-Key: the key is claimed in the store before
the provider is called, concurrent requests with it wait for the first one's outcome, and an
outcome that is unknown is looked up at the provider instead of being placed again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from adapters.base import Page, ProviderAdapter
from gateway.catalogue import Catalogue, Member, Target
from gateway.errors import (
    GatewayError,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    OrderOutcomeUnknown,
    ProviderError,
)
from gateway.fanout import Deadline, call_one
from gateway.journal import OrderJournal, new_attempt
from gateway.links import LinkRewriter
from gateway.orders import (
    check_order_parameters,
    fingerprint,
    member_for,
    namespace_order,
    same_order,
    upstream_order,
)
from gateway.searches import BASE_PLACEHOLDER

log = structlog.get_logger("gateway.orders")

# How far back a provider's order may be stamped and still match an attempt (clock skew).
_SKEW_S = 120.0
_LOOKUP_PAGES = 5
_POLL_S = 0.05


class OrderDesk:
    """Places orders through the journal and reconciles the ones whose outcome is unknown."""

    def __init__(self, journal: OrderJournal, catalogue: Catalogue, deadline_s: float) -> None:
        self.journal = journal
        self.catalogue = catalogue
        self._deadline_s = deadline_s
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(
        self, *, client: str, target: Target, order: dict[str, Any], idempotency_key: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        """The placed attempt (its `order` carries the placeholder base); raises on failure."""
        member = member_for(target, order)
        schema = await self.catalogue.order_schema(member, deadline)
        check_order_parameters(schema, order["order_parameters"])
        sent = upstream_order(order)
        digest = fingerprint(target.product_id, {**sent, "product_id": member.gateway_id})
        attempt = new_attempt(client, target.product_id, member.gateway_id, sent, digest, idempotency_key)
        if idempotency_key is not None:
            existing = await self.journal.claim(client, idempotency_key, attempt["id"])
            if existing is not None:
                return await self._replay(existing, attempt, member, deadline)
        return await self._send(attempt, member, deadline)

    async def _send(self, attempt: dict[str, Any], member: Member, deadline: Deadline) -> dict[str, Any]:
        await self.journal.save(attempt)  # before the call: a crash mid-call leaves a trace
        adapter = member.provider.adapter
        try:
            created = await call_one(
                member.provider.id, lambda: adapter.create_order(member.product_id, attempt["sent"]), deadline
            )
        except ProviderError as exc:
            attempt["error"] = {"code": exc.code, "detail": exc.detail}
            if exc.maybe_received:
                attempt["state"] = "unknown"
                await self.journal.save(attempt)
                log.warning("order_outcome_unknown", attempt=attempt["id"], member=attempt["member"])
                raise OrderOutcomeUnknown(
                    f"'{member.provider.id}' may or may not have placed the order ({exc.detail}). Retry with the "
                    "same Idempotency-Key: the gateway then looks the order up instead of placing it again.",
                    extra={"provider": member.provider.id, "attempt": attempt["id"]},
                ) from None
            attempt["state"] = "rejected"
            await self.journal.save(attempt)
            raise
        except GatewayError as exc:
            attempt.update(state="rejected", error={"code": exc.code, "detail": exc.detail})
            await self.journal.save(attempt)
            raise
        self._placed(attempt, member, created.body)
        await self.journal.save(attempt)
        return attempt

    def _placed(self, attempt: dict[str, Any], member: Member, order: dict[str, Any]) -> None:
        links = LinkRewriter.of(member.provider.settings, BASE_PLACEHOLDER)
        shown = namespace_order(order, links)
        attempt.update(state="placed", order_id=shown["id"], order=shown, error=None)

    async def _replay(
        self, existing_id: str, fresh: dict[str, Any], member: Member, deadline: Deadline
    ) -> dict[str, Any]:
        """Answer a repeated key from the first attempt's outcome, waiting while it is in flight."""
        while True:
            previous = await self.journal.load(existing_id)
            if previous is not None:
                if previous["fingerprint"] != fresh["fingerprint"]:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with a different request; use a new key for a new order."
                    )
                state = previous["state"]
                if state == "placed":
                    return previous
                if state == "rejected":
                    # Nothing was placed, so trying again is safe; the key now names this attempt.
                    await self.journal.release(fresh["client"], fresh["idempotency_key"], existing_id)
                    again = await self.journal.claim(fresh["client"], fresh["idempotency_key"], fresh["id"])
                    if again is None:
                        return await self._send(fresh, member, deadline)
                    existing_id = again
                    continue
                stale = time.time() - previous["created"] > self._deadline_s + 5
                if state == "unknown" or stale:
                    return await self._reconcile_or_raise(previous, member, deadline)
            if deadline.remaining() <= _POLL_S:
                raise IdempotencyKeyInProgress(
                    "A request with this Idempotency-Key is still being processed; retry shortly."
                )
            await asyncio.sleep(_POLL_S)

    async def _reconcile_or_raise(self, attempt: dict[str, Any], member: Member, deadline: Deadline) -> dict[str, Any]:
        if await self.reconcile(attempt, member, deadline):
            return attempt
        raise OrderOutcomeUnknown(
            f"'{member.provider.id}' shows no order matching the earlier attempt, but it may still appear. "
            "The gateway will not place it again under this key; use a new Idempotency-Key to order anew.",
            extra={"provider": member.provider.id, "attempt": attempt["id"]},
        )

    async def reconcile(self, attempt: dict[str, Any], member: Member, deadline: Deadline) -> bool:
        """Look an attempt of unknown outcome up at its provider; True (and saved) if found."""
        adapter = member.provider.adapter
        token: str | None = None
        not_before = attempt["created"] - _SKEW_S
        for _ in range(_LOOKUP_PAGES):
            page = await call_one(member.provider.id, self._lister(adapter, token), deadline)
            for candidate in page.items:
                shown_id = f"{member.provider.id}:{candidate['id']}"
                if (
                    same_order(candidate, member, attempt["sent"], not_before)
                    and await self.journal.owner(shown_id) is None
                ):
                    self._placed(attempt, member, candidate)
                    await self.journal.save(attempt)
                    log.info("order_reconciled", attempt=attempt["id"], order=shown_id)
                    return True
            token = page.next_token
            if token is None:
                break
        attempt["state"] = "unknown"
        await self.journal.save(attempt)
        return False

    @staticmethod
    def _lister(adapter: ProviderAdapter, token: str | None) -> Callable[[], Awaitable[Page]]:
        return lambda: adapter.list_orders(token=token, limit=100)

    def reconcile_in_background(self, limit: int = 5) -> None:
        """Reconcile a few unresolved attempts without making the caller wait."""
        task = asyncio.create_task(self._reconcile_some(limit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconcile_some(self, limit: int) -> None:
        try:
            for attempt in await self.journal.unresolved(limit):
                stale = time.time() - attempt["created"] > self._deadline_s + 5
                if attempt["state"] == "sending" and not stale:
                    continue
                target = self.catalogue.target(attempt["product_id"])
                member = next(m for m in target.members if m.gateway_id == attempt["member"])
                await self.reconcile(attempt, member, Deadline(self._deadline_s))
        except GatewayError as exc:
            log.warning("order_reconcile_failed", code=exc.code, detail=exc.detail)
        except Exception:
            log.exception("order_reconcile_crashed")

    async def aclose(self) -> None:
        """Cancel reconciliation in flight."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
