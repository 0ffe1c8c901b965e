"""Umbra's two imaging modes as STAPI products, with queryables and order-parameters JSON Schemas.

Built from Umbra's Tasking OpenAPI 3.13.0 `SpotlightConstraints`, `ScanConstraints` and
`CommercialTaskRequest` (ranges, enums and defaults as published; the valid range resolutions and
multilook factors, given there only in prose, as enums). Queryables are the imaging constraints a
feasibility takes; order parameters add what only a task takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.base import JSONObject
from adapters.documents import product_document

_STAPI = "https://stapi.example.com/v0.1.0/"
SYNC_CLASS = _STAPI + "opportunities"
ASYNC_CLASS = _STAPI + "opportunities-async"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_POLARIZATION = {"type": "string", "enum": ["VV", "HH"], "default": "VV", "title": "Polarization"}


def _integer(low: int, high: int, default: int, title: str) -> JSONObject:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default, "title": title}


SPOTLIGHT_CONSTRAINTS: dict[str, JSONObject] = {
    "polarization": _POLARIZATION,
    "rangeResolutionMinMeters": {
        "type": "number",
        "enum": [0.25, 0.35, 0.5, 1, 2],
        "default": 1,
        "title": "Range resolution (m)",
    },
    "multilookFactor": {"type": "integer", "enum": [1, 2, 4, 8], "default": 1, "title": "Multilook factor"},
    "grazingAngleMinDegrees": _integer(0, 89, 45, "Minimum grazing angle (deg)"),
    "grazingAngleMaxDegrees": _integer(1, 90, 65, "Maximum grazing angle (deg)"),
    "targetAzimuthAngleStartDegrees": _integer(0, 360, 1, "Target azimuth start (deg, may wrap past north)"),
    "targetAzimuthAngleEndDegrees": _integer(0, 360, 360, "Target azimuth end (deg)"),
    "sceneSize": {
        "type": "string",
        "enum": ["4x4_KM", "5x5_KM", "10x10_KM", "NATURAL_FOOTPRINT"],
        "default": "5x5_KM",
        "title": "Scene size",
    },
}
SCAN_CONSTRAINTS: dict[str, JSONObject] = {
    "polarization": _POLARIZATION,
    "rangeResolutionMinMeters": {"type": "number", "enum": [0.5, 1, 2], "default": 2, "title": "Range resolution (m)"},
    "grazingAngleMinDegrees": _integer(0, 79, 32, "Minimum grazing angle (deg)"),
    "grazingAngleMaxDegrees": _integer(1, 80, 60, "Maximum grazing angle (deg)"),
    "swathWidthMeters": _integer(1000, 10000, 8000, "Swath width (m)"),
}
_UUID = {"type": "string", "format": "uuid", "pattern": "^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"}
TASK_FIELDS: dict[str, JSONObject] = {
    "taskName": {"type": "string", "minLength": 1, "maxLength": 200, "title": "Task name (generated if absent)"},
    "deliveryConfigId": {**_UUID, "title": "Delivery configuration id"},
    "contractId": {**_UUID, "title": "Contract id (the default contract if absent)"},
    "productTypes": {
        "type": "array",
        "items": {"type": "string", "enum": ["CPHD", "GEC", "SIDD", "SICD", "DI_GIF", "DI_TIF", "CRSD"]},
        "uniqueItems": True,
        "title": "Delivered products (GEC always included)",
    },
    "tags": {
        "type": "array",
        "maxItems": 20,
        "items": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9_-]+$"},
        "title": "Tags",
    },
    "satelliteIds": {"type": "array", "items": {"type": "string", "minLength": 1}, "title": "Satellites to use"},
}


@dataclass(frozen=True, slots=True)
class UmbraProduct:
    """One imaging mode: its product id, Umbra's name for it, the geometry it takes and its constraints."""

    id: str
    imaging_mode: str
    geometry: str
    title: str
    description: str
    constraints: dict[str, JSONObject]

    def document(self, base: str) -> JSONObject:
        """The STAPI product, linked under the provider's base (the gateway rewrites the links)."""
        return product_document(
            base,
            self.id,
            title=self.title,
            description=self.description,
            keywords=["SAR", "X-band", "Umbra", self.imaging_mode.lower()],
            provider={"name": "Umbra", "roles": ["producer", "processor"], "url": "https://umbra.space"},
            conformance=self.conformance(),
        )

    def conformance(self) -> list[str]:
        """Both search modes (feasibilities are asynchronous; a sync search polls one) and the geometry."""
        return [SYNC_CLASS, ASYNC_CLASS, f"https://geojson.org/schema/{self.geometry}.json"]

    def queryables(self) -> JSONObject:
        """The imaging constraints a search's CQL2 filter may set (with `=`)."""
        return {
            "$schema": DRAFT,
            "type": "object",
            "title": f"Umbra {self.imaging_mode.title()} queryables",
            "properties": self.constraints,
            "additionalProperties": False,
        }

    def order_parameters(self) -> JSONObject:
        """The constraints and task fields an order may set."""
        return {
            "$schema": DRAFT,
            "type": "object",
            "title": f"Umbra {self.imaging_mode.title()} order parameters",
            "properties": {**self.constraints, **TASK_FIELDS},
            "additionalProperties": False,
        }


PRODUCTS: dict[str, UmbraProduct] = {
    "spotlight": UmbraProduct(
        "spotlight",
        "SPOTLIGHT",
        "Point",
        "Umbra Spotlight SAR",
        "X-band SAR spotlight image centred on a point (resolution down to 25 cm); geometry: a GeoJSON Point.",
        SPOTLIGHT_CONSTRAINTS,
    ),
    "scan": UmbraProduct(
        "scan",
        "SCAN",
        "LineString",
        "Umbra Scan SAR",
        "X-band SAR strip along a line; geometry: a GeoJSON LineString of exactly two points (start and end).",
        SCAN_CONSTRAINTS,
    ),
}
BY_MODE = {p.imaging_mode: p for p in PRODUCTS.values()}


def product_of_mode(mode: Any) -> UmbraProduct | None:
    """The product of an Umbra imaging mode (None for a mode the adapter does not know)."""
    return BY_MODE.get(str(mode))
