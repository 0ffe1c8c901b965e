"""The adapter for Umbra Canopy's Tasking API: feasibilities as opportunity searches, tasks as orders.

All I/O goes through `_call`, where transport failures (adapters/stapi/wire.py `transport_error`,
the same rules for `maybe_received`), unexpected statuses and bodies that are not Umbra's become
the gateway's errors; every body is scrubbed of the provider's credentials (adapters/scrub.py)
before anything is read from it. Paths are `/tasking/...` under the provider's `url`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson

from adapters.base import (
    Created,
    JSONObject,
    OrderNotCancellable,
    Page,
    ProviderBadStatus,
    ProviderError,
    ProviderInvalidPayload,
    RequestValidationFailed,
    SearchMode,
    SearchResult,
    UpstreamNotFound,
)
from adapters.client import OPERATION_EXTENSION, RateGate, RateGates
from adapters.documents import vendor_product
from adapters.schemas import CheckedSchema, check_schema
from adapters.scrub import Scrubber
from adapters.stapi.wire import transport_error, upstream_detail, validation_errors
from adapters.umbra import wire
from adapters.umbra.config import UmbraOptions
from adapters.umbra.pacing import local_gates
from adapters.umbra.products import PRODUCTS, UmbraProduct
from adapters.umbra.statuses import CANCELLING

_NEWEST_FIRST = [{"field": "createdAt", "dir": "desc"}]
_MAX_LIMIT = 200  # PostSearchTasksRequest.limit maximum


class UmbraAdapter:
    """Talks to Umbra Canopy through the provider's pooled, OAuth-authenticated httpx client."""

    # Umbra keeps `userOrderId` on a task: the gateway's attempt id goes there.
    finds_orders_by_reference = True
    cancels_orders = True  # PATCH /tasking/tasks/{id}/cancel
    # One GET per poll against 25 reads/s per organisation: with the tracker's quarter of that,
    # 300 s keeps 1,875 open tasks at full cadence, and tasks take hours to days anyway.
    status_poll_s = 300.0
    read_rate_per_s: float | None = 25.0  # "25 reads/s ... per organisation" (rate limiting page)

    def __init__(
        self,
        provider_id: str,
        client: httpx.AsyncClient,
        options: UmbraOptions,
        *,
        scrubber: Scrubber | None = None,
        gates: RateGates = local_gates,
    ) -> None:
        self.provider_id = provider_id
        self.client = client
        self.options = options
        self.base_url = str(client.base_url).rstrip("/")
        self.scrubber = scrubber or Scrubber.for_client(client)
        # Umbra's limits are per organisation: the gateway's gates hold them across its replicas.
        self._task_gate = gates("create-task", options.create_task_per_s)
        self._feasibility_gate = gates("create-feasibility", options.feasibility_per_s)

    # --- the boundary ----------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: JSONObject | None = None,
        order: bool | None = None,
        gate: RateGate | None = None,
    ) -> Any:
        """Send one request once `gate` lets it; the scrubbed JSON body of a 2xx, else the gateway's error.
        `order` is set on calls that carry the client's payload (True: an order, False: a search)."""
        pid = self.provider_id
        content = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if json is not None else None
        try:
            if gate is not None:
                await gate.wait()
            response = await self.client.request(
                method, path, content=content, headers=headers, extensions={OPERATION_EXTENSION: operation}
            )
        except httpx.TransportError as exc:
            raise transport_error(pid, exc) from None
        if not 200 <= response.status_code < 300:
            raise self._status_error(response, order)
        if response.status_code == 204:
            return None
        try:
            return self.scrubber.parse(response.content)
        except ValueError as exc:
            raise ProviderInvalidPayload(pid, f"provider '{pid}' sent {exc}") from None

    def _status_error(self, response: httpx.Response, order: bool | None) -> Exception:
        pid, status = self.provider_id, response.status_code
        if status == 404:
            return UpstreamNotFound(pid, f"provider '{pid}': {upstream_detail(response, self.scrubber)}")
        if status == 422 and order is not None:
            errors = validation_errors(response, self.scrubber)
            mapped = [{**e, "loc": wire.client_loc(e["loc"], order)} for e in errors]
            return RequestValidationFailed(f"provider '{pid}' rejected the request", mapped)
        if status == 429:
            return ProviderBadStatus(pid, f"provider '{pid}' is rate limiting these calls (HTTP 429); retry later", 429)
        return ProviderBadStatus(pid, f"provider '{pid}' answered HTTP {status}", status)

    def _object(self, body: Any, *required: str) -> JSONObject:
        if not isinstance(body, dict) or any(body.get(key) is None for key in required):
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent an unexpected body")
        return body

    def _product(self, product_id: str) -> UmbraProduct:
        return vendor_product(PRODUCTS, self.provider_id, product_id)

    def _uuid(self, value: str, what: str) -> str:
        """Umbra's ids are UUIDs: anything else names no resource, so it is a 404 without asking."""
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise UpstreamNotFound(self.provider_id, f"provider '{self.provider_id}' has no {what} {value!r}") from None

    # --- products --------------------------------------------------------------------

    async def landing_page(self) -> JSONObject:
        """A landing page of the adapter's own (Umbra serves none): its root is the provider's url."""
        return {
            "id": "umbra-canopy",
            "title": "Umbra Canopy",
            "description": "Umbra Canopy tasking (SAR), translated to STAPI",
            "conformsTo": [],
            "links": [{"href": self.base_url, "rel": "self", "type": "application/json"}],
        }

    async def list_products(self, *, token: str | None, limit: int) -> Page:
        """The two imaging modes."""
        start = _offset(token)
        items = [p.document(self.base_url) for p in PRODUCTS.values()]
        end = start + max(1, limit)
        return Page(items[start:end], next_token=str(end) if end < len(items) else None, number_matched=len(items))

    async def get_product(self, product_id: str) -> JSONObject:
        """One product."""
        return self._product(product_id).document(self.base_url)

    async def product_conformance(self, product_id: str) -> list[str]:
        """Both search modes: async natively, sync by polling the feasibility."""
        return self._product(product_id).conformance()

    async def queryables(self, product_id: str) -> CheckedSchema:
        """The product's queryables schema."""
        return _checked(self.provider_id, self._product(product_id).queryables())

    async def order_parameters(self, product_id: str) -> CheckedSchema:
        """The product's order-parameters schema."""
        return _checked(self.provider_id, self._product(product_id).order_parameters())

    # --- opportunities ---------------------------------------------------------------

    async def search_opportunities(self, product_id: str, payload: JSONObject, mode: SearchMode) -> SearchResult:
        """Create a feasibility: its record (async), or its opportunities once Umbra is done (sync)."""
        product = self._product(product_id)
        request = wire.feasibility_request(product, payload)
        path, gate = "/tasking/feasibilities", self._feasibility_gate
        created = await self._call("search_opportunities", "POST", path, json=request, order=False, gate=gate)
        found = self._feasibility(created)
        if mode is SearchMode.ASYNC:
            return SearchResult(wire.search_record(self.base_url, found), is_async=True)
        while found["status"] == "RECEIVED":
            # Bounded by the gateway's call deadline, which cancels this wait.
            await asyncio.sleep(self.options.poll_interval_s)
            found = await self._get_feasibility("search_opportunities", str(found["id"]))
        if found["status"] != "COMPLETED":
            raise ProviderError(self.provider_id, f"provider '{self.provider_id}' could not compute the feasibility")
        features = wire.opportunities(self.base_url, product, found)
        return SearchResult({"type": "FeatureCollection", "features": features, "links": []}, is_async=False)

    def _feasibility(self, body: Any) -> JSONObject:
        return self._object(body, "id", "status")

    async def _get_feasibility(self, operation: str, feasibility_id: str) -> JSONObject:
        path = f"/tasking/feasibilities/{self._uuid(feasibility_id, 'feasibility')}"
        return self._feasibility(await self._call(operation, "GET", path))

    async def get_opportunity_collection(
        self, product_id: str, collection_id: str, *, token: str | None = None, limit: int | None = None
    ) -> SearchResult:
        """A completed feasibility's opportunities, paged by position (`token`)."""
        product = self._product(product_id)
        found = await self._get_feasibility("get_opportunity_collection", collection_id)
        mode = ((found.get("feasibilityRequest") or {}).get("constraints") or {}).get("imagingMode")
        if found["status"] != "COMPLETED" or mode != product.imaging_mode:
            detail = f"provider '{self.provider_id}' has no such opportunity collection"
            raise UpstreamNotFound(self.provider_id, detail)
        features = wire.opportunities(self.base_url, product, found)
        start = _offset(token)
        end = len(features) if limit is None else start + max(1, limit)
        body = {"type": "FeatureCollection", "id": str(found["id"]), "features": features[start:end], "links": []}
        return SearchResult(body, is_async=False, next_token=str(end) if end < len(features) else None)

    async def get_search_record(self, record_id: str) -> JSONObject:
        """A feasibility as a STAPI search record."""
        return wire.search_record(self.base_url, await self._get_feasibility("get_search_record", record_id))

    # --- orders ----------------------------------------------------------------------

    async def create_order(self, product_id: str, payload: JSONObject, *, reference: str) -> Created:
        """Create a task with `userOrderId` = the gateway's attempt id. Never retried here."""
        request = wire.task_request(self._product(product_id), payload, reference)
        created = await self._call(
            "create_order", "POST", "/tasking/tasks", json=request, order=True, gate=self._task_gate
        )
        task = self._task(created)
        return Created(body=wire.order(self.base_url, task))

    def _task(self, body: Any) -> JSONObject:
        task = self._object(body, "id", "properties")
        if not isinstance(task["properties"], dict):
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent an unexpected task")
        return task

    async def _search(self, operation: str, query: JSONObject, skip: int, limit: int) -> JSONObject:
        body = {"limit": limit, "skip": skip, "sortBy": _NEWEST_FIRST, "query": query}
        found = self._object(await self._call(operation, "POST", "/tasking/tasks/search", json=body), "features")
        if not isinstance(found["features"], list):
            raise ProviderInvalidPayload(self.provider_id, f"provider '{self.provider_id}' sent an unexpected page")
        return found

    async def find_order(self, reference: str) -> JSONObject | None:
        """The task whose `userOrderId` is `reference` (the newest, should there be several)."""
        found = await self._search("find_order", {"userOrderId": {"eq": reference}}, 0, 1)
        return wire.order(self.base_url, self._task(found["features"][0])) if found["features"] else None

    async def list_orders(self, *, token: str | None, limit: int) -> Page:
        """One page of tasks, newest first; the token is the `skip` of the next page."""
        skip, size = _offset(token), max(1, min(limit, _MAX_LIMIT))
        found = await self._search("list_orders", {}, skip, size)
        items = [wire.order(self.base_url, self._task(t)) for t in found["features"]]
        matched = (found.get("context") or {}).get("matched")
        end = skip + len(items)
        more = end < matched if isinstance(matched, int) else len(items) == size
        return Page(items, next_token=str(end) if items and more else None, number_matched=matched)

    async def _get_task(self, operation: str, order_id: str) -> JSONObject:
        path = f"/tasking/tasks/{self._uuid(order_id, 'order')}"
        return self._task(await self._call(operation, "GET", path))

    async def get_order(self, order_id: str) -> JSONObject:
        """One task as a STAPI order."""
        return wire.order(self.base_url, await self._get_task("get_order", order_id))

    async def order_statuses(self, order_id: str, *, token: str | None, limit: int) -> Page:
        """A task's statusHistory, newest first, paged by position."""
        entries = wire.statuses_of(await self._get_task("order_statuses", order_id))
        start = _offset(token)
        end = start + max(1, limit)
        return Page(entries[start:end], next_token=str(end) if end < len(entries) else None)

    async def cancel_order(self, order_id: str) -> JSONObject:
        """`PATCH /tasking/tasks/{id}/cancel` (204), then the task; Umbra's 422 (a task past
        SCHEDULED, or already cancelled) is a refusal naming the task's status."""
        path = f"/tasking/tasks/{self._uuid(order_id, 'order')}/cancel"
        try:
            await self._call("cancel_order", "PATCH", path)
        except ProviderBadStatus as exc:
            if exc.status != 422:
                raise
            task = await self._get_task("get_order", order_id)
            state, pid = str(task["properties"].get("status")), self.provider_id
            detail = f"provider '{pid}' cannot cancel a {state} task"
            order, cancelling = wire.order(self.base_url, task), state in CANCELLING
            raise OrderNotCancellable(pid, detail, state, order, cancelling=cancelling) from None
        return await self.get_order(order_id)

    async def aclose(self) -> None:
        """Close the provider's connection pool."""
        await self.client.aclose()


def _offset(token: str | None) -> int:
    """A position token (the adapter's own: a decimal offset); a foreign one starts over."""
    return int(token) if token is not None and token.isdigit() and len(token) < 10 else 0


def _checked(provider_id: str, schema: JSONObject) -> CheckedSchema:
    return check_schema(provider_id, schema, len(orjson.dumps(schema)))
