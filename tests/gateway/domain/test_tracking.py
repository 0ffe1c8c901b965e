"""Tracked-order records: history order, new entries found once, bounded memory, ends and backoff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.events import Event, order_status_event
from gateway.domain.tracking import (
    GONE_AFTER,
    MAX_BACKOFF_S,
    MAX_SEEN,
    TERMINAL_CODES,
    TrackedOrder,
    TrackingState,
    in_history_order,
)

DAY = 86_400.0
START = 1_900_000_000.0


def entry(second: int, code: str = "accepted") -> dict[str, Any]:
    """A status entry `second` seconds after START."""
    stamp = datetime.fromtimestamp(START + second, UTC).isoformat().replace("+00:00", "Z")
    return {"timestamp": stamp, "status_code": code, "links": []}


def record(**changes: Any) -> TrackedOrder:
    """A freshly registered record."""
    values: dict[str, Any] = {
        "order_id": "acme:o-1",
        "provider": "acme",
        "upstream_id": "o-1",
        "client": "anonymous",
        "registered": START,
        "due": START,
        **changes,
    }
    return TrackedOrder(**values)


def events_of(entries: list[dict[str, Any]]) -> list[Event]:
    """The events of a history, in history order."""
    return [order_status_event("anonymous", "acme:o-1", e) for e in in_history_order(entries)]


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30, unique=True))
def test_history_order_is_oldest_first_whichever_way_it_is_listed(seconds: list[int]) -> None:
    """Oldest first, newest first or shuffled, the entries come out oldest first."""
    ascending = [entry(s) for s in sorted(seconds)]
    assert in_history_order(ascending) == ascending
    assert in_history_order(ascending[::-1]) == ascending
    assert in_history_order([entry(s) for s in seconds]) == ascending


def test_equal_times_keep_the_providers_order_read_oldest_first() -> None:
    """Ties stay in listed order, after a newest-first list is turned round."""
    newest_first = [entry(9, "completed"), entry(5, "processing"), entry(5, "tasked"), entry(0, "received")]
    assert [e["status_code"] for e in in_history_order(newest_first)] == [
        "received",
        "tasked",
        "processing",
        "completed",
    ]


@given(st.integers(1, 3 * MAX_SEEN), st.lists(st.integers(1, 9), min_size=1, max_size=40))
def test_each_entry_is_fresh_exactly_once_as_a_history_grows(total: int, steps: list[int]) -> None:
    """Polls that each see a longer prefix of the history publish every entry once, in order; memory stays bounded."""
    history = [entry(i) for i in range(total)]
    tracked, published, seen_until = record(), list[str](), 0
    for step in steps:
        seen_until = min(total, seen_until + step)
        events = events_of(history[:seen_until])
        published.extend(e.id for e in tracked.fresh(events))
        tracked = tracked.observed(events, START, 60.0, DAY)
        assert len(tracked.seen) <= MAX_SEEN
    assert published == [e.id for e in events_of(history[:seen_until])]


@pytest.mark.parametrize("code", sorted(TERMINAL_CODES))
def test_a_terminal_status_closes_the_record(code: str) -> None:
    """The latest entry terminal: no longer tracked."""
    closed = record().observed(events_of([entry(0, "received"), entry(5, code)]), START + 10, 60.0, DAY)
    assert closed.state is TrackingState.TERMINAL
    assert not closed.state.open
    assert closed.last_status == code


def test_an_open_status_schedules_the_next_poll_one_cadence_on() -> None:
    """A good poll resets errors and is due again after the cadence."""
    polled = record(errors=2).observed(events_of([entry(0, "received")]), START + 10, 60.0, DAY)
    assert (polled.state, polled.errors, polled.due) == (TrackingState.TRACKING, 0, START + 70)


def test_failures_back_off_and_repeated_not_found_ends_tracking() -> None:
    """Each failure doubles the wait (bounded); GONE_AFTER not-founds in a row close the record."""
    tracked, waits = record(), []
    for _ in range(GONE_AFTER):
        tracked = tracked.failed(START, 60.0, DAY, not_found=True)
        waits.append(tracked.due - START)
    assert waits == sorted(waits)
    assert tracked.state is TrackingState.GONE
    many = record(errors=50).failed(START, 60.0, DAY, not_found=False)
    assert many.state is TrackingState.TRACKING
    assert many.due - START == MAX_BACKOFF_S


def test_an_order_tracked_past_the_retention_expires() -> None:
    """Still open after max_age: tracking ends rather than going on for ever."""
    aged = record().observed(events_of([entry(0, "received")]), START + 2 * DAY, 60.0, DAY)
    assert aged.state is TrackingState.EXPIRED


def test_the_stored_form_round_trips() -> None:
    """to_json and from_json agree, closed or open."""
    polled = record().observed(events_of([entry(0, "received"), entry(1, "completed")]), START, 60.0, DAY)
    assert TrackedOrder.from_json(polled.to_json()) == polled
    assert TrackedOrder.from_json(record().to_json()) == record()
