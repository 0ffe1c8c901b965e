"""The simulated Umbra Canopy's request models: Umbra's Tasking OpenAPI 3.13.0 schemas as pydantic.

Followed from `openapi/_original/umbra-tasking-openapi.yml` (api-evangelist/umbra, a copy of
docs.canopy.umbra.space/openapi/tasking.json): `SpotlightConstraints`, `ScanConstraints`,
`FeasibilityRequest-Input`, `CommercialTaskRequest`, `PostSearchTasksRequest` and its query
filters. Validation errors become FastAPI's `{"detail": [{"loc", "msg", "type"}]}` in simulator.py.
Where the document only says so in prose (valid range resolutions, multilook factors, a scan's
"exactly two coordinates"), the simulator enforces it, as the live API would have to.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

Polarization = Literal["VV", "HH"]
SceneSize = Literal["4x4_KM", "5x5_KM", "10x10_KM", "NATURAL_FOOTPRINT"]
ProductType = Literal["CPHD", "GEC", "SIDD", "SICD", "DI_GIF", "DI_TIF", "CRSD"]
TaskStatus = Literal[
    "RECEIVED", "REVIEW", "ACCEPTED", "ACTIVE", "SCHEDULED", "REJECTED", "EXPIRED", "TASKED",
    "PROCESSING", "PROCESSED", "DELIVERING", "DELIVERED", "CANCEL_REQUESTED", "CANCELED", "ERROR",
    "ANOMALY", "COMPLETED", "SUBMITTED", "TRANSMITTED", "INCOMPLETE",
]  # fmt: skip
Position = Annotated[list[float], Field(min_length=2, max_length=3)]
Tag = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9_-]+$")]


def _one_of(*allowed: float) -> AfterValidator:
    """A number that must be one of the values Umbra's prose lists."""

    def check(value: float) -> float:
        if value not in allowed:
            raise ValueError(f"Valid values include: {', '.join(str(a) for a in allowed)}")
        return value

    return AfterValidator(check)


# Umbra's document additionally warns that extra properties "will be forbidden in the future".
_LENIENT = ConfigDict(extra="allow")
_STRICT = ConfigDict(extra="forbid")


class Point(BaseModel):
    """GeoJSON Point (Umbra's `Point`)."""

    type: Literal["Point"]
    coordinates: Position


class LineString(BaseModel):
    """GeoJSON LineString (Umbra's `LineString`, minItems 2)."""

    type: Literal["LineString"]
    coordinates: Annotated[list[Position], Field(min_length=2)]


class ScanLine(LineString):
    """A scan's geometry: "There must be exactly two coordinates in the geometry"."""

    @field_validator("coordinates")
    @classmethod
    def _two(cls, value: list[list[float]]) -> list[list[float]]:
        if len(value) != 2:
            raise ValueError("There must be exactly two coordinates in the geometry")
        return value


class SpotlightConstraints(BaseModel):
    """Umbra's `SpotlightConstraints` with its defaults."""

    model_config = _LENIENT
    imagingMode: Literal["SPOTLIGHT"]
    geometry: Point
    polarization: Polarization = "VV"
    rangeResolutionMinMeters: Annotated[float, _one_of(0.25, 0.35, 0.5, 1, 2)] = 1
    multilookFactor: Literal[1, 2, 4, 8] = 1
    grazingAngleMinDegrees: Annotated[int, Field(ge=0, le=89)] = 45
    grazingAngleMaxDegrees: Annotated[int, Field(ge=1, le=90)] = 65
    targetAzimuthAngleStartDegrees: Annotated[int, Field(ge=0, le=360)] = 1
    targetAzimuthAngleEndDegrees: Annotated[int, Field(ge=0, le=360)] = 360
    sceneSize: SceneSize = "5x5_KM"


class ScanConstraints(BaseModel):
    """Umbra's `ScanConstraints` with its defaults."""

    model_config = _LENIENT
    imagingMode: Literal["SCAN"]
    geometry: ScanLine
    polarization: Polarization = "VV"
    rangeResolutionMinMeters: Annotated[float, _one_of(0.5, 1, 2)] = 2
    grazingAngleMinDegrees: Annotated[int, Field(ge=0, le=79)] = 32
    grazingAngleMaxDegrees: Annotated[int, Field(ge=1, le=80)] = 60
    swathWidthMeters: Annotated[int, Field(ge=1000, le=10000)] = 8000


Constraints = Annotated[SpotlightConstraints | ScanConstraints, Field(discriminator="imagingMode")]


class FeasibilityRequest(BaseModel):
    """Umbra's `FeasibilityRequest-Input` (the current shape; the deprecated one is not simulated)."""

    model_config = _LENIENT
    constraints: Constraints
    windowStartAt: AwareDatetime
    windowEndAt: AwareDatetime
    contractId: UUID | None = None


class TaskRequest(FeasibilityRequest):
    """Umbra's `CommercialTaskRequest`."""

    deliveryConfigId: UUID | None = None
    productTypes: list[ProductType] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = Field(default_factory=list)
    taskName: Annotated[str, Field(min_length=1)]
    userOrderId: str = ""
    satelliteIds: list[str] = Field(default_factory=list)


class StringFilter(BaseModel):
    """Umbra's `SearchQueryFilterString`."""

    model_config = _STRICT
    eq: str | None = None
    startsWith: str | None = None
    endsWith: str | None = None
    contains: str | None = None
    icontains: str | None = None


class UuidFilter(BaseModel):
    """Umbra's `SearchQueryFilterUUID`."""

    model_config = _STRICT
    eq: UUID | None = None
    ne: UUID | None = None


class ValueFilter(BaseModel):
    """Umbra's `SearchQueryFilterValue` (numbers, numeric strings or date-times)."""

    model_config = _STRICT
    eq: float | AwareDatetime | None = None
    ne: float | AwareDatetime | None = None
    gt: float | AwareDatetime | None = None
    lt: float | AwareDatetime | None = None
    gte: float | AwareDatetime | None = None
    lte: float | AwareDatetime | None = None


class StatusFilter(BaseModel):
    """Umbra's `SearchQueryFilterEnum[TaskStatus]`."""

    model_config = _STRICT
    in_: list[TaskStatus] | None = None


class ModeFilter(BaseModel):
    """Umbra's `SearchQueryFilterEnum[ImagingMode]`."""

    model_config = _STRICT
    in_: list[Literal["SPOTLIGHT", "SCAN"]] | None = None


class ArrayFilter(BaseModel):
    """Umbra's `SearchQueryFilterArray`."""

    model_config = _STRICT
    contains: str | None = None
    all: list[str] | None = None


class GeometryFilter(BaseModel):
    """Umbra's `SearchQueryFilterGeometry` (accepted; the simulator does not evaluate it)."""

    model_config = _STRICT
    intersects: dict[str, Any] | None = None


class TaskQuery(BaseModel):
    """Umbra's `PostSearchTasksQueryModel`: unknown keys are a 422."""

    model_config = _STRICT
    id: UuidFilter | None = None
    geometry: GeometryFilter | None = None
    createdAt: ValueFilter | None = None
    updatedAt: ValueFilter | None = None
    status: StatusFilter | None = None
    userId: StringFilter | None = None
    deliveryConfigId: UuidFilter | None = None
    tags: ArrayFilter | None = None
    taskName: StringFilter | None = None
    taskType: dict[str, Any] | None = None
    userOrderId: StringFilter | None = None
    imagingMode: ModeFilter | None = None
    windowStartAt: ValueFilter | None = None
    windowEndAt: ValueFilter | None = None
    contractId: UuidFilter | None = None


class SortBy(BaseModel):
    """Umbra's `SortByField`."""

    field: str
    dir: Literal["asc", "desc"]


class TaskSearch(BaseModel):
    """Umbra's `PostSearchTasksRequest`."""

    limit: Annotated[int, Field(ge=1, le=200)] | None = 20
    skip: Annotated[int, Field(ge=0)] | None = 0
    sortBy: list[SortBy] | None = None
    query: TaskQuery
