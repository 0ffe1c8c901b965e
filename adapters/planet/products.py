"""Planet's two tasking products as STAPI products: documents, conformance and JSON Schemas.

`assured`: an order needs an imaging window, found by an imaging-window search (STAPI
opportunities, both modes). `flexible`: Planet schedules it within the order's time span; it has
no opportunities, so its conformance names no opportunity class and the gateway answers a search
on it with `search_not_supported` (gateway/domain/federation.py `can_search`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.documents import product_document

_V = "https://stapi.example.com/v0.1.0"
_GEOJSON = "https://geojson.org/schema"
SEARCH_CLASSES = [f"{_V}/opportunities", f"{_V}/opportunities-async"]
API_CONFORMANCE = [f"{_V}/core", f"{_V}/order-statuses", *SEARCH_CLASSES]
_ELEVATION = {"type": "number", "minimum": 0, "maximum": 90}


@dataclass(frozen=True, slots=True)
class PlanetProduct:
    """One Planet product: its STAPI id, Planet's product name, and what it accepts."""

    id: str
    planet_name: str
    title: str
    description: str
    searchable: bool
    # GeoJSON types Planet accepts: an imaging-window search takes a Point or a two-point LineString.
    geometries: tuple[str, ...]
    order_parameters: dict[str, Any]

    def conformance(self) -> list[str]:
        """The product's conformance classes (opportunity classes only when it can search)."""
        kinds = [f"{_GEOJSON}/{kind}.json" for kind in self.geometries]
        return [*kinds, *SEARCH_CLASSES] if self.searchable else kinds

    def document(self, base_url: str) -> dict[str, Any]:
        """The STAPI product document, links under the provider's url (the gateway rewrites them)."""
        return product_document(
            base_url,
            self.id,
            title=self.title,
            description=self.description,
            keywords=["optical", "planet", "skysat", "pelican", "tasking"],
            provider={"name": "Planet", "roles": ["producer", "processor"], "url": "https://www.planet.com"},
            conformance=self.conformance(),
            searchable=self.searchable,
            schema_type="application/json",
            **{"planet:product": self.planet_name},
        )


# Planet's imaging-window search takes no filter, so there is nothing to filter on: a client's
# filter naming any property is a 422 before any call (the gateway checks it against this).
QUERYABLES: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "title": "Planet imaging windows: no queryables",
    "description": "Planet's imaging-window search takes no filter.",
    "properties": {},
    "additionalProperties": False,
}

_ASSURED_PARAMETERS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "title": "Planet Assured Tasking order parameters",
    "required": ["imaging_window"],
    "properties": {
        "imaging_window": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "The imaging window's id (an opportunity's `planet:imaging_window`).",
        }
    },
    "additionalProperties": False,
}
_FLEXIBLE_PARAMETERS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "title": "Planet Flexible Tasking order parameters",
    "properties": {
        "sat_elevation_angle_min": {**_ELEVATION, "description": "Lowest satellite elevation, degrees"},
        "sat_elevation_angle_max": {**_ELEVATION, "description": "Highest satellite elevation, degrees"},
    },
    "additionalProperties": False,
}

PRODUCTS = {
    "assured": PlanetProduct(
        id="assured",
        planet_name="Assured Tasking",
        title="Planet Assured Tasking",
        description="A SkySat or Pelican capture in a chosen imaging window (at most 7 days ahead).",
        searchable=True,
        geometries=("Point", "LineString"),
        order_parameters=_ASSURED_PARAMETERS,
    ),
    "flexible": PlanetProduct(
        id="flexible",
        planet_name="Flexible Tasking",
        title="Planet Flexible Tasking",
        description="Planet schedules captures within the order's time span; no opportunities to choose.",
        searchable=False,
        geometries=("Point", "Polygon"),
        order_parameters=_FLEXIBLE_PARAMETERS,
    ),
}
BY_PLANET_NAME = {product.planet_name: product for product in PRODUCTS.values()}
