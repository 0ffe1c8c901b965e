"""The one interface every provider adapter implements, and the shapes it returns.

Adapters speak to a provider through an injected `httpx.AsyncClient` and return plain,
validated STAPI JSON (dicts) with the provider's own ids and hrefs. Namespacing and link
rewriting belong to the gateway, which keeps adapters free of anything HTTP-server-side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from adapters.schemas import CheckedSchema

JSONObject = dict[str, Any]


class SearchMode(StrEnum):
    """Which answer the gateway wants from an opportunity search."""

    SYNC = "wait"
    ASYNC = "respond-async"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a provider's list: the items and the provider's token for the next page.

    `missing`: providers an upstream gateway says its page lacks (its `federation:missing`).
    """

    items: list[JSONObject]
    next_token: str | None = None
    links: list[JSONObject] = field(default_factory=list)
    number_matched: int | None = None
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Created:
    """A provider's answer to a creating POST: the body and where the provider put it."""

    body: JSONObject
    location: str | None = None
    preference_applied: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """An opportunity search answer: a collection (sync) or a search record (async).

    A collection's `next_token` is the provider's token for its next page (None on the last page
    and for a record); `missing`: providers an upstream gateway says the collection lacks.
    """

    body: JSONObject
    is_async: bool
    location: str | None = None
    preference_applied: str | None = None
    next_token: str | None = None
    missing: list[str] = field(default_factory=list)


class ProviderAdapter(Protocol):
    """A provider as the gateway sees it: one coroutine per STAPI operation."""

    provider_id: str
    base_url: str

    async def landing_page(self) -> JSONObject:
        """The provider's landing page."""
        ...

    async def conformance(self) -> list[str]:
        """The provider's API-level conformance classes."""
        ...

    async def list_products(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's products."""
        ...

    async def get_product(self, product_id: str) -> JSONObject:
        """One product."""
        ...

    async def product_conformance(self, product_id: str) -> list[str]:
        """The product-level conformance classes (the computed list, not the declared one)."""
        ...

    async def queryables(self, product_id: str) -> CheckedSchema:
        """The JSON Schema of the product's queryables, checked (adapters/schemas.py)."""
        ...

    async def order_parameters(self, product_id: str) -> CheckedSchema:
        """The JSON Schema of the product's order parameters, checked (adapters/schemas.py)."""
        ...

    async def search_opportunities(self, product_id: str, payload: JSONObject, mode: SearchMode) -> SearchResult:
        """Run an opportunity search, asking for the given mode."""
        ...

    async def get_opportunity_collection(
        self, product_id: str, collection_id: str, *, token: str | None = None, limit: int | None = None
    ) -> JSONObject:
        """The collection an async search produced, or the page of it at `token` (a paging provider
        links the next page with `next`)."""
        ...

    async def list_search_records(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's opportunity search records."""
        ...

    async def get_search_record(self, record_id: str) -> JSONObject:
        """One opportunity search record."""
        ...

    async def search_record_statuses(self, record_id: str) -> list[JSONObject]:
        """The status history of a search record."""
        ...

    async def create_order(self, product_id: str, payload: JSONObject) -> Created:
        """Place an order. Never retried: the caller decides what an unknown outcome means."""
        ...

    async def list_orders(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's orders."""
        ...

    async def get_order(self, order_id: str) -> JSONObject:
        """One order."""
        ...

    async def order_statuses(self, order_id: str, *, token: str | None, limit: int) -> Page:
        """One page of an order's status history."""
        ...

    async def aclose(self) -> None:
        """Release the adapter's connections."""
        ...
