"""The one table from deliberate errors (the gateway's own and its adapters') to HTTP responses."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from adapters.base import (
    DeliberateError,
    InvalidRequest,
    NotFound,
    OrderNotCancellable,
    ProviderBadStatus,
    ProviderError,
    ProviderFailedBehind,
    ProviderInvalidPayload,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RequestValidationFailed,
)
from adapters.client import PROVIDER_FAILURE_HEADER, ProviderRateLimited
from gateway.domain.errors import (
    AllProvidersFailed,
    CancelNotSupported,
    Forbidden,
    GatewayError,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    OrderOutcomeUnknown,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    StoreNotDurable,
    StoreUnavailable,
    SubscriptionLimitReached,
    Unauthorized,
    UnsupportedMediaType,
)
from gateway.http.responses import JSONResponse, error_body

log = structlog.get_logger("gateway.errors")

# Most specific first: the first class in the error's MRO that appears here decides.
STATUS_BY_ERROR: dict[type[DeliberateError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    RateLimited: 429,
    PayloadTooLarge: 413,
    RequestTimeout: 408,
    UnsupportedMediaType: 415,
    NotFound: 404,
    RequestValidationFailed: 422,
    IdempotencyKeyReused: 422,
    IdempotencyKeyInProgress: 409,
    OrderNotCancellable: 409,
    CancelNotSupported: 405,
    SubscriptionLimitReached: 409,
    OrderOutcomeUnknown: 504,
    ProviderTimeout: 504,
    ProviderUnreachable: 502,
    # Not sent: the provider's rate limit had no slot before the deadline (not a slow provider's 504).
    ProviderRateLimited: 503,
    ProviderUnavailable: 503,
    ProviderBadStatus: 502,
    ProviderInvalidPayload: 502,
    ProviderError: 502,
    AllProvidersFailed: 502,
    StoreUnavailable: 503,
    StoreNotDurable: 503,
    GatewayError: 500,
    DeliberateError: 500,
}

_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_for(exc: DeliberateError) -> int:
    """The HTTP status for a gateway error."""
    if isinstance(exc, AllProvidersFailed) and exc.timed_out:
        return 504
    if isinstance(exc, ProviderFailedBehind):
        return exc.status  # the upstream gateway's own 502, 503 or 504
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def request_id_of(request: Request) -> str:
    """The id the request middleware gave this request."""
    return str(request.scope.get("state", {}).get("request_id", "-"))


def _respond(status: int, body: dict[str, object], request_id: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={"X-Request-ID": request_id, **(headers or {})})


# The store's detail names its address and the driver's error: for the log, not for clients.
STORE_DETAIL = "The gateway's state store is unavailable; try again shortly."


def failed_providers(exc: DeliberateError) -> list[str]:
    """The providers whose failure an error is (empty when it is the gateway's own)."""
    if isinstance(exc, AllProvidersFailed):
        return list(exc.extra["federation:missing"])
    provider = exc.extra.get("provider")
    return [provider] if isinstance(provider, str) else []


def error_response(exc: DeliberateError, request_id: str) -> Response:
    """The contract's JSON error response for a DeliberateError.

    A 5xx that is the failure of providers names them in a header, so that a gateway in front of
    this one does not count it as this gateway's failure (gateway/upstream/policy.py).
    """
    status = status_for(exc)
    headers = exc.headers
    if status >= 500:
        log.warning("request_failed", code=exc.code, detail=exc.detail, status=status)
        if failed := failed_providers(exc):
            headers = {**headers, PROVIDER_FAILURE_HEADER: ", ".join(failed)}
    detail = STORE_DETAIL if isinstance(exc, StoreUnavailable) else exc.detail
    return _respond(status, error_body(exc.code, detail, request_id, exc.extra), request_id, headers)


async def gateway_error(request: Request, exc: Exception) -> Response:
    """Render a DeliberateError."""
    assert isinstance(exc, DeliberateError)
    runtime = request.scope.get("state", {}).get("runtime")
    if isinstance(exc, StoreUnavailable) and runtime is not None:
        runtime.metrics.store_errors.labels("request").inc()
    return error_response(exc, request_id_of(request))


async def http_error(request: Request, exc: Exception) -> Response:
    """Render Starlette's routing errors (404, 405) in the contract's format."""
    assert isinstance(exc, HTTPException)
    rid = request_id_of(request)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if exc.status_code != 404 else f"No resource at {request.url.path}."
    return _respond(exc.status_code, error_body(code, str(detail), rid), rid, dict(exc.headers or {}))


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """A client that went away before its request was read: logged as such, answered (to no one) 499.

    499 is nginx's "client closed request"; it is what the request's log line and metrics show.
    """
    rid = request_id_of(request)
    log.info("client_disconnected", detail="the client closed the connection before its request body was read")
    return _respond(499, error_body("client_disconnected", "The client closed the connection.", rid), rid)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Render a bug as a JSON 500 without a stack trace; the trace goes to the log."""
    rid = request_id_of(request)
    log.exception("unhandled_error", exc_info=exc)
    detail = "The gateway failed unexpectedly; the error is logged under this request id."
    return _respond(500, error_body("internal_error", detail, rid), rid)
