"""The adapter for providers that speak STAPI 0.1.0 (stapi-fastapi 0.8.0 is the reference).

All I/O goes through `_call`, the boundary where transport failures, unexpected statuses and
payloads that are not STAPI become the gateway's own errors. Payloads are validated once here
with stapi-pydantic and handed on as the provider's JSON, so extra fields survive the trip.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NotRequired
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from stapi_pydantic import (
    OpportunitySearchRecord,
    OpportunitySearchRecords,
    OpportunitySearchStatus,
    Order,
    OrderCollection,
    OrderStatuses,
    RootResponse,
)
from typing_extensions import TypedDict

from adapters.base import Created, JSONObject, Page, SearchMode, SearchResult
from adapters.transport import OPERATION_EXTENSION, CircuitOpen, ResponseTooLarge
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    ProviderBadStatus,
    ProviderInvalidPayload,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RequestValidationFailed,
    UpstreamNotFound,
)

_STATUS_LIST = TypeAdapter(list[OpportunitySearchStatus])


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
_DETAIL_LIMIT = 200


@functools.lru_cache(maxsize=4096)
def _url(url: str, query: tuple[tuple[str, Any], ...]) -> httpx.URL:
    # Parsing a URL is a tenth of a proxied request's CPU; the same ones come back all the time.
    return httpx.URL(url, params=query or None)


def next_token(links: list[JSONObject]) -> str | None:
    """The provider's page token from a `next` link: the body's `next`, else the href's query."""
    for link in links:
        if link.get("rel") != "next":
            continue
        body = link.get("body")
        if isinstance(body, dict) and isinstance(body.get("next"), str):
            return str(body["next"])
        values = parse_qs(urlsplit(str(link.get("href", ""))).query).get("next")
        if values:
            return values[0]
    return None


def upstream_detail(response: httpx.Response) -> str:
    """A short, printable summary of a provider's error body (never the whole body)."""
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) else response.reason_phrase or "error"
    return text[:_DETAIL_LIMIT]


def validation_errors(response: httpx.Response) -> list[dict[str, Any]]:
    """FastAPI-style `detail` lists, reduced to `loc`, `msg` and `type`."""
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        return []
    if not isinstance(detail, list):
        return []
    return [
        {"loc": item.get("loc", []), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in detail
        if isinstance(item, dict)
    ]


class StapiAdapter:
    """Talks to one STAPI provider through its pooled httpx client.

    With `transport` (the client's own transport) and no auth on the client, requests are built
    and sent straight to it: httpx's client layer (auth flow, redirects, hooks, cookie jar) was a
    quarter of the gateway's CPU per proxied request (bench/profile.py) and does nothing here.
    """

    def __init__(
        self, provider_id: str, client: httpx.AsyncClient, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.provider_id = provider_id
        self.client = client
        self.base_url = str(client.base_url).rstrip("/")
        self._direct = transport if client.auth is None else None
        self._timeout = client.timeout.as_dict()

    async def _send(
        self, operation: str, method: str, path: str, params: Any, content: bytes | None, headers: Any
    ) -> httpx.Response:
        extensions = {OPERATION_EXTENSION: operation}
        if self._direct is None:
            return await self.client.request(
                method, path, params=params, extensions=extensions, content=content, headers=headers
            )
        query = tuple(sorted(params.items())) if params else ()
        request = httpx.Request(
            method,
            _url(self.base_url + path, query),
            headers=self.client.headers if not headers else {**self.client.headers, **headers},
            content=content,
            extensions={**extensions, "timeout": self._timeout},
        )
        response = await self._direct.handle_async_request(request)
        await response.aread()
        return response

    # --- the boundary ----------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        expected: tuple[int, ...] = (200,),
        params: dict[str, Any] | None = None,
        json: JSONObject | None = None,
        headers: dict[str, str] | None = None,
        client_payload: bool = False,
    ) -> httpx.Response:
        pid = self.provider_id
        try:
            response = await self._send(
                operation,
                method,
                path,
                params,
                orjson.dumps(json) if json is not None else None,
                {"Content-Type": "application/json", **(headers or {})} if json is not None else headers,
            )
        except httpx.TimeoutException as exc:
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise ProviderTimeout(pid, f"provider '{pid}' did not answer in time", maybe_received=sent) from None
        except CircuitOpen:
            raise ProviderUnavailable(pid, f"provider '{pid}' is failing; calls are paused (circuit open)") from None
        except ResponseTooLarge:
            raise ProviderInvalidPayload(pid, f"provider '{pid}' sent a body larger than allowed") from None
        except httpx.TransportError as exc:
            kind = exc.__class__.__name__
            # Refused or unresolvable: nothing reached the provider. Anything else may have.
            sent = not isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol)
            raise ProviderUnreachable(
                pid, f"provider '{pid}' could not be reached ({kind})", maybe_received=sent
            ) from None
        if response.status_code in expected:
            return response
        raise self._status_error(response, client_payload)

    def _status_error(self, response: httpx.Response, client_payload: bool) -> GatewayError:
        pid, status = self.provider_id, response.status_code
        if status == 404:
            return UpstreamNotFound(pid, f"provider '{pid}': {upstream_detail(response)}")
        # A 400/422 on a request that carries the client's payload is the client's mistake as
        # judged by the provider; on anything else it is the provider misbehaving.
        if client_payload and status == 422:
            return RequestValidationFailed(f"provider '{pid}' rejected the request", validation_errors(response))
        if client_payload and status == 400:
            return InvalidRequest(f"provider '{pid}' rejected the request: {upstream_detail(response)}")
        return ProviderBadStatus(pid, f"provider '{pid}' answered HTTP {status}", status)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent invalid JSON") from None

    def _validated(self, model: type[BaseModel] | TypeAdapter[Any], response: httpx.Response) -> JSONObject:
        data = self._json(response)
        validate = model.validate_python if isinstance(model, TypeAdapter) else model.model_validate
        try:
            validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            name = exc.title.removeprefix("Lean")
            raise ProviderInvalidPayload(
                self.provider_id, f"provider '{self.provider_id}' sent an invalid {name}: {where}: {first['msg']}"
            ) from None
        assert isinstance(data, dict)
        return data

    async def _get(
        self, operation: str, model: type[BaseModel] | TypeAdapter[Any], path: str, **params: Any
    ) -> JSONObject:
        query = {k: v for k, v in params.items() if v is not None}
        return self._validated(model, await self._call(operation, "GET", path, params=query or None))

    def _page(self, body: JSONObject, field: str) -> Page:
        links = body.get("links") or []
        return Page(
            items=body[field],
            next_token=next_token(links),
            links=links,
            number_matched=body.get("numberMatched"),
        )

    # --- STAPI operations ------------------------------------------------------------

    async def landing_page(self) -> JSONObject:
        """The provider's landing page."""
        return await self._get("landing_page", RootResponse, "/")

    async def conformance(self) -> list[str]:
        """The provider's API-level conformance classes."""
        body = await self._get("conformance", CONFORMANCE, "/conformance")
        return list(body["conformsTo"])

    async def list_products(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's products."""
        return self._page(await self._get("list_products", PRODUCTS, "/products", next=token, limit=limit), "products")

    async def get_product(self, product_id: str) -> JSONObject:
        """One product."""
        return await self._get("get_product", PRODUCT, f"/products/{product_id}")

    async def product_conformance(self, product_id: str) -> list[str]:
        """The product's computed conformance classes."""
        body = await self._get("product_conformance", CONFORMANCE, f"/products/{product_id}/conformance")
        return list(body["conformsTo"])

    async def queryables(self, product_id: str) -> JSONObject:
        """The product's queryables schema."""
        return self._schema(await self._call("queryables", "GET", f"/products/{product_id}/queryables"))

    async def order_parameters(self, product_id: str) -> JSONObject:
        """The product's order-parameters schema."""
        return self._schema(await self._call("order_parameters", "GET", f"/products/{product_id}/order-parameters"))

    def _schema(self, response: httpx.Response) -> JSONObject:
        data = self._json(response)
        if not isinstance(data, dict):
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent a non-object schema")
        return data

    async def search_opportunities(self, product_id: str, payload: JSONObject, mode: SearchMode) -> SearchResult:
        """Search opportunities; stapi-fastapi only accepts the bare `wait`/`respond-async` forms."""
        response = await self._call(
            "search_opportunities",
            "POST",
            f"/products/{product_id}/opportunities",
            expected=(200, 201),
            json=payload,
            headers={"Prefer": mode.value},
            client_payload=True,
        )
        is_async = response.status_code == 201
        model: type[BaseModel] | TypeAdapter[Any] = OpportunitySearchRecord if is_async else OPPORTUNITY_COLLECTION
        return SearchResult(
            body=self._validated(model, response),
            is_async=is_async,
            location=response.headers.get("location"),
            preference_applied=response.headers.get("preference-applied"),
        )

    async def get_opportunity_collection(
        self, product_id: str, collection_id: str, *, token: str | None = None, limit: int | None = None
    ) -> JSONObject:
        """The collection an async search produced, or one page of it (`next`, `limit` as a paging
        provider's `next` link has them; stapi-fastapi 0.8.0 ignores both and sends it whole)."""
        return await self._get(
            "get_opportunity_collection",
            OPPORTUNITY_COLLECTION,
            f"/products/{product_id}/opportunities/{collection_id}",
            next=token,
            limit=limit,
        )

    async def list_search_records(self, *, token: str | None, limit: int) -> Page:
        """One page of search records."""
        body = await self._get(
            "list_search_records", OpportunitySearchRecords, "/searches/opportunities", next=token, limit=limit
        )
        return self._page(body, "search_records")

    async def get_search_record(self, record_id: str) -> JSONObject:
        """One search record."""
        return await self._get("get_search_record", OpportunitySearchRecord, f"/searches/opportunities/{record_id}")

    async def search_record_statuses(self, record_id: str) -> list[JSONObject]:
        """A search record's statuses (stapi-fastapi answers a bare array)."""
        response = await self._call("search_record_statuses", "GET", f"/searches/opportunities/{record_id}/statuses")
        data = self._json(response)
        try:
            _STATUS_LIST.validate_python(data)
        except ValidationError:
            raise ProviderInvalidPayload(self.provider_id, "search record statuses are not valid STAPI") from None
        assert isinstance(data, list)
        return data

    async def create_order(self, product_id: str, payload: JSONObject) -> Created:
        """Place an order once; the caller owns retries and unknown outcomes."""
        response = await self._call(
            "create_order",
            "POST",
            f"/products/{product_id}/orders",
            expected=(200, 201),
            json=payload,
            client_payload=True,
        )
        return Created(body=self._validated(Order, response), location=response.headers.get("location"))

    async def list_orders(self, *, token: str | None, limit: int) -> Page:
        """One page of orders."""
        return self._page(
            await self._get("list_orders", OrderCollection, "/orders", next=token, limit=limit), "features"
        )

    async def get_order(self, order_id: str) -> JSONObject:
        """One order."""
        return await self._get("get_order", Order, f"/orders/{order_id}")

    async def order_statuses(self, order_id: str, *, token: str | None, limit: int) -> Page:
        """One page of an order's statuses."""
        body = await self._get("order_statuses", OrderStatuses, f"/orders/{order_id}/statuses", next=token, limit=limit)
        return self._page(body, "statuses")

    async def aclose(self) -> None:
        """Close the provider's connection pool."""
        await self.client.aclose()
