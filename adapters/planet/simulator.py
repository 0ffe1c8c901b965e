"""A simulated Planet Tasking API v2, for tests, `stapi-gateway simulate --vendor planet` and the demo.

Serves, under `root` (default `/tasking/v2`, so a provider url is `http://host:port/tasking/v2`),
with trailing slashes as in every example of Planet's docs (a path without one is a 404):
`POST /imaging-windows/search/` (201, `Location` a path from the host root),
`GET /imaging-windows/search/{id}/`, `POST /orders/`, `GET /orders/{id}/`, `DELETE /orders/{id}/`,
`GET /orders/?limit&offset&ordering&name&name__icontains&status` and
`GET /order-history/?order_id&limit&offset&ordering`. Auth: `Authorization: api-key <KEY>` or HTTP
Basic with the key as the user name (401 otherwise). Each endpoint has its own per-second limit,
past which it answers 429 with `Retry-After`, before doing anything.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.planet.simulator_checks import order_errors, search_errors
from adapters.planet.simulator_world import ASSURED, FLEXIBLE, PlanetWorld, SimOrder, expanded, iso

DEMO_API_KEY = "planet-demo-key"
DEMO_PL_NUMBER = "PL-000001"
# Per-endpoint calls a second. Planet documents 40/s burst (300/min sustained) for listing orders;
# the others are this simulator's choice.
DEFAULT_LIMITS = {
    "search_create": 10,
    "search_get": 40,
    "order_create": 10,
    "order_get": 40,
    "order_list": 40,
    "order_history": 40,
}
MAX_PAGE = 100


@dataclass(slots=True)
class PlanetSimConfig:
    """How the simulated API behaves: its key, root, status-walk steps, latency and limits."""

    api_key: str = DEMO_API_KEY
    root: str = "/tasking/v2"
    order_step_s: float = 2.0
    search_step_s: float = 0.3
    latency_s: float = 0.0
    pl_number: str = DEMO_PL_NUMBER
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _detail(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"detail": text}, status, headers)


class PlanetSimulator:
    """The simulated API: `app` is the ASGI app, `world` what it holds."""

    def __init__(self, config: PlanetSimConfig | None = None, world: PlanetWorld | None = None) -> None:
        self.config = config or PlanetSimConfig()
        self.world = world or PlanetWorld()
        self.calls: dict[str, int] = {}
        self._windows: dict[str, tuple[int, int]] = {}
        root = self.config.root.rstrip("/")
        searches = f"{root}/imaging-windows/search/"
        routes = [
            Route(searches, self._guard("search_create", self.search_create), methods=["POST"]),
            Route(searches + "{id}/", self._guard("search_get", self.search_get), methods=["GET"]),
            Route(f"{root}/orders/", self._guard("order_create", self.order_create), methods=["POST"]),
            Route(f"{root}/orders/", self._guard("order_list", self.order_list), methods=["GET"]),
            Route(f"{root}/orders/{{id}}/", self._guard("order_get", self.order_get), methods=["GET"]),
            Route(f"{root}/orders/{{id}}/", self._guard("order_cancel", self.order_cancel), methods=["DELETE"]),
            Route(f"{root}/order-history/", self._guard("order_history", self.order_history), methods=["GET"]),
        ]
        self.app = Starlette(routes=routes, exception_handlers={404: self._not_found, 405: self._not_allowed})
        # Planet's paths end in a slash; one without it is not found (no redirect).
        self.app.router.redirect_slashes = False

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return _detail(404, "Not found.")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return _detail(405, f'Method "{request.method}" not allowed.')

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "api-key":
            return value.strip() == self.config.api_key
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(value.strip()).decode().partition(":")[0]
            except ValueError:
                return False
            return user == self.config.api_key
        return False

    def _throttled(self, endpoint: str) -> bool:
        """A fixed one-second window per endpoint (how Planet counts is not documented)."""
        second = int(time.time())
        start, count = self._windows.get(endpoint, (second, 0))
        if start != second:
            start, count = second, 0
        self._windows[endpoint] = (start, count + 1)
        return count + 1 > self.config.limits.get(endpoint, 1_000_000)

    def _guard(self, endpoint: str, handler: Any) -> Any:
        async def guarded(request: Request) -> Response:
            if self.config.latency_s:
                await asyncio.sleep(self.config.latency_s)
            if not self._authorized(request):
                return _detail(401, "Invalid API key or no credentials provided.")
            self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
            if self._throttled(endpoint):
                return _detail(429, "Request was throttled. Expected available in 1 second.", {"Retry-After": "1"})
            response: Response = await handler(request)
            return response

        return guarded

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _detail(400, "JSON parse error.")
        if not isinstance(body, dict):
            return _json({"non_field_errors": ["Invalid data. Expected a dictionary."]}, 400)
        return body

    # --- imaging windows ---------------------------------------------------------------

    async def search_create(self, request: Request) -> Response:
        """Start an imaging-window search: 201, the search, and where to poll it."""
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        errors, start, end = search_errors(body, self.world)
        if errors:
            return _json(errors, 400)
        keys = ("geometry", "pl_number", "product", "start_time", "end_time")
        kept = {key: body.get(key) for key in (*keys, "sat_elevation_angle_min", "sat_elevation_angle_max")}
        search = self.world.new_search(kept, start, end)
        location = f"{self.config.root.rstrip('/')}/imaging-windows/search/{search.id}/"
        shown = search.body(self.world.clock(), self.config.search_step_s)
        return _json(shown, 201, {"Location": location})

    async def search_get(self, request: Request) -> Response:
        """One imaging-window search as it stands."""
        search = self.world.searches.get(request.path_params["id"])
        if search is None:
            return _detail(404, "Not found.")
        return _json(search.body(self.world.clock(), self.config.search_step_s))

    # --- orders ------------------------------------------------------------------------

    def _shown(self, order: SimOrder) -> dict[str, Any]:
        return order.body(self.world.clock(), self.config.order_step_s)

    async def order_create(self, request: Request) -> Response:
        """Create a tasking order: 201 and the order."""
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        body = {**body, "pl_number": body.get("pl_number") or self.config.pl_number}
        body["product"] = body.get("product") or FLEXIBLE
        errors = order_errors(body, self.world)
        if errors:
            return _json(errors, 400)
        fields = {
            "name": body["name"],
            "geometry": expanded(body["geometry"]),
            "original_geometry": body["geometry"],
            "pl_number": body["pl_number"],
            "product": body["product"],
            "imaging_window": body.get("imaging_window"),
            "scheduling_type": "ASSURED" if body["product"] == ASSURED else "FLEXIBLE",
            "sat_elevation_angle_min": body.get("sat_elevation_angle_min", 60),
            "sat_elevation_angle_max": body.get("sat_elevation_angle_max", 90),
            "rank": 0,
            **self._span(body),
        }
        return _json(self._shown(self.world.new_order(fields)), 201)

    def _span(self, body: dict[str, Any]) -> dict[str, Any]:
        """An assured order's times are its window's; a flexible one's default to the coming week."""
        window = self.world.windows.get(str(body.get("imaging_window")))
        if window is not None:
            return {"start_time": window["start_time"], "end_time": window["end_time"]}
        start, end = self.world.default_span()
        return {"start_time": body.get("start_time") or iso(start), "end_time": body.get("end_time") or iso(end)}

    async def order_get(self, request: Request) -> Response:
        """One order."""
        order = self.world.orders.get(request.path_params["id"])
        return _detail(404, "Not found.") if order is None else _json(self._shown(order))

    async def order_cancel(self, request: Request) -> Response:
        """Cancel an order: 204, or 400 in Django's `detail` shape when its status forbids it."""
        order = self.world.orders.get(request.path_params["id"])
        if order is None:
            return _detail(404, "Not found.")
        now, step = self.world.clock(), self.config.order_step_s
        if not order.cancel(now, step):
            return _detail(400, f"Order cannot be cancelled in status {order.status(now, step)}.")
        return Response(status_code=204)

    def _paging(self, request: Request) -> tuple[int, int] | Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return _json({"detail": "Invalid limit or offset."}, 400)
        return max(1, min(limit, MAX_PAGE)), max(0, offset)

    def _page(self, request: Request, items: list[dict[str, Any]], limit: int, offset: int) -> Response:
        """A Django REST framework page, `next`/`previous` as absolute URLs."""
        here = str(request.url.replace(query=""))

        def at(position: int) -> str:
            query = dict(request.query_params) | {"limit": str(limit), "offset": str(position)}
            return f"{here}?" + "&".join(f"{key}={value}" for key, value in query.items())

        page = items[offset : offset + limit]
        return _json(
            {
                "count": len(items),
                "next": at(offset + limit) if offset + limit < len(items) else None,
                "previous": at(max(0, offset - limit)) if offset > 0 else None,
                "results": page,
            }
        )

    async def order_list(self, request: Request) -> Response:
        """Orders, filtered and ordered as asked (`ordering=-created_time` newest first)."""
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        query = request.query_params
        orders = [self._shown(order) for order in self.world.orders.values()]
        if "name" in query:
            orders = [o for o in orders if o["name"] == query["name"]]
        if "name__icontains" in query:
            orders = [o for o in orders if query["name__icontains"].lower() in o["name"].lower()]
        if "status" in query:
            orders = [o for o in orders if o["status"] == query["status"]]
        ordering = query.get("ordering", "-created_time")
        if ordering.lstrip("-") not in ("created_time", "name", "updated_time"):
            return _json({"ordering": [f'"{ordering}" is not a valid ordering.']}, 400)
        orders.sort(key=lambda o: (o[ordering.lstrip("-")], o["id"]), reverse=ordering.startswith("-"))
        return self._page(request, orders, *paging)

    async def order_history(self, request: Request) -> Response:
        """An order's history events (`order_id`), oldest first unless `ordering=-created_time`."""
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        order = self.world.orders.get(request.query_params.get("order_id", ""))
        events = [] if order is None else order.history(self.world.clock(), self.config.order_step_s)
        if request.query_params.get("ordering") == "-created_time":
            events.reverse()
        return self._page(request, events, *paging)


def simulated_app(latency_s: float = 0.0, status_step_s: float | None = None) -> Any:
    """The ASGI app of `stapi-gateway simulate --vendor planet` and the demo (`status_step_s`: an order's walk)."""
    config = PlanetSimConfig(latency_s=latency_s)
    if status_step_s is not None:
        config = dataclasses.replace(config, order_step_s=status_step_s)
    return PlanetSimulator(config).app
