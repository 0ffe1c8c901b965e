"""Which parts of Umbra's Tasking OpenAPI 3.13.0 the simulator and the adapter follow, checked.

The document is vendored trimmed (fixtures/umbra-tasking-openapi-trimmed.yaml, its source in its
header): every path the adapter calls, every field it sends or reads, every status it maps and
every constraint it offers exists there, with the same ranges, enums and defaults; the
simulator's request models and answers use only the document's names.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel
from starlette.routing import Route

from adapters.umbra import simulator_models as sm
from adapters.umbra.products import PRODUCTS, TASK_FIELDS
from adapters.umbra.simulator import build_app
from adapters.umbra.statuses import FEASIBILITY_STATUSES, TASK_STATUSES
from adapters.umbra.wire import OPPORTUNITY_FIELDS, feasibility_request, task_request
from tests.adapters.umbra.harness import LINE, POINT, WINDOW, fast_state

DOC: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "fixtures/umbra-tasking-openapi-trimmed.yaml").read_text()
)
SCHEMAS: dict[str, Any] = DOC["components"]["schemas"]
# (method, path under /tasking) the adapter calls, and the simulator serves.
USED = {
    ("post", "/feasibilities"),
    ("get", "/feasibilities/{id}"),
    ("post", "/tasks"),
    ("get", "/tasks/{id}"),
    ("post", "/tasks/search"),
    ("patch", "/tasks/{id}/cancel"),
}


def props(name: str) -> set[str]:
    """The property names of a schema of the document."""
    return set(SCHEMAS[name]["properties"])


def test_every_path_the_adapter_calls_is_in_the_document() -> None:
    """Feasibilities, tasks, task search, task cancel: paths and methods as published, served by the simulator."""
    for method, path in USED:
        assert method in DOC["paths"][path], (method, path)
    routes = [r for r in build_app().routes if isinstance(r, Route)]
    served = {(m.lower(), r.path.removeprefix("/tasking")) for r in routes for m in r.methods or ()}
    assert served >= USED


def test_what_the_adapter_sends_is_in_the_request_schemas() -> None:
    """The feasibility and task bodies use the document's names only, and the required ones."""
    for product, geometry in ((PRODUCTS["spotlight"], POINT), (PRODUCTS["scan"], LINE)):
        parameters = {name: schema["default"] for name, schema in product.constraints.items()}
        parameters.update(taskName="t", tags=["a"], productTypes=["GEC"], satelliteIds=["UMBRA_05"])
        search = feasibility_request(product, {"datetime": WINDOW, "geometry": geometry})
        order = task_request(product, {"datetime": WINDOW, "geometry": geometry, "order_parameters": parameters}, "ref")
        assert set(search) <= props("FeasibilityRequest-Input")
        assert set(SCHEMAS["FeasibilityRequest-Input"]["required"]) <= set(search)
        assert set(order) <= props("CommercialTaskRequest")
        assert set(SCHEMAS["CommercialTaskRequest"]["required"]) <= set(order)
        constraints = f"{product.imaging_mode.title()}Constraints"
        assert set(order["constraints"]) <= props(constraints)
    assert {"limit", "skip", "sortBy", "query"} == props("PostSearchTasksRequest")
    assert "userOrderId" in props("PostSearchTasksQueryModel")
    assert "eq" in props("SearchQueryFilterString")
    assert {"field", "dir"} == props("SortByField")
    assert "createdAt" in props("TaskProperties")


def test_what_the_adapter_reads_is_in_the_answer_schemas() -> None:
    """Opportunity, Feasibility, Task fields read by the adapter; every status it maps, and only those."""
    assert set(OPPORTUNITY_FIELDS) | {"windowStartAt", "windowEndAt"} <= props("Opportunity")
    assert {"id", "status", "opportunities", "feasibilityRequest", "createdAt", "updatedAt"} <= props("Feasibility")
    assert {"constraints", "windowStartAt", "windowEndAt"} <= props("FeasibilityRequest-Output")
    read = {"status", "statusHistory", "createdAt", "updatedAt", "windowStartAt", "windowEndAt", "constraints"}
    assert read | {"userOrderId", "collectIds", "imagingMode"} | set(TASK_FIELDS) <= props("TaskProperties")
    assert {"status", "timestamp"} == props("TaskStatusHistory")
    assert set(TASK_STATUSES) == set(SCHEMAS["TaskStatus"]["enum"])
    assert set(FEASIBILITY_STATUSES) == set(SCHEMAS["FeasibilityStatus"]["enum"])
    assert {"features", "context"} <= props("PaginatedFeatureCollection_Task_")
    assert {"limit", "matched", "returned"} == props("Context")
    assert {"loc", "msg", "type"} <= props("ValidationError")


def test_the_products_constraints_are_umbras() -> None:
    """Each queryable and order parameter of a constraint has the document's range, enum and default."""
    enums = {"polarization": "PolarizationEnum", "sceneSize": "SceneSize"}
    for product in PRODUCTS.values():
        published = SCHEMAS[f"{product.imaging_mode.title()}Constraints"]["properties"]
        assert set(product.constraints) == set(published) - {"imagingMode", "geometry"}
        for name, schema in product.constraints.items():
            source = published[name]
            assert schema["default"] == source["default"], name
            for key in ("minimum", "maximum"):
                assert schema.get(key) == source.get(key), (name, key)
            if name in enums:
                assert schema["enum"] == SCHEMAS[enums[name]]["enum"], name
            if "validValues" in source:
                assert [float(v) for v in schema["enum"]] == source["validValues"], name
    assert TASK_FIELDS["productTypes"]["items"]["enum"] == SCHEMAS["TaskProductType"]["enum"]
    tag = SCHEMAS["CommercialTaskRequest"]["properties"]["tags"]
    assert TASK_FIELDS["tags"]["maxItems"] == tag["maxItems"]
    assert TASK_FIELDS["tags"]["items"]["pattern"] == tag["items"]["pattern"]


def test_the_simulators_models_use_the_documents_names() -> None:
    """The simulator validates requests with fields the document defines (and nothing else)."""
    pairs: list[tuple[type[BaseModel], str]] = [
        (sm.SpotlightConstraints, "SpotlightConstraints"),
        (sm.ScanConstraints, "ScanConstraints"),
        (sm.FeasibilityRequest, "FeasibilityRequest-Input"),
        (sm.TaskRequest, "CommercialTaskRequest"),
        (sm.TaskSearch, "PostSearchTasksRequest"),
        (sm.TaskQuery, "PostSearchTasksQueryModel"),
        (sm.StringFilter, "SearchQueryFilterString"),
        (sm.UuidFilter, "SearchQueryFilterUUID"),
        (sm.ValueFilter, "SearchQueryFilterValue"),
        (sm.ArrayFilter, "SearchQueryFilterArray"),
        (sm.GeometryFilter, "SearchQueryFilterGeometry"),
        (sm.StatusFilter, "SearchQueryFilterEnum_TaskStatus_"),
        (sm.SortBy, "SortByField"),
    ]
    for model, name in pairs:
        assert set(model.model_fields) <= props(name), name


async def test_the_simulators_answers_use_the_documents_names() -> None:
    """A simulated feasibility, opportunity and task carry the document's fields (the required ones too)."""
    state = fast_state(feasibility_delay_s=0.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(state=state)), base_url="http://u") as c:
        sim = state.config
        credentials = {"client_id": sim.client_id, "client_secret": sim.client_secret, "audience": sim.audience}
        token = (await c.post("/oauth/token", json={**credentials, "grant_type": "client_credentials"})).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        body = feasibility_request(PRODUCTS["spotlight"], {"datetime": WINDOW, "geometry": POINT})
        feasibility = (await c.post("/tasking/feasibilities", json=body, headers=auth)).json()
        await asyncio.sleep(0.01)
        feasibility = (await c.get(f"/tasking/feasibilities/{feasibility['id']}", headers=auth)).json()
        order = task_request(PRODUCTS["spotlight"], {"datetime": WINDOW, "geometry": POINT}, "ref")
        task = (await c.post("/tasking/tasks", json=order, headers=auth)).json()
        page = (await c.post("/tasking/tasks/search", json={"query": {}}, headers=auth)).json()
    assert set(feasibility) <= props("Feasibility")
    assert set(feasibility["feasibilityRequest"]) <= props("FeasibilityRequest-Output")
    for opportunity in feasibility["opportunities"]:
        assert set(SCHEMAS["Opportunity"]["required"]) <= set(opportunity) <= props("Opportunity")
    assert set(task) <= props("Task")
    assert set(SCHEMAS["TaskProperties"]["required"]) <= set(task["properties"]) <= props("TaskProperties")
    assert set(page) <= props("PaginatedFeatureCollection_Task_")
