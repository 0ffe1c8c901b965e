"""What a gateway in front of another reads from it: failures behind it, reasons, missing providers.

The upstream gateway's answers here are hand-made (hostile or malformed ones that a real gateway
does not produce); the real two-gateway chain is tests/gateway/test_chain.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from adapters.base import ProviderBadStatus, ProviderFailedBehind, ProviderUnreachable, RequestValidationFailed
from adapters.client import PROVIDER_FAILURE_HEADER
from adapters.stapi.adapter import StapiAdapter
from gateway.domain.errors import AllProvidersFailed, StoreUnavailable
from gateway.http.handlers import error_response, status_for
from gateway.obs.metrics import Metrics
from gateway.settings.models import ProviderSettings
from gateway.upstream.breaker import CLOSED, OPEN, CircuitBreaker
from gateway.upstream.policy import GuardedTransport
from gateway.upstream.transport import build_client

SECRET = "s3cr3t-token-value"


def answering(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    """An upstream that always answers this."""
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body, headers=headers or {}))


def adapter(transport: httpx.AsyncBaseTransport) -> StapiAdapter:
    """An adapter holding a credential its scrubber knows."""
    client = build_client(
        "http://g1.test", timeout_s=2, headers={"Authorization": f"Bearer {SECRET}"}, transport=transport
    )
    return StapiAdapter("g1", client)


@pytest.mark.parametrize(
    ("status", "code", "maybe_received"),
    [(502, "provider_unreachable", False), (503, "provider_unavailable", False), (504, "order_outcome_unknown", True)],
)
async def test_a_failure_behind_an_upstream_gateway_keeps_its_code_status_and_provider(
    status: int, code: str, maybe_received: bool
) -> None:
    """The header makes a 5xx the failure of the provider behind: relayed, namespaced, and on a
    create only the upstream's 504 may have been received (its contract)."""
    body = {"code": code, "detail": "provider 'bravo' failed", "provider": "bravo", "request_id": "r"}
    up = adapter(answering(status, body, {PROVIDER_FAILURE_HEADER: "bravo"}))
    with pytest.raises(ProviderFailedBehind) as caught:
        await up.create_order("bravo:optical", {"order_parameters": {}}, reference="attempt-1")
    error = caught.value
    assert (error.code, status_for(error), error.provider_id) == (code, status, "g1:bravo")
    assert error.behind == ["g1:bravo"]
    assert error.maybe_received is maybe_received
    assert error.detail == "provider 'g1': provider 'bravo' failed"


@pytest.mark.parametrize(
    ("header", "body", "behind", "code"),
    [
        (
            "bravo, charlie",
            {"code": "providers_failed", "federation:missing": ["bravo", "charlie"]},
            ["bravo", "charlie"],
            "providers_failed",
        ),
        (SECRET, {"code": "DROP TABLE"}, [], "provider_error"),
        ("bravo", {"federation:missing": [SECRET, "x" * 300, "ok"]}, ["ok"], "provider_error"),
    ],
    ids=["several", "secret-in-header", "secret-in-missing"],
)
async def test_what_an_upstream_gateway_reports_is_only_ever_ids_and_never_a_credential(
    header: str, body: dict[str, Any], behind: list[str], code: str
) -> None:
    """Provider ids from the header and `federation:missing` are scrubbed and id-like, codes are words."""
    up = adapter(answering(500, body, {PROVIDER_FAILURE_HEADER: header}))
    with pytest.raises(ProviderFailedBehind) as caught:
        await up.get_product("x")
    error = caught.value
    assert error.code == code
    assert status_for(error) == 502
    assert error.behind == ([f"g1:{b}" for b in behind] or ["g1"])
    assert SECRET not in repr(vars(error))


@pytest.mark.parametrize("headers", [{}, {PROVIDER_FAILURE_HEADER: "../x, a b, <b>"}], ids=["none", "no-ids"])
async def test_a_5xx_without_the_header_is_the_upstreams_own_failure(headers: dict[str, str]) -> None:
    """No header (or one naming no provider), no relaying: a 503 is the upstream's bad status, as before."""
    up = adapter(answering(503, {"code": "provider_unavailable", "provider": "bravo"}, headers))
    with pytest.raises(ProviderBadStatus):
        await up.get_product("x")


async def test_an_upstream_gateways_422_keeps_its_errors_scrubbed() -> None:
    """A gateway's 422 lists `errors`, not FastAPI's `detail` list: they are relayed, scrubbed."""
    errors = [{"loc": ["body", "datetime"], "msg": f"too long ({SECRET})", "type": "value_error"}]
    up = adapter(
        answering(422, {"code": "validation_failed", "detail": "The order request is invalid.", "errors": errors})
    )
    with pytest.raises(RequestValidationFailed) as caught:
        await up.create_order("fed", {"order_parameters": {}}, reference="attempt-2")
    assert caught.value.errors == [{"loc": ["body", "datetime"], "msg": "too long ([redacted])", "type": "value_error"}]


async def test_a_page_lists_what_the_upstream_gateway_says_it_lacks() -> None:
    """`federation:missing` of a listing becomes `Page.missing` (id-like entries only)."""
    body = {"type": "ProductCollection", "products": [], "links": [], "federation:missing": ["bravo", 7, "a b", SECRET]}
    page = await adapter(answering(200, body)).list_products(token=None, limit=10)
    assert page.missing == ["bravo"]


@pytest.mark.parametrize(
    ("error", "header"),
    [
        (ProviderUnreachable("bravo", "down"), "bravo"),
        (AllProvidersFailed("none", {"a": ProviderUnreachable("a", "x"), "b": ProviderUnreachable("b", "y")}), "a, b"),
        (StoreUnavailable("redis is down"), None),
    ],
    ids=["provider", "all-providers", "own-failure"],
)
def test_the_gateway_names_failed_providers_in_its_5xx_header(error: Any, header: str | None) -> None:
    """A provider's failure says whose it is; the gateway's own failure does not."""
    response = error_response(error, "rid")
    assert response.status_code >= 500
    assert response.headers.get(PROVIDER_FAILURE_HEADER) == header


@pytest.mark.parametrize(("header", "state", "calls"), [("bravo", CLOSED, 5), (None, OPEN, 3)])
async def test_the_breaker_and_retries_leave_failures_behind_an_upstream_alone(
    header: str | None, state: str, calls: int
) -> None:
    """Five 503s marked as a provider's behind: the circuit stays closed, none is retried; unmarked,
    the same answers are retried and open the circuit."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            503, json={"code": "provider_unavailable"}, headers={PROVIDER_FAILURE_HEADER: header} if header else {}
        )

    settings = ProviderSettings(id="g1", url="http://g1.test", retries=2, retry_backoff_s=0.001, circuit_failures=3)
    breaker = CircuitBreaker(failures=3, open_s=30)
    guarded = GuardedTransport(httpx.MockTransport(answer), settings, breaker, Metrics())
    async with httpx.AsyncClient(transport=guarded, base_url="http://g1.test") as client:
        for _ in range(calls if header else 1):
            assert (await client.get("/products/bravo:x")).status_code == 503
    assert breaker.state == state
    assert len(sent) == calls
