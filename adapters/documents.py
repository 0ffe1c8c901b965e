"""STAPI documents an adapter builds for a vendor that serves none: one product document shape, and
the look-up of a product in an adapter's table of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from adapters.base import JSONObject, UpstreamNotFound

P = TypeVar("P")


def vendor_product(table: Mapping[str, P], provider_id: str, product_id: str) -> P:
    """The product `product_id` names in an adapter's table; a 404 when the vendor has none by that id."""
    product = table.get(product_id)
    if product is None:
        raise UpstreamNotFound(provider_id, f"provider '{provider_id}' has no product {product_id!r}")
    return product


def product_document(
    base: str,
    product_id: str,
    *,
    title: str,
    description: str,
    keywords: list[str],
    provider: JSONObject,
    conformance: list[str],
    searchable: bool = True,
    schema_type: str = "application/schema+json",
    **extra: Any,
) -> JSONObject:
    """A STAPI 0.1.0 product with its links under `base` (the gateway rewrites them); `extra`
    adds the vendor's own fields (e.g. `planet:product`)."""
    href = f"{base}/products/{product_id}"
    links = [
        {"href": href, "rel": "self", "type": "application/json"},
        {"href": f"{href}/queryables", "rel": "queryables", "type": schema_type},
        {"href": f"{href}/order-parameters", "rel": "order-parameters", "type": schema_type},
    ]
    if searchable:
        links.append({"href": f"{href}/opportunities", "rel": "opportunities", "type": "application/geo+json"})
    links.append({"href": f"{href}/orders", "rel": "create-order", "type": "application/json", "method": "POST"})
    return {
        "type": "Collection",
        "stapi_type": "Product",
        "stapi_version": "0.1.0",
        "id": product_id,
        "title": title,
        "description": description,
        "keywords": keywords,
        "license": "proprietary",
        "providers": [provider],
        "conformsTo": conformance,
        "links": links,
        **extra,
    }
