"""Real stapi-fastapi 0.8.0 providers with in-memory backends, for testing the gateway against them.

Each `build_provider` call returns an independent FastAPI app whose state lives in
`app.state.backend` (an `InMemoryBackend`), so a test can inspect or steer what the upstream holds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import httpx
import uvicorn
from cql2 import Expr
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from returns.maybe import Maybe, Nothing, Some
from returns.result import Failure, ResultE, Success
from stapi_fastapi import ProductRouter, RootRouter
from stapi_fastapi.conformance import API, PRODUCT
from stapi_fastapi.errors import QueryablesError, StapiError
from stapi_fastapi.models import Product
from stapi_fastapi.routers.route_names import (
    GET_OPPORTUNITY_COLLECTION,
    GET_OPPORTUNITY_SEARCH_RECORD,
    GET_OPPORTUNITY_SEARCH_RECORD_STATUSES,
)
from stapi_pydantic import (
    Link,
    Opportunity,
    OpportunityCollection,
    OpportunityPayload,
    OpportunityProperties,
    OpportunitySearchRecord,
    OpportunitySearchStatus,
    OpportunitySearchStatusCode,
    Order,
    OrderParameters,
    OrderPayload,
    OrderProperties,
    OrderSearchParameters,
    OrderStatus,
    OrderStatusCode,
    Provider,
    ProviderRole,
    Queryables,
)
from starlette.types import ASGIApp, Receive, Scope, Send

ROOT_NAME = "root"


class DefaultOrderParameters(OrderParameters):
    """Order parameters with a single optional delivery format."""

    delivery_format: Literal["cog", "geotiff"] = "cog"


class DefaultQueryables(Queryables):
    """Queryables advertising the off-nadir angle that opportunities carry."""

    off_nadir: float = Field(ge=0.0, le=45.0, description="Off-nadir angle in degrees")


class DefaultOpportunityProperties(OpportunityProperties):
    """Opportunity properties: the STAPI-required ones plus an off-nadir angle."""

    off_nadir: float = Field(ge=0.0, le=45.0)


@dataclass(frozen=True)
class ProductSpec:
    """What one upstream product looks like and which opportunity searches it supports.

    A custom `opportunity_properties` class must accept `datetime`, `product_id` and `off_nadir`,
    because those are what the in-memory backend generates.
    """

    id: str
    title: str = ""
    sync: bool = True
    async_: bool = False
    order_parameters: type[OrderParameters] = DefaultOrderParameters
    queryables: type[Queryables] = DefaultQueryables
    opportunity_properties: type[OpportunityProperties] = DefaultOpportunityProperties
    description: str = ""
    keywords: tuple[str, ...] = ("test",)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it (for asserting what the gateway forwarded)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


M = TypeVar("M", bound=BaseModel)


class FilterError(QueryablesError):
    """stapi-fastapi's 422 for a filter it cannot evaluate, built without the deprecated Starlette name.

    QueryablesError's own constructor reads `status.HTTP_422_UNPROCESSABLE_ENTITY`, which Starlette
    deprecates with a warning; the routers only test `isinstance(e, QueryablesError)` and re-raise
    it, so this subclass answers the same 422 with the same detail.
    """

    def __init__(self, detail: str) -> None:
        StapiError.__init__(self, 422, detail)  # skips QueryablesError.__init__ on purpose


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _page_start(ids: Sequence[str], token: str | None) -> int:
    """Index of the pagination token in ids; ValueError (which stapi-fastapi maps to 404) if unknown."""
    return ids.index(token) if token else 0


def _id_page(ids: list[str], token: str | None, limit: int) -> ResultE[tuple[list[str], Maybe[str]]]:
    """A page of ids; the token is the id that starts the next page (ValueError, i.e. 404, if unknown)."""
    try:
        start = _page_start(ids, token)
    except ValueError as exc:
        return Failure(exc)
    if limit < 1:
        # stapi-fastapi does not validate limit; a zero page would make clients loop forever.
        return Failure(ValueError("limit must be positive"))
    end = start + limit
    return Success((ids[start:end], Some(ids[end]) if end < len(ids) else Nothing))


def _index_page(items: Sequence[M], token: str | None, limit: int) -> ResultE[tuple[list[M], Maybe[str]]]:
    """A page of copies by position; the token is the next index (ValueError, i.e. 404, if bad)."""
    try:
        start = int(token) if token else 0
    except ValueError as exc:
        return Failure(exc)
    if limit < 1 or not 0 <= start <= len(items):
        return Failure(ValueError(f"bad paging: next={token!r} limit={limit}"))
    end = start + limit
    following: Maybe[str] = Some(str(end)) if end < len(items) else Nothing
    return Success(([item.model_copy(deep=True) for item in items[start:end]], following))


class InMemoryBackend:
    """All state of one provider, plus the stapi-fastapi backend callables that read and write it.

    Stored models never carry links: the routers append links to whatever a backend returns, so
    every read hands out a deep copy (stapi-fastapi 0.8.0 gotcha).
    """

    def __init__(self, name: str, *, opportunities_per_search: int, async_completes: bool) -> None:
        self.name = name
        self.opportunities_per_search = opportunities_per_search
        self.async_completes = async_completes
        self.orders: dict[str, Order[OrderStatus]] = {}
        self.order_statuses: dict[str, list[OrderStatus]] = {}
        self.search_records: dict[str, OpportunitySearchRecord] = {}
        self.search_record_statuses: dict[str, list[OpportunitySearchStatus]] = {}
        self.opportunity_collections: dict[str, OpportunityCollection] = {}  # type: ignore[type-arg]
        self.requests: list[RecordedRequest] = []
        self._products: dict[str, Product] = {}
        self._collection_of_record: dict[str, str] = {}
        self._record_of_collection: dict[str, str] = {}
        self._counters: dict[str, itertools.count[int]] = {}

    # --- helpers for tests -----------------------------------------------------------------

    def register_product(self, product: Product) -> None:
        """Remember a product so async searches can be completed without a router at hand."""
        self._products[product.id] = product

    def opportunities(self, product_id: str, search: OpportunityPayload) -> list[Opportunity]:  # type: ignore[type-arg]
        """All opportunities a search yields, before paging; raises QueryablesError on a bad filter."""
        product = self._products[product_id]
        start, end = search.datetime
        n = self.opportunities_per_search
        span = (end - start) / n if n else end - start
        result: list[Opportunity] = []  # type: ignore[type-arg]
        expr = Expr(search.filter) if search.filter else None
        for i in range(n):
            window_start = start + span * i
            window_end = end if i == n - 1 else window_start + span
            props = product.opportunity_properties.model_validate(
                {
                    "datetime": (window_start, window_end),
                    "product_id": product_id,
                    "off_nadir": (i * 7.5) % 45.0,
                }
            )
            if expr is not None:
                try:
                    keep = expr.matches(props.model_dump(mode="json"))
                except Exception as exc:  # cql2 raises bare Exception for evaluation errors
                    raise FilterError(f"Filter cannot be evaluated: {exc}") from exc
                if not keep:
                    continue
            result.append(Opportunity(id=f"{product_id}-opp-{i}", geometry=search.geometry, properties=props))
        return result

    def complete_search(
        self,
        search_record_id: str,
        status_code: OpportunitySearchStatusCode = OpportunitySearchStatusCode.completed,
    ) -> None:
        """Finish an async search; on `completed` its opportunity collection becomes fetchable."""
        record = self.search_records[search_record_id]
        if status_code is OpportunitySearchStatusCode.completed:
            collection_id = f"{search_record_id}-opportunities"
            try:
                features = self.opportunities(record.product_id, record.opportunity_request)
            except QueryablesError as exc:
                status_code = OpportunitySearchStatusCode.failed
                reason: str | None = str(exc.detail)
            else:
                reason = None
                self.opportunity_collections[collection_id] = OpportunityCollection(id=collection_id, features=features)
                self._collection_of_record[search_record_id] = collection_id
                self._record_of_collection[collection_id] = search_record_id
        else:
            reason = None
        status = OpportunitySearchStatus(timestamp=_now(), status_code=status_code, reason_text=reason)
        record.status = status
        self.search_record_statuses[search_record_id].append(status)

    def set_order_status(
        self, order_id: str, status_code: OrderStatusCode, reason_text: str | None = None
    ) -> OrderStatus:
        """Append a status to an order's history and make it the order's current status."""
        status = OrderStatus.new(status_code, reason_text=reason_text)
        self.order_statuses[order_id].append(status)
        self.orders[order_id].properties.status = status
        return status

    def _next_id(self, kind: str) -> str:
        counter = self._counters.setdefault(kind, itertools.count(1))
        return f"{self.name}-{kind}-{next(counter)}"

    def _read_record(self, search_record_id: str, request: Request) -> OpportunitySearchRecord:
        # Completing on first read keeps tests deterministic: POST answers `received`, any later
        # read answers `completed`, with no background tasks or clocks involved.
        record = self.search_records[search_record_id]
        if self.async_completes and record.status.status_code is OpportunitySearchStatusCode.received:
            self.complete_search(search_record_id)
        return self._record_with_links(record, request)

    def _record_with_links(self, record: OpportunitySearchRecord, request: Request) -> OpportunitySearchRecord:
        copy = record.model_copy(deep=True)
        copy.links.append(
            Link(
                href=request.url_for(
                    f"{ROOT_NAME}:{GET_OPPORTUNITY_SEARCH_RECORD_STATUSES}", search_record_id=record.id
                ),
                rel="monitor",
                type="application/json",
            )
        )
        collection_id = self._collection_of_record.get(record.id)
        if collection_id is not None:
            copy.links.append(
                Link(
                    href=request.url_for(
                        f"{ROOT_NAME}:{record.product_id}:{GET_OPPORTUNITY_COLLECTION}",
                        opportunity_collection_id=collection_id,
                    ),
                    rel="opportunities",
                    type="application/geo+json",
                )
            )
        return copy

    # --- product backends ------------------------------------------------------------------

    async def search_opportunities(
        self,
        router: ProductRouter,
        search: OpportunityPayload,
        next: str | None,
        limit: int,
        request: Request,
    ) -> ResultE[tuple[list[Opportunity], Maybe[str]]]:  # type: ignore[type-arg]
        """Sync search: a page of deterministic opportunities; the token is the next index."""
        try:
            opportunities = self.opportunities(router.product.id, search)
        except QueryablesError as exc:
            return Failure(exc)
        return _index_page(opportunities, next, limit)

    async def search_opportunities_async(
        self, router: ProductRouter, search: OpportunityPayload, request: Request
    ) -> ResultE[OpportunitySearchRecord]:
        """Async search: store a `received` record; its results appear when it completes."""
        record_id = self._next_id("search")
        status = OpportunitySearchStatus(timestamp=_now(), status_code=OpportunitySearchStatusCode.received)
        record = OpportunitySearchRecord(
            id=record_id, product_id=router.product.id, opportunity_request=search, status=status
        )
        self.search_records[record_id] = record
        self.search_record_statuses[record_id] = [status]
        return Success(self._record_with_links(record, request))

    async def get_opportunity_collection(
        self, router: ProductRouter, opportunity_collection_id: str, request: Request
    ) -> ResultE[Maybe[OpportunityCollection]]:  # type: ignore[type-arg]
        """The stored results of a completed async search of this product."""
        collection = self.opportunity_collections.get(opportunity_collection_id)
        record_id = self._record_of_collection.get(opportunity_collection_id, "")
        record = self.search_records.get(record_id)
        if collection is None or record is None or record.product_id != router.product.id:
            return Success(Nothing)
        copy = collection.model_copy(deep=True)
        copy.links.append(
            Link(
                href=request.url_for(f"{ROOT_NAME}:{GET_OPPORTUNITY_SEARCH_RECORD}", search_record_id=record_id),
                rel="search-record",
                type="application/json",
            )
        )
        return Success(Some(copy))

    async def create_order(
        self,
        router: ProductRouter,
        payload: OrderPayload,  # type: ignore[type-arg]
        request: Request,
    ) -> ResultE[Order[OrderStatus]]:
        """Accept every order as `received`."""
        order_id = self._next_id("order")
        status = OrderStatus.new(OrderStatusCode.received)
        order = Order[OrderStatus](
            id=order_id,
            geometry=payload.geometry,
            properties=OrderProperties[OrderStatus](
                product_id=router.product.id,
                created=_now(),
                status=status,
                search_parameters=OrderSearchParameters(
                    datetime=payload.datetime, geometry=payload.geometry, filter=payload.filter
                ),
                opportunity_properties={},
                order_parameters=payload.order_parameters.model_dump(mode="json"),
            ),
        )
        self.orders[order_id] = order
        self.order_statuses[order_id] = [status]
        return Success(order.model_copy(deep=True))

    # --- root backends ---------------------------------------------------------------------

    async def get_orders(
        self, next: str | None, limit: int, request: Request
    ) -> ResultE[tuple[list[Order[OrderStatus]], Maybe[str], Maybe[int]]]:
        """Orders in creation order; the token is the id of the first order of the next page."""
        return _id_page(list(self.orders), next, limit).map(
            lambda page: ([self.orders[i].model_copy(deep=True) for i in page[0]], page[1], Some(len(self.orders)))
        )

    async def get_order(self, order_id: str, request: Request) -> ResultE[Maybe[Order[OrderStatus]]]:
        """One order, or Nothing."""
        order = self.orders.get(order_id)
        return Success(Some(order.model_copy(deep=True)) if order is not None else Nothing)

    async def get_order_statuses(
        self, order_id: str, next: str | None, limit: int, request: Request
    ) -> ResultE[Maybe[tuple[list[OrderStatus], Maybe[str]]]]:
        """An order's status history, oldest first; the token is the next index."""
        statuses = self.order_statuses.get(order_id)
        if statuses is None:
            return Success(Nothing)
        return _index_page(statuses, next, limit).map(Some)

    async def get_opportunity_search_records(
        self, next: str | None, limit: int, request: Request
    ) -> ResultE[tuple[list[OpportunitySearchRecord], Maybe[str]]]:
        """Search records in creation order; the token is the id of the next record."""
        return _id_page(list(self.search_records), next, limit).map(
            lambda page: ([self._read_record(i, request) for i in page[0]], page[1])
        )

    async def get_opportunity_search_record(
        self, search_record_id: str, request: Request
    ) -> ResultE[Maybe[OpportunitySearchRecord]]:
        """One search record (completing it on first read when `async_completes`), or Nothing."""
        if search_record_id not in self.search_records:
            return Success(Nothing)
        return Success(Some(self._read_record(search_record_id, request)))

    async def get_opportunity_search_record_statuses(
        self, search_record_id: str, request: Request
    ) -> ResultE[Maybe[list[OpportunitySearchStatus]]]:
        """A search record's status history, oldest first, or Nothing."""
        if search_record_id not in self.search_records:
            return Success(Nothing)
        self._read_record(search_record_id, request)
        return Success(Some([s.model_copy(deep=True) for s in self.search_record_statuses[search_record_id]]))


class _RecordRequests:
    """ASGI middleware appending every HTTP request to the backend's `requests` log."""

    def __init__(self, app: ASGIApp, log: list[RecordedRequest]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.log.append(
                RecordedRequest(
                    method=scope["method"],
                    path=scope["path"],
                    query=scope["query_string"].decode("latin-1"),
                    headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
                )
            )
        await self.app(scope, receive, send)


def _make_product(spec: ProductSpec, backend: InMemoryBackend, provider: str, root_async: bool) -> Product:
    conforms_to = [PRODUCT.geojson_point, PRODUCT.geojson_polygon]
    # 0.8.0 lists only the declared conformsTo in /products, so the opportunity classes are declared by
    # hand, mirroring what /products/{id}/conformance computes.
    if spec.sync or (spec.async_ and root_async):
        conforms_to.append(PRODUCT.opportunities)
    if spec.async_ and root_async:
        conforms_to.append(PRODUCT.opportunities_async)
    async_backends: dict[str, Any] = {}
    if spec.async_:
        async_backends = {
            "search_opportunities_async": backend.search_opportunities_async,
            "get_opportunity_collection": backend.get_opportunity_collection,
        }
    product = Product(
        id=spec.id,
        title=spec.title or f"{provider} {spec.id}",
        description=spec.description or f"Test product {spec.id} of provider {provider}",
        keywords=list(spec.keywords),
        license="proprietary",
        providers=[
            Provider(
                name=provider,
                roles=[ProviderRole.producer, ProviderRole.host],
                url=f"https://{provider}.example.com",
            )
        ],
        conformsTo=conforms_to,
        create_order=backend.create_order,
        search_opportunities=backend.search_opportunities if spec.sync else None,
        queryables=spec.queryables,
        opportunity_properties=spec.opportunity_properties,
        order_parameters=spec.order_parameters,
        **async_backends,
    )
    backend.register_product(product)
    return product


def build_provider(
    products: list[ProductSpec],
    *,
    name: str = "provider",
    opportunities_per_search: int = 25,
    async_completes: bool = True,
    root_async: bool | None = None,
) -> FastAPI:
    """A stapi-fastapi 0.8.0 app serving `products` from a fresh `InMemoryBackend`.

    `root_async` (default: whether any product is async) decides whether the root router mounts the
    search-record endpoints, which in 0.8.0 is what makes async search available at all.
    """
    ids = [p.id for p in products]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate product ids in {ids}")
    backend = InMemoryBackend(name, opportunities_per_search=opportunities_per_search, async_completes=async_completes)
    supports_async = any(p.async_ for p in products) if root_async is None else root_async
    search_backends: dict[str, Any] = {}
    if supports_async:
        search_backends = {
            "get_opportunity_search_records": backend.get_opportunity_search_records,
            "get_opportunity_search_record": backend.get_opportunity_search_record,
            "get_opportunity_search_record_statuses": backend.get_opportunity_search_record_statuses,
        }
    root = RootRouter(
        get_orders=backend.get_orders,
        get_order=backend.get_order,
        get_order_statuses=backend.get_order_statuses,
        conformances=[API.core],
        name=ROOT_NAME,
        **search_backends,
    )
    for spec in products:
        root.add_product(_make_product(spec, backend, name, supports_async))
    app = FastAPI(title=f"STAPI provider {name}")
    app.include_router(root)
    app.add_middleware(_RecordRequests, log=backend.requests)
    app.state.backend = backend
    return app


def build_providers(
    n: int,
    products_per_provider: int = 3,
    *,
    opportunities_per_search: int = 25,
    async_completes: bool = True,
) -> dict[str, FastAPI]:
    """Providers "p1".."pN"; product j of provider i is "pi-product-j".

    Products cycle through sync-only, sync+async and async-only so every mode is represented.
    """
    modes = [(True, False), (True, True), (False, True)]
    providers: dict[str, FastAPI] = {}
    for i in range(1, n + 1):
        pid = f"p{i}"
        specs = [
            ProductSpec(
                id=f"{pid}-product-{j}",
                title=f"Provider {i} product {j}",
                sync=modes[j % 3][0],
                async_=modes[j % 3][1],
            )
            for j in range(products_per_provider)
        ]
        providers[pid] = build_provider(
            specs,
            name=pid,
            opportunities_per_search=opportunities_per_search,
            async_completes=async_completes,
        )
    return providers


def backend_of(app: FastAPI) -> InMemoryBackend:
    """The typed backend of an app made by `build_provider`."""
    backend = app.state.backend
    assert isinstance(backend, InMemoryBackend)
    return backend


def provider_client(app: FastAPI, name: str = "p1") -> httpx.AsyncClient:
    """An in-process client for a provider app, at base URL http://{name}.test."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.test")


@asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the startup error
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


__all__ = [
    "DefaultOpportunityProperties",
    "DefaultOrderParameters",
    "DefaultQueryables",
    "InMemoryBackend",
    "ProductSpec",
    "RecordedRequest",
    "backend_of",
    "build_provider",
    "build_providers",
    "provider_client",
    "serve",
]
