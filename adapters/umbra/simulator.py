"""A simulated Umbra Canopy (Tasking API 3.13.0 and its token endpoint), for tests and the demo.

Serves what the Umbra adapter uses, as Umbra documents it: `POST /oauth/token` (JSON body,
`expires_in` 86400, exchanges counted and capped per day), `POST /tasking/feasibilities`,
`GET /tasking/feasibilities/{id}`, `POST /tasking/tasks`, `GET /tasking/tasks/{id}`,
`POST /tasking/tasks/search` and `PATCH /tasking/tasks/{id}/cancel`. Bodies are validated strictly
(simulator_models.py) and refused with FastAPI's 422 shape; every tasking call needs a live bearer
token (401 otherwise); creating tasks and feasibilities answers 429 past the configured per-second
limits. Where Umbra's documents are silent (the 401 and 404 bodies, the default sort, a 429's body)
the choices are the README's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.umbra.simulator_models import FeasibilityRequest, TaskRequest, TaskSearch
from adapters.umbra.simulator_state import SORTABLE, SimConfig, SimState

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _invalid(errors: list[dict[str, Any]]) -> Response:
    """FastAPI's HTTPValidationError."""
    return _json({"detail": errors}, 422)


def _errors(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors(include_url=False):
        item = {"type": error["type"], "loc": [where, *error["loc"]], "msg": error["msg"], "input": error.get("input")}
        out.append(orjson.loads(orjson.dumps(item, default=str)))
    return out


async def _body(request: Request, model: type[BaseModel]) -> BaseModel | Response:
    """The request body as `model`, or the 422 FastAPI would send."""
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _invalid([{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return _invalid(_errors(exc, "body"))


T = TypeVar("T")


def _found(request: Request, table: Mapping[str, T]) -> T | Response:
    """The entry the `{id}` path names, else Umbra's 422 (not a UUID) or 404."""
    found_id = _path_id(request)
    if isinstance(found_id, Response):
        return found_id
    found = table.get(found_id)
    return _json({"detail": "Not Found"}, 404) if found is None else found


def _path_id(request: Request) -> str | Response:
    """The `{id}` path parameter, a UUID as Umbra's document types it."""
    value = str(request.path_params["id"])
    try:
        return str(uuid.UUID(value))
    except ValueError:
        error = {"type": "uuid_parsing", "loc": ["path", "id"], "msg": "Input should be a valid UUID", "input": value}
        return _invalid([error])


def build_app(config: SimConfig | None = None, state: SimState | None = None) -> Starlette:
    """The simulated vendor; pass `state` to look at (or steer) what it holds."""
    sim = state or SimState(config or SimConfig())
    cfg = sim.config

    def guarded(handler: Handler, limit: tuple[str, int] | None = None) -> Handler:
        async def endpoint(request: Request) -> Response:
            if cfg.latency_s:
                await asyncio.sleep(cfg.latency_s)
            if not sim.authorised(request.headers.get("authorization")):
                return _json({"detail": "Unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
            if limit is not None and not sim.admit(*limit):
                return _json({"detail": "Too Many Requests"}, 429)
            return await handler(request)

        return endpoint

    async def token(request: Request) -> Response:
        if "json" not in request.headers.get("content-type", ""):
            return _json({"error": "invalid_request", "error_description": "send a JSON body"}, 400)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"error": "invalid_request", "error_description": "invalid JSON"}, 400)
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if (body.get("client_id"), body.get("client_secret")) != (cfg.client_id, cfg.client_secret):
            return _json({"error": "access_denied", "error_description": "Unauthorized"}, 401)
        if body.get("audience") != cfg.audience:
            return _json({"error": "access_denied", "error_description": "Service not found"}, 403)
        minted = sim.mint()
        if minted is None:
            return _json({"error": "too_many_requests", "error_description": "Too many token exchanges"}, 429)
        return _json({"access_token": minted, "expires_in": cfg.token_lifetime_s, "token_type": "Bearer"})

    def _empty_window(parsed: FeasibilityRequest | TaskRequest) -> Response | None:
        """Umbra's 422 for a window that ends before it starts (feasibilities and tasks alike)."""
        if parsed.windowEndAt > parsed.windowStartAt:
            return None
        error = {"type": "value_error", "loc": ["body", "windowEndAt"], "msg": "windowEndAt must be after start"}
        return _invalid([error])

    async def create_feasibility(request: Request) -> Response:
        parsed = await _body(request, FeasibilityRequest)
        if isinstance(parsed, Response):
            return parsed
        assert isinstance(parsed, FeasibilityRequest)
        if (refused := _empty_window(parsed)) is not None:
            return refused
        return _json(sim.feasibility_body(sim.add_feasibility(parsed)), 201)

    async def get_feasibility(request: Request) -> Response:
        found = _found(request, sim.feasibilities)
        return found if isinstance(found, Response) else _json(sim.feasibility_body(found))

    async def create_task(request: Request) -> Response:
        parsed = await _body(request, TaskRequest)
        if isinstance(parsed, Response):
            return parsed
        assert isinstance(parsed, TaskRequest)
        if (refused := _empty_window(parsed)) is not None:
            return refused
        return _json(sim.task_body(sim.add_task(parsed)), 201)

    async def get_task(request: Request) -> Response:
        task = _found(request, sim.tasks)
        return task if isinstance(task, Response) else _json(sim.task_body(task))

    async def cancel_task(request: Request) -> Response:
        task = _found(request, sim.tasks)
        if isinstance(task, Response):
            return task
        if not sim.cancel(task):
            status = sim.task_body(task)["properties"]["status"]
            return _json({"detail": f"Task in status {status} cannot be canceled"}, 422)
        return Response(status_code=204)

    async def search_tasks(request: Request) -> Response:
        parsed = await _body(request, TaskSearch)
        if isinstance(parsed, Response):
            return parsed
        assert isinstance(parsed, TaskSearch)
        sort = []
        for i, rule in enumerate(parsed.sortBy or []):
            if rule.field not in SORTABLE:
                msg = f"sortBy field must be one of {sorted(SORTABLE)}"
                return _invalid([{"type": "value_error", "loc": ["body", "sortBy", i, "field"], "msg": msg}])
            sort.append((rule.field, rule.dir == "desc"))
        found = sim.search(parsed.query, sort)
        limit, skip = parsed.limit or 20, parsed.skip or 0
        page = found[skip : skip + limit]
        context = {"limit": limit, "matched": len(found), "returned": len(page)}
        return _json({"type": "FeatureCollection", "features": page, "context": context})

    routes = [
        Route("/oauth/token", token, methods=["POST"]),
        Route(
            "/tasking/feasibilities",
            guarded(create_feasibility, ("feasibility", cfg.feasibility_per_s)),
            methods=["POST"],
        ),
        Route("/tasking/feasibilities/{id}", guarded(get_feasibility), methods=["GET"]),
        Route("/tasking/tasks", guarded(create_task, ("create_task", cfg.create_task_per_s)), methods=["POST"]),
        Route("/tasking/tasks/search", guarded(search_tasks), methods=["POST"]),
        Route("/tasking/tasks/{id}", guarded(get_task), methods=["GET"]),
        Route("/tasking/tasks/{id}/cancel", guarded(cancel_task), methods=["PATCH"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app


def app(latency_s: float = 0.0, status_step_s: float | None = None) -> Starlette:
    """The simulated vendor as `stapi-gateway simulate --vendor umbra` and the demo serve it."""
    config = SimConfig(latency_s=latency_s)
    return build_app(config if status_step_s is None else replace(config, status_step_s=status_step_s))
