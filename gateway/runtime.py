"""The resources one running gateway owns: providers, the store, cursors, background searches.

Opened by the app's lifespan and closed by it; routes reach them through `request.app.state`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import httpx
import structlog

from gateway.aio.tasks import cancel_all
from gateway.domain.access import Gatekeeper
from gateway.domain.cursor import CursorCodec
from gateway.domain.events import EventSink
from gateway.notify.notifier import Notifier
from gateway.obs.metrics import Metrics
from gateway.services.catalogue import Catalogue
from gateway.services.journal import OrderJournal, Retention
from gateway.services.link_bases import learn_link_bases
from gateway.services.order_lists import OrderLists
from gateway.services.order_tracker import OrderTracker, TrackerSettings
from gateway.services.ordering import STALE_MARGIN_S, OrderDesk
from gateway.services.reconcile import Reconciler, ReconcileSettings
from gateway.services.search_records import SearchRecords
from gateway.services.search_runner import SearchRunner
from gateway.services.store_guard import StoreGuard, cursor_secret
from gateway.services.token_cache import StoreTokens
from gateway.services.tracked_orders import TrackedOrders
from gateway.settings.models import GatewaySettings, Settings
from gateway.store import Store, open_store
from gateway.upstream.providers import Providers, build_providers
from gateway.upstream.rate_gates import Gates

if TYPE_CHECKING:  # OpenTelemetry is loaded only when tracing is on
    from gateway.obs.tracing import Tracing

log = structlog.get_logger("gateway.runtime")


def reconcile_settings(gw: GatewaySettings) -> ReconcileSettings:
    """The reconciler's budget and horizon from the gateway settings."""
    return ReconcileSettings(
        deadline_s=gw.deadline_s,
        stale_after_s=gw.deadline_s + STALE_MARGIN_S,
        scan_interval_s=gw.reconcile_scan_interval_s,
        max_pages=gw.reconcile_max_pages,
        horizon_s=gw.order_unknown_horizon_s,
    )


def tracker_settings(gw: GatewaySettings) -> TrackerSettings:
    """The status tracker's deadline and horizon from the gateway settings."""
    return TrackerSettings(
        deadline_s=gw.deadline_s, max_age_s=gw.order_retention_s, links_base=gw.public_base_url or ""
    )


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
    reconciler: Reconciler
    # Follows the status of every order placed here and publishes new entries as events.
    tracker: OrderTracker
    store_guard: StoreGuard
    gatekeeper: Gatekeeper
    # Start-up check of federated members; a failed check is logged, never fatal.
    member_check: asyncio.Task[list[str]]
    # Clients' webhook subscriptions, the outbox of events and this replica's delivery worker.
    notifier: Notifier
    # Every rate limit (providers', vendors', clients'), over the store: per deployment with redis://.
    rates: Gates
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
    # Start-up look at each provider's landing page for a link base to learn.
    base_check: asyncio.Task[None] | None = None
    # Provider sets replaced by a reload, closed once requests still using them are done.
    retiring: set[asyncio.Task[None]] = field(default_factory=set)
    # Providers' order lists newest first (a short cache of lists read whole).
    order_lists: OrderLists = field(default_factory=OrderLists)
    # Spans of requests and upstream calls (None: tracing off); the app owns its lifetime.
    tracing: Tracing | None = None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        events: EventSink | None = None,
        tracing: Tracing | None = None,
    ) -> Runtime:
        """Open the store and the provider clients. `events` receives the tracker's and the search
        runner's events instead of the webhook outbox (tests collect them); `tracing` makes spans."""
        store = open_store(settings.gateway.store, prefix=settings.gateway.store_prefix)
        metrics = Metrics()
        try:
            cursors = CursorCodec(await cursor_secret(settings, store))
            guard = StoreGuard(store, settings, metrics, cursors)
            await guard.start()
        except BaseException:
            await store.aclose()
            raise
        rates = Gates(store, metrics)
        providers = build_providers(settings, metrics, transports, StoreTokens(store), rates, tracing)
        catalogue = Catalogue(settings, providers)
        gw = settings.gateway
        searches = SearchRecords(store, gw.search_ttl_s)
        notifier = Notifier(store, gw.webhooks, metrics)
        notifier.start()
        sink: EventSink = events or notifier.outbox
        runner = SearchRunner(
            searches,
            catalogue,
            metrics,
            concurrency=gw.search_concurrency,
            refresh_s=gw.search_refresh_s,
            deadline_s=gw.deadline_s,
            max_results=gw.max_search_results,
            events=sink,
        )
        runner.start()
        tracked = TrackedOrders(store, gw.order_retention_s)
        journal = OrderJournal(store, Retention(gw.idempotency_ttl_s, gw.order_retention_s), tracked)
        reconciler = Reconciler(journal, catalogue, metrics, reconcile_settings(gw))
        reconciler.start()
        tracker = OrderTracker(tracked, catalogue, sink, metrics, tracker_settings(gw))
        tracker.start()
        orders = OrderDesk(journal, catalogue, reconciler, metrics, gw.deadline_s)
        checks = asyncio.create_task(catalogue.verify_members(gw.deadline_s))
        return cls(
            settings,
            providers,
            store,
            metrics,
            cursors,
            catalogue,
            searches,
            runner,
            orders,
            reconciler,
            tracker,
            guard,
            Gatekeeper(settings.clients),
            checks,
            notifier,
            rates,
            transports,
            asyncio.create_task(learn_link_bases(providers, gw.deadline_s)),
            tracing=tracing,
        )

    async def reconfigured(self, settings: Settings) -> Runtime:
        """A runtime on new settings that shares this one's store, metrics, cursors and searches.

        Requests already running keep the runtime they started with; the old providers are
        closed once no such request can still be using them (one deadline plus a margin).
        """
        if (settings.gateway.store, settings.gateway.store_prefix) != (
            self.settings.gateway.store,
            self.settings.gateway.store_prefix,
        ):
            log.warning("config_reload_store_unchanged", detail="a new store takes effect only after a restart")
        if settings.gateway.webhooks != self.settings.gateway.webhooks:
            # The worker and the subscriptions book are this replica's for its lifetime.
            log.warning("config_reload_webhooks_unchanged", detail="gateway.webhooks takes effect only after a restart")
        if settings.gateway.tracing != self.settings.gateway.tracing:
            log.warning("config_reload_tracing_unchanged", detail="gateway.tracing takes effect only after a restart")
        providers = build_providers(
            settings, self.metrics, self.transports, StoreTokens(self.store), self.rates, self.tracing
        )
        catalogue = Catalogue(settings, providers)
        self.runner.catalogue = catalogue
        self.reconciler.catalogue = catalogue
        self.tracker.catalogue = catalogue
        orders = OrderDesk(self.orders.journal, catalogue, self.reconciler, self.metrics, settings.gateway.deadline_s)
        self._retire(self.providers, self.settings.gateway.deadline_s + 5)
        return replace(
            self,
            settings=settings,
            providers=providers,
            catalogue=catalogue,
            orders=orders,
            gatekeeper=Gatekeeper(settings.clients),
            member_check=asyncio.create_task(catalogue.verify_members(settings.gateway.deadline_s)),
            base_check=asyncio.create_task(learn_link_bases(providers, settings.gateway.deadline_s)),
        )

    def _retire(self, providers: Providers, after_s: float) -> None:
        async def close_later() -> None:
            try:
                await asyncio.sleep(after_s)
            finally:
                await providers.aclose()

        task = asyncio.create_task(close_later())
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)

    async def aclose(self) -> None:
        """Stop background work, then release every resource."""
        await cancel_all(t for t in (self.member_check, self.base_check) if t is not None)
        await self.runner.stop()
        await cancel_all(self.retiring)
        await self.reconciler.stop()
        await self.tracker.stop()
        await self.notifier.aclose()
        await self.store_guard.stop()
        await self.providers.aclose()
        await self.store.aclose()
