"""The product catalogue through the gateway, against real stapi-fastapi 0.8.0 upstreams."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway.domain.cursor import CursorCodec
from tests.faults import RefusingTransport, SlowApp, StaticApp
from tests.gateways import GATEWAY_URL, gateway_client, hrefs
from tests.upstreams import ProductSpec, build_provider, build_providers


def catalogue(counts: dict[str, int]) -> dict[str, Any]:
    """Providers with the given number of products each."""
    return {
        pid: build_provider([ProductSpec(id=f"{pid}-item-{i}") for i in range(n)], name=pid)
        for pid, n in counts.items()
    }


async def walk(client: httpx.AsyncClient, limit: int) -> tuple[list[str], int]:
    """Follow `next` links from the first page; the ids seen and the number of pages."""
    seen: list[str] = []
    url: str | None = f"/products?limit={limit}"
    pages = 0
    while url is not None and pages < 100:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["products"]) <= limit
        seen.extend(p["id"] for p in body["products"])
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    return seen, pages


async def test_products_of_three_providers_are_merged_and_namespaced() -> None:
    """Every provider's products appear once, as provider:product, with the upstream fields."""
    async with gateway_client(build_providers(3, products_per_provider=2)) as client:
        response = await client.get("/products?limit=100")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "ProductCollection"
    ids = sorted(p["id"] for p in body["products"])
    assert ids == sorted(f"p{i}:p{i}-product-{j}" for i in (1, 2, 3) for j in (0, 1))
    assert "federation:missing" not in body
    product = next(p for p in body["products"] if p["id"] == "p2:p2-product-1")
    assert product["title"] == "Provider 2 product 1"
    assert product["license"] == "proprietary"


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 100])
async def test_pagination_visits_every_product_exactly_once(limit: int) -> None:
    """Following `next` with a small limit sees each product of uneven providers exactly once."""
    counts = {"a": 1, "b": 4, "c": 7}
    async with gateway_client(catalogue(counts)) as client:
        seen, pages = await walk(client, limit)
    expected = {f"{pid}:{pid}-item-{i}" for pid, n in counts.items() for i in range(n)}
    assert len(seen) == len(expected)
    assert set(seen) == expected
    assert pages >= -(-12 // limit)


async def test_first_page_interleaves_providers() -> None:
    """A page takes products round-robin, so a small first page shows several providers."""
    async with gateway_client(catalogue({"a": 3, "b": 3})) as client:
        body = (await client.get("/products?limit=2")).json()
    assert [p["id"] for p in body["products"]] == ["a:a-item-0", "b:b-item-0"]


async def test_every_href_points_at_the_gateway() -> None:
    """No href in a list or a product names a provider's address."""
    async with gateway_client(build_providers(2)) as client:
        listing = (await client.get("/products?limit=2")).json()
        product = (await client.get("/products/p1:p1-product-0")).json()
    found = hrefs(listing) + hrefs(product)
    assert found
    assert all(h.startswith(GATEWAY_URL + "/") or "example.com" in h for h in found), found
    assert not [h for h in found if ".test" in h and not h.startswith(GATEWAY_URL)]
    rels = {link["rel"]: link["href"] for link in product["links"]}
    assert rels["self"] == f"{GATEWAY_URL}/products/p1:p1-product-0"
    assert rels["order-parameters"] == f"{GATEWAY_URL}/products/p1:p1-product-0/order-parameters"
    assert rels["create-order"] == f"{GATEWAY_URL}/products/p1:p1-product-0/orders"


async def test_public_url_is_the_base_of_every_link() -> None:
    """With `public_url` set, links use it whatever the request's Host says."""
    async with gateway_client(build_providers(1), public_url="https://stapi.example.org/gw/") as client:
        body = (await client.get("/products?limit=1")).json()
    found = hrefs(body)
    assert found
    assert all(h.startswith("https://stapi.example.org/gw/") for h in found), found


async def test_forwarded_headers_are_honoured_without_public_url() -> None:
    """Behind a proxy, X-Forwarded-Proto/Host decide the links' scheme and host."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.broker.example"}
    async with gateway_client(build_providers(1)) as client:
        body = (await client.get("/products/p1:p1-product-0", headers=headers)).json()
    assert {h.split("/")[2] for h in hrefs(body) if "example.com" not in h} == {"api.broker.example"}
    assert all(h.startswith("https://") for h in hrefs(body))


async def test_one_provider_down_gives_partial_results() -> None:
    """A refused connection is reported in federation:missing; the others' products are complete."""
    upstreams: dict[str, Any] = {**catalogue({"a": 2, "b": 3}), "down": RefusingTransport()}
    async with gateway_client(upstreams) as client:
        response = await client.get("/products?limit=100")
    assert response.status_code == 200
    body = response.json()
    assert body["federation:missing"] == ["down"]
    assert len(body["products"]) == 5


async def test_slow_provider_is_missing_within_the_deadline() -> None:
    """A provider slower than the deadline is cut off and reported; the answer comes in time."""
    upstreams: dict[str, Any] = {**catalogue({"a": 2}), "slow": SlowApp(delay_s=5)}
    async with gateway_client(upstreams, deadline_s=2.0) as client:
        started = time.monotonic()
        response = await client.get("/products")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["federation:missing"] == ["slow"]
    assert [p["id"] for p in response.json()["products"]] == ["a:a-item-0", "a:a-item-1"]
    assert elapsed < 4, "the slow provider was awaited past the deadline"


async def test_missing_provider_is_picked_up_on_a_later_page() -> None:
    """A provider that failed keeps its position in the cursor, so no product is lost."""
    upstreams: dict[str, Any] = {**catalogue({"a": 2}), "down": RefusingTransport()}
    async with gateway_client(upstreams) as client:
        body = (await client.get("/products?limit=1")).json()
    assert body["federation:missing"] == ["down"]
    assert any(link["rel"] == "next" for link in body["links"])


@pytest.mark.parametrize(
    ("upstreams", "status", "code"),
    [
        ({"x": RefusingTransport(), "y": RefusingTransport()}, 502, "providers_failed"),
        ({"x": SlowApp(5), "y": SlowApp(5)}, 504, "providers_failed"),
        ({"x": StaticApp(500, b"Internal Server Error", "text/plain")}, 502, "providers_failed"),
        ({"x": StaticApp(200, b"\x00\xffgarbage")}, 502, "providers_failed"),
        ({"x": StaticApp(200, b'{"products": "not a list"}')}, 502, "providers_failed"),
    ],
)
async def test_all_providers_failing_is_an_error(upstreams: dict[str, Any], status: int, code: str) -> None:
    """When no provider answers, the status says why (502 failed, 504 timed out) in contract form."""
    async with gateway_client(upstreams, deadline_s=0.5) as client:
        response = await client.get("/products")
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert sorted(body["federation:missing"]) == sorted(upstreams)


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "a.b", "x" * 9000, "eyJwIjp7fX0.AAAAAAAAAAAAAAAAAAAAAA"],
)
async def test_tampered_cursor_is_a_400(cursor: str) -> None:
    """A cursor the gateway did not sign is refused with invalid_cursor."""
    async with gateway_client(build_providers(1)) as client:
        response = await client.get("/products", params={"next": cursor})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


async def test_cursor_for_another_list_is_a_400() -> None:
    """A validly signed cursor minted for another list is foreign to /products."""
    foreign = CursorCodec(b"test-secret").encode("orders", {"p": {}})
    async with gateway_client(build_providers(1)) as client:
        response = await client.get("/products", params={"next": foreign})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


async def test_cursor_with_edited_position_is_a_400() -> None:
    """Changing a real cursor's payload breaks its signature."""
    async with gateway_client(catalogue({"a": 3})) as client:
        first = (await client.get("/products?limit=1")).json()
        href = next(link["href"] for link in first["links"] if link["rel"] == "next")
        token = httpx.URL(href).params["next"]
        payload, sig = token.split(".")
        forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig
        response = await client.get("/products", params={"next": forged})
    assert response.status_code == 400


@pytest.mark.parametrize("limit", ["0", "-3", "ten"])
async def test_bad_limit_is_a_422_with_its_location(limit: str) -> None:
    """A limit below 1 or not a number names the query parameter."""
    async with gateway_client(build_providers(1)) as client:
        response = await client.get("/products", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize(
    ("suffix", "check"),
    [
        ("", lambda b: b["id"] == "p1:p1-product-1" and b["type"] == "Collection"),
        ("/conformance", lambda b: "https://stapi.example.com/v0.1.0/opportunities" in b["conformsTo"]),
        ("/queryables", lambda b: "off_nadir" in str(b)),
        ("/order-parameters", lambda b: "delivery_format" in str(b)),
    ],
)
async def test_product_resources_are_forwarded(suffix: str, check: Any) -> None:
    """A namespaced product and its conformance, queryables and order parameters come through."""
    async with gateway_client(build_providers(1)) as client:
        response = await client.get(f"/products/p1:p1-product-1{suffix}")
    assert response.status_code == 200, response.text
    assert check(response.json())


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/products/nope:p1-product-0", "unknown_provider"),
        ("/products/p1:no-such-product", "not_found"),
        ("/products/p1:no-such-product/queryables", "not_found"),
        ("/products/no-colon", "not_found"),
        ("/nothing-here", "not_found"),
    ],
)
async def test_unknown_ids_are_404_in_contract_form(path: str, code: str) -> None:
    """Unknown providers, products and paths answer 404 with code, detail and request id."""
    async with gateway_client(build_providers(1)) as client:
        response = await client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    assert body["request_id"]
    assert ".test" not in body["detail"]
