"""Hostile providers: small ASGI apps (most wrapping a real stapi-fastapi app) that send what a
buggy or malicious provider would, to test what the gateway lets through."""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MIB = 1 << 20


def gzip_bomb(decoded_mib: int) -> bytes:
    """A valid gzip member of `decoded_mib` MiB of zeros, about 1 KiB per MiB.

    Built without compressing a GiB: after a full flush, deflate's output for a MiB of zeros is
    the same bytes every time, so one block is repeated; the trailer carries the true CRC.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(_MIB)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(decoded_mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    final = b"\x03\x00"  # an empty final block
    return header + block * decoded_mib + final + struct.pack("<II", crc, (decoded_mib * _MIB) & 0xFFFFFFFF)


class GzipBombApp:
    """A provider whose every answer is a gzip bomb labelled as JSON."""

    def __init__(self, decoded_mib: int = 1024) -> None:
        self.body = gzip_bomb(decoded_mib)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with the bomb."""
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class ExtraHeaderApp:
    """Wraps an app and adds one raw response header to every answer (a latin-1 one, say)."""

    def __init__(self, app: ASGIApp, name: bytes, value: bytes) -> None:
        self.app, self.name, self.value = app, name, value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward, adding the header."""

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (self.name, self.value)]}
            await send(message)

        await self.app(scope, receive, with_header)


async def _answer(send: Send, status: int, body: Any, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


_SCHEMA_PATH = re.compile(r"^/products/[^/]+/(queryables|order-parameters)$")


class SchemaApp:
    """Wraps an app: every product's queryables and order parameters are `schema` (raw JSON)."""

    def __init__(self, app: ASGIApp, schema: Any) -> None:
        self.app, self.schema = app, schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the schema, or forward."""
        if scope["type"] == "http" and _SCHEMA_PATH.match(scope["path"]):
            await _answer(send, 200, self.schema, b"application/schema+json")
            return
        await self.app(scope, receive, send)


def _echo(scope: Scope) -> str:
    return " ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in scope.get("headers", []))


def _search_record(record_id: str, product_id: str, echo: str) -> dict[str, Any]:
    window = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
    return {
        "id": record_id,
        "product_id": product_id,
        "opportunity_request": {"datetime": window, "geometry": {"type": "Point", "coordinates": [13.4, 52.5]}},
        "status": {
            "timestamp": "2026-11-01T00:00:00Z",
            "status_code": "failed",
            "reason_code": None,
            "reason_text": f"search failed for {echo}",
            "links": [],
        },
        "links": [],
    }


class HeaderEchoApp:
    """Wraps a real provider and echoes every request's headers into what it answers.

    Every JSON object the real app answers gains an `echo` field and an echoing `description`;
    on top, a GET of any path with an `e404` segment (a product or order id), and a POST of one
    with an `e400` or `e422` segment, answer that status with the headers in the `detail` (for
    422 in its `loc`, `msg` and `type`); product
    `failing` makes async searches whose record fails with the headers in its `reason_text`;
    queryables and order parameters are schemas quoting the headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.records: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer as described, or forward with the echo added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        echo, path = _echo(scope), scope["path"]
        handled = await self._special(scope, path, echo, send)
        if not handled:
            await self._forward_echoing(scope, receive, send, echo)

    async def _special(self, scope: Scope, path: str, echo: str, send: Send) -> bool:
        parts = path.strip("/").split("/")
        wanted = ("e404",) if scope["method"] == "GET" else ("e400", "e422")
        failing = [p for p in parts if p in wanted]
        if failing:
            status = int(failing[0][1:])
            detail: Any = echo
            if status == 422:
                detail = [{"loc": ["body", echo], "msg": f"bad value for {echo}", "type": echo}]
            await _answer(send, status, {"detail": detail})
            return True
        if _SCHEMA_PATH.match(path):
            schema = {"type": "object", "description": echo, "properties": {"x": {"type": "string", "title": echo}}}
            await _answer(send, 200, schema)
            return True
        if parts[:2] == ["products", "failing"] and parts[2:] == ["opportunities"] and scope["method"] == "POST":
            record_id = f"rec-{len(self.records) + 1}"
            self.records[record_id] = "failing"
            await _answer(send, 201, _search_record(record_id, "failing", echo))
            return True
        if parts[:2] == ["searches", "opportunities"] and len(parts) == 3 and parts[2] in self.records:
            await _answer(send, 200, _search_record(parts[2], "failing", echo))
            return True
        return False

    async def _forward_echoing(self, scope: Scope, receive: Receive, send: Send, echo: str) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            data = {**data, "echo": echo, "description": f"{data.get('description', '')} {echo}"}
            body = orjson.dumps(data)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def listener() -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback TCP server that counts the connections made to it (and closes them); yields (URL, counts)."""
    accepted: list[int] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()
        await server.wait_closed()


class ExplodingTransport(httpx.AsyncBaseTransport):
    """A transport that fails with an exception no transport should raise (as a latin-1 header
    once did inside httpx): what the fan-out must still treat as one provider's failure."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Raise the error."""
        raise self.error
