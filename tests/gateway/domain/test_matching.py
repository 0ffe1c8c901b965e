"""Recognising an order at its provider, and what a failed create means (pure rules)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import (
    InvalidRequest,
    ProviderBadStatus,
    ProviderInvalidPayload,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RequestValidationFailed,
    UpstreamNotFound,
)
from gateway.domain.attempts import AttemptState
from gateway.domain.errors import GatewayError
from gateway.domain.matching import covers, create_outcome, same_interval, same_order

leaves = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=5))
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10,
)
objects = st.dictionaries(st.text(max_size=4), json_values, max_size=4)


@given(sent=objects, defaults=objects)
def test_a_provider_adding_defaults_still_covers_what_was_sent(sent: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Whatever defaults a provider adds to what the client set, the stored value covers it."""
    stored = {**defaults, **sent}
    assert covers(stored, sent)


@given(sent=objects.filter(bool), key=st.data())
def test_changing_a_value_the_client_set_breaks_the_match(sent: dict[str, Any], key: st.DataObject) -> None:
    """A stored value that differs in a field the client set does not cover it."""
    name = key.draw(st.sampled_from(sorted(k for k, v in sent.items() if v is not None) or ["_"]))
    if name == "_":
        return
    stored = copy.deepcopy(sent)
    stored[name] = ["something", "else", 12345]
    assert not covers(stored, sent)


def test_numbers_compare_by_value_and_lists_by_length() -> None:
    """10 and 10.0 agree; a list with one more item does not."""
    assert covers({"c": [10.0, 48.0]}, {"c": [10, 48]})
    assert not covers({"c": [10.0, 48.0, 0.0]}, {"c": [10, 48]})
    assert not covers({"c": True}, {"c": 1})


def test_intervals_compare_as_instants() -> None:
    """`Z` and `+00:00` name the same instant; open ends compare too."""
    assert same_interval(
        "2026-12-01T00:00:00+00:00/2026-12-10T00:00:00+00:00", "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
    )
    assert same_interval("2026-12-01T00:00:00Z/..", "2026-12-01T00:00:00Z/..")
    assert not same_interval("2026-12-02T00:00:00Z/..", "2026-12-01T00:00:00Z/..")


def provider_order(**properties: Any) -> dict[str, Any]:
    """A stapi-fastapi-shaped order as the provider lists it."""
    point = {"type": "Point", "coordinates": [13.4, 52.5]}
    base = {
        "product_id": "eo",
        "created": "2026-12-01T10:00:00Z",
        "order_parameters": {"delivery_format": "geotiff"},
        "search_parameters": {"datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z", "geometry": point},
    }
    return {"id": "o1", "geometry": point, "properties": {**base, **properties}}


SENT = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
    "filter": None,
    "order_parameters": {},
}
CREATED = 1796119200.0  # 2026-12-01T10:00:00Z


@pytest.mark.parametrize(
    ("order", "sent", "not_before", "matches"),
    [
        (provider_order(), SENT, CREATED - 1, True),  # `{}` sent, a default stored
        (provider_order(), {**SENT, "order_parameters": {"delivery_format": "cog"}}, CREATED - 1, False),
        (provider_order(product_id="sar"), SENT, CREATED - 1, False),
        (provider_order(), SENT, CREATED + 1, False),  # created before the attempt (and its skew)
        (provider_order(created="yesterday"), SENT, CREATED - 1, False),
        (provider_order(), {**SENT, "geometry": {"type": "Point", "coordinates": [0, 0]}}, CREATED - 1, False),
    ],
)
def test_same_order(order: dict[str, Any], sent: dict[str, Any], not_before: float, matches: bool) -> None:
    """Product, creation time, and every field the client set must agree; defaults may differ."""
    assert same_order(order, "eo", sent, not_before) is matches


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ProviderBadStatus("p", "x", 500), AttemptState.UNKNOWN),
        (ProviderBadStatus("p", "x", 502), AttemptState.UNKNOWN),
        (ProviderBadStatus("p", "x", 302), AttemptState.UNKNOWN),
        (ProviderBadStatus("p", "x", 409), AttemptState.REJECTED),
        (ProviderBadStatus("p", "x", 429), AttemptState.REJECTED),
        (ProviderInvalidPayload("p", "x"), AttemptState.UNKNOWN),
        (ProviderTimeout("p", "x", maybe_received=True), AttemptState.UNKNOWN),
        (ProviderTimeout("p", "x", maybe_received=False), AttemptState.REJECTED),
        (ProviderUnreachable("p", "x", maybe_received=True), AttemptState.UNKNOWN),
        (ProviderUnreachable("p", "x"), AttemptState.REJECTED),
        (ProviderUnavailable("p", "x"), AttemptState.REJECTED),
        (RequestValidationFailed("x", []), AttemptState.REJECTED),
        (InvalidRequest("x"), AttemptState.REJECTED),
        (UpstreamNotFound("p", "x"), AttemptState.REJECTED),
        (GatewayError("x"), AttemptState.REJECTED),
        (UnicodeEncodeError("latin-1", "é", 0, 1, "x"), AttemptState.UNKNOWN),
    ],
)
def test_create_outcome(error: BaseException, outcome: AttemptState) -> None:
    """Only a 4xx, or a failure before sending, means nothing was placed."""
    assert create_outcome(error) is outcome
