"""The product catalogue: merged over every provider (and the federated products), and per product."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.responses import JSONResponse
from gateway.http.routes.common import query_limit
from gateway.services import products
from gateway.services.context import RequestContext

SCHEMA_JSON = "application/schema+json"


async def list_products(request: Request, ctx: RequestContext) -> Response:
    """`GET /products`: every provider's products, asked in parallel, under one cursor."""
    body = await products.list_products(ctx, query_limit(request), request.query_params.get("next"))
    return JSONResponse(body)


async def get_product(request: Request, ctx: RequestContext) -> Response:
    """`GET /products/{id}`: one provider's product or a federated product."""
    return JSONResponse(await products.product(ctx, request.path_params["productId"]))


async def product_conformance(request: Request, ctx: RequestContext) -> Response:
    """`GET /products/{id}/conformance`: the product's classes as the gateway serves them."""
    return JSONResponse(await products.product_conformance(ctx, request.path_params["productId"]))


async def product_queryables(request: Request, ctx: RequestContext) -> Response:
    """`GET /products/{id}/queryables`: the provider's JSON Schema, or what all members share."""
    return JSONResponse(await products.queryables(ctx, request.path_params["productId"]), media_type=SCHEMA_JSON)


async def product_order_parameters(request: Request, ctx: RequestContext) -> Response:
    """`GET /products/{id}/order-parameters`: the provider's JSON Schema, or the federated one."""
    schema = await products.order_parameters(ctx, request.path_params["productId"])
    return JSONResponse(schema, media_type=SCHEMA_JSON)
