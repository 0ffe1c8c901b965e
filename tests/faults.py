"""Faults a real STAPI server cannot produce on demand, as small ASGI apps and httpx transports
(and a store that fails once, for a writer that stops midway)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.domain.errors import StoreUnavailable


class RefusingTransport(httpx.AsyncBaseTransport):
    """A provider that is down: every connection is refused."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse."""
        raise httpx.ConnectError("connection refused", request=request)


class SwitchTransport(httpx.AsyncBaseTransport):
    """A provider a test takes down (connections refused) and brings back (`down`)."""

    def __init__(self, app: ASGIApp, down: bool = False) -> None:
        self.inner, self.down = httpx.ASGITransport(app=app), down

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse while down, else forward to the app."""
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


class ResettingTransport(httpx.AsyncBaseTransport):
    """A provider that drops the connection mid-answer."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Reset."""
        raise httpx.ReadError("connection reset by peer", request=request)


class StaticApp:
    """A provider that always answers the same status, body and content type."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status, self.body, self.content_type = status, body, content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer."""
        headers = [(b"content-type", self.content_type.encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class SlowApp:
    """A provider that answers only after `delay_s` (longer than any timeout under test)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Sleep, then answer an empty product list."""
        await asyncio.sleep(self.delay_s)
        await StaticApp(200, b'{"type":"ProductCollection","products":[],"links":[]}')(scope, receive, send)


# --- faults served for real over loopback (the gateway's own aiohttp transport applies) ------


def unused_port(host: str = "127.0.0.1") -> int:
    """A loopback port nothing listens on (bound once, then released), so connecting is refused."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class StallingApp:
    """A provider that answers only after `delay_s`, and gives up as soon as the client hangs up.

    Unlike `SlowApp`, it does not outlive the client's timeout, so a real server shuts down promptly.
    """

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wait for the delay or the client's disconnect, whichever comes first."""
        try:
            await asyncio.wait_for(_wait_for_disconnect(receive), self.delay_s)
        except TimeoutError:
            await StaticApp(200, b'{"type":"ProductCollection","products":[],"links":[]}')(scope, receive, send)


class HugeBodyApp:
    """A provider that streams `size` bytes of b"x" (chunked, no Content-Length) as its 200 answer."""

    def __init__(self, size: int, chunk: int = 1 << 20) -> None:
        self.size, self.chunk = size, chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body until it is all sent or the client has gone."""
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        block = b"x" * self.chunk
        sent = 0
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            while sent < self.size and not disconnected.done():
                part = block[: min(self.chunk, self.size - sent)]
                sent += len(part)
                await send({"type": "http.response.body", "body": part, "more_body": sent < self.size})
        finally:
            disconnected.cancel()


class FlappingApp:
    """Wraps an app: each (method, path) fails on its 1st, 3rd, 5th... request and is served on the others.

    Counting per resource keeps the pattern deterministic whatever other calls the gateway makes
    (capability look-ups, start-up checks). A failure is `status` with a FastAPI-style JSON body.
    """

    def __init__(self, app: ASGIApp, status: int = 503) -> None:
        self.app, self.status = app, status
        self.counts: dict[tuple[str, str], int] = {}
        self.failures = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fail or pass through, alternately per resource."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"])
        count = self.counts[key] = self.counts.get(key, 0) + 1
        if count % 2 == 1:
            self.failures += 1
            await StaticApp(self.status, b'{"detail":"temporarily unavailable"}')(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@asynccontextmanager
async def resetting_server(host: str = "127.0.0.1") -> AsyncIterator[str]:
    """A TCP server that reads a request's head, then resets the connection (RST); yields its URL."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends RST instead of FIN, as a crashing or overloaded server does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, host, 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"http://{host}:{port}"
    finally:
        server.close()
        await server.wait_closed()


class ThrottlingApp:
    """Wraps an app: the first `failures` requests with `method` answer `status` with `headers`.

    What a provider under load or in maintenance sends (429/503 with Retry-After); `seen`
    lists every (method, path) that reached it, to count retries.
    """

    def __init__(
        self,
        app: ASGIApp,
        failures: int,
        *,
        method: str = "GET",
        status: int = 503,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.app, self.failures, self.method, self.status = app, failures, method, status
        self.headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Throttle or pass through."""
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
            # Product paths only: the gateway's start-up look at the landing page is not the test's.
            if scope["method"] == self.method and scope["path"].startswith("/products") and self.failures > 0:
                self.failures -= 1
                headers = [(b"content-type", b"application/json"), *self.headers]
                await send({"type": "http.response.start", "status": self.status, "headers": headers})
                await send({"type": "http.response.body", "body": b'{"detail":"try later"}'})
                return
        await self.app(scope, receive, send)


class SwitchApp:
    """Wraps an app with a `mode` a test flips: "ok" forwards, "fail" answers 500, "hang" never answers.

    A hanging request waits until the gateway gives up on it (its task is cancelled); `hits`
    counts the requests that reached this provider at all.
    """

    def __init__(self, app: ASGIApp, mode: str = "ok") -> None:
        self.app, self.mode, self.hits = app, mode, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer as the current mode says (product paths only, as for `ThrottlingApp`)."""
        if scope["type"] != "http" or not scope["path"].startswith("/products"):
            await self.app(scope, receive, send)
            return
        self.hits += 1
        if self.mode == "fail":
            await StaticApp(500, b'{"detail":"broken"}')(scope, receive, send)
        elif self.mode == "hang":
            await asyncio.Event().wait()
        else:
            await self.app(scope, receive, send)


class FailsOnce:
    """A store that raises StoreUnavailable at the first call of `method` on a key starting with
    `prefix`, and is the store under test otherwise: a writer that stops right there."""

    def __init__(self, inner: Any, method: str, prefix: str = "") -> None:
        self.inner, self.method, self.prefix = inner, method, prefix
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        async def once(*args: Any, **kwargs: Any) -> Any:
            if not self.failed and str(args[0]).startswith(self.prefix):
                self.failed = True
                raise StoreUnavailable("the store went away")
            return await target(*args, **kwargs)

        return once
