"""The order journal: every attempt to place an order, and the keys that point at attempts.

An attempt is `sending` while the provider call runs, then `placed` (with the order),
`rejected` (nothing was placed: the provider said 4xx, or nothing was sent) or `unknown` (the
provider may have placed it). Every change is a compare-and-set on the stored attempt, so a
writer that read an old state can never overwrite a newer one: `placed` and `rejected` are
final, and `unknown` only ever moves on to `placed`.

An Idempotency-Key maps to the attempt it started; a placed order maps to the client that owns
it. Unresolved attempts are indexed so the reconciler can look them up at their provider.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from adapters.base import ProviderInvalidPayload
from gateway.domain.attempts import AttemptError, AttemptState, OrderAttempt
from gateway.domain.errors import StoreUnavailable
from gateway.services.tracked_orders import TrackedOrders
from gateway.store import Store

log = structlog.get_logger("gateway.orders")

UNRESOLVED = "order-attempts-unresolved"
ABANDONED = "order-attempts-abandoned"


def unresolved_at(provider_id: str) -> str:
    """One provider's unresolved attempts (besides UNRESOLVED, which holds every provider's): the
    reconciler reads each provider's own, so one provider's backlog never hides another's."""
    return f"{UNRESOLVED}:{provider_id}"


def _unresolved_indexes(attempt: OrderAttempt) -> tuple[str, str]:
    return UNRESOLVED, unresolved_at(attempt.provider)


# Compare-and-set retries: each lost race means another writer made progress; a little jitter
# after each keeps a crowd of writers on one attempt from colliding again and again.
_CAS_TRIES = 50
_CAS_JITTER_S = 0.002


def _attempt_key(attempt_id: str) -> str:
    return f"order-attempt:{attempt_id}"


def _idempotency_key(client: str, key: str) -> str:
    return f"idempotency:{client}:{key}"


def _owner_key(order_id: str) -> str:
    return f"order-owner:{order_id}"


def _claim_key(order_id: str) -> str:
    return f"order-claim:{order_id}"


def new_attempt_id() -> str:
    """A unique attempt id that starts with its creation time in milliseconds (hex)."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


def attempt_age_s(attempt_id: str) -> float | None:
    """How long ago an attempt id was minted, or None when the id does not say (older layout)."""
    if len(attempt_id) != 32:
        return None
    try:
        minted_ms = int(attempt_id[:12], 16)
    except ValueError:
        return None
    age = time.time() - minted_ms / 1000
    # A uuid4 of the old layout read as a timestamp lands far from now; only believe plausible ages.
    return age if 0 <= age < 10 * 365 * 86_400 else None


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of journal entry lives."""

    idempotency_s: float
    # Attempts, and owners of placed orders: as long as providers list orders (default 90 days).
    orders_s: float


class OrderJournal:
    """Attempts, idempotency keys and order ownership in the store."""

    def __init__(self, store: Store, retention: Retention, tracking: TrackedOrders | None = None) -> None:
        self.store = store
        self.retention = retention
        # Where placed orders are registered for status tracking (None: not tracked, e.g. the operator CLI).
        self.tracking = tracking

    # --- idempotency keys ------------------------------------------------------------

    async def claim_key(self, client: str, key: str, attempt_id: str) -> str | None:
        """Bind an idempotency key to an attempt; the attempt it already names, if taken."""
        name = _idempotency_key(client, key)
        for _ in range(_CAS_TRIES):
            if await self.store.set_if_absent(name, attempt_id.encode(), self.retention.idempotency_s):
                return None
            existing = await self.store.get(name)
            if existing is not None:
                return existing.decode()
            # The key expired between the two calls: take it again.
        raise StoreUnavailable("The idempotency key could not be claimed: it keeps changing.")

    async def take_over(self, client: str, key: str, old_id: str, new_id: str) -> bool:
        """Rebind a key from one attempt to another, only if it still names the old one."""
        name = _idempotency_key(client, key)
        return await self.store.set_if_equals(name, old_id.encode(), new_id.encode(), self.retention.idempotency_s)

    async def keep_key(self, attempt: OrderAttempt) -> None:
        """Hold an unknown attempt's key as long as its order could exist, so expiry never frees it."""
        if attempt.idempotency_key is None:
            return
        name = _idempotency_key(attempt.client, attempt.idempotency_key)
        value = attempt.id.encode()
        await self.store.set_if_equals(name, value, value, self.retention.orders_s)

    async def release(self, client: str, key: str, attempt_id: str) -> None:
        """Unbind an idempotency key, if it still names this attempt."""
        await self.store.delete_if_equals(_idempotency_key(client, key), attempt_id.encode())

    # --- attempts --------------------------------------------------------------------

    async def create(self, attempt: OrderAttempt) -> None:
        """Write a new attempt (before its provider call: a crash mid-call leaves a trace).

        Index first: if the store fails between the two writes, an index entry without an attempt
        is dropped by the next `unresolved()`, while an attempt left out of the index could stay
        `sending` unnoticed. If the attempt write fails nothing is sent, and its key is taken over.
        """
        await self._index(attempt)
        await self.store.set(_attempt_key(attempt.id), attempt.to_json(), self.retention.orders_s)

    async def load(self, attempt_id: str) -> OrderAttempt | None:
        """An attempt, or None when it expired or was never written."""
        data = await self.store.get(_attempt_key(attempt_id))
        return None if data is None else OrderAttempt.from_json(data)

    async def transition(
        self, attempt_id: str, change: Callable[[OrderAttempt], OrderAttempt | None], *, answered: bool = False
    ) -> OrderAttempt | None:
        """Apply `change` to the stored attempt atomically; the attempt as stored afterwards.

        `change` gets the current attempt and returns the new one, or None for no change. It is
        never called on a final attempt, and it may run more than once when writers race.
        None is returned only when the attempt does not exist. `answered`: the change is the
        provider's answer to the create, which may settle an outcome a reconciler called unknown.
        """
        name = _attempt_key(attempt_id)
        for tried in range(_CAS_TRIES):
            if tried:
                await asyncio.sleep(random.uniform(0, _CAS_JITTER_S * tried))
            raw = await self.store.get(name)
            if raw is None:
                return None
            current = OrderAttempt.from_json(raw)
            if current.state.final:
                return current
            new = change(current)
            if new is None:
                return current
            current.state.check_move(new.state, answered=answered)
            if await self.store.set_if_equals(name, raw, new.to_json(), self.retention.orders_s):
                await self._index(new)
                return new
        raise StoreUnavailable(f"The order attempt {attempt_id} could not be updated: it keeps changing.")

    async def _index(self, attempt: OrderAttempt) -> None:
        if attempt.state.final:
            await self._settled(attempt)
        elif attempt.gave_up:
            await self._unindex(attempt)
            await self.store.index_add(ABANDONED, attempt.id, attempt.created, self.retention.orders_s)
            await self.store.index_remove_below(ABANDONED, time.time() - self.retention.orders_s)
        else:
            for index in _unresolved_indexes(attempt):
                await self.store.index_add(index, attempt.id, attempt.created, self.retention.orders_s)

    async def _unindex(self, attempt: OrderAttempt) -> None:
        for index in _unresolved_indexes(attempt):
            await self.store.index_remove(index, attempt.id)

    async def _settled(self, attempt: OrderAttempt, *, abandoned: bool = False) -> None:
        """Take a final attempt out of the unresolved indexes, a placed one registered for tracking
        first: every attempt is indexed from its creation until this, so a process killed between
        the state change and here leaves the entry for the next `unresolved()` to finish."""
        if attempt.state is AttemptState.PLACED and self.tracking is not None:
            await self.tracking.register(attempt)
        if abandoned:
            await self.store.index_remove(ABANDONED, attempt.id)
        else:
            await self._unindex(attempt)

    async def index_by_provider(self, page: int = 500) -> int:
        """Put every unresolved attempt in its provider's index too (attempts journaled before those
        indexes existed are only in UNRESOLVED); how many. Idempotent; cost: the backlog, once."""
        count, after = 0, None
        while rows := await self.store.index_page(UNRESOLVED, limit=page, after=after):
            for attempt in await self._loaded(rows, UNRESOLVED, abandoned=False):
                await self.store.index_add(
                    unresolved_at(attempt.provider), attempt.id, attempt.created, self.retention.orders_s
                )
                count += 1
            after = (rows[-1][1], rows[-1][0])
        return count

    async def unresolved(
        self, limit: int, *, abandoned: bool = False, provider: str | None = None
    ) -> list[OrderAttempt]:
        """The oldest attempts whose outcome is not known, of one provider if given (or that the
        reconciler gave up on)."""
        index = ABANDONED if abandoned else UNRESOLVED if provider is None else unresolved_at(provider)
        return await self._loaded(await self.store.index_page(index, limit=limit), index, abandoned=abandoned)

    async def _loaded(self, rows: list[tuple[str, float]], index: str, *, abandoned: bool) -> list[OrderAttempt]:
        """The attempts an index page names, still open; final or vanished ones leave the index."""
        out = []
        for attempt_id, _ in rows:
            attempt = await self.load(attempt_id)
            if attempt is not None and attempt.state.final:
                await self._settled(attempt, abandoned=abandoned)
            elif attempt is None:
                await self.store.index_remove(index, attempt_id)
            else:
                out.append(attempt)
        return out

    # --- orders ----------------------------------------------------------------------

    async def own(self, attempt: OrderAttempt, order_id: str) -> bool:
        """Record that an order is this attempt's (the provider's own answer said so); False when it
        is another client's: a provider answered a create with an order it had already (one that
        folds identical requests together, or replays an answer), which is never handed over."""
        if await self.claim(attempt, order_id):
            return True
        held = await self.store.get(_claim_key(order_id))
        holder = None if held is None else await self.load(held.decode())
        # The same client's order (a retry without a key, folded by the provider): it stays hers.
        return holder is not None and holder.client == attempt.client

    async def claim(self, attempt: OrderAttempt, order_id: str) -> bool:
        """Claim a provider order found by reconciliation for an attempt; False if another attempt has it.

        Claiming again for the same attempt succeeds, so a pass cut short by the store resumes.
        """
        ttl, mine = self.retention.orders_s, attempt.id.encode()
        if not await self.store.set_if_absent(_claim_key(order_id), mine, ttl):
            return await self.store.get(_claim_key(order_id)) == mine
        if await self.owner(order_id) not in (None, attempt.client):
            # Owned before claims existed (an earlier layout): not ours to take.
            await self.store.delete_if_equals(_claim_key(order_id), mine)
            return False
        await self.store.set(_owner_key(order_id), attempt.client.encode(), ttl)
        return True

    async def unclaim(self, attempt: OrderAttempt, order_id: str) -> None:
        """Undo `claim` when the attempt turned out to be placed otherwise meanwhile."""
        if await self.store.delete_if_equals(_claim_key(order_id), attempt.id.encode()):
            await self.store.delete_if_equals(_owner_key(order_id), attempt.client.encode())

    async def owner(self, order_id: str) -> str | None:
        """The client that placed an order through this gateway, if it did."""
        data = await self.store.get(_owner_key(order_id))
        return None if data is None else data.decode()

    async def record_placed(self, placed: OrderAttempt) -> OrderAttempt:
        """Journal the provider's answer to a create: ownership first, then the attempt's state."""
        assert placed.order_id is not None
        if not await self.own(placed, placed.order_id):
            log.error("order_owned_by_another_client", attempt=placed.id, order=placed.order_id)
            error = ProviderInvalidPayload(
                placed.provider, f"provider '{placed.provider}' answered the order with one another client placed"
            )
            refused = AttemptError(error.code, error.detail)
            await self.transition(
                placed.id, lambda a: a.moved(AttemptState.REJECTED, time.time(), error=refused), answered=True
            )
            raise error
        stored = await self.transition(placed.id, lambda _: placed)
        if stored is None:
            # The entry is gone (a store reset since the call began): write what the provider said.
            await self.store.set(_attempt_key(placed.id), placed.to_json(), self.retention.orders_s)
            await self._index(placed)
            return placed
        if stored.order_id != placed.order_id:
            log.error("order_claim_conflict", attempt=placed.id, answered=placed.order_id, stored=stored.order_id)
        return stored
