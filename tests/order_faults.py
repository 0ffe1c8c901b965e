"""Providers that place the order and then fail to say so, the way real ones do.

A real stapi-fastapi 0.8.0 app places every order; these transports wrap it and, for a share
of order creations, throw the answer away after the order exists upstream: a 500/502/503
(a load balancer's or a crashed handler's), a connection reset after the body went out, a hang
past the gateway's deadline, or a 201 whose body the gateway cannot read. `before_place` faults
fail without forwarding (what a 503 from a proxy in front of a down provider looks like).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
from starlette.types import ASGIApp

AFTER_PLACE = ("500", "502", "503", "reset", "hang", "bad-201")


def is_order_create(request: httpx.Request) -> bool:
    """POST /products/{id}/orders."""
    parts = request.url.path.strip("/").split("/")
    return request.method == "POST" and len(parts) == 3 and parts[0] == "products" and parts[2] == "orders"


class LosesOrderAnswers(httpx.AsyncBaseTransport):
    """Forwards to a real provider app; a share of order creations lose their answer after placing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate: float,
        modes: Sequence[str] = AFTER_PLACE,
        seed: int = 1,
        hang_s: float = 2.0,
        before_place: bool = False,
    ) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.rate, self.modes, self.hang_s, self.before_place = rate, tuple(modes), hang_s, before_place
        self.random = random.Random(seed)
        self.faults: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward; maybe replace the answer to an order creation with a fault."""
        if not is_order_create(request) or self.random.random() >= self.rate:
            return await self.inner.handle_async_request(request)
        mode = self.random.choice(self.modes)
        self.faults[mode] += 1
        if not self.before_place:
            response = await self.inner.handle_async_request(request)
            await response.aread()  # the provider has placed the order now
        return await self._fault(mode, request)

    async def _fault(self, mode: str, request: httpx.Request) -> httpx.Response:
        if mode.isdigit():
            return httpx.Response(int(mode), json={"detail": "upstream failed"}, request=request)
        if mode == "reset":
            raise httpx.ReadError("connection reset by peer", request=request)
        if mode == "hang":
            await asyncio.sleep(self.hang_s)
            raise httpx.ReadTimeout("no answer", request=request)
        # A 201 whose order has a link stapi-pydantic refuses (no href).
        body: dict[str, Any] = {
            "type": "Feature",
            "id": "x",
            "geometry": None,
            "properties": {},
            "links": [{"rel": "self"}],
        }
        return httpx.Response(201, json=body, request=request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()
