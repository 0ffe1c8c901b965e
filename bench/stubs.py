"""Many small STAPI providers in one process: one Starlette app served on N loopback ports.

    python bench/stubs.py --ports 9101,9102,9103 --latency-s 0.1            # fan-out providers
    python bench/stubs.py --ports 9201,9202 --sizes 200,2000,10000          # bulk search providers

Each port is one provider. Every answer waits `--latency-s` first (asyncio.sleep, so a slow
provider costs the process nothing while it waits), then sends bytes rendered once:

- `GET /products`: a ProductCollection of every product, `GET /products/{id}` one product, and
  `GET /products/{id}/conformance` (every product conforms to `.../opportunities`, sync search).
- `GET /orders/{id}/statuses`: the same open history (received, then accepted) for any order id,
  for the status tracker's bench (bench/tracking.py).
- `POST /products/{id}/opportunities`: a FeatureCollection of N opportunities in one page and no
  `next` link, N taken from the product id `bulk-N` (10 for the other products). The request
  body is read but not validated: this is a stub for measuring the gateway, not a provider.

Without `--sizes` the products are `product-1` ... `product-K` (`--products K`, default 2); with
it, `bulk-N` for each N. One uvicorn server listens on every port (uvloop, httptools, access log
off), so 25 providers need one process, not 25.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import uvicorn
from stapi_pydantic import OpportunityCollection, Product, ProductsCollection, Provider, ProviderRole
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JSON, GEOJSON = "application/json", "application/geo+json"
_V = "https://stapi.example.com/v0.1.0"
CONFORMANCE = orjson.dumps(
    {
        "conformsTo": [
            f"{_V}/opportunities",
            "https://geojson.org/schema/Point.json",
            "https://geojson.org/schema/Polygon.json",
        ]
    }
)
SEARCH_START = datetime(2026, 12, 1, tzinfo=UTC)
SEARCH_SPAN_S = 30 * 86_400
DEFAULT_SEARCH_SIZE = 10


def bulk_id(size: int) -> str:
    """The product whose search answers `size` opportunities."""
    return f"bulk-{size}"


def _search_size(product_id: str) -> int:
    prefix, _, count = product_id.partition("-")
    return int(count) if prefix == "bulk" and count.isdigit() else DEFAULT_SEARCH_SIZE


def _product(product_id: str, base: str) -> dict[str, Any]:
    provider = Provider(
        name="Bench Stub", description="A benchmark stub", roles=[ProviderRole.producer], url="https://stub.example.com"
    )
    document = Product(
        id=product_id,
        title=f"Stub product {product_id}",
        description="A product of a benchmark stub provider.",
        keywords=["bench"],
        license="proprietary",
        providers=[provider],
        conformsTo=orjson.loads(CONFORMANCE)["conformsTo"],
    ).model_dump(mode="json", by_alias=True, exclude={"links"})
    href = f"{base}/products/{product_id}"
    links = [{"href": href, "rel": "self", "type": JSON}]
    links += [{"href": f"{href}/{rel}", "rel": rel, "type": JSON} for rel in ("conformance", "opportunities")]
    return {**document, "links": links}


def opportunities(product_id: str, count: int, seed: int) -> dict[str, Any]:
    """`count` valid opportunities, in start-time order, different for every seed (provider)."""
    rng = random.Random(seed)
    starts = sorted(rng.uniform(0, SEARCH_SPAN_S) for _ in range(count))
    features = []
    for k, offset in enumerate(starts):
        t0 = SEARCH_START + timedelta(seconds=int(offset))
        t1 = t0 + timedelta(seconds=60)
        properties = {
            "datetime": f"{t0.isoformat().replace('+00:00', 'Z')}/{t1.isoformat().replace('+00:00', 'Z')}",
            "product_id": product_id,
            "platform": f"stub-{rng.randint(1, 4)}",
            "off_nadir": round(rng.uniform(0, 30), 1),
            "cloud_cover": round(rng.uniform(0, 100), 1),
        }
        geometry = {"type": "Point", "coordinates": [round(rng.uniform(8, 10), 4), round(rng.uniform(47, 49), 4)]}
        feature_id = f"{product_id}-{seed}-{k:05d}"
        features.append(
            {"type": "Feature", "id": feature_id, "geometry": geometry, "properties": properties, "links": []}
        )
    return {"type": "FeatureCollection", "features": features, "links": []}


class Stub:
    """The rendered documents of every port's provider."""

    def __init__(self, ports: list[int], product_ids: list[str], latency_s: float) -> None:
        self.latency_s = latency_s
        self.product_ids = product_ids
        # Links name the provider's own origin, which is what the gateway rewrites.
        self.collections: dict[int, bytes] = {}
        self.products: dict[tuple[int, str], bytes] = {}
        self.searches: dict[tuple[int, str], bytes] = {}
        for index, port in enumerate(ports):
            base = f"http://127.0.0.1:{port}"
            docs = [_product(pid, base) for pid in product_ids]
            own = [{"href": f"{base}/products", "rel": "self", "type": JSON}]
            self.collections[port] = orjson.dumps({"type": "ProductCollection", "products": docs, "links": own})
            for pid, doc in zip(product_ids, docs, strict=True):
                self.products[port, pid] = orjson.dumps(doc)
                self.searches[port, pid] = orjson.dumps(opportunities(pid, _search_size(pid), seed=index + 1))
        stamp = datetime(2030, 1, 1, tzinfo=UTC)
        history = [
            {"timestamp": (stamp + timedelta(minutes=i)).isoformat(), "status_code": code, "links": []}
            for i, code in enumerate(("received", "accepted"))
        ]
        self.statuses = orjson.dumps({"statuses": history, "links": []})
        self._self_check(ports[0])

    def _self_check(self, port: int) -> None:
        # The gateway validates what it receives; a stub that it rejects would measure error paths.
        ProductsCollection.model_validate_json(self.collections[port])
        smallest = min(self.product_ids, key=_search_size)
        OpportunityCollection.model_validate_json(self.searches[port, smallest])

    async def _wait(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    @staticmethod
    def _port(request: Request) -> int:
        server = request.scope.get("server") or ("", 0)
        return int(server[1])

    def _key(self, request: Request) -> tuple[int, str]:
        key = (self._port(request), request.path_params["product_id"])
        if key not in self.products:
            raise LookupError(key)
        return key

    async def list_products(self, request: Request) -> Response:
        """All products in one page."""
        await self._wait()
        return Response(self.collections[self._port(request)], media_type=JSON)

    async def get_product(self, request: Request) -> Response:
        """One product."""
        await self._wait()
        try:
            return Response(self.products[self._key(request)], media_type=JSON)
        except LookupError:
            return Response(b'{"detail":"Not Found"}', 404, media_type=JSON)

    async def conformance(self, request: Request) -> Response:
        """Every product searches synchronously."""
        await self._wait()
        return Response(CONFORMANCE, media_type=JSON)

    async def order_statuses(self, request: Request) -> Response:
        """Every order's history: received, then accepted (never terminal, so it stays tracked)."""
        await self._wait()
        return Response(self.statuses, media_type=JSON)

    async def search(self, request: Request) -> Response:
        """The product's whole opportunity collection in one page, whatever the body asks."""
        await request.body()
        await self._wait()
        try:
            return Response(self.searches[self._key(request)], media_type=GEOJSON)
        except LookupError:
            return Response(b'{"detail":"Not Found"}', 404, media_type=JSON)


def stub_app(stub: Stub) -> Starlette:
    """The routes of every provider; which provider answers depends on the port the request came in on."""
    return Starlette(
        routes=[
            Route("/products", stub.list_products, methods=["GET"]),
            Route("/products/{product_id}", stub.get_product, methods=["GET"]),
            Route("/products/{product_id}/conformance", stub.conformance, methods=["GET"]),
            Route("/products/{product_id}/opportunities", stub.search, methods=["POST"]),
            Route("/orders/{order_id}/statuses", stub.order_statuses, methods=["GET"]),
        ]
    )


def _ports(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"ports must be comma-separated integers, got {text!r}") from None
    if not ports:
        raise argparse.ArgumentTypeError("give at least one port")
    return ports


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: serve every port until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=_ports, required=True, help="comma-separated; one provider per port")
    parser.add_argument("--latency-s", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--sizes", type=_ports, help="bulk products: opportunities per search, e.g. 200,2000")
    parser.add_argument("--products", type=int, default=2, help="plain products when --sizes is not given")
    args = parser.parse_args(argv)
    product_ids = [bulk_id(n) for n in args.sizes] if args.sizes else [f"product-{i + 1}" for i in range(args.products)]
    stub = Stub(args.ports, product_ids, args.latency_s)
    sockets = []
    for port in args.ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sockets.append(sock)
    config = uvicorn.Config(
        stub_app(stub),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
