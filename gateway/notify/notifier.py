"""Notifications wired together: the subscriptions book, the outbox, the worker and its HTTP client.

`Notifier(store, settings, metrics)` is what the runtime holds: `outbox` is the event sink the
tracker and search runner publish to, `start()` starts this replica's worker, `aclose()` stops
it and closes the client.
"""

from __future__ import annotations

import os
import socket
import uuid

import httpx

from gateway.notify.outbox import Outbox
from gateway.notify.schedule import DEFAULT_TIMING, WorkerTiming
from gateway.notify.sender import Resolver, Sender, resolve
from gateway.notify.subscriptions import Subscriptions
from gateway.notify.worker import DeliveryWorker
from gateway.obs.metrics import Metrics
from gateway.settings.models import WebhookSettings
from gateway.store import Store


def consumer_name() -> str:
    """This process's name in the delivery consumer group: host, pid and a random part (restarts differ)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Notifier:
    """Owns webhook delivery in one replica."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        metrics: Metrics,
        *,
        subscriptions: Subscriptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve,
        timing: WorkerTiming = DEFAULT_TIMING,
        consumer: str | None = None,
    ) -> None:
        self.subscriptions = subscriptions or Subscriptions(store, settings)
        self.outbox = Outbox(store, self.subscriptions, settings)
        # Receivers are strangers: no proxy or netrc from the environment, no redirects, no pooling
        # beyond what one replica's concurrency needs.
        self.client = httpx.AsyncClient(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency),
            headers={"user-agent": "stapi-gateway-webhooks"},
        )
        self.sender = Sender(self.client, settings, resolver)
        self.worker = DeliveryWorker(
            store,
            self.subscriptions,
            self.sender,
            settings,
            metrics,
            consumer=consumer or consumer_name(),
            timing=timing,
        )

    def start(self) -> None:
        """Start delivering."""
        self.worker.start()

    async def aclose(self) -> None:
        """Stop delivering (what was in flight is delivered by another replica or after a restart)."""
        await self.worker.stop()
        await self.client.aclose()
