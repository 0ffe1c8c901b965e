"""How the STAPI adapter reads the wire: ids as path segments, page tokens, providers' errors.

Error bodies are provider text shown to clients, so each piece is scrubbed of the provider's
credentials, made printable and bounded here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from adapters.base import (
    DeliberateError,
    InvalidRequest,
    JSONObject,
    ProviderBadStatus,
    ProviderError,
    ProviderFailedBehind,
    ProviderInvalidPayload,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RequestValidationFailed,
    UpstreamNotFound,
)
from adapters.client import (
    BodyRefused,
    CircuitOpen,
    NoRateSlot,
    ProviderRateLimited,
    ResponseTooLarge,
    failures_behind,
    reported_ids,
)
from adapters.scrub import Scrubber

# The error codes an upstream gateway may relay (the contract's codes are lower-case words).
_CODE = re.compile(r"^[a-z][a-z_]{0,39}\Z")
# A provider's 422 may list any number of errors; a client needs the first few.
_MAX_VALIDATION_ERRORS = 20
_MAX_LOC_PARTS = 10


def next_token(links: list[JSONObject]) -> str | None:
    """The provider's page token from a `next` link: the body's `next`, else the href's query."""
    for link in links:
        if link.get("rel") != "next":
            continue
        body = link.get("body")
        if isinstance(body, dict) and isinstance(body.get("next"), str):
            return str(body["next"])
        values = parse_qs(urlsplit(str(link.get("href", ""))).query).get("next")
        if values:
            return values[0]
    return None


def segment(provider_id: str, value: str) -> str:
    """An id as one path segment upstream: percent-encoded, so `?`, `#` and `/` stay inside it.

    `.` and `..` stay themselves under percent-encoding (they are unreserved, and %2E%2E is
    normalised back to `..` by URL parsers), so they would still climb the provider's paths;
    no resource can have such an id, so it is a 404 without asking.
    """
    if value in ("", ".", ".."):
        raise UpstreamNotFound(provider_id, f"provider '{provider_id}' has no resource with id {value!r}")
    return quote(value, safe="")


def _error_body(response: httpx.Response, scrubber: Scrubber) -> Any:
    try:
        return scrubber.parse(response.content)
    except ValueError:
        return None


def upstream_detail(response: httpx.Response, scrubber: Scrubber) -> str:
    """A short, printable summary of a provider's error body, scrubbed (never the whole body)."""
    body = _error_body(response, scrubber)
    detail = body.get("detail") if isinstance(body, dict) else None
    text = detail if isinstance(detail, str) else response.reason_phrase or "error"
    return scrubber.shown(text)


def missing_of(body: Any) -> list[str]:
    """The providers an upstream gateway's answer lists in `federation:missing` (id-like ones only)."""
    return reported_ids(body.get("federation:missing")) if isinstance(body, dict) else []


def validation_errors(response: httpx.Response, scrubber: Scrubber) -> list[dict[str, Any]]:
    """A 422's errors, reduced to a bounded `loc`, `msg` and `type` each, scrubbed: FastAPI's
    `detail` list, or a gateway's `errors` (an upstream gateway's 422 keeps its reasons).

    Never empty: a provider that says why in a plain `detail` string (stapi-fastapi's "Filter
    cannot be evaluated") or not at all still gives the client one entry with what it said.
    """
    body = _error_body(response, scrubber)
    detail = body.get("detail") if isinstance(body, dict) else None
    said = detail if isinstance(detail, str) and detail.strip() else "the provider gave no reason"
    if not isinstance(detail, list) and isinstance(body, dict):
        detail = body.get("errors")
    if not isinstance(detail, list) or not any(isinstance(item, dict) for item in detail):
        return [{"loc": ["body"], "msg": scrubber.shown(said), "type": "provider_rejected"}]

    def part(value: Any) -> str | int:
        return value if isinstance(value, int) and not isinstance(value, bool) else scrubber.shown(str(value), 100)

    def loc(item: dict[str, Any]) -> list[Any]:
        value = item.get("loc")
        return value if isinstance(value, list) else []

    return [
        {
            "loc": [part(p) for p in loc(item)[:_MAX_LOC_PARTS]],
            "msg": scrubber.shown(str(item.get("msg", ""))),
            "type": scrubber.shown(str(item.get("type", "")), 100),
        }
        for item in detail[:_MAX_VALIDATION_ERRORS]
        if isinstance(item, dict)
    ]


def transport_error(pid: str, exc: httpx.TransportError) -> ProviderError:
    """A failed exchange as the gateway's error; `maybe_received` says whether the provider may have acted."""
    if isinstance(exc, NoRateSlot):
        detail = f"provider '{pid}' allows no more calls of this kind before the deadline (rate limit); retry later"
        return ProviderRateLimited(pid, detail, exc.retry_after_s)
    if isinstance(exc, httpx.TimeoutException):
        sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        return ProviderTimeout(pid, f"provider '{pid}' did not answer in time", maybe_received=sent)
    if isinstance(exc, CircuitOpen):
        return ProviderUnavailable(pid, f"provider '{pid}' is failing; calls are paused (circuit open)")
    if isinstance(exc, BodyRefused):
        # The provider took the request and answered; only its answer is unusable.
        why = "larger than allowed" if isinstance(exc, ResponseTooLarge) else "that cannot be decoded"
        return ProviderInvalidPayload(pid, f"provider '{pid}' sent a body {why}", maybe_received=True)
    # Refused or unresolvable: nothing reached the provider. Anything else may have.
    sent = not isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol)
    kind = exc.__class__.__name__
    return ProviderUnreachable(pid, f"provider '{pid}' could not be reached ({kind})", maybe_received=sent)


def status_error(pid: str, response: httpx.Response, client_payload: bool, scrubber: Scrubber) -> DeliberateError:
    """An unexpected status as the gateway's error, with the provider's words scrubbed."""
    status = response.status_code
    if status == 404:
        return UpstreamNotFound(pid, f"provider '{pid}': {upstream_detail(response, scrubber)}")
    # A 400/422 on a request that carries the client's payload is the client's mistake as
    # judged by the provider; on anything else it is the provider misbehaving.
    if client_payload and status == 422:
        return RequestValidationFailed(f"provider '{pid}' rejected the request", validation_errors(response, scrubber))
    if client_payload and status == 400:
        return InvalidRequest(f"provider '{pid}' rejected the request: {upstream_detail(response, scrubber)}")
    behind = failures_behind(response)
    if behind:
        return relayed_failure(pid, response, behind, scrubber)
    return ProviderBadStatus(pid, f"provider '{pid}' answered HTTP {status}", status)


def relayed_failure(pid: str, response: httpx.Response, behind: list[str], scrubber: Scrubber) -> ProviderError:
    """An upstream gateway's 5xx that is the failure of providers behind it, in this gateway's terms:
    its code and status, its detail (scrubbed), the failed providers namespaced (`g1:bravo`).

    On a create, such a gateway's 502 and 503 mean nothing was placed (its contract: an unknown
    outcome is its 504), so only a 504 may have been received.
    """
    body = _error_body(response, scrubber)
    code = body.get("code") if isinstance(body, dict) else None
    # Header values are the provider's text too: scrubbed, then only id-like ones kept.
    failed = missing_of(body) or reported_ids([scrubber.text(value) for value in behind])
    named = f"{pid}:{failed[0]}" if len(failed) == 1 else pid
    status = response.status_code if response.status_code in (502, 503, 504) else 502
    return ProviderFailedBehind(
        named,
        f"provider '{pid}': {upstream_detail(response, scrubber)}",
        code=code if isinstance(code, str) and _CODE.match(code) else "provider_error",
        status=status,
        behind=[f"{pid}:{provider}" for provider in failed] or [pid],
        maybe_received=status == 504,
    )
