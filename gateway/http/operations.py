"""The gateway's operations, declared once: the Starlette routes and the /api document are both built
from OPERATIONS, so a route cannot be served undocumented or documented unserved.

Paths use the documented (STAPI) parameter names, which are also what handlers read from
`request.path_params`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.context import request_context
from gateway.http.openapi import GEOJSON, JSON, SCHEMA_JSON, TEXT, openapi_document
from gateway.http.responses import JSONResponse
from gateway.http.routes import health, opportunities, orders, products, root, searches, subscriptions
from gateway.services.context import RequestContext

# A route handler: parses the request, calls a service with the request's context, renders.
Handler = Callable[[Request, RequestContext], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Reply:
    """A success response: description, component schema name ("" for no body), media type, header names."""

    description: str
    schema: str
    media: str = JSON
    headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its route (method, path, endpoint) and its description. `errors` are HTTP
    statuses from openapi.ERRORS; `params` names from openapi.PARAMETERS; `body` a schema name."""

    method: str
    path: str
    endpoint: Handler
    operation_id: str
    tag: str
    summary: str
    replies: dict[int, Reply]
    errors: tuple[int, ...] = ()
    params: tuple[str, ...] = ()
    body: str | None = None


Op = Operation
UPSTREAM = (502, 503, 504)  # a provider failed, is shunned (circuit open) or timed out; or the store is down
PAGED = (400, 422)  # a foreign or tampered `next` cursor; `limit` below 1
BODY = (400, 413, 415, 422)  # not JSON, too large, not declared as JSON, invalid


async def service_description(request: Request, ctx: RequestContext) -> Response:
    """`GET /api`: the gateway's OpenAPI 3.1 document, from the table below."""
    return JSONResponse(api_document(ctx.runtime.settings.gateway.title))


OPERATIONS = [
    Op("GET", "/", root.landing_page,
       "getLandingPage", "Core", "Landing page: links, conformance and the configured providers",
       {200: Reply("The landing page.", "LandingPage")}),
    Op("GET", "/conformance", root.conformance,
       "getConformance", "Core", "The conformance classes the gateway itself serves",
       {200: Reply("The gateway's classes.", "Conformance")}),
    Op("GET", "/products", products.list_products,
       "listProducts", "Products", "Every provider's products and the federated products",
       {200: Reply("One page of products (`federation:missing` names providers left out).", "ProductCollection")},
       (*PAGED, *UPSTREAM), ("limit", "next")),
    Op("GET", "/products/{productId}", products.get_product,
       "getProduct", "Products", "One product",
       {200: Reply("The product, with gateway links.", "Product")}, (404, *UPSTREAM)),
    Op("GET", "/products/{productId}/conformance", products.product_conformance,
       "getProductConformance", "Products", "A product's classes",
       {200: Reply("The product's classes as the gateway serves them.", "Conformance")}, (404, *UPSTREAM)),
    Op("GET", "/products/{productId}/queryables", products.product_queryables,
       "getProductQueryables", "Products", "A product's queryables",
       {200: Reply("A JSON Schema (for a federated product, what every member shares).", "JSONSchema", SCHEMA_JSON)},
       (404, *UPSTREAM)),
    Op("GET", "/products/{productId}/order-parameters", products.product_order_parameters,
       "getProductOrderParameters", "Products",
       "A product's order parameters",
       {200: Reply("A JSON Schema (for a federated product, discriminated on `member`).", "JSONSchema", SCHEMA_JSON)},
       (404, *UPSTREAM)),
    Op("POST", "/products/{productId}/opportunities", opportunities.search_opportunities,
       "searchOpportunities", "Opportunities",
       "Search opportunities, synchronously (200) or asynchronously (201)",
       {200: Reply("Opportunities found (sync); `Preference-Applied: wait` when asked for.", "OpportunityCollection",
                   GEOJSON, ("Preference-Applied",)),
        201: Reply("The search runs in the background: its record.", "OpportunitySearchRecord",
                   headers=("Location", "Preference-Applied"))},
       (*BODY, 404, *UPSTREAM), ("Prefer",), "OpportunityPayload"),
    Op("GET", "/products/{productId}/opportunities/{collectionId}", opportunities.get_opportunity_collection,
       "getOpportunityCollection", "Opportunities",
       "The results of a completed asynchronous search, paged (the search's `limit` unless `limit` is given)",
       {200: Reply("One page of the opportunity collection.", "OpportunityCollection", GEOJSON)},
       (*PAGED, 404, *UPSTREAM), ("limit", "next")),
    Op("POST", "/products/{productId}/orders", orders.create_order,
       "createOrder", "Orders", "Place an order, at most once per key",
       {201: Reply("The order placed (or the original one, for a repeated Idempotency-Key).", "Order", GEOJSON,
                   ("Location",))},
       (*BODY, 404, 409, *UPSTREAM), ("Idempotency-Key",), "OrderPayload"),
    Op("GET", "/orders", orders.list_orders,
       "listOrders", "Orders", "Every provider's orders, newest first",
       {200: Reply("One page of orders (`federation:missing` names providers left out).", "OrderCollection",
                   GEOJSON)},
       (*PAGED, *UPSTREAM), ("limit", "next")),
    Op("GET", "/orders/{orderId}", orders.get_order,
       "getOrder", "Orders", "One order",
       {200: Reply("The order, with gateway links.", "Order", GEOJSON)}, (404, *UPSTREAM)),
    Op("POST", "/orders/{orderId}/cancel", orders.cancel_order,
       "cancelOrder", "Orders", "Call an order off (a gateway extension: class order-cancel)",
       {202: Reply("The vendor accepted the cancel (or the order was cancelled already): the order.", "Order",
                   GEOJSON)},
       (404, 405, 409, *UPSTREAM)),
    Op("GET", "/orders/{orderId}/statuses", orders.order_statuses,
       "listOrderStatuses", "Orders", "An order's status history",
       {200: Reply("One page of statuses.", "OrderStatuses")}, (*PAGED, 404, *UPSTREAM), ("limit", "next")),
    Op("GET", "/searches/opportunities", searches.list_search_records,
       "listOpportunitySearchRecords", "Searches",
       "The gateway's asynchronous searches, newest first",
       {200: Reply("One page of search records.", "OpportunitySearchRecords")}, (*PAGED, 503), ("limit", "next")),
    Op("GET", "/searches/opportunities/{searchRecordId}", searches.get_search_record,
       "getOpportunitySearchRecord", "Searches",
       "One asynchronous search", {200: Reply("The search record.", "OpportunitySearchRecord")}, (404, 503)),
    Op("GET", "/searches/opportunities/{searchRecordId}/statuses", searches.search_record_statuses,
       "listOpportunitySearchRecordStatuses", "Searches",
       "An asynchronous search's status history",
       {200: Reply("Every status, oldest first, as a bare array.", "OpportunitySearchStatuses")}, (404, 503)),
    Op("POST", "/subscriptions", subscriptions.create_subscription,
       "createSubscription", "Notifications", "Subscribe a URL to signed webhooks (Standard Webhooks)",
       {201: Reply("The subscription, with its signing `secret` (shown only in this answer).",
                   "NewSubscription", headers=("Location",))},
       (*BODY, 409, 503), (), "SubscriptionRequest"),
    Op("GET", "/subscriptions", subscriptions.list_subscriptions,
       "listSubscriptions", "Notifications", "The client's subscriptions",
       {200: Reply("Every subscription of the client, oldest first.", "Subscriptions")}, (503,)),
    Op("GET", "/subscriptions/{subscriptionId}", subscriptions.get_subscription,
       "getSubscription", "Notifications", "One subscription",
       {200: Reply("The subscription (never its secret).", "Subscription")}, (404, 503)),
    Op("DELETE", "/subscriptions/{subscriptionId}", subscriptions.delete_subscription,
       "deleteSubscription", "Notifications", "Delete a subscription",
       {204: Reply("Deleted: nothing more is delivered to it.", "")}, (404, 503)),
    Op("POST", "/subscriptions/{subscriptionId}/test", subscriptions.test_subscription,
       "testSubscription", "Notifications", "Send a `subscription.test` event to a subscription",
       {202: Reply("Queued: the delivery, as its deliveries list will show it.", "Delivery")}, (404, 503)),
    Op("GET", "/subscriptions/{subscriptionId}/deliveries", subscriptions.list_deliveries,
       "listSubscriptionDeliveries", "Notifications", "A subscription's deliveries, newest first",
       {200: Reply("One page of deliveries with their last attempts.", "Deliveries")},
       (*PAGED, 404, 503), ("limit", "next")),
    Op("GET", "/healthz", health.healthz,
       "getHealth", "Operations", "Liveness: the process answers",
       {200: Reply("The gateway is alive.", "Health")}),
    Op("GET", "/readyz", health.readyz,
       "getReadiness", "Operations", "Readiness: the store and the providers' circuits",
       {200: Reply("The store answers and some provider is healthy.", "Readiness"),
        503: Reply("Not ready: the store is down or every provider's circuit is open.", "Readiness")}),
    Op("GET", "/metrics", health.metrics,
       "getMetrics", "Operations", "Prometheus metrics",
       {200: Reply("The Prometheus text exposition format.", "PrometheusText", TEXT)}, (401, 403)),
    Op("GET", "/api", service_description,
       "getOpenAPI", "Operations", "This OpenAPI document",
       {200: Reply("The OpenAPI 3.1 description of the gateway.", "OpenAPIDocument")}),
]  # fmt: skip


def api_document(title: str, version: str = "0.1.0") -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document (a fresh dict on every call)."""
    return openapi_document(title, OPERATIONS, version)


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of a handler: the request's context is built once, then handed over."""

    async def call(request: Request) -> Response:
        return await handler(request, request_context(request))

    # The handler's name is the operation label of the request metrics and log line.
    call.__name__ = call.__qualname__ = handler.__name__
    call.__doc__ = handler.__doc__
    return call


def routes() -> list[Route]:
    """The Starlette routes of every operation, in the table's order."""
    return [Route(op.path, endpoint(op.endpoint), methods=[op.method]) for op in OPERATIONS]


def route_names(served: list[Route]) -> dict[object, tuple[str, str]]:
    """Each served route's endpoint with its path template and operationId (for spans)."""
    return {route.endpoint: (op.path, op.operation_id) for op, route in zip(OPERATIONS, served, strict=True)}
