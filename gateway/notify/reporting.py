"""What one delivery attempt tells the metrics and the log (never the URL or the secret)."""

from __future__ import annotations

import structlog

from gateway.notify.model import Delivery, DeliveryState
from gateway.notify.sender import SendResult
from gateway.obs.metrics import Metrics

log = structlog.get_logger("gateway.webhooks")


def report_attempt(metrics: Metrics, delivery: Delivery, result: SendResult, now: float) -> None:
    """Count the attempt by outcome (and the lag of a delivered event), and log one line for it."""
    if delivery.state is DeliveryState.DELIVERED:
        outcome = "delivered"
        metrics.webhook_lag_seconds.observe(max(0.0, now - delivery.event.occurred))
    elif delivery.state is DeliveryState.FAILED:
        outcome = "failed"
    else:
        outcome = "refused" if result.refused else "retry"
    metrics.webhook_deliveries.labels(outcome=outcome).inc()
    log.info(
        "webhook_attempt",
        event_id=delivery.event.id,
        event_type=delivery.event.type.value,
        subscription_id=delivery.subscription_id,
        delivery_id=delivery.id,
        attempt=delivery.attempt_count,
        status=result.status,
        outcome=outcome,
        error=result.error,
        duration_ms=result.duration_ms,
    )
