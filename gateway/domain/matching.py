"""Recognising an order at its provider: the rules reconciliation uses, and what a failed create means.

Pure functions, no I/O. A provider stores more than the client sent (stapi-fastapi fills in
defaults such as `delivery_format`, and may re-serialise numbers and times), so an order
matches an attempt when it agrees with every field the client set, whatever else it holds.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from adapters.base import DeliberateError, ProviderBadStatus, ProviderError, ProviderInvalidPayload
from gateway.domain.attempts import AttemptState


def create_outcome(exc: BaseException) -> AttemptState:
    """What a failed order creation means: REJECTED only when nothing can have been placed.

    HTTP promises that a 4xx changed nothing; a 5xx, a lost connection after sending, a timeout
    or an answer the gateway cannot read promise nothing, so those are UNKNOWN.
    """
    if isinstance(exc, ProviderBadStatus):
        return AttemptState.REJECTED if 400 <= exc.status < 500 else AttemptState.UNKNOWN
    if isinstance(exc, ProviderInvalidPayload):
        return AttemptState.UNKNOWN  # an answer came back, so the request arrived
    if isinstance(exc, ProviderError):
        return AttemptState.UNKNOWN if exc.maybe_received else AttemptState.REJECTED
    if isinstance(exc, DeliberateError):
        return AttemptState.REJECTED  # the provider's 4xx, said in the client's terms (400/404/422)
    return AttemptState.UNKNOWN  # a failure nobody foresaw: assume the worst


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def covers(stored: Any, sent: Any) -> bool:
    """Whether a provider's stored value agrees with everything the client set in `sent`.

    Objects may hold more keys than were sent (defaults); keys sent as null are not compared;
    numbers compare by value (10 == 10.0); lists compare item by item.
    """
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return False
        return all(value is None or (key in stored and covers(stored[key], value)) for key, value in sent.items())
    if isinstance(sent, list | tuple):
        if not isinstance(stored, list | tuple) or len(stored) != len(sent):
            return False
        return all(covers(a, b) for a, b in zip(stored, sent, strict=True))
    if _number(sent):
        return _number(stored) and math.isclose(float(stored), float(sent), rel_tol=1e-9, abs_tol=1e-9)
    return bool(stored == sent)


def _instant(text: str) -> float | None:
    if text in ("", ".."):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def same_interval(stored: Any, sent: Any) -> bool:
    """Whether two STAPI datetime intervals (`start/end`, `..` open) name the same instants."""
    if sent is None:
        return True
    if not isinstance(stored, str) or not isinstance(sent, str):
        return False
    try:
        return [_instant(p) for p in stored.split("/")] == [_instant(p) for p in sent.split("/")]
    except ValueError:
        return stored == sent


def created_at(order: dict[str, Any]) -> float | None:
    """When the provider says it created an order (epoch seconds), if it says so readably."""
    created = (order.get("properties") or {}).get("created")
    if not isinstance(created, str):
        return None
    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def same_order(candidate: dict[str, Any], product_id: str, sent: dict[str, Any], not_before: float) -> bool:
    """Whether a provider's order is the one an attempt sent to `product_id` (upstream id)."""
    properties = candidate.get("properties") or {}
    search = properties.get("search_parameters") or {}
    created = created_at(candidate)
    geometry = search.get("geometry", candidate.get("geometry"))
    return (
        properties.get("product_id") == product_id
        and created is not None
        and created >= not_before
        and covers(properties.get("order_parameters") or {}, sent.get("order_parameters") or {})
        and covers(geometry, sent.get("geometry"))
        and same_interval(search.get("datetime"), sent.get("datetime"))
        and (sent.get("filter") is None or covers(search.get("filter"), sent.get("filter")))
    )
