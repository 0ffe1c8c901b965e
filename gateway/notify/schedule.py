"""When a delivery is tried again, when it is given up, how long its records are kept, and the
delivery worker's own cadence. No I/O.

Backoff is exponential with equal jitter: the n-th retry waits between half and all of
`min(retry_max_s, retry_initial_s * 2**n)`, so retries spread out (no thundering herd after a
receiver's outage) but never come sooner than half the nominal delay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.notify.model import Delivery, DeliveryAttempt, DeliveryState
from gateway.settings.models import WebhookSettings

# Attempts a delivery record keeps (the newest); its attempt_count counts them all.
ATTEMPTS_KEPT = 10
# A final delivery stays listed this long after its retry window closed, then its record expires.
KEEP_FINAL_S = 7 * 86_400.0
# 2**62 times any positive initial delay is beyond every sensible retry_max_s: no overflow past it.
_MAX_EXPONENT = 62


def retry_delay(failures: int, initial_s: float, max_s: float, draw: float) -> float:
    """Seconds to wait after the `failures`-th failed attempt (1-based); `draw` is uniform in [0, 1)."""
    exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
    ceiling = min(max_s, initial_s * 2.0**exponent)
    return ceiling / 2 + draw * ceiling / 2


def give_up_at(delivery: Delivery, settings: WebhookSettings) -> float:
    """When the delivery's retry window closes: the last attempt is made then, at the latest."""
    return delivery.created + settings.retry_for_s


def record_ttl_s(delivery: Delivery, settings: WebhookSettings, now: float) -> float:
    """How much longer a delivery record (and its lane and index entries) must be kept."""
    return max(1.0, give_up_at(delivery, settings) + KEEP_FINAL_S - now)


def expired_before(settings: WebhookSettings, now: float) -> float:
    """Deliveries created before this have no record any more (`record_ttl_s` has run out)."""
    return now - settings.retry_for_s - KEEP_FINAL_S


def after_attempt(
    delivery: Delivery, attempt: DeliveryAttempt, settings: WebhookSettings, *, now: float, draw: float
) -> Delivery:
    """The delivery once `attempt` is recorded: delivered on a 2xx, else retried or, past its window, failed."""
    attempts = (*delivery.attempts, attempt)[-ATTEMPTS_KEPT:]
    count = delivery.attempt_count + 1
    if attempt.status is not None and 200 <= attempt.status < 300:
        return replace(delivery, state=DeliveryState.DELIVERED, attempts=attempts, attempt_count=count)
    deadline = give_up_at(delivery, settings)
    if now >= deadline:
        return replace(delivery, state=DeliveryState.FAILED, attempts=attempts, attempt_count=count)
    delay = retry_delay(count, settings.retry_initial_s, settings.retry_max_s, draw)
    return replace(
        delivery,
        attempts=attempts,
        attempt_count=count,
        # One last try as the window closes rather than none when the delay overshoots it.
        next_attempt_at=min(now + delay, deadline),
    )


@dataclass(frozen=True, slots=True)
class WorkerTiming:
    """How often the worker looks for left-over entries, and how long one must idle to be taken."""

    claim_every_s: float = 1.0
    min_idle_s: float = 2.0
    block_s: float = 1.0
    # Every process joins under a name of its own: names idle this long with nothing pending are
    # replicas long gone (a live one reads every `block_s`), forgotten every `prune_every_s`.
    consumer_idle_s: float = 3600.0
    prune_every_s: float = 600.0
    # How often the waiting-retries gauge is counted again (one cheap store call).
    gauge_every_s: float = 15.0
    # A delivery put back on the queue is due again this long after if nothing came of it (the
    # replica that queued it, or the one that read it, died): see gateway/notify/retry_index.py.
    requeue_lease_s: float = 300.0
    # Each round puts back at most this many deliveries per free place in flight.
    requeue_per_free: int = 4
    # A lane predecessor due this long and not being sent has lost its queue entry (its publisher
    # stopped between storing and queueing it, and nothing republishes it): it is queued again.
    orphan_after_s: float = 60.0


DEFAULT_TIMING = WorkerTiming()
