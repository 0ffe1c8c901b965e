"""The products a client addresses and the provider products behind them, and the documents of
federated products combined from their members' (pure types and functions, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from adapters.base import ProviderAdapter
from gateway.domain import ids
from gateway.domain.links import LinkRewriter
from gateway.settings.models import FederatedProduct

_PREFIX = "https://stapi.example.com/v0.1.0/"
SYNC_CLASS = _PREFIX + "opportunities"
# The spec's conformance table and stapi-fastapi say `opportunities-async`; the spec's
# opportunity page says `async-opportunities`. Providers may use either.
ASYNC_CLASSES = frozenset({_PREFIX + "opportunities-async", _PREFIX + "async-opportunities"})
ASYNC_CLASS = _PREFIX + "opportunities-async"
OPPORTUNITY_CLASSES = [SYNC_CLASS, ASYNC_CLASS]
# The gateway's own extension (not STAPI's, so not under its namespace): `POST /orders/{id}/cancel`.
CANCEL_CLASS = "https://stapi-gateway.dev/conformance/order-cancel"


class ProviderRef(Protocol):
    """What the domain needs of a configured provider (gateway/upstream's `Provider` is one)."""

    @property
    def id(self) -> str:
        """The provider id."""
        ...

    @property
    def adapter(self) -> ProviderAdapter:
        """The adapter that reaches it."""
        ...

    def rewriter(self, gateway_base: str) -> LinkRewriter:
        """The rewriter of its hrefs into the gateway's at `gateway_base`."""
        ...


@dataclass(frozen=True, slots=True)
class Member:
    """One provider product taking part in a search or an order."""

    provider: ProviderRef
    product_id: str

    @property
    def gateway_id(self) -> str:
        """The namespaced id clients see."""
        return ids.namespaced(self.provider.id, self.product_id)


@dataclass(frozen=True, slots=True)
class Target:
    """The product a client addressed, and the members that serve it."""

    product_id: str
    members: list[Member]
    federated: FederatedProduct | None = None


def can_search(classes: list[str]) -> bool:
    """Whether conformance classes say a product can search opportunities, in either mode."""
    return SYNC_CLASS in classes or bool(ASYNC_CLASSES.intersection(classes))


def product_can_search(product: dict[str, Any]) -> bool:
    """Whether a provider's product document says it can search: a class or an `opportunities` link.

    stapi-fastapi 0.8.0 lists only the declared classes in a product document, but links
    `opportunities` whenever the product can search; the computed classes are at /conformance.
    """
    links = product.get("links") or []
    return can_search(list(product.get("conformsTo") or [])) or any(
        isinstance(link, dict) and link.get("rel") == "opportunities" for link in links
    )


def gateway_conformance(classes: list[str], searchable: bool | None = None, *, cancels: bool = False) -> list[str]:
    """A product's classes as served through the gateway: both search modes if it can search at
    all (the gateway emulates the mode it lacks), neither for an order-only product; the cancel
    class when its orders can be cancelled (`cancels`: its adapter can).

    `searchable` overrides what the classes say (a product document's declared list is unreliable).
    """
    rest = [c for c in classes if c != SYNC_CLASS and c not in ASYNC_CLASSES and c != CANCEL_CLASS]
    if searchable is None:
        searchable = can_search(classes)
    return (rest + OPPORTUNITY_CLASSES if searchable else rest) + ([CANCEL_CLASS] if cancels else [])


def product_links(base: str, product_id: str, searchable: bool = True) -> list[dict[str, Any]]:
    """The links a product has on the gateway (`opportunities` only if it can search)."""
    href = f"{base}/products/{product_id}"
    kinds = [
        ("self", href),
        ("conformance", f"{href}/conformance"),
        ("queryables", f"{href}/queryables"),
        ("order-parameters", f"{href}/order-parameters"),
    ]
    if searchable:
        kinds.append(("opportunities", f"{href}/opportunities"))
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
    product: FederatedProduct,
    member_ids: list[str],
    members: list[dict[str, Any]],
    base: str,
    *,
    complete: bool = True,
    cancels: bool = False,
) -> dict[str, Any]:
    """A federated product over the members `member_ids` (those the client may use, whose
    documents are `members`): their providers united, the conformance they all share.

    It can search when any member can (a search asks those members only). Only when every
    member's document is known (`complete`) and none can search is it shown as order-only, so
    a provider being down does not make the product look different. `cancels`: every member's
    adapter can cancel orders.
    """
    searchable = any(product_can_search(m) for m in members) or not complete
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
        "conformsTo": gateway_conformance(
            shared([list(m.get("conformsTo") or []) for m in members]), searchable, cancels=cancels
        ),
        "links": product_links(base, product.id, searchable),
        "federation:members": member_ids,
    }


def federated_queryables(product: FederatedProduct, schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Queryables every member understands (a filter must mean the same to all of them)."""
    names = shared([list((s.get("properties") or {}).keys()) for s in schemas])
    first = schemas[0].get("properties") or {} if schemas else {}
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Queryables of {product.display_title}",
        "type": "object",
        "properties": {name: first[name] for name in names},
    }
    # The properties come from the first member's schema, with the definitions their `$ref`s name.
    for key in ("$defs", "definitions"):
        if schemas and key in schemas[0]:
            document[key] = schemas[0][key]
    return document
