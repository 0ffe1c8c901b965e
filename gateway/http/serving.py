"""How the gateway runs uvicorn (its configuration, servers for the demo and for workers), and the
HTTP server's guards where uvicorn has no setting: request heads capped in size and header
count (431), and a head that does not arrive in time answered 408 and closed.

What uvicorn 0.54 offers falls short with httptools (the implementation `serve` runs, ~4x the
throughput of h11 here): `h11_max_incomplete_event_size` applies to h11 only (httptools buffers a
32 MiB header whole), `timeout_keep_alive` only runs between requests (a fresh connection sending
a byte now and then stays open for ever), and `limit_concurrency` answers 503 to new requests but
leaves unfinished heads alone. So its httptools protocol is subclassed: the bytes of an unfinished
head are counted as they arrive, the finished head is measured exactly, headers are counted as
the parser reports them, and a timer runs from the connection (or the first byte of the next
request on it) to the end of the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.settings.client_limits import ClientLimits

log = structlog.get_logger("gateway.serving")

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that has been refused."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded, timed request head."""

    max_head_bytes = 32_768
    max_headers = 100
    head_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._message_ended = False
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    # --- refusing ---------------------------------------------------------------------------

    def _refuse(self, status: int, code: str, detail: str) -> None:
        """Answer `status` in the contract's JSON form and close the connection."""
        if self._refused:
            return
        self._refused = True
        self._disarm()
        request_id = uuid.uuid4().hex
        log.warning("request_refused", status=status, code=code, detail=detail, request_id=request_id)
        body = orjson.dumps({"code": code, "detail": detail, "request_id": request_id})
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        head += b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
        head += b"x-request-id: %s\r\nconnection: close\r\n\r\n" % request_id.encode()
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parse error, unless the request was refused already (that raised it)."""
        if not self._refused:
            super().send_400_response(msg)

    # --- the head timer -------------------------------------------------------------------

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            detail = f"The request line and headers did not arrive within {self.head_timeout_s:g} s."
            self._refuse(408, "request_timeout", detail)

    # --- protocol and parser callbacks ----------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head timer with the connection."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head timer."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse once an unfinished head has grown past the limit."""
        if self._refused:
            return
        self._message_ended = False
        super().data_received(data)
        # A chunk in which the previous request ended may hold some of its body: it is not counted,
        # so an unfinished head may exceed the limit by at most one read before it is refused.
        if self._in_head and not self._refused and not self._message_ended:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, "headers_too_large", f"The request head exceeds {self.max_head_bytes} bytes.")

    def on_message_begin(self) -> None:
        """A new request's first byte: its head is timed and measured from here."""
        super().on_message_begin()
        self._in_head, self._head_bytes, self._head_size = True, 0, 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        """Measure the request target."""
        self._head_size += len(url)
        if self._head_size > self.max_head_bytes:
            self._refuse(431, "headers_too_large", f"The request head exceeds {self.max_head_bytes} bytes.")
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count and measure each header; refuse past the limits."""
        self._head_size += len(name) + len(value) + 4
        if len(self.headers) >= self.max_headers:
            self._refuse(431, "headers_too_large", f"The request has more than {self.max_headers} headers.")
            raise _Refused
        if self._head_size > self.max_head_bytes:
            self._refuse(431, "headers_too_large", f"The request head exceeds {self.max_head_bytes} bytes.")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: stop its timer and hand the request to the app."""
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """Note that a request ended in the chunk being parsed."""
        self._message_ended = True
        super().on_message_complete()


def guarded_protocol(limits: ClientLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with the configured limits, for `uvicorn.Config(http=...)`."""

    class Configured(GuardedHttpToolsProtocol):
        """The guarded protocol with this gateway's limits."""

        max_head_bytes = limits.max_header_bytes
        max_headers = limits.max_headers
        head_timeout_s = limits.header_timeout_s

    return Configured


def uvicorn_config(
    app: object, host: str, port: int, log_level: str, limits: ClientLimits | None = None
) -> uvicorn.Config:
    """uvicorn on uvloop and httptools; a gateway's (`limits` given) with bounded, timed request heads.

    A gateway's uvicorn reads no forwarded headers itself (`proxy_headers=False`): the client
    address stays the connecting peer, which `trusted_proxies` is about.
    """
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="uvloop",
        http="httptools" if limits is None else guarded_protocol(limits),
        proxy_headers=limits is None,
        log_config=None,
        log_level=log_level,
        access_log=False,
    )


def tune_gc() -> None:
    """Fewer, cheaper collections for a server that allocates many short-lived JSON objects.

    Measured (bench/profile.py): full collections took 40 % of a 5 x 2,000 federated merge.
    Objects alive at start-up are frozen out of every later collection (and, in forked workers,
    their pages stay shared with the master's).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


class QuietServer(uvicorn.Server):
    """A server that leaves signals to the gateway's server in the same process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no handlers."""
        yield


class WorkerServer(uvicorn.Server):
    """A `serve --workers` worker's server: calls `on_serving` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_serving: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_serving = on_serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up (lifespan, then listening), then the call."""
        await super().startup(sockets)
        if self.started:
            self.on_serving()
