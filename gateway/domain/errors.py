"""The gateway's own errors: what went wrong, never how to say it over HTTP.

They derive from the root of one hierarchy, `DeliberateError` in adapters/base.py, which also
holds what an adapter may raise (provider failures, a provider's not-found, invalid request and
validation failures: categories the gateway raises too). `gateway.http.handlers` owns the single
table that turns both kinds into responses.
"""

from __future__ import annotations

from adapters.base import (
    DeliberateError,
    InvalidRequest,
    NotFound,
    ProviderError,
    ProviderFailedBehind,
    ProviderTimeout,
)


class GatewayError(DeliberateError):
    """Base of the errors the gateway itself raises on purpose (not a provider's, not a category
    shared with adapters): catch `DeliberateError` for every deliberate error."""

    code = "gateway_error"


# --- the client's mistakes -------------------------------------------------------------


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


class SearchNotSupported(NotFound):
    """The product cannot search opportunities (an order-only product): it has no such resource."""

    code = "search_not_supported"


class UnknownProvider(NotFound):
    """An identifier names a provider that is not configured."""

    code = "unknown_provider"


class CancelNotSupported(GatewayError):
    """The order's provider has no way to cancel orders (a STAPI 0.1 server)."""

    code = "cancel_not_supported"


# --- the providers' failures, as one request sees them --------------------------------


class SubscriptionLimitReached(GatewayError):
    """A client asked for one more webhook subscription than it may hold."""

    code = "subscription_limit_reached"


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
