"""The adapter for providers that speak STAPI 0.1.0 (stapi-fastapi 0.8.0 is the reference).

All I/O goes through `_call`, the boundary where transport failures, unexpected statuses and
payloads that are not STAPI become the gateway's own errors. Payloads are validated once here
with stapi-pydantic and handed on as the provider's JSON, so extra fields survive the trip.

Nothing the provider sends leaves this module unscrubbed: every body, header value, error detail
and validation message passes through the provider's `Scrubber` (adapters/scrub.py), and its
JSON Schemas through `check_schema` (adapters/schemas.py). Ids go upstream one path segment each.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from stapi_pydantic import (
    OpportunitySearchRecord,
    Order,
    OrderCollection,
    OrderStatuses,
    RootResponse,
)

from adapters.base import (
    Created,
    JSONObject,
    OrderNotCancellable,
    Page,
    ProviderInvalidPayload,
    SearchMode,
    SearchResult,
)
from adapters.client import OPERATION_EXTENSION
from adapters.schemas import CheckedSchema, check_schema
from adapters.scrub import Scrubber
from adapters.stapi.models import CONFORMANCE, OPPORTUNITY_COLLECTION, PRODUCT, PRODUCTS
from adapters.stapi.wire import missing_of, next_token, segment, status_error, transport_error


@functools.lru_cache(maxsize=4096)
def _url(url: str, query: tuple[tuple[str, Any], ...]) -> httpx.URL:
    # Parsing a URL is a tenth of a proxied request's CPU; the same ones come back all the time.
    return httpx.URL(url, params=query or None)


class StapiAdapter:
    """Talks to one STAPI provider through its pooled httpx client.

    With `transport` (the client's own transport) and no auth on the client, requests are built
    and sent straight to it: httpx's client layer (auth flow, redirects, hooks, cookie jar) was a
    quarter of the gateway's CPU per proxied request (bench/profile.py) and does nothing here.
    `scrubber` defaults to one that knows the client's header values and its auth's secrets.
    """

    finds_orders_by_reference = False
    cancels_orders = False  # STAPI 0.1 has no cancel
    status_poll_s = 60.0  # STAPI says nothing of rates; once a minute is the default
    read_rate_per_s: float | None = None

    def __init__(
        self,
        provider_id: str,
        client: httpx.AsyncClient,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.provider_id = provider_id
        self.client = client
        self.base_url = str(client.base_url).rstrip("/")
        self.scrubber = scrubber or Scrubber.for_client(client)
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
        except httpx.TransportError as exc:
            raise transport_error(pid, exc) from None
        if response.status_code in expected:
            return response
        raise status_error(pid, response, client_payload, self.scrubber)

    def _json(self, response: httpx.Response) -> Any:
        """The body, parsed and scrubbed: everything relayed from the provider comes through here."""
        try:
            return self.scrubber.parse(response.content)
        except ValueError as exc:
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent {exc}") from None

    def _validated(self, model: type[BaseModel] | TypeAdapter[Any], response: httpx.Response) -> JSONObject:
        data = self._json(response)
        validate = model.validate_python if isinstance(model, TypeAdapter) else model.model_validate
        try:
            validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            name = exc.title.removeprefix("Lean")
            message = f"provider '{self.provider_id}' sent an invalid {name}: {where}: {first['msg']}"
            raise ProviderInvalidPayload(self.provider_id, self.scrubber.shown(message, 300)) from None
        except (TypeError, ValueError):
            # stapi-pydantic's Link raises TypeError (not ValidationError) for a link without href.
            detail = f"provider '{self.provider_id}' sent an invalid body"
            raise ProviderInvalidPayload(self.provider_id, detail) from None
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
            missing=missing_of(body),
        )

    # --- STAPI operations ------------------------------------------------------------

    async def landing_page(self) -> JSONObject:
        """The provider's landing page."""
        return await self._get("landing_page", RootResponse, "/")

    async def list_products(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's products."""
        return self._page(await self._get("list_products", PRODUCTS, "/products", next=token, limit=limit), "products")

    async def get_product(self, product_id: str) -> JSONObject:
        """One product."""
        return await self._get("get_product", PRODUCT, f"/products/{self._seg(product_id)}")

    async def product_conformance(self, product_id: str) -> list[str]:
        """The product's computed conformance classes."""
        body = await self._get("product_conformance", CONFORMANCE, f"/products/{self._seg(product_id)}/conformance")
        return list(body["conformsTo"])

    async def queryables(self, product_id: str) -> CheckedSchema:
        """The product's queryables schema, checked."""
        return self._schema(await self._call("queryables", "GET", f"/products/{self._seg(product_id)}/queryables"))

    async def order_parameters(self, product_id: str) -> CheckedSchema:
        """The product's order-parameters schema, checked."""
        path = f"/products/{self._seg(product_id)}/order-parameters"
        return self._schema(await self._call("order_parameters", "GET", path))

    def _schema(self, response: httpx.Response) -> CheckedSchema:
        return check_schema(self.provider_id, self._json(response), len(response.content))

    def _seg(self, value: str) -> str:
        return segment(self.provider_id, value)

    def _header(self, response: httpx.Response, name: str) -> str | None:
        value = response.headers.get(name)
        return None if value is None else self.scrubber.text(value)

    async def search_opportunities(self, product_id: str, payload: JSONObject, mode: SearchMode) -> SearchResult:
        """Search opportunities; stapi-fastapi only accepts the bare `wait`/`respond-async` forms."""
        response = await self._call(
            "search_opportunities",
            "POST",
            f"/products/{self._seg(product_id)}/opportunities",
            expected=(200, 201),
            json=payload,
            headers={"Prefer": mode.value},
            client_payload=True,
        )
        is_async = response.status_code == 201
        model: type[BaseModel] | TypeAdapter[Any] = OpportunitySearchRecord if is_async else OPPORTUNITY_COLLECTION
        body = self._validated(model, response)
        return SearchResult(
            body=body,
            is_async=is_async,
            location=self._header(response, "location"),
            preference_applied=self._header(response, "preference-applied"),
            next_token=None if is_async else next_token(body.get("links") or []),
            missing=[] if is_async else missing_of(body),
        )

    async def get_opportunity_collection(
        self, product_id: str, collection_id: str, *, token: str | None = None, limit: int | None = None
    ) -> SearchResult:
        """The collection an async search produced, or one page of it (`next`, `limit` as a paging
        provider's `next` link has them; stapi-fastapi 0.8.0 ignores both and sends it whole)."""
        body = await self._get(
            "get_opportunity_collection",
            OPPORTUNITY_COLLECTION,
            f"/products/{self._seg(product_id)}/opportunities/{self._seg(collection_id)}",
            next=token,
            limit=limit,
        )
        return SearchResult(
            body, is_async=False, next_token=next_token(body.get("links") or []), missing=missing_of(body)
        )

    async def get_search_record(self, record_id: str) -> JSONObject:
        """One search record."""
        return await self._get(
            "get_search_record", OpportunitySearchRecord, f"/searches/opportunities/{self._seg(record_id)}"
        )

    async def create_order(self, product_id: str, payload: JSONObject, *, reference: str) -> Created:
        """Place an order once; the caller owns retries and unknown outcomes. STAPI 0.1.0 has no
        client reference on an order, so `reference` is not sent (reconciliation scans instead)."""
        response = await self._call(
            "create_order",
            "POST",
            f"/products/{self._seg(product_id)}/orders",
            expected=(200, 201),
            json=payload,
            client_payload=True,
        )
        return Created(body=self._validated(Order, response), location=self._header(response, "location"))

    async def find_order(self, reference: str) -> JSONObject | None:
        """Never called (`finds_orders_by_reference` is False): STAPI orders carry no reference."""
        return None

    async def list_orders(self, *, token: str | None, limit: int) -> Page:
        """One page of orders."""
        return self._page(
            await self._get("list_orders", OrderCollection, "/orders", next=token, limit=limit), "features"
        )

    async def get_order(self, order_id: str) -> JSONObject:
        """One order."""
        return await self._get("get_order", Order, f"/orders/{self._seg(order_id)}")

    async def order_statuses(self, order_id: str, *, token: str | None, limit: int) -> Page:
        """One page of an order's statuses."""
        body = await self._get(
            "order_statuses", OrderStatuses, f"/orders/{self._seg(order_id)}/statuses", next=token, limit=limit
        )
        return self._page(body, "statuses")

    async def cancel_order(self, order_id: str) -> JSONObject:
        """Never called (`cancels_orders` is False): STAPI 0.1 has no cancel, so every order refuses."""
        raise OrderNotCancellable(self.provider_id, f"provider '{self.provider_id}' has no cancel (STAPI 0.1)", "")

    async def aclose(self) -> None:
        """Close the provider's connection pool."""
        await self.client.aclose()
