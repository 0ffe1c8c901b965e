"""A provider behind a proxy names its public host in its links: `link_bases` (or its landing page's
`self` link) tells the gateway those links are the provider's own, so they are rewritten, not leaked."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
import structlog
from pydantic import BaseModel, ValidationError
from stapi_pydantic import (
    Conformance,
    OpportunityCollection,
    OpportunitySearchRecord,
    Order,
    OrderCollection,
    OrderStatus,
    OrderStatuses,
    Product,
    ProductsCollection,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.domain.links import LinkRewriter
from gateway.settings.models import ProviderSettings
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import GATEWAY_URL, follow_get, gateway_client, hrefs
from tests.upstreams import ProductSpec, build_provider
from tests.waiting import eventually

PUBLIC = "https://stapi.vendor.example/v1"
SEARCH = {"datetime": WINDOW, "geometry": POINT, "limit": 5}


class BehindProxy:
    """A provider as a reverse proxy presents it: https, its public host, under /v1.

    stapi-fastapi builds every href with `url_for`, from the scheme, the Host header and the
    root path, so its links name `https://stapi.vendor.example/v1/...` although the gateway
    reaches it at http://acme.test.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the scope as the proxy would, then serve."""
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", b"stapi.vendor.example")]
            scope = {**scope, "scheme": "https", "server": ("stapi.vendor.example", 443), "root_path": "/v1"}
            scope["headers"] = headers
        await self.app(scope, receive, send)


def provider() -> Any:
    """A real stapi-fastapi provider with a sync and an async product, behind the proxy."""
    products = [ProductSpec("eo"), ProductSpec("sar", sync=False, async_=True)]
    return BehindProxy(build_provider(products, name="acme", opportunities_per_search=12))


async def walk(client: httpx.AsyncClient) -> list[Any]:
    """Every kind of document that carries provider links, following the links it finds."""
    listing = (await client.get("/products")).json()
    ProductsCollection.model_validate(listing)
    docs: list[Any] = [listing]
    models: dict[str, type[BaseModel] | None] = {
        "self": Product,
        "conformance": Conformance,
        "queryables": None,  # JSON Schemas: no stapi-pydantic model
        "order-parameters": None,
    }
    for product in listing["products"]:
        by_rel = {link["rel"]: link for link in product["links"]}
        assert {"self", "conformance", "queryables", "order-parameters", "opportunities", "create-order"} <= set(by_rel)
        for rel, model in models.items():
            followed = await client.get(by_rel[rel]["href"].removeprefix(GATEWAY_URL))
            assert followed.status_code == 200, (rel, followed.text)
            if model is not None:
                model.model_validate(followed.json())
            docs.append(followed.json())
        searched = await client.post(
            by_rel["opportunities"]["href"].removeprefix(GATEWAY_URL), json=SEARCH, headers={"Prefer": "respond-async"}
        )
        record = await settle(client, searched.headers["location"])
        OpportunitySearchRecord.model_validate(record)
        pages = await follow_get(client, next(x["href"] for x in record["links"] if x["rel"] == "opportunities"))
        for page in pages:
            OpportunityCollection.model_validate(page)
        docs += [record, *pages]
    sync = await client.post("/products/acme:eo/opportunities", json=SEARCH)
    order_link = next(x for x in sync.json()["links"] if x["rel"] == "create-order")
    created = await client.post(order_link["href"].removeprefix(GATEWAY_URL), json=order_link["body"])
    assert created.status_code == 201, created.text
    order = Order[OrderStatus].model_validate(created.json())
    rels = {link.rel: str(link.href) for link in order.links}
    assert {"self", "monitor"} <= set(rels)
    order_models: dict[str, type[BaseModel]] = {"self": Order[OrderStatus], "monitor": OrderStatuses[OrderStatus]}
    for rel, order_model in order_models.items():
        followed = await client.get(rels[rel].removeprefix(GATEWAY_URL))
        assert followed.status_code == 200, (rel, followed.text)
        order_model.model_validate(followed.json())
        docs.append(followed.json())
    OpportunityCollection.model_validate(sync.json())
    orders = (await client.get("/orders")).json()
    OrderCollection[OrderStatus].model_validate(orders)
    docs += [sync.json(), created.json(), orders]
    return docs


async def _learned(client: httpx.AsyncClient, logs: list[MutableMapping[str, Any]]) -> None:
    """Wait (bounded) until the gateway has read the provider's landing page."""
    await client.get("/")
    await eventually(
        lambda: any(e["event"] == "provider_link_base_learned" for e in logs),
        what="the landing page's self link learned",
    )


@pytest.mark.parametrize("source", ["link_bases", "landing-page"])
async def test_no_public_host_leaks_and_every_link_is_followable(source: str) -> None:
    """Products, searches, records, collections and orders: every href points at the gateway."""
    overrides = {"link_bases": [PUBLIC]} if source == "link_bases" else {}
    with structlog.testing.capture_logs() as logs:
        async with gateway_client({"acme": provider()}, provider_overrides=overrides, search_refresh_s=0.05) as client:
            if source == "landing-page":
                await _learned(client, logs)
            docs = await walk(client)
    found = [h for doc in docs for h in hrefs(doc)]
    assert len(found) > 60
    assert [h for h in found if "vendor.example" in h] == []
    assert all(h.startswith(GATEWAY_URL) for h in found)
    learned = [e for e in logs if e["event"] == "provider_link_base_learned"]
    assert [e["base"] for e in learned] == ([] if source == "link_bases" else [PUBLIC])


REWRITER = LinkRewriter("acme", "http://10.0.0.5:9001", "https://gw.example", (PUBLIC,))


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (f"{PUBLIC}/products/eo", "https://gw.example/products/acme:eo"),
        ("http://stapi.vendor.example/v1/orders/o1", "https://gw.example/orders/acme:o1"),
        ("https://STAPI.Vendor.Example/v1/products/eo/queryables", "https://gw.example/products/acme:eo/queryables"),
        (f"{PUBLIC}/", "https://gw.example/"),
        ("http://10.0.0.5:9001/products/eo", "https://gw.example/products/acme:eo"),
        # Its own host, but no gateway counterpart: dropped, never passed on.
        (f"{PUBLIC}/docs", None),
        ("https://stapi.vendor.example/v10/products/eo", None),
        ("https://stapi.vendor.example/other", None),
        (f"{PUBLIC}/products?next=x", None),
        ("https://spdx.org/licenses/MIT", "https://spdx.org/licenses/MIT"),
    ],
)
def test_link_bases_are_the_providers_own_in_either_scheme_and_any_case(href: str, expected: str | None) -> None:
    """Hrefs under a link base rewrite like those under `url`; other hosts pass unchanged."""
    assert REWRITER.href(href) == expected


def test_a_link_base_is_a_root_url() -> None:
    """A link base with a query is refused like a bad `url`; trailing slashes do not matter."""
    with pytest.raises(ValidationError, match="query"):
        ProviderSettings(id="acme", url="http://acme.test", link_bases=["https://x.example/?a=1"])
    settings = ProviderSettings(id="acme", url="http://acme.test", link_bases=[PUBLIC + "/"])
    assert settings.link_base_urls == (PUBLIC,)
