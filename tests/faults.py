"""Faults a real STAPI server cannot produce on demand, as small ASGI apps and httpx transports."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send


class RefusingTransport(httpx.AsyncBaseTransport):
    """A provider that is down: every connection is refused."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse."""
        raise httpx.ConnectError("connection refused", request=request)


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
