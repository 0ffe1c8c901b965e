"""The aiohttp-backed httpx transport against real servers on loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import zlib
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.client import ResponseTooLarge, UndecodableBody
from gateway.upstream.transport import AiohttpTransport, build_client, read_decoded
from tests.faults import StaticApp
from tests.hostile import ExtraHeaderApp, gzip_bomb
from tests.upstreams import serve


async def echo(request: Request) -> Response:
    """Echo method, path, query, a header and the body."""
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "auth": request.headers.get("authorization"),
            "body": (await request.body()).decode(),
        },
        status_code=201 if request.method == "POST" else 200,
        headers={"Location": "http://elsewhere/x"},
    )


async def zipped(request: Request) -> Response:
    """A gzip-encoded JSON body."""
    return Response(gzip.compress(b'{"ok": true}'), headers={"Content-Encoding": "gzip"}, media_type="application/json")


async def big(request: Request) -> Response:
    """A body of 64 KiB."""
    return Response(b"x" * 65536)


async def slow(request: Request) -> Response:
    """An answer after two seconds."""
    await asyncio.sleep(2)
    return Response(b"late")


async def raw_path(request: Request) -> Response:
    """The request's path exactly as it arrived on the wire."""
    return JSONResponse({"raw_path": request.scope["raw_path"].decode()})


APP = Starlette(
    routes=[
        Route("/raw/{rest:path}", raw_path),
        Route("/echo", echo, methods=["GET", "POST"]),
        Route("/zipped", zipped),
        Route("/big", big),
        Route("/slow", slow),
    ]
)


async def test_requests_and_answers_round_trip() -> None:
    """Method, path, query, headers and body reach the server; status and headers come back."""
    async with serve(APP) as url:
        client = build_client(url, timeout_s=5, headers={"Authorization": "Bearer x"})
        response = await client.post("/echo", params={"a": "1"}, content=b'{"k": 1}')
        got = response.json()
        again = await client.get("/echo")
        await client.aclose()
    assert response.status_code == 201
    assert response.headers["location"] == "http://elsewhere/x"
    assert got == {"method": "POST", "path": "/echo", "query": "a=1", "auth": "Bearer x", "body": '{"k": 1}'}
    assert again.json()["method"] == "GET"


async def test_gzip_is_decoded_once() -> None:
    """A gzip body is decoded by httpx and not a second time by aiohttp."""
    async with serve(APP) as url:
        client = build_client(url, timeout_s=5)
        response = await client.get("/zipped")
        await client.aclose()
    assert response.json() == {"ok": True}


async def test_body_over_the_limit_is_refused() -> None:
    """A body larger than max_body_bytes raises ResponseTooLarge instead of being buffered."""
    async with serve(APP) as url:
        transport = AiohttpTransport(max_body_bytes=1024)
        client = build_client(url, timeout_s=5, transport=transport)
        with pytest.raises(ResponseTooLarge):
            await client.get("/big")
        await client.aclose()


async def test_read_timeout() -> None:
    """A server slower than the timeout raises httpx's ReadTimeout."""
    async with serve(APP) as url:
        client = build_client(url, timeout_s=0.3)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        await client.aclose()


async def test_refused_connection_is_a_connect_error() -> None:
    """Nothing listening is a ConnectError, not a timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = build_client(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(httpx.ConnectError):
        await client.get("/")
    await client.aclose()


async def test_garbage_bytes_are_a_protocol_error() -> None:
    """A server that answers with bytes that are not HTTP raises a transport error."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"\x00\x01 this is not http\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = build_client(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(httpx.TransportError) as caught:
        await client.get("/")
    await client.aclose()
    server.close()
    await server.wait_closed()
    assert not isinstance(caught.value, httpx.TimeoutException)


async def test_an_encoded_path_reaches_the_server_as_encoded() -> None:
    """%2E%2E, %3F and %23 inside a segment stay encoded on the wire (yarl is told not to re-parse)."""
    async with serve(APP) as url:
        client = build_client(url, timeout_s=5)
        response = await client.get("/raw/products/%2E%2E/x%3Fa%3D1%23f/queryables")
        await client.aclose()
    assert response.json() == {"raw_path": "/raw/products/%2E%2E/x%3Fa%3D1%23f/queryables"}


async def test_a_latin1_response_header_is_kept_as_received() -> None:
    """A provider's non-ASCII header bytes are carried through, not a UnicodeEncodeError."""
    value = "caf\xe9 \xff".encode("latin-1")
    async with serve(ExtraHeaderApp(APP, b"x-note", value)) as url:
        client = build_client(url, timeout_s=5)
        response = await client.get("/echo")
        await client.aclose()
    assert response.status_code == 200
    assert (b"x-note", value) in response.headers.raw
    assert response.json()["method"] == "GET"


def _deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


BODY = b'{"ok": true, "pad": "' + b"x" * 100_000 + b'"}'


@pytest.mark.parametrize(
    ("coding", "wire"),
    [
        ("", BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("gzip", gzip.compress(BODY[:50]) + gzip.compress(BODY[50:])),
        ("deflate", _deflate(BODY, zlib.MAX_WBITS)),
        ("deflate", _deflate(BODY, -zlib.MAX_WBITS)),
    ],
    ids=["none", "identity", "gzip", "x-gzip", "gzip-two-members", "deflate-zlib", "deflate-raw"],
)
async def test_bodies_are_decoded_once_whatever_the_encoding(coding: str, wire: bytes) -> None:
    """read_decoded gives the plain body and drops a real Content-Encoding, so httpx does not decode again."""
    headers = [(b"content-type", b"application/json")] + ([(b"content-encoding", coding.encode())] if coding else [])
    response = await _read(_Encoded(wire, headers), limit=1 << 20)
    assert response.content == BODY
    assert response.headers.get("content-encoding", "identity") == "identity"
    if coding not in ("", "identity"):
        assert response.headers["content-length"] == str(len(BODY))


@pytest.mark.parametrize(
    ("coding", "wire", "error"),
    [
        ("br", b"\x0b\x02\x80{}\x03", UndecodableBody),
        ("gzip, deflate", gzip.compress(BODY), UndecodableBody),
        ("gzip", b"not gzip at all", UndecodableBody),
        ("gzip", gzip.compress(BODY)[:-20], UndecodableBody),
        ("identity", BODY, ResponseTooLarge),
        ("gzip", gzip.compress(BODY), ResponseTooLarge),
    ],
    ids=["not-asked-for", "chained", "corrupt", "truncated", "plain-too-large", "decoded-too-large"],
)
async def test_bodies_that_cannot_be_had_within_the_limit_are_refused(coding: str, wire: bytes, error: type) -> None:
    """Unknown or chained codings, corrupt or truncated data, and bodies over the limit either way."""
    headers = [(b"content-encoding", coding.encode())]
    with pytest.raises(error):
        await _read(_Encoded(wire, headers), limit=len(BODY) - 1 if error is ResponseTooLarge else 1 << 20)


async def test_a_gzip_bomb_stops_at_the_limit_in_bounded_time() -> None:
    """About 1 MB of gzip that would be 1 GiB: refused after the limit's worth of output.

    The ceiling (5 s for what takes about 0.1 s) only proves decoding stops at the cap.
    """
    bomb = gzip_bomb(1024)
    assert len(bomb) < 1_100_000
    assert gzip.decompress(gzip_bomb(3)) == bytes(3 << 20), "the bomb is valid gzip"
    started = time.perf_counter()
    with pytest.raises(ResponseTooLarge):
        await _read(_Encoded(bomb, [(b"content-encoding", b"gzip")]), limit=32 << 20)
    assert time.perf_counter() - started < 5.0


class _Encoded(StaticApp):
    """A StaticApp with raw headers of the test's choosing."""

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(200, body)
        self.raw = headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer with the raw headers."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw})
        await send({"type": "http.response.body", "body": self.body})


async def _read(app: Any, limit: int) -> httpx.Response:
    """The app's answer through httpx's ASGI transport (which does not decode) and read_decoded."""
    request = httpx.Request("GET", "http://up.test/x")
    inner = httpx.ASGITransport(app=app)
    response = await read_decoded(await inner.handle_async_request(request), request, limit)
    await response.aread()
    return response
