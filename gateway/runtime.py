"""The resources one running gateway owns: providers, the store, cursors, background searches.

Opened by the app's lifespan and closed by it; routes reach them through `request.app.state`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from gateway.catalogue import Catalogue
from gateway.clients import Gatekeeper
from gateway.cursor import CursorCodec
from gateway.journal import OrderJournal
from gateway.metrics import Metrics
from gateway.ordering import OrderDesk
from gateway.providers import Providers, build_providers
from gateway.search_runner import SearchRunner
from gateway.searches import SearchRecords
from gateway.settings import Settings
from gateway.store import Store, open_store

_SECRET_KEY = "cursor-secret"


async def cursor_secret(settings: Settings, store: Store) -> bytes:
    """The configured secret, else one shared by every replica through the store."""
    if settings.gateway.secret:
        return settings.gateway.secret.encode()
    await store.set_if_absent(_SECRET_KEY, secrets.token_bytes(32))
    value = await store.get(_SECRET_KEY)
    assert value is not None
    return value


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a request handler needs, built once at start-up."""

    settings: Settings
    providers: Providers
    store: Store
    metrics: Metrics
    cursors: CursorCodec
    catalogue: Catalogue
    searches: SearchRecords
    runner: SearchRunner
    orders: OrderDesk
    gatekeeper: Gatekeeper
    # Start-up check of federated members; a failed check is logged, never fatal.
    member_check: asyncio.Task[list[str]]

    @classmethod
    async def open(
        cls, settings: Settings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
    ) -> Runtime:
        """Open the store and the provider clients."""
        store = open_store(settings.gateway.store, prefix=settings.gateway.store_prefix)
        try:
            secret = await cursor_secret(settings, store)
        except BaseException:
            await store.aclose()
            raise
        metrics = Metrics()
        providers = build_providers(settings, metrics, transports)
        catalogue = Catalogue(settings, providers)
        gw = settings.gateway
        searches = SearchRecords(store, gw.search_ttl_s)
        runner = SearchRunner(
            searches,
            catalogue,
            concurrency=gw.search_concurrency,
            refresh_s=gw.search_refresh_s,
            deadline_s=gw.deadline_s,
        )
        runner.start()
        orders = OrderDesk(OrderJournal(store, gw.idempotency_ttl_s), catalogue, gw.deadline_s)
        checks = asyncio.create_task(catalogue.verify_members(gw.deadline_s))
        return cls(
            settings,
            providers,
            store,
            metrics,
            CursorCodec(secret),
            catalogue,
            searches,
            runner,
            orders,
            Gatekeeper(settings.clients),
            checks,
        )

    async def aclose(self) -> None:
        """Stop background work, then release every resource."""
        self.member_check.cancel()
        await asyncio.gather(self.member_check, return_exceptions=True)
        await self.runner.stop()
        await self.orders.aclose()
        await self.providers.aclose()
        await self.store.aclose()
