"""What the injected client and an adapter share: operation names, transport failures, and how an
upstream gateway says that providers behind it failed.

The gateway builds each provider's `httpx.AsyncClient` (gateway/upstream/transport.py, its
policy in gateway/upstream/policy.py); an adapter only sends through it. The two sides meet
here, so that an adapter needs nothing from `gateway` to name its calls or read their failures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from adapters.base import ProviderUnavailable

# Request extension naming the adapter operation (a `ProviderAdapter` method name), for the
# layers that count, log, pace and retry calls.
OPERATION_EXTENSION = "stapi_gateway.operation"
# Operations that only read at the provider, whatever HTTP method carries them: retrying them is
# safe. An opportunity search is a POST that creates nothing a client pays for (an async one at
# worst leaves a second, unused search record upstream).
READ_OPERATIONS = frozenset(
    {
        "landing_page",
        "list_products",
        "get_product",
        "product_conformance",
        "queryables",
        "order_parameters",
        "search_opportunities",
        "get_opportunity_collection",
        "get_search_record",
        "list_orders",
        "get_order",
        "order_statuses",
        "find_order",
    }
)
# Operations that create something at the provider: never retried, paced by `order_rate_per_s`.
CREATE_OPERATIONS = frozenset({"create_order"})
# Operations that change something at the provider without creating it: never retried either.
WRITE_OPERATIONS = frozenset({"cancel_order"})
# Set by a gateway on a 5xx that is the failure of providers behind it (their ids, comma-separated):
# a gateway in front of it does not hold such an answer against it (circuit, retries), since the
# upstream gateway answered, and applied its own policy towards those providers.
PROVIDER_FAILURE_HEADER = "STAPI-Gateway-Provider-Failure"
# What an upstream gateway may report as a provider id (its own ids are namespaced ones when it
# chains further). Anything else it reports is ignored, never shown.
_REPORTED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}\Z")
_MAX_REPORTED = 100


def reported_ids(values: Any) -> list[str]:
    """The provider ids in a list an upstream gateway reported (`federation:missing`, the header's
    values): only id-like strings, each once, at most 100."""
    if not isinstance(values, list):
        return []
    found = [v for v in values[:_MAX_REPORTED] if isinstance(v, str) and _REPORTED_ID.match(v)]
    return list(dict.fromkeys(found))


def failures_behind(response: httpx.Response) -> list[str]:
    """The providers an upstream gateway says its 5xx is the failure of (empty for any other answer)."""
    value = response.headers.get(PROVIDER_FAILURE_HEADER)
    if value is None or response.status_code < 500:
        return []
    return reported_ids([part.strip() for part in value.split(",")])


# --- the client's own failures, as httpx transport errors an adapter translates -------------


class BodyRefused(httpx.TransportError):
    """The provider's body was received but is refused unread: the provider misbehaved."""


class ResponseTooLarge(BodyRefused):
    """The provider's body exceeds the configured maximum (before or after decompression)."""


class UndecodableBody(BodyRefused):
    """The provider's body has a content-encoding the gateway did not ask for, or corrupt data."""


class CircuitOpen(httpx.ConnectError):
    """The call was not sent: the provider's circuit breaker is open."""


class NoRateSlot(httpx.PoolTimeout):
    """The call was not sent: no slot of a rate limit comes before its deadline.

    `retry_after_s` says when a slot would be free (the caller's Retry-After). A PoolTimeout, as
    the gateway's own wait for a concurrency slot is: nothing reached the provider.
    """

    def __init__(self, message: str, *, retry_after_s: float, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)
        self.retry_after_s = retry_after_s


# --- rate limits the gateway injects ---------------------------------------------------------


class RateGate(Protocol):
    """A rate limit the gateway injects into an adapter, for a vendor's per-endpoint limits: shared
    by every replica when the gateway's store is (redis://), else kept in this process."""

    async def wait(self) -> None:
        """Return when the next call may be sent; raise NoRateSlot when that is past its deadline."""
        ...


class ProviderRateLimited(ProviderUnavailable):
    """A call not sent because the provider's rate limit has no slot for it before the deadline
    (`NoRateSlot`, as the gateway's error): nothing reached the provider; Retry-After says when."""

    code = "provider_rate_limited"

    def __init__(self, provider_id: str, detail: str, retry_after_s: float) -> None:
        super().__init__(provider_id, detail)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


#: How an adapter gets its gates: from a name unique within its provider and the calls a second.
RateGates = Callable[[str, float], RateGate]
