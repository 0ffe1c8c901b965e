"""Webhook receivers for the notification tests: small ASGI apps that record what they get."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Received:
    """One request a receiver got, and the status it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event_id(self) -> str:
        """The Standard Webhooks message id."""
        return self.headers["webhook-id"]

    @property
    def subject(self) -> str:
        """The order the event is about."""
        data: dict[str, Any] = orjson.loads(self.body)["data"]
        return str(data.get("order_id") or data.get("subscription_id"))


@dataclass
class Receiver:
    """Answers `statuses(n)` to the n-th request (0-based) carrying one event id; 204 by default."""

    statuses: Callable[[int], int] = lambda _: 204
    # Held open this long per request, so overlapping sends of one event would be seen.
    hold_s: float = 0.0
    got: list[Received] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the request, answer the scripted status."""
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        event_id = headers.get("webhook-id", "")
        self.in_flight[event_id] = self.in_flight.get(event_id, 0) + 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[event_id])
        try:
            if self.hold_s:
                await asyncio.sleep(self.hold_s)
            n = self.tries.get(event_id, 0)
            self.tries[event_id] = n + 1
            status = self.statuses(n)
            self.got.append(Received(headers, body, status))
        finally:
            self.in_flight[event_id] -= 1
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"receiver says no" if status >= 300 else b""})

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx, in arrival order."""
        return [r for r in self.got if 200 <= r.status < 300]

    def first_deliveries_by_subject(self) -> dict[str, list[str]]:
        """Per subject, the event ids in the order each was first delivered."""
        order: dict[str, list[str]] = {}
        for r in self.delivered():
            ids = order.setdefault(r.subject, [])
            if r.event_id not in ids:
                ids.append(r.event_id)
        return order
