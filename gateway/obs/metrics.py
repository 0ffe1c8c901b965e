"""Prometheus metrics, one registry per running gateway. Labels never carry ids.

Under `serve --workers N` every worker has its own `Metrics`, writing to files that `/metrics`
adds up over all of them (gateway/obs/multiprocess.py). Counters and histograms simply add up; each
gauge says how its workers' values combine (`multiprocess_mode`, ignored with one process), and a
`live` mode drops the values of a worker once it has died.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.obs.multiprocess import metrics_dir

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# From an event to its delivery: well under a second when all is well, up to a day of retries.
LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    """Every metric the gateway exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Where the values of every worker are (None: in this process's memory only).
        self.shared_dir = metrics_dir()
        r = self.registry
        self.requests = Counter(
            "stapi_gateway_requests", "Requests by STAPI operation and status", ["operation", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "stapi_gateway_request_duration_seconds",
            "Request latency by STAPI operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_calls = Counter(
            "stapi_gateway_upstream_calls",
            "Calls to providers by outcome",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "stapi_gateway_upstream_call_duration_seconds",
            "Provider call latency",
            ["provider", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_retries = Counter(
            "stapi_gateway_upstream_retries", "Retried provider calls", ["provider", "operation"], registry=r
        )
        self.circuit_state = Gauge(
            "stapi_gateway_circuit_state",
            "Circuit per provider: 0 closed, 1 half-open, 2 open",
            ["provider"],
            registry=r,
            # Each worker has breakers of its own: show the worst state any live worker is in.
            multiprocess_mode="livemax",
        )
        self.store_errors = Counter("stapi_gateway_store_errors", "Store (Redis) errors", ["operation"], registry=r)
        self.search_records = Counter(
            "stapi_gateway_search_record_transitions",
            "Async search records reaching a status",
            ["status"],
            registry=r,
        )

        self.order_outcomes = Counter(
            "stapi_gateway_order_outcomes",
            "Order creations by outcome: placed, rejected, unknown, reconciled (found later), abandoned",
            ["outcome"],
            registry=r,
        )
        self.order_attempts_unresolved = Gauge(
            "stapi_gateway_order_attempts_unresolved",
            "Order attempts whose outcome is not known yet, by provider",
            ["provider"],
            registry=r,
            # Counted in the shared store by every worker's reconciler: the latest count is the truth.
            multiprocess_mode="livemostrecent",
        )
        self.reconcile_calls = Counter(
            "stapi_gateway_reconcile_calls",
            "Provider order-list calls made to resolve unknown outcomes",
            ["provider"],
            registry=r,
        )
        self.journal_deferred = Gauge(
            "stapi_gateway_journal_deferred",
            "Placed orders whose journal write waits for the store",
            registry=r,
            # Held in each worker's memory: the total is what all live workers hold.
            multiprocess_mode="livesum",
        )
        self.store_resets = Counter(
            "stapi_gateway_store_resets",
            "Times the store was found reset (its marker key gone) under this process",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "stapi_gateway_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retry, failed (given up), refused (address not allowed)",
            ["outcome"],
            registry=r,
        )
        self.webhook_lag_seconds = Histogram(
            "stapi_gateway_webhook_delivery_lag_seconds",
            "Time from an event to its delivery",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.webhook_retries_waiting = Gauge(
            "stapi_gateway_webhook_retries_waiting",
            "Webhook deliveries waiting for a later attempt (a retry, or their turn behind one), in the shared store",
            registry=r,
            # Every worker counts the same store's index: the most recent count (see tracked_orders).
            multiprocess_mode="livemostrecent",
        )

        self.tracked_orders = Gauge(
            "stapi_gateway_tracked_orders",
            "Orders whose status the tracker follows (placed here, not yet terminal), by provider",
            ["provider"],
            registry=r,
            # Every worker counts the same store's index: the most recent count, not a sum (N times
            # too many) nor a maximum (a stale, higher count until every worker has counted again).
            multiprocess_mode="livemostrecent",
        )
        self.status_polls = Counter(
            "stapi_gateway_status_polls",
            "Status polls of tracked orders by provider and outcome: changed, unchanged, failed, not_found",
            ["provider", "outcome"],
            registry=r,
        )
        self.rate_gate_local = Counter(
            "stapi_gateway_rate_gate_local",
            "Rate-limit reservations made in this process only because the store failed, by scope: provider, client",
            ["scope"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format: of every worker's values when they are shared, else this registry's."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        # A fresh registry each time, holding only the collector: this process's own metrics are
        # in the files already and would otherwise be exported twice.
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
