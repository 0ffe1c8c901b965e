"""`stapi-gateway serve` against slow and huge requests, over real sockets (issue 11, items 9 and 11).

One gateway process in front of a real stapi-fastapi provider, with short header and body
timeouts so that the slow cases finish quickly; every line it writes to stderr must be JSON.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.served import free_port, served
from tests.upstreams import ProductSpec, build_provider, serve
from tests.waiting import eventually

WINDOW = "2026-12-01T00:00:00Z/2026-12-03T00:00:00Z"
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
# Ceiling for "closed after the timeout": proves "not left open", with room for a loaded machine.
CLOSED_WITHIN_S = 15.0


class Gateway:
    """A running gateway: an HTTP client, its port, its pid and its stderr lines so far."""

    def __init__(self, client: httpx.AsyncClient, port: int, pid: int, lines: list[str]) -> None:
        self.client, self.port, self.pid, self.lines = client, port, pid, lines

    def records(self) -> list[dict[str, Any]]:
        """The stderr lines, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.lines if line.strip()]

    def peak_rss_kib(self) -> int:
        """The process's peak resident memory (VmHWM)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw TCP connection to the gateway."""
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """One `stapi-gateway serve` process for the module, with short head and body timeouts."""
    provider = build_provider([ProductSpec("eo")], name="acme")
    async with serve(provider) as url:
        config = tmp_path_factory.mktemp("serving") / "gateway.yaml"
        config.write_text(
            f"gateway:\n  header_timeout_s: {HEADER_TIMEOUT_S}\n  body_timeout_s: {BODY_TIMEOUT_S}\n"
            f"providers:\n  acme:\n    url: {url}\n"
        )
        port = free_port()
        async with served(port, config=config) as running:
            yield Gateway(running.client, port, running.server_pid(), running.lines)


async def read_all(reader: asyncio.StreamReader, timeout_s: float = CLOSED_WITHIN_S) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    chunks = []
    async with asyncio.timeout(timeout_s):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(raw: bytes) -> tuple[int, dict[str, Any]]:
    """The status code and JSON body of a raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n",
        b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["one-huge-header", "too-many-headers", "huge-target"],
)
async def test_oversized_request_heads_are_431(gateway: Gateway, head: bytes) -> None:
    """A head over 32 KiB or with more than 100 headers is refused with a JSON 431 and closed."""
    reader, writer = await gateway.connect()
    writer.write(head)
    await writer.drain()
    raw = await read_all(reader)
    writer.close()
    status, body = status_and_body(raw)
    assert status == 431
    assert body["code"] == "headers_too_large"
    assert body["request_id"]


async def test_a_32_mib_header_is_cut_off_without_being_buffered(gateway: Gateway) -> None:
    """The connection is closed long before 32 MiB arrive, memory does not grow by it, others are served."""
    before = gateway.peak_rss_kib()
    _reader, writer = await gateway.connect()
    sent = 0
    chunk = b"a" * 65536
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    try:
        while sent < 32 * 2**20:
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), CLOSED_WITHIN_S)
            sent += len(chunk)
    except (ConnectionError, TimeoutError):
        pass
    writer.close()
    assert sent < 32 * 2**20
    assert gateway.peak_rss_kib() - before < 16 * 1024
    assert (await gateway.client.get("/healthz")).status_code == 200
    await asyncio.sleep(0.1)
    assert any(r.get("event") == "request_refused" and r.get("status") == 431 for r in gateway.records())


async def test_slowloris_connections_are_closed_after_the_header_timeout(gateway: Gateway) -> None:
    """20 connections trickling a head get a JSON 408 and are closed; a normal request answers meanwhile."""

    async def trickle() -> bytes:
        reader, writer = await gateway.connect()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        reading = asyncio.create_task(read_all(reader))
        try:
            while not reading.done():
                writer.write(b"X")  # one more byte of a header that never ends
                await writer.drain()
                await asyncio.sleep(0.2)
        except ConnectionError:
            pass
        writer.close()
        return await reading

    answers = asyncio.gather(*(trickle() for _ in range(20)))
    normal = await gateway.client.get("/healthz")
    raw = await answers
    assert normal.status_code == 200
    for response in raw:
        status, body = status_and_body(response)
        assert (status, body["code"]) == (408, "request_timeout")


async def test_an_idle_connection_without_a_request_is_closed(gateway: Gateway) -> None:
    """A connection that sends nothing at all is answered 408 and closed after the header timeout."""
    reader, writer = await gateway.connect()
    raw = await read_all(reader)
    writer.close()
    assert status_and_body(raw)[0] == 408


async def test_a_slow_body_is_408_and_the_connection_closed(gateway: Gateway) -> None:
    """A body that stops arriving is answered 408 in the contract's form after the body timeout."""
    reader, writer = await gateway.connect()
    writer.write(
        b"POST /products/acme:eo/opportunities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 500\r\n\r\n{"datetime": '
    )
    await writer.drain()
    raw = await read_all(reader)
    writer.close()
    status, body = status_and_body(raw)
    assert (status, body["code"]) == (408, "request_timeout")


async def test_a_client_gone_mid_body_is_logged_as_such(gateway: Gateway) -> None:
    """`client_disconnected` and a request line with status 499; no unhandled_error, no traceback."""
    _reader, writer = await gateway.connect()
    request_id = "gone-mid-body-1"
    writer.write(
        b"POST /products/acme:eo/opportunities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: " + request_id.encode() + b'\r\nContent-Length: 500\r\n\r\n{"datetime": '
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()
    mine: list[dict[str, Any]] = await eventually(
        lambda: [r for r in gateway.records() if r.get("request_id") == request_id],
        until=lambda rows: any(r.get("event") == "request" for r in rows),
        every_s=0.05,
        what="the request's log line",
    )
    events = [r["event"] for r in mine]
    assert "client_disconnected" in events, mine
    assert next(r for r in mine if r["event"] == "request")["status"] == 499
    assert "unhandled_error" not in events
    assert not [r for r in mine if "exception" in r]


async def test_library_warnings_are_json_lines_like_every_other(gateway: Gateway) -> None:
    """geojson-pydantic's warning about a homogeneous GeometryCollection reaches stderr as JSON."""
    points = [{"type": "Point", "coordinates": [9, 48]}, {"type": "Point", "coordinates": [9.1, 48.1]}]
    search = {"datetime": WINDOW, "geometry": {"type": "GeometryCollection", "geometries": points}}
    response = await gateway.client.post("/products/acme:eo/opportunities", json=search)
    assert response.status_code in (200, 422), response.text
    await asyncio.sleep(0.2)
    records = gateway.records()  # every line parses as JSON
    assert any("GeometryCollection" in str(r.get("event")) for r in records), gateway.lines[-5:]


async def test_the_issue_filter_is_refused_at_once_by_the_served_gateway(gateway: Gateway) -> None:
    """The 230-byte CQL2 filter of issue 11 is a 422 and health probes keep answering meanwhile."""
    hostile = {"op": "casei", "args": [{"op": "casei", "args": [{"op": "casei", "args": [1]}]}]}
    search = {"datetime": WINDOW, "geometry": {"type": "Point", "coordinates": [9, 48]}, "filter": hostile}
    url = "/products/acme:eo/opportunities"
    refused, probes = await asyncio.gather(
        asyncio.gather(*(gateway.client.post(url, json=search) for _ in range(10))),
        asyncio.gather(*(gateway.client.get("/healthz") for _ in range(10))),
    )
    assert {r.status_code for r in refused} == {422}
    assert {r.status_code for r in probes} == {200}
