"""The STAPI adapter against a real stapi-fastapi 0.8.0 provider, and its error boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from adapters.base import (
    DeliberateError,
    InvalidRequest,
    ProviderBadStatus,
    ProviderInvalidPayload,
    ProviderTimeout,
    ProviderUnreachable,
    RequestValidationFailed,
    SearchMode,
    UpstreamNotFound,
)
from adapters.stapi.adapter import StapiAdapter
from adapters.stapi.wire import next_token
from gateway.upstream.transport import build_client
from tests.faults import RefusingTransport, ResettingTransport, StaticApp
from tests.hostile import HeaderEchoApp
from tests.upstreams import ProductSpec, backend_of, build_provider

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}


def adapter_for(transport: httpx.AsyncBaseTransport, **headers: str) -> StapiAdapter:
    """An adapter on the given transport, as the gateway builds one."""
    return StapiAdapter("up", build_client("http://up.test", timeout_s=2, headers=headers, transport=transport))


@pytest.fixture
def provider() -> Any:
    """A provider with a sync-only and a sync+async product."""
    return build_provider([ProductSpec("eo"), ProductSpec("sar", async_=True), ProductSpec("third")], name="up")


@pytest.fixture
async def adapter(provider: Any) -> AsyncIterator[StapiAdapter]:
    """The adapter in front of that provider."""
    a = adapter_for(httpx.ASGITransport(app=provider), Authorization="Bearer t0ken")
    yield a
    await a.aclose()


async def test_list_products_pages_with_the_providers_token(adapter: StapiAdapter) -> None:
    """The provider's `next` link becomes the page token of the next call."""
    first = await adapter.list_products(token=None, limit=2)
    assert [p["id"] for p in first.items] == ["eo", "sar"]
    assert first.next_token == "third"
    second = await adapter.list_products(token=first.next_token, limit=2)
    assert [p["id"] for p in second.items] == ["third"]
    assert second.next_token is None


async def test_product_operations_return_stapi_json(adapter: StapiAdapter) -> None:
    """A product, its conformance, queryables and order parameters, and the landing page come back as JSON."""
    product = await adapter.get_product("sar")
    assert product["id"] == "sar"
    assert "https://stapi.example.com/v0.1.0/opportunities-async" in await adapter.product_conformance("sar")
    assert "properties" in (await adapter.queryables("eo")).document
    assert "delivery_format" in str((await adapter.order_parameters("eo")).document)
    assert (await adapter.landing_page())["links"]


async def test_configured_headers_reach_the_provider(adapter: StapiAdapter, provider: Any) -> None:
    """Headers from the provider's configuration are sent upstream."""
    await adapter.get_product("eo")
    assert backend_of(provider).requests[-1].headers["authorization"] == "Bearer t0ken"


async def test_search_modes(adapter: StapiAdapter) -> None:
    """`wait` gets a collection with its next page's token, `respond-async` a search record with its Location."""
    payload = {"datetime": WINDOW, "geometry": POINT, "limit": 2}
    sync = await adapter.search_opportunities("sar", payload, SearchMode.SYNC)
    assert not sync.is_async
    assert len(sync.body["features"]) == 2
    assert sync.next_token is not None
    assert sync.next_token == next_token(sync.body["links"])
    pending = await adapter.search_opportunities("sar", payload, SearchMode.ASYNC)
    assert pending.is_async
    assert pending.next_token is None
    assert pending.location
    assert pending.location.endswith(pending.body["id"])
    record = await adapter.get_search_record(pending.body["id"])
    assert record["product_id"] == "sar"


async def test_orders(adapter: StapiAdapter) -> None:
    """An order is created once and then listed, fetched and its statuses read."""
    payload = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {"delivery_format": "cog"}}
    created = await adapter.create_order("eo", payload, reference="attempt-1")
    order_id = created.body["id"]
    assert created.location
    assert created.location.endswith(order_id)
    assert [o["id"] for o in (await adapter.list_orders(token=None, limit=10)).items] == [order_id]
    assert (await adapter.get_order(order_id))["id"] == order_id
    assert (await adapter.order_statuses(order_id, token=None, limit=10)).items


async def test_client_mistakes_judged_by_the_provider_stay_client_errors(adapter: StapiAdapter) -> None:
    """A provider's 422 on the client's order payload is a validation error with locations."""
    bad = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {"bogus": 1}}
    with pytest.raises(RequestValidationFailed) as caught:
        await adapter.create_order("eo", bad, reference="attempt-2")
    assert any("order_parameters" in err["loc"] for err in caught.value.errors)


async def test_upstream_404_is_not_found(adapter: StapiAdapter) -> None:
    """A product the provider does not have is UpstreamNotFound."""
    with pytest.raises(UpstreamNotFound):
        await adapter.get_product("missing")


class _Timeout(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(
    ("transport", "error"),
    [
        (_Timeout(), ProviderTimeout),
        (RefusingTransport(), ProviderUnreachable),
        (ResettingTransport(), ProviderUnreachable),
        (httpx.ASGITransport(app=StaticApp(500, b"Internal Server Error", "text/plain")), ProviderBadStatus),
        (httpx.ASGITransport(app=StaticApp(503, b'{"detail":"busy"}')), ProviderBadStatus),
        (httpx.ASGITransport(app=StaticApp(400, b'{"detail":"nope"}')), ProviderBadStatus),
        (httpx.ASGITransport(app=StaticApp(200, b"\xff\xfe not json")), ProviderInvalidPayload),
        (httpx.ASGITransport(app=StaticApp(200, b'{"id": 3}')), ProviderInvalidPayload),
        (httpx.ASGITransport(app=StaticApp(200, b"[1, 2]")), ProviderInvalidPayload),
    ],
)
async def test_failures_are_translated_at_the_boundary(
    transport: httpx.AsyncBaseTransport, error: type[DeliberateError]
) -> None:
    """Transport faults, bad statuses and non-STAPI payloads become the gateway's own errors."""
    adapter = adapter_for(transport)
    with pytest.raises(error) as caught:
        await adapter.get_product("eo")
    assert "up" in caught.value.detail
    await adapter.aclose()


async def test_provider_400_on_a_client_payload_is_invalid_request() -> None:
    """A 400 to a request carrying the client's body (a bad Prefer, say) is the client's mistake."""
    adapter = adapter_for(httpx.ASGITransport(app=StaticApp(400, b'{"detail":"Invalid Prefer header value"}')))
    with pytest.raises(InvalidRequest, match="Invalid Prefer"):
        await adapter.search_opportunities("eo", {}, SearchMode.SYNC)
    await adapter.aclose()


@pytest.mark.parametrize(
    ("links", "token"),
    [
        ([{"rel": "next", "href": "http://x/products?next=abc&limit=2"}], "abc"),
        ([{"rel": "next", "href": "http://x/opps", "method": "POST", "body": {"next": "7"}}], "7"),
        ([{"rel": "self", "href": "http://x/products?next=zzz"}], None),
        ([], None),
    ],
)
def test_next_token(links: list[dict[str, Any]], token: str | None) -> None:
    """The page token comes from a `next` link's body or query, and from nothing else."""
    assert next_token(links) == token


ECHO_SECRET = "hdr-s3cr3t-value-1234"


@pytest.fixture
async def echoing() -> AsyncIterator[StapiAdapter]:
    """An adapter whose provider echoes every request header into every answer and error."""
    specs = [ProductSpec(p) for p in ("eo", "e400", "e422")] + [ProductSpec("failing", async_=True)]
    app = HeaderEchoApp(build_provider(specs, name="up"))
    a = adapter_for(httpx.ASGITransport(app=app), Authorization=f"Bearer {ECHO_SECRET}")
    yield a
    await a.aclose()


SEARCH = {"datetime": WINDOW, "geometry": POINT}


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.get_product("e404"),
        lambda a: a.get_order("e404"),
        lambda a: a.search_opportunities("e400", SEARCH, SearchMode.SYNC),
        lambda a: a.search_opportunities("e422", SEARCH, SearchMode.SYNC),
        lambda a: a.create_order("e422", SEARCH, reference="attempt-3"),
    ],
    ids=["404-detail", "404-order", "400-detail", "422-search", "422-order"],
)
async def test_error_text_relayed_from_a_provider_is_scrubbed(echoing: StapiAdapter, call: Any) -> None:
    """A provider's 400/404 detail and 422 messages lose the gateway's credentials and stay bounded."""
    with pytest.raises(DeliberateError) as caught:
        await call(echoing)
    shown = f"{caught.value.detail} {caught.value.extra}"
    assert "[redacted]" in shown
    assert ECHO_SECRET not in shown
    assert len(caught.value.detail) < 300


async def test_bodies_headers_and_schemas_relayed_from_a_provider_are_scrubbed(echoing: StapiAdapter) -> None:
    """Products, pages, schemas and search records lose the gateway's credentials, nested ones too."""
    relayed = [
        await echoing.get_product("eo"),
        (await echoing.list_products(token=None, limit=10)).items,
        (await echoing.queryables("eo")).document,
        (await echoing.order_parameters("eo")).document,
        (await echoing.search_opportunities("failing", SEARCH, SearchMode.ASYNC)).body,
        await echoing.get_search_record("rec-1"),
    ]
    text = str(relayed)
    assert text.count("[redacted]") >= len(relayed)
    assert ECHO_SECRET not in text


@pytest.mark.parametrize(
    ("product_id", "sent"),
    [("optical?x=", "/products/optical%3Fx%3D"), ("..#", "/products/..%23"), ("a/b", "/products/a%2Fb")],
)
async def test_ids_reach_the_provider_as_one_path_segment(
    adapter: StapiAdapter, provider: Any, product_id: str, sent: str
) -> None:
    """`?`, `#` and `/` in an id are percent-encoded: the provider sees a product that is not there."""
    with pytest.raises(UpstreamNotFound):
        await adapter.get_product(product_id)
    request = backend_of(provider).requests[-1]
    assert (request.path, request.query) == (unquote(sent), "")


@pytest.mark.parametrize("product_id", ["", ".", ".."])
async def test_dot_segments_as_ids_are_404_without_asking(
    adapter: StapiAdapter, provider: Any, product_id: str
) -> None:
    """`.` and `..` would climb the provider's paths even encoded; no resource has such an id."""
    with pytest.raises(UpstreamNotFound):
        await adapter.queryables(product_id)
    assert backend_of(provider).requests == []
