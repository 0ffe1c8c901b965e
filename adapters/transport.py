"""An httpx transport on aiohttp's connection pool.

httpx's own pool costs too much per request for a gateway (see bench/transports.py); aiohttp's
is several times faster. Keeping httpx as the API means adapters stay transport-agnostic and
tests can inject `httpx.ASGITransport`. Bodies are read whole, bounded by `max_body_bytes`, so
a misbehaving provider cannot make the gateway buffer without limit.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# Request extension naming the adapter operation (a `ProviderAdapter` method name), for the
# layers that count, log, pace and retry calls.
OPERATION_EXTENSION = "stapi_gateway.operation"
# Operations that only read at the provider, whatever HTTP method carries them: retrying them is
# safe. An opportunity search is a POST that creates nothing a client pays for (an async one at
# worst leaves a second, unused search record upstream).
READ_OPERATIONS = frozenset(
    {
        "landing_page",
        "conformance",
        "list_products",
        "get_product",
        "product_conformance",
        "queryables",
        "order_parameters",
        "search_opportunities",
        "get_opportunity_collection",
        "list_search_records",
        "get_search_record",
        "search_record_statuses",
        "list_orders",
        "get_order",
        "order_statuses",
    }
)
# Operations that create something at the provider: never retried, paced by `order_rate_per_s`.
CREATE_OPERATIONS = frozenset({"create_order"})


class ResponseTooLarge(httpx.TransportError):
    """The provider's body exceeds the configured maximum."""


class CircuitOpen(httpx.ConnectError):
    """The call was not sent: the provider's circuit breaker is open."""


def _client_timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.get("pool"),
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
    )


def _translate(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """Map aiohttp's exceptions to httpx's, keeping timeouts apart from refusals and resets."""
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.NetworkError(message, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one pooled aiohttp session."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_s: float = 30.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._max_body_bytes = max_body_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        # The session binds to the running loop, so it is made on first use, not in __init__.
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_s)
        # httpx decodes content-encoding itself; letting aiohttp do it too would decode twice.
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request and read its whole body."""
        if self._session is None:
            self._session = self._open_session()
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            async with self._session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=_client_timeout(request),
                allow_redirects=False,
            ) as response:
                content = await self._read_bounded(response, request)
                return httpx.Response(
                    response.status,
                    headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
                    stream=httpx.ByteStream(content),
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"},
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, request) from exc

    async def _read_bounded(self, response: aiohttp.ClientResponse, request: httpx.Request) -> bytes:
        limit = self._max_body_bytes
        if response.content_length is not None and response.content_length > limit:
            raise ResponseTooLarge(f"response body of {response.content_length} bytes exceeds {limit}", request=request)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"response body exceeds {limit} bytes", request=request)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def build_client(
    base_url: str,
    *,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 100,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """The pooled client for one provider: aiohttp-backed unless a transport is injected."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s),
        headers=headers or {},
        transport=transport or AiohttpTransport(max_connections=max_connections),
        follow_redirects=False,
        **kwargs,
    )
