"""Orders: placed through the journal with idempotency keys; listed and read across providers."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import InvalidRequest
from gateway.domain.inputs import limits_of
from gateway.domain.orders import validate_order
from gateway.http.responses import GEOJSON, JSONResponse
from gateway.http.routes.common import query_limit
from gateway.services import orders
from gateway.services.context import RequestContext

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 visible ASCII characters.")
    return key


async def create_order(request: Request, ctx: RequestContext) -> Response:
    """`POST /products/{id}/orders`: 201, Location and the order, at most once per Idempotency-Key."""
    target = ctx.target(request.path_params["productId"])  # 404 and 403 before the body's 4xx
    order = validate_order(await request.body(), limits_of(ctx.runtime.settings.gateway))
    body = await orders.create_order(ctx, target, order, _idempotency_key(request))
    location = f"{ctx.gateway_base}/orders/{body['id']}"
    return JSONResponse(body, status_code=201, media_type=GEOJSON, headers={"Location": location})


async def list_orders(request: Request, ctx: RequestContext) -> Response:
    """`GET /orders`: every provider's orders, newest first, under one cursor."""
    body = await orders.list_orders(ctx, query_limit(request), request.query_params.get("next"))
    return JSONResponse(body, media_type=GEOJSON)


async def get_order(request: Request, ctx: RequestContext) -> Response:
    """`GET /orders/{provider}:{order}`."""
    ref = await orders.locate(ctx, request.path_params["orderId"])
    return JSONResponse(await orders.order(ctx, ref), media_type=GEOJSON)


async def cancel_order(request: Request, ctx: RequestContext) -> Response:
    """`POST /orders/{provider}:{order}/cancel`: 202 and the order once the vendor accepted."""
    ref = await orders.locate(ctx, request.path_params["orderId"])
    return JSONResponse(await orders.cancel(ctx, ref), status_code=202, media_type=GEOJSON)


async def order_statuses(request: Request, ctx: RequestContext) -> Response:
    """`GET /orders/{provider}:{order}/statuses`, paged with the gateway's cursor."""
    ref = await orders.locate(ctx, request.path_params["orderId"])  # 404 before a bad `limit`'s 422
    body = await orders.order_statuses(ctx, ref, query_limit(request), request.query_params.get("next"))
    return JSONResponse(body)
