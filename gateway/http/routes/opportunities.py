"""Opportunity search (sync 200 or async 201, gateway/services/opportunities.py decides) and the
collections async searches produce."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain import ids
from gateway.domain.inputs import limits_of
from gateway.domain.opportunities import parse_prefer, validate_search
from gateway.http.responses import GEOJSON, JSONResponse
from gateway.http.routes.common import query_limit
from gateway.services import opportunities
from gateway.services.context import RequestContext


async def search_opportunities(request: Request, ctx: RequestContext) -> Response:
    """`POST /products/{id}/opportunities`."""
    target = ctx.target(request.path_params["productId"])  # 404 and 403 before the body's 4xx
    search = validate_search(await request.body(), limits_of(ctx.runtime.settings.gateway))
    answer = await opportunities.search(ctx, target, search, parse_prefer(request.headers.get("prefer")))
    headers = {"Preference-Applied": answer.preference_applied} if answer.preference_applied else {}
    if answer.is_record:
        headers["Location"] = answer.body["links"][0]["href"]
        return JSONResponse(answer.body, status_code=201, headers=headers)
    return JSONResponse(answer.body, media_type=GEOJSON, headers=headers)


async def get_opportunity_collection(request: Request, ctx: RequestContext) -> Response:
    """`GET /products/{id}/opportunities/{collection_id}`: a completed async search's results, paged
    (`provider:collection` is that provider's own collection, passed through)."""
    product_id, collection_id = request.path_params["productId"], request.path_params["collectionId"]
    target = ctx.target(product_id)
    parts = ids.split(collection_id)
    if parts is not None:
        body = await opportunities.proxied_collection(ctx, target, *parts)
    else:
        record = await opportunities.collection_record(ctx, product_id, collection_id)
        limit = query_limit(request) if "limit" in request.query_params else None  # after the record's 404
        body = await opportunities.stored_collection(ctx, target, record, limit, request.query_params.get("next"))
    return JSONResponse(body, media_type=GEOJSON)
