"""The headers the gateway itself puts on every upstream call: who is calling, and for which request.

Set by the transport as the request leaves, after the client has merged a provider's configured
`headers:` and an adapter's own, so neither can replace them (the settings refuse those names
too, see `gateway.settings.fields.GATEWAY_HEADERS`). A client's X-Request-ID reaches a provider
only after RequestContextMiddleware has checked it (letters, digits and `._:-`, at most 128).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from gateway.obs.version import VERSION
from gateway.upstream.context import request_id
from gateway.upstream.transport import read_decoded

USER_AGENT = f"stapi-gateway/{VERSION}"


def new_request_id(kind: str) -> str:
    """A fresh id for work no client request started (a background job): `kind-` and 32 hex digits."""
    return f"{kind}-{uuid.uuid4().hex}"


def stamp(request: httpx.Request) -> None:
    """Put User-Agent and X-Request-ID on an outgoing request, replacing whatever was there."""
    headers = request.headers
    headers["User-Agent"] = USER_AGENT
    # A call outside any request or job (a start-up check) still gets an id of its own.
    headers["X-Request-ID"] = request_id.get() or new_request_id("call")


class StampingTransport(httpx.AsyncBaseTransport):
    """Stamps the gateway's headers on calls that do not pass through GuardedTransport (OAuth tokens),
    and reads their bodies decoded within `max_body_bytes`, as GuardedTransport does (else httpx
    would decode a gzip bomb whole)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        also: Callable[[httpx.Request], None] | None = None,
        *,
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self.inner = inner
        self.also = also  # the trace context's `traceparent`, when tracing is on
        self.max_body_bytes = max_body_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Stamp, send, and read the answer within the limit."""
        stamp(request)
        if self.also is not None:
            self.also(request)
        response = await self.inner.handle_async_request(request)
        return await read_decoded(response, request, self.max_body_bytes)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()
