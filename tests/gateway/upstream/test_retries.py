"""Retries keyed on the adapter operation, and Retry-After in both of its forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from stapi_pydantic import OpportunityCollection, Order, OrderStatus, Product

from adapters.client import OPERATION_EXTENSION
from gateway.upstream.policy import may_retry, retry_after
from tests.faults import ThrottlingApp
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, build_provider

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SEARCH = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
}
ORDER = {**SEARCH, "order_parameters": {}}
# A backoff no deadline can afford: a retry that happens was timed by Retry-After, not by it.
NO_BACKOFF = {"retries": 2, "retry_backoff_s": 60}


def provider() -> Any:
    """A real stapi-fastapi provider with one product."""
    return build_provider([ProductSpec("eo")], name="acme")


def http_date(when: datetime) -> str:
    """An RFC 9110 HTTP-date (IMF-fixdate)."""
    return format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 12 ", 12.0),
        ("86400", 30.0),
        (http_date(NOW + timedelta(seconds=9)), 9.0),
        (http_date(NOW - timedelta(hours=1)), 0.0),
        ("Tue, 01 Dec 2026 12:00:05 -0000", 5.0),
        (http_date(NOW + timedelta(days=2)), 30.0),
        ("soon", None),
        ("-1", None),
        ("1.5", None),
        ("", None),
    ],
)
def test_retry_after_reads_delta_seconds_and_http_dates(value: str, seconds: float | None) -> None:
    """Both RFC 9110 forms are read, capped at 30 s; what is neither asks for nothing."""
    response = httpx.Response(503, headers={"Retry-After": value})
    assert retry_after(response, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [
        "0",
        "1",
        http_date(datetime.now(UTC) - timedelta(minutes=5)),
        http_date(datetime.now(UTC) + timedelta(seconds=1)),
    ],
    ids=["zero", "one-second", "date-past", "date-soon"],
)
async def test_a_retry_after_the_deadline_affords_is_waited_instead_of_the_backoff(header: str) -> None:
    """Retry-After: 0 (once lost to the backoff), a past or near HTTP-date: retried, then served."""
    throttled = ThrottlingApp(provider(), failures=1, headers={"Retry-After": header})
    async with gateway_client({"acme": throttled}, provider_overrides=NO_BACKOFF, deadline_s=5) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 200, response.text
    Product.model_validate(response.json())
    assert throttled.seen.count(("GET", "/products/eo")) == 2


@pytest.mark.parametrize("header", ["3600", http_date(datetime.now(UTC) + timedelta(hours=1))])
async def test_a_retry_after_beyond_the_deadline_answers_at_once(header: str) -> None:
    """A wait the deadline cannot afford is not started: the provider's 503 comes back (502),
    not a gateway timeout at the deadline."""
    throttled = ThrottlingApp(provider(), failures=1, headers={"Retry-After": header})
    async with gateway_client({"acme": throttled}, provider_overrides=NO_BACKOFF, deadline_s=5) as client:
        response = await client.get("/products/acme:eo")
    assert response.status_code == 502
    assert response.json()["code"] == "provider_bad_status"
    assert throttled.seen.count(("GET", "/products/eo")) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_an_opportunity_search_is_a_safe_read_and_is_retried(status: int) -> None:
    """The POST search carries the `search_opportunities` operation, so a throttled one is retried."""
    throttled = ThrottlingApp(provider(), failures=1, method="POST", status=status, headers={"Retry-After": "0"})
    async with gateway_client({"acme": throttled}, provider_overrides=NO_BACKOFF) as client:
        response = await client.post("/products/acme:eo/opportunities", json=SEARCH)
    assert response.status_code == 200, response.text
    OpportunityCollection.model_validate(response.json())
    assert throttled.seen.count(("POST", "/products/eo/opportunities")) == 2


async def test_order_creation_is_not_retried_even_when_asked_to_come_back() -> None:
    """`create_order` is never retried, whatever Retry-After says: a 503 leaves its outcome unknown (504)."""
    throttled = ThrottlingApp(provider(), failures=1, method="POST", headers={"Retry-After": "0"})
    async with gateway_client({"acme": throttled}, provider_overrides=NO_BACKOFF) as client:
        response = await client.post("/products/acme:eo/orders", json=ORDER)
    assert response.status_code == 504
    assert response.json()["code"] == "order_outcome_unknown"
    assert throttled.seen.count(("POST", "/products/eo/orders")) == 1


async def test_the_order_rate_paces_order_creation_only() -> None:
    """`order_rate_per_s` applies to the `create_order` operation, not to other POSTs (searches)."""
    overrides = {"order_rate_per_s": 1 / 600}
    async with gateway_client({"acme": provider()}, provider_overrides=overrides, deadline_s=3.0) as client:
        first = await client.post("/products/acme:eo/orders", json=ORDER)
        searches = [await client.post("/products/acme:eo/opportunities", json=SEARCH) for _ in range(3)]
        second = await client.post("/products/acme:eo/orders", json=ORDER)
    assert first.status_code == 201, first.text
    Order[OrderStatus].model_validate(first.json())
    assert [s.status_code for s in searches] == [200, 200, 200]
    # Not sent, so nothing was placed: a 503 to retry later, not an unknown outcome's 504.
    assert second.status_code == 503
    assert second.json()["code"] == "provider_rate_limited"
    assert "Retry-After" in second.headers


@pytest.mark.parametrize("operation", ["create_order", "cancel_order"])
def test_writes_are_never_retried(operation: str) -> None:
    """Order creation and cancel are writes: the policy never sends them twice, whatever their method."""
    for method in ("POST", "PATCH", "DELETE", "GET"):
        request = httpx.Request(method, "http://p.test/x", extensions={OPERATION_EXTENSION: operation})
        assert not may_retry(request)
