"""When a delivery is tried again, when it is given up, and how long its records are kept. No I/O.

Backoff is exponential with equal jitter: the n-th retry waits between half and all of
`min(retry_max_s, retry_initial_s * 2**n)`, so retries spread out (no thundering herd after a
receiver's outage) but never come sooner than half the nominal delay.
"""

from __future__ import annotations

from dataclasses import replace

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
