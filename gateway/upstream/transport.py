"""An httpx transport on aiohttp's connection pool.

httpx's own pool costs too much per request for a gateway (see bench/transports.py); aiohttp's
is several times faster. Keeping httpx as the API means adapters stay transport-agnostic and
tests can inject `httpx.ASGITransport`. Bodies are read whole, bounded by `max_body_bytes`, so
a misbehaving provider cannot make the gateway buffer without limit; `read_decoded` bounds them
again after decompression, whatever transport read them.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import aiohttp
import httpx
import yarl

from adapters.client import ResponseTooLarge, UndecodableBody

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


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
                # httpx has encoded the URL already. Parsed again without `encoded`, yarl would
                # decode %2E%2E in an id to `..` and drop the segment before it.
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                timeout=_client_timeout(request),
                allow_redirects=False,
            ) as response:
                content = await self._read_bounded(response, request)
                return httpx.Response(
                    response.status,
                    # Bytes as received: as str, httpx would encode them as ASCII and fail on a
                    # provider's latin-1 header (UnicodeEncodeError). It decodes them lazily.
                    headers=list(response.raw_headers),
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


# --- content-encoding, decoded under the cap --------------------------------------------------
#
# The cap must hold for the decoded body: 1 MB of gzip can expand to 1 GB. Two ways were open:
# ask providers for identity encoding and refuse encoded bodies, or decode as a stream and stop
# at the cap. Decoding is kept: opportunity collections compress about tenfold, and vendors are
# reached over the internet. zlib is asked for at most one slice at a time, so memory stays at
# the cap plus a slice, and the loop is yielded to between slices, so a bomb stalls no one.
# This runs in GuardedTransport, above whichever transport read the raw bytes (aiohttp reads
# them undecoded; httpx.ASGITransport in tests too), so httpx never decodes a provider's body.
ACCEPT_ENCODING = "gzip, deflate"
_SLICE = 256 * 1024
_IDENTITY = frozenset({"", "identity"})


def _decompressor(coding: str, first: bytes) -> Any:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    # HTTP's deflate is zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send it raw.
    wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


async def _decode(coding: str, raw: bytes, limit: int, request: httpx.Request) -> bytes:
    parts: list[bytes] = []
    size = 0
    pending = raw
    try:
        decompressor = _decompressor(coding, raw)
        while pending:
            parts.append(decompressor.decompress(pending, _SLICE))
            size += len(parts[-1])
            if size > limit:
                raise ResponseTooLarge(f"decoded response body exceeds {limit} bytes", request=request)
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                # RFC 1952 allows several gzip members one after the other.
                pending = decompressor.unused_data.lstrip(b"\0")
                if pending:
                    decompressor = _decompressor(coding, pending)
            await asyncio.sleep(0)
    except zlib.error as exc:
        raise UndecodableBody(f"corrupt {coding} body ({exc})", request=request) from None
    if not decompressor.eof:
        raise UndecodableBody(f"truncated {coding} body", request=request)
    return b"".join(parts)


async def read_decoded(response: httpx.Response, request: httpx.Request, limit: int) -> httpx.Response:
    """The response with its body received and decoded, at most `limit` bytes either way.

    The result carries no Content-Encoding any more, and its body in memory (reading it cannot
    fail); ResponseTooLarge or UndecodableBody if the body cannot be had within the limit.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        # The transport-level stream, not aiter_raw(): a quarter of the cost per call.
        async for chunk in response.stream:  # type: ignore[union-attr]
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"response body exceeds {limit} bytes", request=request)
            chunks.append(chunk)
    finally:
        await response.aclose()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    coding = response.headers.get("content-encoding", "").strip().lower()
    headers: httpx.Headers | list[tuple[bytes, bytes]] = response.headers
    if coding not in _IDENTITY:
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise UndecodableBody(f"content-encoding {coding!r} was not asked for", request=request)
        body = await _decode(coding, body, limit, request)
        drop = (b"content-encoding", b"content-length")
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in drop]
        headers.append((b"content-length", str(len(body)).encode()))
    return httpx.Response(
        response.status_code,
        headers=headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions=response.extensions,
    )


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
        # Only what read_decoded can decode (httpx would offer br and zstd when installed).
        headers={"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})},
        transport=transport or AiohttpTransport(max_connections=max_connections),
        follow_redirects=False,
        **kwargs,
    )
