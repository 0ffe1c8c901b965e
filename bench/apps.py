"""The benchmark's servers: a fast upstream, and a minimal proxy per HTTP client variant.

`python bench/apps.py upstream --port P` serves a fixed ~1 KB JSON body on GET /item;
`python bench/apps.py proxy VARIANT --upstream http://127.0.0.1:P --port Q` serves GET /item by
fetching the upstream's /item through VARIANT. Both run one uvicorn worker on uvloop + httptools.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.upstream.transport import build_client

BODY_SIZE = 1024
VARIANTS = ("httpx-default", "httpx+AiohttpTransport", "httpx+httpx-aiohttp", "aiohttp-direct")

Fetch = Callable[[], Awaitable[tuple[int, bytes]]]
Close = Callable[[], Awaitable[None]]


def _make_body(size: int) -> bytes:
    document: dict[str, Any] = {
        "type": "Feature",
        "id": "opportunity-0001",
        "geometry": {"type": "Point", "coordinates": [13.4050, 52.5200]},
        "properties": {
            "datetime": "2025-01-01T00:00:00Z/2025-01-02T00:00:00Z",
            "product_id": "optical-50cm",
            "constraints": {"cloud_cover_max": 20, "off_nadir_max": 30},
        },
        "links": [{"rel": "self", "href": "http://upstream.invalid/item", "type": "application/json"}],
        "padding": "",
    }
    # Padded to an exact size so every row moves the same bytes.
    document["padding"] = "x" * (size - len(orjson.dumps(document)))
    return orjson.dumps(document)


BODY = _make_body(BODY_SIZE)


def variant_unavailable(variant: str) -> str | None:
    """Why `variant` cannot run here, or None if it can."""
    if variant not in VARIANTS:
        return f"unknown variant {variant!r}"
    if variant == "httpx+httpx-aiohttp" and importlib.util.find_spec("httpx_aiohttp") is None:
        return "httpx_aiohttp is not installed (pip install httpx-aiohttp)"
    return None


def upstream_app() -> Starlette:
    """The fast upstream: GET /item answers the same ~1 KB JSON document."""

    async def item(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/item", item)])


def _httpx_fetcher(client: httpx.AsyncClient) -> tuple[Fetch, Close]:
    async def fetch() -> tuple[int, bytes]:
        response = await client.get("/item")
        return response.status_code, response.content

    return fetch, client.aclose


def _open_fetcher(variant: str, upstream: str) -> tuple[Fetch, Close]:
    if variant == "httpx-default":
        # httpx's own pool; max_keepalive left unbounded so no row pays for reconnecting at 32.
        return _httpx_fetcher(httpx.AsyncClient(base_url=upstream, limits=httpx.Limits(max_connections=100)))
    if variant == "httpx+AiohttpTransport":
        return _httpx_fetcher(build_client(upstream, timeout_s=10.0))
    if variant == "httpx+httpx-aiohttp":
        # Imported here because it is optional: the row is skipped when it is missing.
        import httpx_aiohttp

        transport = httpx_aiohttp.AiohttpTransport(limits=httpx.Limits(max_connections=100))
        return _httpx_fetcher(httpx.AsyncClient(base_url=upstream, transport=transport))
    if variant == "aiohttp-direct":
        session = aiohttp.ClientSession(
            base_url=upstream, connector=aiohttp.TCPConnector(limit=100), timeout=aiohttp.ClientTimeout(total=10.0)
        )

        async def fetch() -> tuple[int, bytes]:
            async with session.get("/item") as response:
                return response.status, await response.read()

        return fetch, session.close
    raise ValueError(f"unknown variant {variant!r}")


def proxy_app(variant: str, upstream: str) -> Starlette:
    """A one-route proxy: GET /item fetches the upstream's /item through `variant`."""
    fetcher: list[Fetch] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Clients bind to the running loop, so they are opened in the lifespan, not at import.
        fetch, close = _open_fetcher(variant, upstream)
        fetcher.append(fetch)
        try:
            yield
        finally:
            await close()

    async def item(request: Request) -> Response:
        status, body = await fetcher[0]()
        return Response(body, status_code=status, media_type="application/json")

    return Starlette(routes=[Route("/item", item)], lifespan=lifespan)


def serve(app: Starlette, port: int) -> None:
    """Serve `app` on 127.0.0.1:`port` with the settings every row shares."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: serve the upstream or one proxy variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    upstream = roles.add_parser("upstream", help="the fast upstream")
    upstream.add_argument("--port", type=int, required=True)
    proxy = roles.add_parser("proxy", help="a minimal proxy through one client variant")
    proxy.add_argument("variant", choices=VARIANTS)
    proxy.add_argument("--upstream", required=True, help="upstream origin, e.g. http://127.0.0.1:8001")
    proxy.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    if args.role == "upstream":
        serve(upstream_app(), args.port)
        return 0
    reason = variant_unavailable(args.variant)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    serve(proxy_app(args.variant, args.upstream), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
