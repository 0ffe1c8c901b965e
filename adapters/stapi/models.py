"""What the STAPI adapter reads of a provider's payloads: lean models of the fields it relies on.

The full stapi-pydantic models check every URL and geometry, which costs more than the proxying;
the rest of each payload passes through as the provider sent it.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from pydantic import TypeAdapter
from typing_extensions import TypedDict


class LeanProduct(TypedDict):
    """A product as far as the gateway reads it (the rest passes through as sent)."""

    type: Literal["Collection"]
    id: str
    license: str
    links: list[dict[str, Any]]


class LeanProductsCollection(TypedDict):
    """A page of products as far as the gateway reads it."""

    products: list[LeanProduct]
    links: NotRequired[list[dict[str, Any]]]


# Validated on every product request and 25 times per fan-out to 25 providers: the full
# stapi-pydantic models (URL and provider checks on every product) cost more than the proxying.
PRODUCT: TypeAdapter[LeanProduct] = TypeAdapter(LeanProduct)
PRODUCTS: TypeAdapter[LeanProductsCollection] = TypeAdapter(LeanProductsCollection)


class LeanConformance(TypedDict):
    """A conformance document; stapi-pydantic's model defaults `conformsTo`, so it would accept `{}`."""

    conformsTo: list[str]


CONFORMANCE: TypeAdapter[LeanConformance] = TypeAdapter(LeanConformance)


class LeanOpportunityProperties(TypedDict):
    """The opportunity properties the gateway relies on (sorting, namespacing)."""

    datetime: str
    product_id: str


class LeanOpportunity(TypedDict):
    """An opportunity as far as the gateway reads it."""

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: LeanOpportunityProperties


class LeanOpportunityCollection(TypedDict):
    """An opportunity collection as far as the gateway reads it."""

    type: Literal["FeatureCollection"]
    features: list[LeanOpportunity]
    links: NotRequired[list[dict[str, Any]]]


# Collections can hold thousands of opportunities: validating each with the full geojson models
# cost more than half of a federated merge (bench/profile.py), so only what the gateway reads is
# checked here, and the rest passes through as the provider sent it.
OPPORTUNITY_COLLECTION: TypeAdapter[LeanOpportunityCollection] = TypeAdapter(LeanOpportunityCollection)
