"""Backoff bounds and the delivery state a recorded attempt leads to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.events import order_status_event
from gateway.notify.model import Delivery, DeliveryAttempt, DeliveryState
from gateway.notify.schedule import ATTEMPTS_KEPT, after_attempt, retry_delay
from gateway.settings.models import WebhookSettings

positive = st.floats(min_value=1e-3, max_value=1e5, allow_nan=False, allow_infinity=False)
draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(failures=st.integers(min_value=1, max_value=10_000), initial=positive, maximum=positive, draw=draws)
def test_retry_delay_is_within_half_and_all_of_the_capped_exponential(
    failures: int, initial: float, maximum: float, draw: float
) -> None:
    """Every delay lies in [ceiling/2, ceiling] with ceiling = min(max, initial * 2**(n-1)), so never above max."""
    ceiling = min(maximum, initial * 2.0 ** min(failures - 1, 62))
    delay = retry_delay(failures, initial, maximum, draw)
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= maximum


@given(failures=st.integers(min_value=1, max_value=200), initial=positive, maximum=positive)
def test_retry_delay_never_shrinks_as_failures_grow(failures: int, initial: float, maximum: float) -> None:
    """At the same draw, a later retry waits at least as long as an earlier one."""
    for draw in (0.0, 0.5, 0.999):
        assert retry_delay(failures + 1, initial, maximum, draw) >= retry_delay(failures, initial, maximum, draw)


SETTINGS = WebhookSettings(retry_initial_s=5, retry_max_s=60, retry_for_s=1000)


def _delivery(created: float = 0.0) -> Delivery:
    event = order_status_event("c", "o1", {"status_code": "accepted", "timestamp": "2025-01-01T00:00:00Z"})
    return Delivery("s.e", "s", event, DeliveryState.PENDING, created=created, next_attempt_at=created)


@pytest.mark.parametrize(
    ("status", "now", "state"),
    [
        (200, 10.0, DeliveryState.DELIVERED),
        (204, 10.0, DeliveryState.DELIVERED),
        (500, 10.0, DeliveryState.PENDING),
        (None, 10.0, DeliveryState.PENDING),
        (302, 10.0, DeliveryState.PENDING),
        (500, 1000.0, DeliveryState.FAILED),
        (None, 5000.0, DeliveryState.FAILED),
    ],
)
def test_an_attempt_delivers_retries_or_fails(status: int | None, now: float, state: DeliveryState) -> None:
    """2xx delivers; anything else retries inside the window and fails once it has closed."""
    attempt = DeliveryAttempt(at=now, status=status, error=None if status == 200 else "x", duration_ms=1.0)
    after = after_attempt(_delivery(), attempt, SETTINGS, now=now, draw=0.5)
    assert after.state is state
    assert after.attempt_count == 1
    assert after.attempts == (attempt,)
    if state is DeliveryState.PENDING:
        assert now + 2.5 <= after.next_attempt_at <= now + 5


def test_the_last_retry_is_at_the_window_end_and_only_recent_attempts_are_kept() -> None:
    """A delay past the window is cut to its end; the record keeps the newest ATTEMPTS_KEPT attempts."""
    delivery = _delivery()
    for n in range(ATTEMPTS_KEPT + 5):
        delivery = after_attempt(delivery, DeliveryAttempt(float(n), 500, "x", 1.0), SETTINGS, now=990.0, draw=0.9)
    assert delivery.state is DeliveryState.PENDING
    assert delivery.next_attempt_at == 1000.0
    assert delivery.attempt_count == ATTEMPTS_KEPT + 5
    assert [a.at for a in delivery.attempts] == [float(n) for n in range(5, ATTEMPTS_KEPT + 5)]
