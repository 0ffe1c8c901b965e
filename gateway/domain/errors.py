"""The gateway's exception hierarchy: what went wrong, never how to say it over HTTP.

`gateway.http.handlers` owns the single table that turns these into responses.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code = "gateway_error"

    def __init__(
        self, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        # Response headers the error calls for (WWW-Authenticate, Retry-After).
        self.headers = headers or {}


# --- the client's mistakes -------------------------------------------------------------


class InvalidRequest(GatewayError):
    """The request is malformed in a way no schema describes (bad query value, bad header)."""

    code = "invalid_request"


class InvalidCursor(InvalidRequest):
    """A pagination cursor that this gateway did not mint for this route."""

    code = "invalid_cursor"


class Unauthorized(GatewayError):
    """No valid API key came with a request while authentication is on."""

    code = "unauthorized"


class Forbidden(GatewayError):
    """The client's key does not cover the provider or product it addressed."""

    code = "forbidden"


class RateLimited(GatewayError):
    """The client sent more requests than its rate allows."""

    code = "rate_limited"


class PayloadTooLarge(GatewayError):
    """The request body exceeds the configured maximum."""

    code = "payload_too_large"


class RequestTimeout(GatewayError):
    """The client did not send its request body within the allowed time."""

    code = "request_timeout"


class UnsupportedMediaType(GatewayError):
    """The request body is not JSON."""

    code = "unsupported_media_type"


class NotFound(GatewayError):
    """The addressed resource does not exist."""

    code = "not_found"


class SearchNotSupported(NotFound):
    """The product cannot search opportunities (an order-only product): it has no such resource."""

    code = "search_not_supported"


class UnknownProvider(NotFound):
    """An identifier names a provider that is not configured."""

    code = "unknown_provider"


class RequestValidationFailed(GatewayError):
    """The body or parameters fail validation; `errors` lists each failing location."""

    code = "validation_failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, extra={"errors": errors})
        self.errors = errors


# --- the providers' failures -----------------------------------------------------------


class ProviderError(GatewayError):
    """A provider failed to give a usable answer.

    `maybe_received` says whether the provider may have acted on the request anyway (the
    connection was lost or timed out after sending): what decides if an order's outcome is unknown.
    """

    code = "provider_error"

    def __init__(self, provider_id: str, detail: str, *, maybe_received: bool = False) -> None:
        super().__init__(detail, extra={"provider": provider_id})
        self.provider_id = provider_id
        self.maybe_received = maybe_received


class ProviderTimeout(ProviderError):
    """The provider did not answer within its timeout or the request's deadline."""

    code = "provider_timeout"


class ProviderUnreachable(ProviderError):
    """No connection to the provider could be made, or it was lost."""

    code = "provider_unreachable"


class ProviderUnavailable(ProviderError):
    """The gateway is not calling the provider for now (its circuit breaker is open)."""

    code = "provider_unavailable"


class ProviderBadStatus(ProviderError):
    """The provider answered with an unexpected HTTP status."""

    code = "provider_bad_status"

    def __init__(self, provider_id: str, detail: str, status: int) -> None:
        super().__init__(provider_id, detail)
        self.status = status


class ProviderInvalidPayload(ProviderError):
    """The provider's answer is not valid STAPI (not JSON, or not the expected model)."""

    code = "provider_invalid_payload"


class ProviderFailedBehind(ProviderError):
    """An upstream gateway answered that providers behind it failed: their failure, relayed.

    `code` and `status` are the upstream gateway's (502, 503 or 504); `behind` names the failed
    providers in this gateway's namespace (`g1:bravo`), for `federation:missing`.
    """

    def __init__(
        self, provider_id: str, detail: str, *, code: str, status: int, behind: list[str], maybe_received: bool
    ) -> None:
        super().__init__(provider_id, detail, maybe_received=maybe_received)
        self.code = code
        self.status = status
        self.behind = behind


class UpstreamNotFound(NotFound):
    """The provider says the addressed resource does not exist."""

    code = "not_found"

    def __init__(self, provider_id: str, detail: str) -> None:
        super().__init__(detail, extra={"provider": provider_id})
        self.provider_id = provider_id


class AllProvidersFailed(GatewayError):
    """Every provider a request needed failed; `timed_out` tells whether all of them timed out."""

    code = "providers_failed"

    def __init__(self, detail: str, failures: dict[str, ProviderError]) -> None:
        missing = {m for e in failures.values() for m in (e.behind if isinstance(e, ProviderFailedBehind) else [])}
        missing.update(e.provider_id for e in failures.values() if not isinstance(e, ProviderFailedBehind))
        super().__init__(detail, extra={"federation:missing": sorted(missing)})
        self.failures = failures

    @property
    def timed_out(self) -> bool:
        return all(isinstance(e, ProviderTimeout) for e in self.failures.values())


# --- the gateway's own resources -------------------------------------------------------


class IdempotencyKeyReused(GatewayError):
    """An Idempotency-Key already used with a different request."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(GatewayError):
    """Another request with the same Idempotency-Key is still being processed."""

    code = "idempotency_key_in_progress"


class OrderOutcomeUnknown(GatewayError):
    """The provider may or may not have placed the order (timeout or connection lost after sending)."""

    code = "order_outcome_unknown"


class StoreUnavailable(GatewayError):
    """The state store (Redis) cannot be reached or answered with an error."""

    code = "store_unavailable"


class StoreNotDurable(GatewayError):
    """The store may lose acknowledged writes, and `store_durability: require` forbids starting on it."""

    code = "store_not_durable"
