"""The aiohttp-backed httpx transport against real servers on loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.transport import AiohttpTransport, ResponseTooLarge, build_client
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


APP = Starlette(
    routes=[
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
