"""Watching the store that idempotency depends on: durable at start-up, not reset while running.

Idempotency keys and the order journal are only as good as the store's memory. At start-up the
store's persistence and eviction settings are checked (a warning, or a refusal to start with
`store_durability: require`). While running, a marker key written at start-up is checked
periodically: when it is gone the store was reset (a Redis restarted without persistence,
FLUSHALL, failover to an empty replica), which is logged as an error, counted, shown in
`/readyz`, and answered by writing a new marker and agreeing on the cursor secret again.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import structlog

from gateway.aio.tasks import stop_task
from gateway.domain.cursor import CursorCodec
from gateway.domain.errors import StoreNotDurable, StoreUnavailable
from gateway.obs.metrics import Metrics
from gateway.settings.models import Settings
from gateway.store import Store, open_store

log = structlog.get_logger("gateway.store")

_SECRET_KEY = "cursor-secret"
_MARKER_KEY = "store-marker"
CHECK_INTERVAL_S = 5.0


async def cursor_secret(settings: Settings, store: Store) -> bytes:
    """The configured secret, else one shared by every replica through the store."""
    if settings.gateway.secret:
        return settings.gateway.secret.encode()
    await store.set_if_absent(_SECRET_KEY, secrets.token_bytes(32))
    value = await store.get(_SECRET_KEY)
    if value is None:
        raise StoreUnavailable("The shared cursor secret vanished from the store as it was written.")
    return value


async def durability_refusal(settings: Settings) -> str | None:
    """Why `store_durability: require` forbids starting on the configured store, or None (checked before serving)."""
    if settings.gateway.store_durability != "require":
        return None
    store = open_store(settings.gateway.store, prefix=settings.gateway.store_prefix)
    try:
        problems = await store.durability_problems()
    finally:
        await store.aclose()
    return "; ".join(problems) or None


class StoreGuard:
    """Checks the store's durability at start-up and notices when it was reset."""

    def __init__(self, store: Store, settings: Settings, metrics: Metrics, cursors: CursorCodec) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.cursors = cursors
        self.problems: list[str] = []
        self.reset_detected_at: float | None = None
        self._marker: bytes | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check durability (raise StoreNotDurable when required), write the marker, start watching."""
        try:
            self.problems = await self.store.durability_problems()
        except StoreUnavailable as exc:
            self.problems = [f"the store did not answer at start-up, so its durability is unchecked ({exc.detail})"]
        if self.problems:
            if self.settings.gateway.store_durability == "require":
                raise StoreNotDurable("The store can lose idempotency keys: " + "; ".join(self.problems))
            log.warning(
                "store_not_durable",
                problems=self.problems,
                detail="idempotency keys and the order journal may be lost; see README 'Orders'",
            )
        try:
            self._marker = await self._mark()
        except StoreUnavailable as exc:
            # Serve anyway: readiness reports the store, and the marker is written once it answers.
            log.warning("store_unavailable_at_start", detail=exc.detail)
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching."""
        await stop_task(self._task)

    async def _mark(self) -> bytes:
        await self.store.set_if_absent(_MARKER_KEY, secrets.token_hex(16).encode())
        value = await self.store.get(_MARKER_KEY)
        return value or b""

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            # Readiness and requests report an unreachable store; a reset shows once it is back.
            with contextlib.suppress(StoreUnavailable):
                await self.check()

    async def check(self) -> None:
        """Compare the marker with the one seen before; handle a reset. Raises StoreUnavailable."""
        found = await self.store.get(_MARKER_KEY)
        if found is not None and found == self._marker:
            return
        if self._marker is None:
            self._marker = await self._mark()  # first contact with a store that was down at start
            return
        self.reset_detected_at = time.time()
        self.metrics.store_resets.inc()
        log.error(
            "store_reset_detected",
            detail="the store lost its marker key: idempotency keys, the order journal and search records "
            "written before may be gone; give Redis persistence (AOF) and maxmemory-policy noeviction",
        )
        self._marker = await self._mark()
        if not self.settings.gateway.secret:
            # Every replica converges on the first secret written after the reset.
            self.cursors.rotate(await cursor_secret(self.settings, self.store))

    def snapshot(self) -> dict[str, Any]:
        """What `/readyz` shows of the store's trustworthiness (no addresses, no error text)."""
        return {"durable": not self.problems, "reset_detected_at": self.reset_detected_at}
