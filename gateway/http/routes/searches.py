"""The gateway's asynchronous search records: list, one record, its statuses."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.responses import JSONResponse
from gateway.http.routes.common import query_limit
from gateway.services import searches
from gateway.services.context import RequestContext


async def get_search_record(request: Request, ctx: RequestContext) -> Response:
    """`GET /searches/opportunities/{id}`."""
    record = await searches.record(ctx, request.path_params["searchRecordId"])
    return JSONResponse(searches.public_record(record, ctx.gateway_base))


async def search_record_statuses(request: Request, ctx: RequestContext) -> Response:
    """`GET /searches/opportunities/{id}/statuses`: the history, oldest first, as a bare array."""
    record = await searches.record(ctx, request.path_params["searchRecordId"])
    return JSONResponse([status.to_json() for status in record.statuses])


async def list_search_records(request: Request, ctx: RequestContext) -> Response:
    """`GET /searches/opportunities`: the gateway's records, newest first."""
    body = await searches.list_records(ctx, query_limit(request), request.query_params.get("next"))
    return JSONResponse(body)
