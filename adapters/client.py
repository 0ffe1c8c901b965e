"""What the injected client and an adapter share: operation names, transport failures, and how an
upstream gateway says that providers behind it failed.

The gateway builds each provider's `httpx.AsyncClient` (gateway/upstream/transport.py, its
policy in gateway/upstream/policy.py); an adapter only sends through it. The two sides meet
here, so that an adapter needs nothing from `gateway` to name its calls or read their failures.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

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
