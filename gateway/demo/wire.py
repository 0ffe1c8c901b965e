"""What the demo simulator says on the wire: FastAPI-shaped errors, JSON bodies, links and paging.

stapi-fastapi 0.8.0 is a FastAPI app, so its clients see FastAPI's error bodies and pydantic's
datetime rendering; these helpers reproduce both for gateway/demo/simulator.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ValidationError
from stapi_pydantic import OpportunityPayload
from starlette.requests import Request
from starlette.responses import Response

from gateway.demo.catalogue import PassPlan, ProductDef

JSON, GEOJSON = "application/json", "application/geo+json"

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An error answered the way FastAPI does: `{"detail": ...}` with the given status."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _dumps_default(value: Any) -> Any:
    # FastAPI's jsonable_encoder renders the exceptions inside validation `ctx` as {}; match it.
    return {} if isinstance(value, BaseException) else str(value)


def json_response(
    body: Any, status: int = 200, media_type: str = JSON, headers: dict[str, str] | None = None
) -> Response:
    """`body` serialised with orjson as FastAPI would render it."""
    return Response(orjson.dumps(body, default=_dumps_default), status, headers, media_type)


def link(href: str, rel: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    """A STAPI link object."""
    return {"href": href, "rel": rel, "type": media_type, **extra}


def base_url(request: Request) -> str:
    """The request's base URL without its trailing slash."""
    return str(request.base_url).rstrip("/")


def stamp(moment: datetime) -> str:
    """A UTC datetime as pydantic renders it."""
    return moment.isoformat().replace("+00:00", "Z")


async def parse_body(model: type[M], request: Request) -> M:
    """The request body validated as `model`, or the 422 FastAPI would answer."""
    # Decoding first and validating Python objects is what FastAPI does, so the errors read the same.
    raw = await request.body()
    if not raw:
        raise ApiError(422, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error", "input": {}}
        raise ApiError(422, [{**error, "ctx": {"error": exc.msg}}]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]) from None
    except Exception as exc:  # cql2 rejects a malformed filter with a bare Exception (a 500 in 0.8.0)
        raise ApiError(422, [{"type": "value_error", "loc": ["body", "filter"], "msg": str(exc)}]) from None


def paging(request: Request, cap: int = 100) -> tuple[str | None, int]:
    """The `next` token and the `limit` (capped) of a paged GET."""
    raw = request.query_params.get("limit")
    try:
        limit = 10 if raw is None else int(raw)
    except ValueError:
        msg, kind = "Input should be a valid integer, unable to parse string as an integer", "int_parsing"
    else:
        if limit >= 1:
            return request.query_params.get("next") or None, min(limit, cap)
        # 0.8.0 passes such limits on unchecked; 0.9.0 rejects them like this, which is saner.
        msg, kind = "Input should be greater than or equal to 1", "greater_than_equal"
    raise ApiError(422, [{"type": kind, "loc": ["query", "limit"], "msg": msg, "input": raw}])


def page_links(href: str, ids: list[str], end: int, limit: int) -> list[dict[str, Any]]:
    """The `next` link of a page ending before index `end` of `ids`, if there is more."""
    return [link(f"{href}?{urlencode({'next': ids[end], 'limit': limit})}", "next")] if end < len(ids) else []


def opportunities(product: ProductDef, search: OpportunityPayload) -> tuple[list[dict[str, Any]], str | None]:
    """One page of passes over the search geometry, and the token (a pass index) of the next page."""
    plan = PassPlan.plan(product, search.geometry.model_dump(mode="json"), *search.datetime)
    if search.next is not None and not (search.next.isdigit() and int(search.next) < plan.slots):
        raise ApiError(404, "Error finding pagination token")
    try:
        return plan.page(int(search.next or 0), max(1, min(search.limit, 100)), search.filter)
    except Exception as exc:  # cql2 evaluation errors (e.g. comparing a string with a number) are bare
        raise ApiError(422, f"Filter cannot be evaluated: {exc}") from None
