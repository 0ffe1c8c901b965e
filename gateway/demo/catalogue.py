"""Product catalogues of the fictional vendors that the demo simulator impersonates, and their passes."""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from cql2 import Expr
from pydantic import Field
from stapi_pydantic import OrderParameters, Product, Provider, ProviderRole, Queryables

_V = "https://stapi.example.com/v0.1.0"
API_CONFORMANCE = [f"{_V}/core", f"{_V}/order-statuses"]
GEOJSON_CONFORMANCE = [f"https://geojson.org/schema/{kind}.json" for kind in ("Point", "Polygon")]
PRODUCT_CONFORMANCE = [*GEOJSON_CONFORMANCE, f"{_V}/opportunities"]


class OpticalQueryables(Queryables):
    """Opportunity properties an optical product can be filtered on."""

    off_nadir: float = Field(ge=0.0, le=45.0, description="Off-nadir angle of the acquisition, degrees")
    cloud_cover: float = Field(ge=0.0, le=100.0, description="Forecast cloud cover over the target, percent")
    sun_elevation: float = Field(ge=-90.0, le=90.0, description="Sun elevation at acquisition, degrees")
    gsd: float = Field(gt=0.0, description="Expected ground sample distance, metres")


class SarQueryables(Queryables):
    """Opportunity properties a SAR product can be filtered on."""

    incidence_angle: float = Field(ge=0.0, le=90.0, description="Incidence angle at scene centre, degrees")
    look_direction: Literal["left", "right"] = Field(description="Side the antenna looks to")
    orbit_state: Literal["ascending", "descending"] = Field(description="Orbit direction at acquisition")


class OpticalOrderParameters(OrderParameters):
    """Delivery options for optical imagery."""

    delivery_format: Literal["cog", "geotiff"] = "cog"
    bands: Literal["panchromatic", "multispectral", "pansharpened"] = "pansharpened"


class SarOrderParameters(OrderParameters):
    """Delivery options for SAR imagery."""

    product_type: Literal["SLC", "GRD"] = "GRD"
    polarisation: Literal["HH", "VV", "HH+HV", "VV+VH"] = "VV"


@dataclass(frozen=True)
class ProductDef:
    """One tasking product and the numbers that make its simulated opportunities plausible."""

    id: str
    title: str
    description: str
    keywords: tuple[str, ...]
    sensor: Literal["optical", "sar"]
    platforms: tuple[str, ...]
    gsd_m: float
    revisit_h: float
    window_s: float
    angle_range: tuple[float, float]  # off-nadir (optical) or incidence (SAR), degrees

    @property
    def queryables(self) -> type[Queryables]:
        """The JSON-schema source for /queryables."""
        return OpticalQueryables if self.sensor == "optical" else SarQueryables

    @property
    def order_parameters(self) -> type[OrderParameters]:
        """The JSON-schema source for /order-parameters and the order body validator."""
        return OpticalOrderParameters if self.sensor == "optical" else SarOrderParameters

    def opportunity_properties(self, rng: random.Random) -> dict[str, Any]:
        """Sensor-specific properties of one simulated pass (beyond datetime and product_id)."""
        low, high = self.angle_range
        angle = round(rng.uniform(low, high), 1)
        if self.sensor == "optical":
            return {
                "platform": rng.choice(self.platforms),
                "off_nadir": angle,
                # Off-nadir views stretch the ground footprint of a pixel roughly by 1/cos.
                "gsd": round(self.gsd_m / math.cos(math.radians(angle)), 2),
                "cloud_cover": round(rng.betavariate(0.8, 1.6) * 100.0, 1),
                "sun_elevation": round(rng.uniform(15.0, 65.0), 1),
            }
        return {
            "platform": rng.choice(self.platforms),
            "incidence_angle": angle,
            "look_direction": rng.choice(("left", "right")),
            "orbit_state": rng.choice(("ascending", "descending")),
            "gsd": self.gsd_m,
        }


MAX_PASSES = 500


@dataclass(frozen=True)
class PassPlan:
    """The passes of one product over one geometry within one interval, materialised on demand.

    The interval is cut into equal slots (one per revisit period) with one acquisition window
    placed pseudo-randomly inside each, so any page can be built without building the others.
    """

    product: ProductDef
    geometry: dict[str, Any]
    start: datetime
    slots: int
    slot_s: float
    window_s: float
    seed: int

    @classmethod
    def plan(cls, product: ProductDef, geometry: dict[str, Any], start: datetime, end: datetime) -> PassPlan:
        """Passes of `product` over `geometry` between `start` and `end` (at least one)."""
        total = (end - start).total_seconds()
        slots = max(1, min(MAX_PASSES, int(total // (product.revisit_h * 3600))))
        slot_s = total / slots
        # Same product, geometry and start give the same passes, so paging through them is stable.
        key = orjson.dumps([product.id, geometry, start.isoformat()], option=orjson.OPT_SORT_KEYS)
        return cls(product, geometry, start, slots, slot_s, min(product.window_s, slot_s), zlib.crc32(key))

    def feature(self, k: int) -> dict[str, Any]:
        """Pass number k as an Opportunity feature (wire format of stapi-pydantic's Opportunity)."""
        rng = random.Random(self.seed * MAX_PASSES + k)
        # Whole seconds keep the datetimes readable; the window still fits inside its slot.
        t0 = self.start + timedelta(seconds=int(k * self.slot_s + rng.random() * (self.slot_s - self.window_s)))
        t1 = t0 + timedelta(seconds=self.window_s)
        properties = {"datetime": f"{t0.isoformat()}/{t1.isoformat()}", "product_id": self.product.id}
        properties.update(self.product.opportunity_properties(rng))
        feature_id = f"{self.product.id}-{self.seed:08x}-{k}"
        return {"type": "Feature", "geometry": self.geometry, "properties": properties, "id": feature_id, "links": []}

    def page(self, first: int, limit: int, cql2: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` features from pass `first` on that match `cql2`, and the pass to resume at."""
        if not cql2:
            stop = min(self.slots, first + limit)
            return [self.feature(k) for k in range(first, stop)], (str(stop) if stop < self.slots else None)
        expr, hits = Expr(cql2), list[dict[str, Any]]()
        for k in range(first, self.slots):
            feature = self.feature(k)
            if not expr.matches(feature["properties"]):
                continue
            if len(hits) == limit:
                return hits, str(k)  # resume at the first hit beyond the page
            hits.append(feature)
        return hits, None


@dataclass(frozen=True)
class VendorDef:
    """A fictional provider: who it is and what it sells."""

    id: str
    title: str
    description: str
    url: str
    products: tuple[ProductDef, ...]


ACME = VendorDef(
    id="acme",
    title="Acme Earth Imaging",
    description="Fictional operator of a very-high-resolution optical constellation (demo simulator).",
    url="https://acme.example.com",
    products=(
        ProductDef(
            id="optical-50cm",
            title="Acme Optical 50 cm",
            description="Tasked panchromatic and 4-band multispectral imagery at 50 cm GSD from the "
            "four-satellite Acme-1 to Acme-4 constellation. Several passes per day at mid latitudes.",
            keywords=("optical", "multispectral", "panchromatic", "vhr", "tasking"),
            sensor="optical",
            platforms=("acme-1", "acme-2", "acme-3", "acme-4"),
            gsd_m=0.5,
            revisit_h=6.0,
            window_s=60.0,
            angle_range=(0.0, 30.0),
        ),
        ProductDef(
            id="optical-30cm",
            title="Acme Optical 30 cm HD",
            description="Tasked 30 cm panchromatic and pansharpened imagery from the AcmeHD pair, "
            "for object-level analysis. About one pass per day.",
            keywords=("optical", "panchromatic", "vhr", "30cm", "tasking"),
            sensor="optical",
            platforms=("acmehd-1", "acmehd-2"),
            gsd_m=0.3,
            revisit_h=24.0,
            window_s=45.0,
            angle_range=(0.0, 25.0),
        ),
    ),
)

ORBIT = VendorDef(
    id="orbit",
    title="Orbit Radar Systems",
    description="Fictional operator of an X-band SAR constellation imaging day and night through clouds "
    "(demo simulator).",
    url="https://orbit.example.com",
    products=(
        ProductDef(
            id="sar-stripmap",
            title="Orbit SAR Stripmap 3 m",
            description="X-band stripmap acquisitions at 3 m resolution over a 30 km swath, "
            "independent of weather and daylight.",
            keywords=("sar", "x-band", "stripmap", "all-weather", "tasking"),
            sensor="sar",
            platforms=("orbit-a", "orbit-b", "orbit-c"),
            gsd_m=3.0,
            revisit_h=8.0,
            window_s=20.0,
            angle_range=(20.0, 45.0),
        ),
        ProductDef(
            id="sar-spotlight",
            title="Orbit SAR Spotlight 50 cm",
            description="X-band staring spotlight scenes of 5 x 5 km at 50 cm resolution, "
            "for detailed monitoring of sites.",
            keywords=("sar", "x-band", "spotlight", "vhr", "all-weather", "tasking"),
            sensor="sar",
            platforms=("orbit-a", "orbit-b", "orbit-c"),
            gsd_m=0.5,
            revisit_h=12.0,
            window_s=10.0,
            angle_range=(25.0, 50.0),
        ),
    ),
)


def product_document(vendor: VendorDef, product: ProductDef) -> dict[str, Any]:
    """A product's wire form without links, rendered through stapi-pydantic so it validates."""
    roles = [ProviderRole.producer, ProviderRole.host]
    provider = Provider(name=vendor.title, description=vendor.description, roles=roles, url=vendor.url)
    document = Product(
        id=product.id,
        title=product.title,
        description=product.description,
        keywords=list(product.keywords),
        license="proprietary",
        providers=[provider],
        conformsTo=PRODUCT_CONFORMANCE,
    )
    return document.model_dump(mode="json", by_alias=True, exclude={"links"})


VENDORS: dict[str, VendorDef] = {v.id: v for v in (ACME, ORBIT)}
