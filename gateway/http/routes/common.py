"""What several routes parse from a request: the page size."""

from __future__ import annotations

from starlette.requests import Request

from adapters.base import RequestValidationFailed

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def query_limit(request: Request) -> int:
    """`limit` from the query: 1 or more, at most MAX_LIMIT (larger values are clamped)."""
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        error = {"loc": ["query", "limit"], "msg": "must be an integer of at least 1", "type": "value_error"}
        raise RequestValidationFailed("The query parameter 'limit' is invalid.", [error])
    return min(value, MAX_LIMIT)
