"""Order-only products: not advertised as searchable through the gateway, and a search on one is a 404."""

from __future__ import annotations

from typing import Any

import pytest
from stapi_pydantic import Conformance, OpportunityCollection, OpportunitySearchRecord, Product, ProductsCollection

from gateway.domain.federation import OPPORTUNITY_CLASSES
from tests.gateway.http.routes.test_opportunities import POINT, WINDOW, settle
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, backend_of, build_provider

BODY = {"datetime": WINDOW, "geometry": POINT}
FEDERATED = [
    {"id": "mixed", "members": ["acme:tasking", "b:eo"]},
    {"id": "orders-only", "members": ["acme:tasking", "b:tasking"]},
]


def upstreams() -> dict[str, Any]:
    """acme: an order-only product and a searchable one; b: the same pair."""
    order_only = ProductSpec("tasking", sync=False, async_=False)
    return {
        "acme": build_provider([order_only, ProductSpec("eo")], name="acme"),
        "b": build_provider([order_only, ProductSpec("eo", async_=True)], name="b"),
    }


def rels(product: dict[str, Any]) -> set[str]:
    """The link relations of a product."""
    return {link["rel"] for link in product["links"]}


def searchable(product: dict[str, Any]) -> bool:
    """Whether a gateway product document advertises opportunity search, checked both ways at once."""
    classes = set(OPPORTUNITY_CLASSES) & set(product["conformsTo"])
    assert classes in (set(), set(OPPORTUNITY_CLASSES))
    assert ("opportunities" in rels(product)) == bool(classes)
    return bool(classes)


async def test_order_only_products_have_no_opportunity_classes_nor_link() -> None:
    """In the listing, on its own and at /conformance; a federated product of order-only members too."""
    async with gateway_client(upstreams(), products=FEDERATED) as client:
        listing = (await client.get("/products?limit=100")).json()
        single = (await client.get("/products/acme:tasking")).json()
        conformance = (await client.get("/products/acme:tasking/conformance")).json()
        federated = {pid: (await client.get(f"/products/{pid}")).json() for pid in ("mixed", "orders-only")}
    ProductsCollection.model_validate(listing)
    Conformance.model_validate(conformance)
    for product in [single, *federated.values()]:
        Product.model_validate(product)
    by_id = {p["id"]: searchable(p) for p in listing["products"]}
    expected = {"mixed": True, "orders-only": False, "acme:tasking": False, "acme:eo": True}
    assert by_id == {**expected, "b:tasking": False, "b:eo": True}
    assert not searchable(single)
    assert "create-order" in rels(single)
    assert not set(OPPORTUNITY_CLASSES) & set(conformance["conformsTo"])
    assert searchable(federated["mixed"])
    assert not searchable(federated["orders-only"])


@pytest.mark.parametrize("prefer", [None, "wait", "respond-async"])
@pytest.mark.parametrize("product", ["acme:tasking", "orders-only"])
async def test_a_search_on_an_order_only_product_is_a_404_and_creates_nothing(product: str, prefer: str | None) -> None:
    """Whatever the mode asked: 404 `search_not_supported`, no record, no provider search."""
    ups = upstreams()
    headers = {"Prefer": prefer} if prefer else {}
    async with gateway_client(ups, products=FEDERATED) as client:
        response = await client.post(f"/products/{product}/opportunities", json=BODY, headers=headers)
        records = (await client.get("/searches/opportunities")).json()
    assert response.status_code == 404
    assert response.json()["code"] == "search_not_supported"
    assert "orders" in response.json()["detail"]
    assert records["search_records"] == []
    searched = [r for app in ups.values() for r in backend_of(app).requests if r.path.endswith("/opportunities")]
    assert searched == []


@pytest.mark.parametrize("prefer", ["wait", "respond-async"])
async def test_a_federated_search_asks_only_the_members_that_can_search(prefer: str) -> None:
    """The order-only member is left out (not reported missing); the other one answers."""
    async with gateway_client(upstreams(), products=FEDERATED, search_refresh_s=0.05) as client:
        response = await client.post("/products/mixed/opportunities", json=BODY, headers={"Prefer": prefer})
        body = response.json() if response.status_code == 200 else await settle(client, response.headers["location"])
    if prefer == "wait":
        assert response.status_code == 200
        OpportunityCollection.model_validate(body)
        assert {f["properties"]["product_id"] for f in body["features"]} == {"b:eo"}
    else:
        assert response.status_code == 201
        OpportunitySearchRecord.model_validate(body)
        assert body["status"]["status_code"] == "completed"
        assert [m["product_id"] for m in body["federation:members"]] == ["b:eo"]
    assert "federation:missing" not in body
