"""The landing page, conformance, request ids and the error format of routing failures."""

from __future__ import annotations

from tests.gateways import GATEWAY_URL, gateway_client, hrefs
from tests.upstreams import build_providers


async def test_landing_page_lists_providers_and_links() -> None:
    """`GET /` names the configured providers with titles and links only to the gateway."""
    async with gateway_client(build_providers(2), title="Broker X") as client:
        response = await client.get("/")
    body = response.json()
    assert response.status_code == 200
    assert body["title"] == "Broker X"
    assert body["providers"] == [
        {"id": "p1", "title": "Provider p1", "state": "closed"},
        {"id": "p2", "title": "Provider p2", "state": "closed"},
    ]
    assert "https://stapi.example.com/v0.1.0/core" in body["conformsTo"]
    rels = {link["rel"] for link in body["links"]}
    assert {"self", "conformance", "products", "orders", "opportunity-search-records"} <= rels
    assert all(h.startswith(GATEWAY_URL) for h in hrefs(body))


async def test_conformance_is_the_gateways_own() -> None:
    """`GET /conformance` lists the classes the gateway serves."""
    async with gateway_client(build_providers(1)) as client:
        body = (await client.get("/conformance")).json()
    assert body == {
        "conformsTo": [
            "https://stapi.example.com/v0.1.0/core",
            "https://stapi.example.com/v0.1.0/order-statuses",
            "https://stapi.example.com/v0.1.0/searches-opportunity",
            "https://stapi.example.com/v0.1.0/searches-opportunity-statuses",
            "https://stapi-gateway.dev/conformance/order-cancel",
            "https://stapi-gateway.dev/conformance/webhooks",
        ]
    }


async def test_client_request_id_is_echoed() -> None:
    """A sane X-Request-ID is kept and returned, in headers and in error bodies."""
    async with gateway_client(build_providers(1)) as client:
        ok = await client.get("/", headers={"X-Request-ID": "abc-123"})
        err = await client.get("/products/zz:top", headers={"X-Request-ID": "abc-456"})
    assert ok.headers["x-request-id"] == "abc-123"
    assert err.headers["x-request-id"] == "abc-456"
    assert err.json()["request_id"] == "abc-456"


async def test_unsafe_request_id_is_replaced() -> None:
    """An X-Request-ID with characters outside the safe set is replaced by a minted one."""
    async with gateway_client(build_providers(1)) as client:
        response = await client.get("/", headers={"X-Request-ID": "bad id\twith spaces"})
    minted = response.headers["x-request-id"]
    assert minted != "bad id\twith spaces"
    assert len(minted) == 32


async def test_wrong_method_is_405_in_contract_form() -> None:
    """A method a route does not serve answers 405 with code, detail and request id."""
    async with gateway_client(build_providers(1)) as client:
        response = await client.delete("/products")
    assert response.status_code == 405
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "GET" in response.headers["allow"]
