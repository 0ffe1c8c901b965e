"""The adapter for Planet's Tasking API v2: Planet's imaging windows and tasking orders as STAPI.

Provider `url` is the API root (`https://api.planet.com/tasking/v2`); the key travels in the
provider's `headers:` (`Authorization: api-key ...`), which the injected client sends and the
scrubber knows. All I/O goes through `_call`, where transport failures, statuses and bodies
become the gateway's errors, as in the STAPI adapter (its `transport_error` and `segment` reused).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
import orjson

from adapters.base import (
    Created,
    InvalidRequest,
    JSONObject,
    Page,
    ProviderInvalidPayload,
    SearchMode,
    SearchResult,
    UpstreamNotFound,
)
from adapters.client import OPERATION_EXTENSION
from adapters.documents import vendor_product
from adapters.planet import wire
from adapters.planet.checks import MAX_AHEAD, geometry_for, invalid, span, stamp
from adapters.planet.products import API_CONFORMANCE, PRODUCTS, QUERYABLES, PlanetProduct
from adapters.planet.wire import history_statuses, opportunity, search_record, stapi_order, status_error
from adapters.schemas import CheckedSchema, check_schema
from adapters.scrub import Scrubber
from adapters.stapi.wire import segment, transport_error

if TYPE_CHECKING:
    from adapters.planet.config import PlanetOptions


class PlanetAdapter:
    """Talks to Planet's Tasking API through the provider's pooled httpx client."""

    finds_orders_by_reference = True
    cancels_orders = True  # DELETE /orders/{id}/
    # Order history is a list call (300/min sustained): a quarter of that at 600 s per order is 750 open orders.
    status_poll_s = 600.0
    read_rate_per_s: float | None = 5.0  # listing: 300/min sustained (the order history is a list call)

    def __init__(
        self, provider_id: str, client: httpx.AsyncClient, options: PlanetOptions, *, scrubber: Scrubber | None = None
    ) -> None:
        self.provider_id = provider_id
        self.client = client
        self.options = options
        self.base_url = str(client.base_url).rstrip("/")
        # Planet's `Location` headers are paths from the host root: resolved against the origin.
        self.origin = wire.origin(self.base_url)
        self.scrubber = scrubber or Scrubber.for_client(client)

    # --- the boundary ----------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        expected: tuple[int, ...] = (200,),
        params: dict[str, Any] | None = None,
        json: JSONObject | None = None,
        client_payload: bool = False,
    ) -> httpx.Response:
        pid = self.provider_id
        content = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if json is not None else None
        target = url if url.startswith(("http://", "https://")) else self.base_url + url
        if wire.origin(target) != self.origin:
            # A URL from an answer (a `Location`) would carry the API key to whoever it names.
            raise ProviderInvalidPayload(pid, f"provider '{pid}' named a URL outside its own origin")
        named = {OPERATION_EXTENSION: operation}
        try:
            response = await self.client.request(
                method, target, params=params, content=content, headers=headers, extensions=named
            )
        except httpx.TransportError as exc:
            raise transport_error(pid, exc) from None
        if response.status_code in expected:
            return response
        raise status_error(pid, response, self._body(response), client_payload, self.scrubber)

    def _body(self, response: httpx.Response) -> Any:
        try:
            return self.scrubber.parse(response.content)
        except ValueError:
            return None

    def _json(self, response: httpx.Response, *required: str) -> JSONObject:
        """The body, scrubbed, as an object with the `required` keys (502 otherwise)."""
        body = self._body(response)
        if not isinstance(body, dict) or any(key not in body for key in required):
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent an unexpected body")
        return body

    def _product(self, product_id: str) -> PlanetProduct:
        return vendor_product(PRODUCTS, self.provider_id, product_id)

    # --- products ----------------------------------------------------------------------

    async def landing_page(self) -> JSONObject:
        """A landing page for the provider (Planet has none to ask)."""
        links = [{"href": f"{self.base_url}/", "rel": "self", "type": "application/json"}]
        return {"id": self.provider_id, "title": "Planet Tasking", "conformsTo": API_CONFORMANCE, "links": links}

    async def list_products(self, *, token: str | None, limit: int) -> Page:
        """Planet's products, `token` an offset."""
        offset = int(token) if token and token.isdigit() else 0
        products = list(PRODUCTS.values())
        items = [p.document(self.base_url) for p in products[offset : offset + limit]]
        after = offset + limit
        return Page(items, next_token=str(after) if after < len(products) else None, number_matched=len(products))

    async def get_product(self, product_id: str) -> JSONObject:
        """One product."""
        return self._product(product_id).document(self.base_url)

    async def product_conformance(self, product_id: str) -> list[str]:
        """`assured` searches in both modes; `flexible` is order-only."""
        return self._product(product_id).conformance()

    async def queryables(self, product_id: str) -> CheckedSchema:
        """No queryables: Planet's imaging-window search takes no filter."""
        self._product(product_id)
        return check_schema(self.provider_id, QUERYABLES, 0)

    async def order_parameters(self, product_id: str) -> CheckedSchema:
        """The product's order parameters."""
        return check_schema(self.provider_id, self._product(product_id).order_parameters, 0)

    # --- opportunities -----------------------------------------------------------------

    async def search_opportunities(self, product_id: str, payload: JSONObject, mode: SearchMode) -> SearchResult:
        """An imaging-window search: a record (async) or, polled until DONE, its windows (sync).

        Everything Planet would refuse is a 422 first: a filter, a geometry it does not take, a
        window more than 7 days ahead. A sync search's later pages (`next`: `<search id>:<offset>`)
        read the same search again instead of starting a new one.
        """
        product = self._product(product_id)
        if not product.searchable:
            raise UpstreamNotFound(self.provider_id, f"Planet {product.planet_name} has no opportunities")
        limit = int(payload.get("limit") or 10)
        token = payload.get("next")
        if mode is SearchMode.SYNC and isinstance(token, str) and ":" in token:
            search_id, _, offset = token.rpartition(":")
            return await self._collection(product, search_id, int(offset) if offset.isdigit() else 0, limit)
        if payload.get("filter"):
            raise invalid(["body", "filter"], "Planet's imaging-window search takes no filter")
        geometry = geometry_for(product, payload.get("geometry"))
        now = datetime.now(UTC)
        start, end = span(payload.get("datetime"), now + MAX_AHEAD)
        request: JSONObject = {
            "geometry": geometry,
            "pl_number": self.options.pl_number,
            "product": product.planet_name,
        }
        if start is not None:
            request["start_time"] = stamp(max(start, now))
        if end is not None:
            request["end_time"] = stamp(end)
        searches = "/imaging-windows/search/"
        response = await self._call(
            "search_opportunities", "POST", searches, expected=(201,), json=request, client_payload=True
        )
        search = self._json(response, "id")
        if mode is SearchMode.ASYNC:
            record = search_record(search, product.id, self.base_url)
            return SearchResult(
                record, is_async=True, location=f"{self.base_url}/searches/opportunities/{record['id']}"
            )
        location = response.headers.get("location") or f"/imaging-windows/search/{search['id']}/"
        done = await self._poll(urljoin(self.origin, location))
        return self._page(product, done, 0, limit)

    async def _poll(self, url: str) -> JSONObject:
        """Read a search until DONE or FAILED (the gateway's deadline bounds the wait)."""
        while True:
            response = await self._call("search_opportunities", "GET", url)
            search = self._json(response, "id", "status")
            if search["status"] in ("DONE", "FAILED"):
                return search
            await asyncio.sleep(self.options.poll_interval_s)

    def _page(self, product: PlanetProduct, search: JSONObject, offset: int, limit: int) -> SearchResult:
        if search.get("status") == "FAILED":
            why = self.scrubber.shown(str(search.get("error_message") or search.get("error_code") or "no reason given"))
            raise InvalidRequest(f"provider '{self.provider_id}' could not search imaging windows: {why}")
        if search.get("status") != "DONE":
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}': the search is not done")
        windows = search.get("imaging_windows")
        if not isinstance(windows, list) or not all(isinstance(w, dict) and "id" in w for w in windows):
            raise ProviderInvalidPayload(
                self.provider_id, f"provider '{self.provider_id}' sent invalid imaging windows"
            )
        features = [
            opportunity(w, search.get("geometry"), product.id, self.base_url) for w in windows[offset : offset + limit]
        ]
        after = offset + limit
        body = {"type": "FeatureCollection", "id": str(search["id"]), "features": features, "links": []}
        return SearchResult(
            body, is_async=False, next_token=f"{search['id']}:{after}" if after < len(windows) else None
        )

    async def _collection(self, product: PlanetProduct, search_id: str, offset: int, limit: int) -> SearchResult:
        path = f"/imaging-windows/search/{segment(self.provider_id, search_id)}/"
        response = await self._call("get_opportunity_collection", "GET", path)
        return self._page(product, self._json(response, "id", "status"), offset, limit)

    async def get_opportunity_collection(
        self, product_id: str, collection_id: str, *, token: str | None = None, limit: int | None = None
    ) -> SearchResult:
        """A DONE search's windows as opportunities, `token` an offset."""
        product = self._product(product_id)
        offset = int(token.rpartition(":")[2]) if token and token.rpartition(":")[2].isdigit() else 0
        return await self._collection(product, collection_id, offset, limit or 100)

    async def get_search_record(self, record_id: str) -> JSONObject:
        """An imaging-window search as a STAPI search record."""
        path = f"/imaging-windows/search/{segment(self.provider_id, record_id)}/"
        search = self._json(await self._call("get_search_record", "GET", path), "id", "status")
        return search_record(search, "assured", self.base_url)

    # --- orders ------------------------------------------------------------------------

    async def create_order(self, product_id: str, payload: JSONObject, *, reference: str) -> Created:
        """Place a Planet order named `reference` (the gateway's attempt id): how it is found again."""
        product = self._product(product_id)
        geometry = geometry_for(product, payload.get("geometry"))
        parameters = payload.get("order_parameters") or {}
        body: JSONObject = {
            "name": reference,
            "geometry": geometry,
            "pl_number": self.options.pl_number,
            "product": product.planet_name,
        }
        if product.searchable:
            body["imaging_window"] = parameters.get("imaging_window")
        else:
            start, end = span(payload.get("datetime"))
            body |= {key: stamp(value) for key, value in (("start_time", start), ("end_time", end)) if value}
            body |= {key: value for key, value in parameters.items() if key.startswith("sat_elevation_angle")}
        response = await self._call("create_order", "POST", "/orders/", expected=(201,), json=body, client_payload=True)
        order = stapi_order(self._json(response, "id", "status"))
        return Created(order, location=f"{self.base_url}/orders/{order['id']}")

    async def find_order(self, reference: str) -> JSONObject | None:
        """The order named `reference`, by Planet's exact `name` filter (and checked here again)."""
        response = await self._call("find_order", "GET", "/orders/", params={"name": reference, "limit": 10})
        results = self._json(response, "results")["results"]
        found = [r for r in results if isinstance(r, dict) and r.get("name") == reference and "id" in r]
        return stapi_order(found[0]) if found else None

    async def list_orders(self, *, token: str | None, limit: int) -> Page:
        """Orders newest first; `token` is Planet's offset."""
        offset = int(token) if token and token.isdigit() else 0
        params = {"limit": limit, "offset": offset, "ordering": "-created_time"}
        page = self._json(await self._call("list_orders", "GET", "/orders/", params=params), "results")
        items = [stapi_order(r) for r in page["results"] if isinstance(r, dict) and "id" in r]
        after = offset + len(page["results"])
        return Page(items, next_token=str(after) if page.get("next") else None, number_matched=page.get("count"))

    async def get_order(self, order_id: str) -> JSONObject:
        """One order."""
        path = f"/orders/{segment(self.provider_id, order_id)}/"
        return stapi_order(self._json(await self._call("get_order", "GET", path), "id", "status"))

    async def order_statuses(self, order_id: str, *, token: str | None, limit: int) -> Page:
        """The order's history events, oldest first, each as a status entry; `token` an offset."""
        offset = int(token) if token and token.isdigit() else 0
        params = {"order_id": order_id, "limit": limit, "offset": offset, "ordering": "created_time"}
        page = self._json(await self._call("order_statuses", "GET", "/order-history/", params=params), "results")
        events = [e for e in page["results"] if isinstance(e, dict)]
        if not events and offset == 0:
            await self.get_order(order_id)  # an unknown order is a 404, not an empty history
        items = history_statuses(events)
        after = offset + len(page["results"])
        return Page(items, next_token=str(after) if page.get("next") else None, number_matched=page.get("count"))

    async def cancel_order(self, order_id: str) -> JSONObject:
        """`DELETE /orders/{id}/`, then the order as Planet shows it; a refusal names Planet's status."""
        path = f"/orders/{segment(self.provider_id, order_id)}/"
        answer = await self._call("cancel_order", "DELETE", path, expected=wire.CANCEL_ANSWERS)
        return wire.cancel_outcome(self.provider_id, answer.status_code, await self.get_order(order_id))

    async def aclose(self) -> None:
        """Close the provider's connection pool."""
        await self.client.aclose()
