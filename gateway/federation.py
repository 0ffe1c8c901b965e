"""Documents of federated products, combined from their members' (pure functions)."""

from __future__ import annotations

from typing import Any

from gateway.catalogue import ASYNC_CLASS, ASYNC_CLASSES, SYNC_CLASS
from gateway.settings import FederatedProduct

OPPORTUNITY_CLASSES = [SYNC_CLASS, ASYNC_CLASS]


def gateway_conformance(classes: list[str]) -> list[str]:
    """A product's classes as served through the gateway, which offers both search modes."""
    rest = [c for c in classes if c != SYNC_CLASS and c not in ASYNC_CLASSES]
    return rest + OPPORTUNITY_CLASSES


def product_links(base: str, product_id: str) -> list[dict[str, Any]]:
    """The links every product has on the gateway."""
    href = f"{base}/products/{product_id}"
    kinds = [
        ("self", href),
        ("conformance", f"{href}/conformance"),
        ("queryables", f"{href}/queryables"),
        ("order-parameters", f"{href}/order-parameters"),
        ("opportunities", f"{href}/opportunities"),
    ]
    links = [{"href": h, "rel": rel, "type": "application/json"} for rel, h in kinds]
    links.append({"href": f"{href}/orders", "rel": "create-order", "type": "application/json", "method": "POST"})
    return links


def shared(lists: list[list[str]]) -> list[str]:
    """Entries every list has, in the first list's order."""
    if not lists:
        return []
    rest = [set(items) for items in lists[1:]]
    return [item for item in lists[0] if all(item in other for other in rest)]


def federated_document(
    product: FederatedProduct, member_ids: list[str], members: list[dict[str, Any]], base: str
) -> dict[str, Any]:
    """A federated product over the members `member_ids` (those the client may use, whose
    documents are `members`): their providers united, the conformance they all share."""
    providers: dict[str, Any] = {}
    for member in members:
        for provider in member.get("providers") or []:
            providers.setdefault(str(provider.get("name")), provider)
    keywords = list(dict.fromkeys([*product.keywords, *(k for m in members for k in m.get("keywords") or [])]))
    return {
        "type": "Collection",
        "stapi_type": "Product",
        "stapi_version": "0.1.0",
        "id": product.id,
        "title": product.display_title,
        "description": product.description,
        "keywords": keywords,
        "license": "various",
        "providers": list(providers.values()),
        "conformsTo": gateway_conformance(shared([list(m.get("conformsTo") or []) for m in members])),
        "links": product_links(base, product.id),
        "federation:members": member_ids,
    }


def federated_queryables(product: FederatedProduct, schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Queryables every member understands (a filter must mean the same to all of them)."""
    names = shared([list((s.get("properties") or {}).keys()) for s in schemas])
    first = schemas[0].get("properties") or {} if schemas else {}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Queryables of {product.display_title}",
        "type": "object",
        "properties": {name: first[name] for name in names},
    }


def federated_order_parameters(product: FederatedProduct, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One schema per member: an order goes to the member product an opportunity names."""
    return {
        "title": f"Order parameters of {product.display_title}: those of the member product ordered",
        "oneOf": [{**schema, "title": member} for member, schema in schemas.items()],
    }
