"""A small simulated STAPI 0.1.0 provider that answers like stapi-fastapi 0.8.0 on the wire.

Used by `stapi-gateway demo` and as a fast upstream stub in benchmarks, so static documents are
rendered once and responses are serialised with orjson.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from stapi_pydantic import (
    OpportunityPayload,
    Order,
    OrderPayload,
    OrderProperties,
    OrderSearchParameters,
    OrderStatus,
    OrderStatusCode,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.demo.catalogue import (
    API_CONFORMANCE,
    PRODUCT_CONFORMANCE,
    VENDORS,
    ProductDef,
    VendorDef,
    product_document,
)
from gateway.demo.wire import (
    GEOJSON,
    JSON,
    ApiError,
    base_url,
    json_response,
    link,
    opportunities,
    page_links,
    paging,
    parse_body,
    stamp,
)

# The order lifecycle the simulator walks through, one step every `order_step_s`.
LIFECYCLE = (OrderStatusCode.received, OrderStatusCode.accepted, OrderStatusCode.scheduled, OrderStatusCode.completed)

Endpoint = Callable[[Request], Awaitable[Response]]


class Simulator:
    """The state and request handlers of one simulated vendor."""

    def __init__(self, vendor: VendorDef, order_step_s: float | None) -> None:
        self.vendor, self.order_step_s = vendor, order_step_s
        self.products: dict[str, ProductDef] = {p.id: p for p in vendor.products}
        self.product_ids = list(self.products)
        # Only the links depend on the request, so everything else is rendered once.
        self._product_docs = {p.id: product_document(vendor, p) for p in vendor.products}
        self._queryables = {p.id: orjson.dumps(p.queryables.model_json_schema()) for p in vendor.products}
        self._parameters = {p.id: orjson.dumps(p.order_parameters.model_json_schema()) for p in vendor.products}
        self._order_models: dict[str, type[OrderPayload[Any]]] = {
            p.id: OrderPayload[p.order_parameters]  # type: ignore[name-defined]
            for p in vendor.products
        }
        self.orders: dict[str, dict[str, Any]] = {}
        self._created: dict[str, datetime] = {}

    def _product(self, request: Request) -> ProductDef:
        product = self.products.get(request.path_params["product_id"])
        if product is None:
            raise ApiError(404, "Not Found")  # what FastAPI says for a product route that was never mounted
        return product

    def _product_doc(self, base: str, pid: str) -> dict[str, Any]:
        href = f"{base}/products/{pid}"
        links = [link(href, "self")]
        links += [link(f"{href}/{rel}", rel) for rel in ("conformance", "queryables", "order-parameters")]
        links.append(link(f"{href}/orders", "create-order", method="POST"))
        links.append(link(f"{href}/opportunities", "opportunities"))
        return {**self._product_docs[pid], "links": links}

    async def root(self, request: Request) -> Response:
        """Landing page (without 0.8.0's openapi/docs links: the simulator serves neither)."""
        base, v = base_url(request), self.vendor
        links = [link(f"{base}/", "self"), link(f"{base}/conformance", "conformance")]
        links += [link(f"{base}/products", "products"), link(f"{base}/orders", "orders", GEOJSON)]
        body = {"id": f"{v.id}-stapi", "conformsTo": API_CONFORMANCE, "title": v.title, "description": v.description}
        return json_response({**body, "links": links})

    async def conformance(self, request: Request) -> Response:
        """API-level conformance classes."""
        return json_response({"conformsTo": API_CONFORMANCE})

    async def list_products(self, request: Request) -> Response:
        """Products, paged by the id of the next product."""
        token, limit = paging(request)
        if token is not None and token not in self.products:
            raise ApiError(404, "Error finding pagination token for products")
        start = self.product_ids.index(token) if token else 0
        base, end = base_url(request), start + limit
        links = [link(f"{base}/products", "self"), *page_links(f"{base}/products", self.product_ids, end, limit)]
        products = [self._product_doc(base, pid) for pid in self.product_ids[start:end]]
        return json_response({"type": "ProductCollection", "links": links, "products": products})

    async def get_product(self, request: Request) -> Response:
        """One product."""
        return json_response(self._product_doc(base_url(request), self._product(request).id))

    async def product_conformance(self, request: Request) -> Response:
        """Product-level conformance classes."""
        self._product(request)
        return json_response({"conformsTo": PRODUCT_CONFORMANCE})

    async def queryables(self, request: Request) -> Response:
        """JSON Schema of the filterable opportunity properties."""
        return Response(self._queryables[self._product(request).id], media_type=JSON)

    async def order_parameters(self, request: Request) -> Response:
        """JSON Schema of the order parameters."""
        return Response(self._parameters[self._product(request).id], media_type=JSON)

    async def search_opportunities(self, request: Request) -> Response:
        """Synchronous opportunity search, paged by POSTing the `next` link's body."""
        product = self._product(request)
        prefer = request.headers.get("prefer")
        if prefer is not None and prefer not in ("wait", "respond-async"):
            raise ApiError(400, f"Invalid Prefer header value: {prefer}")
        search = await parse_body(OpportunityPayload, request)
        features, token = opportunities(product, search)
        # Like 0.8.0, the create-order body lacks order_parameters, so it cannot be POSTed as is.
        order_href = f"{base_url(request)}/products/{product.id}/orders"
        links = [link(order_href, "create-order", method="POST", body=search.search_body())]
        if token is not None:
            links.append(link(str(request.url), "next", method="POST", body={**search.body(), "next": token}))
        body = {"type": "FeatureCollection", "features": features, "links": links, "id": None}
        return json_response(body, media_type=GEOJSON)

    async def create_order(self, request: Request) -> Response:
        """Accept an order; it then advances through LIFECYCLE as time passes."""
        product = self._product(request)
        payload = await parse_body(self._order_models[product.id], request)
        order_id, now = str(uuid.uuid4()), datetime.now(tz=UTC)
        search = OrderSearchParameters(datetime=payload.datetime, geometry=payload.geometry, filter=payload.filter)
        properties = OrderProperties[OrderStatus](
            product_id=product.id,
            created=now,
            status=OrderStatus(timestamp=now, status_code=OrderStatusCode.received),
            search_parameters=search,
            opportunity_properties={},
            order_parameters=payload.order_parameters.model_dump(mode="json"),
        )
        order = Order[OrderStatus](id=order_id, geometry=payload.geometry, properties=properties)
        self.orders[order_id] = order.model_dump(mode="json", exclude={"links"})
        self._created[order_id] = now
        base = base_url(request)
        return json_response(self._order_doc(base, order_id), 201, GEOJSON, {"Location": f"{base}/orders/{order_id}"})

    def statuses(self, order_id: str) -> list[dict[str, Any]]:
        """The status history an order has reached by now, oldest first."""
        created, step_s = self._created[order_id], self.order_step_s or 0.0
        reached = 1
        if step_s > 0:
            reached = min(len(LIFECYCLE), 1 + int((datetime.now(tz=UTC) - created).total_seconds() // step_s))
        return [
            {"timestamp": stamp(created + timedelta(seconds=step_s * i)), "status_code": code.value,
             "reason_code": None, "reason_text": None, "links": []}
            for i, code in enumerate(LIFECYCLE[:reached])
        ]  # fmt: skip

    def _order_doc(self, base: str, order_id: str) -> dict[str, Any]:
        stored, href = self.orders[order_id], f"{base}/orders/{order_id}"
        properties = {**stored["properties"], "status": self.statuses(order_id)[-1]}
        links = [link(href, "self", GEOJSON), link(f"{href}/statuses", "monitor")]
        return {**stored, "properties": properties, "links": links}

    def _order_id(self, request: Request) -> str:
        order_id: str = request.path_params["order_id"]
        if order_id not in self.orders:
            raise ApiError(404, "Order not found")
        return order_id

    async def list_orders(self, request: Request) -> Response:
        """Orders in creation order, paged by the id of the next order (no self link, like 0.8.0)."""
        token, limit = paging(request)
        if token is not None and token not in self.orders:
            raise ApiError(404, "Error finding pagination token")
        ids = list(self.orders)
        start = ids.index(token) if token else 0
        base, end = base_url(request), start + limit
        features = [self._order_doc(base, i) for i in ids[start:end]]
        links = page_links(f"{base}/orders", ids, end, limit)
        body = {"type": "FeatureCollection", "features": features, "links": links, "numberMatched": len(ids)}
        return json_response(body, media_type=GEOJSON)

    async def get_order(self, request: Request) -> Response:
        """One order."""
        return json_response(self._order_doc(base_url(request), self._order_id(request)), media_type=GEOJSON)

    async def order_statuses(self, request: Request) -> Response:
        """An order's status history, oldest first, paged by index."""
        order_id = self._order_id(request)
        token, limit = paging(request)
        statuses = self.statuses(order_id)
        indexes = [str(i) for i in range(len(statuses))]
        if token is not None and token not in indexes:
            raise ApiError(404, "Error finding pagination token")
        start = int(token or 0)
        href, end = f"{base_url(request)}/orders/{order_id}/statuses", start + limit
        links = [link(href, "self"), *page_links(href, indexes, end, limit)]
        return json_response({"statuses": statuses[start:end], "links": links})


def simulator_app(vendor: str, *, latency_s: float = 0.0, order_step_s: float | None = 5.0) -> Starlette:
    """A Starlette app simulating `vendor` (a key of `VENDORS`).

    `latency_s` delays every response (benchmarks); orders advance one LIFECYCLE step every
    `order_step_s` seconds, or stay `received` when it is None.
    """
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(sorted(VENDORS))}")
    sim = Simulator(VENDORS[vendor], order_step_s)

    def delayed(endpoint: Endpoint) -> Endpoint:
        if latency_s <= 0:
            return endpoint

        async def wrapper(request: Request) -> Response:
            await asyncio.sleep(latency_s)
            return await endpoint(request)

        return wrapper

    table: list[tuple[str, Endpoint, str]] = [
        ("/", sim.root, "GET"),
        ("/conformance", sim.conformance, "GET"),
        ("/products", sim.list_products, "GET"),
        ("/products/{product_id}", sim.get_product, "GET"),
        ("/products/{product_id}/conformance", sim.product_conformance, "GET"),
        ("/products/{product_id}/queryables", sim.queryables, "GET"),
        ("/products/{product_id}/order-parameters", sim.order_parameters, "GET"),
        ("/products/{product_id}/opportunities", sim.search_opportunities, "POST"),
        ("/products/{product_id}/orders", sim.create_order, "POST"),
        ("/orders", sim.list_orders, "GET"),
        ("/orders/{order_id}", sim.get_order, "GET"),
        ("/orders/{order_id}/statuses", sim.order_statuses, "GET"),
    ]

    async def error(request: Request, exc: Exception) -> Response:
        # Starlette's own 404/405 would be plain text; FastAPI answers them as JSON too.
        if isinstance(exc, HTTPException):
            return json_response({"detail": exc.detail}, exc.status_code, headers=dict(exc.headers or {}))
        assert isinstance(exc, ApiError)
        return json_response({"detail": exc.detail}, exc.status)

    app = Starlette(
        routes=[Route(path, delayed(fn), methods=[method]) for path, fn, method in table],
        exception_handlers={ApiError: error, HTTPException: error},
    )
    app.state.simulator = sim
    return app


__all__ = ["VENDORS", "ApiError", "Simulator", "simulator_app"]
