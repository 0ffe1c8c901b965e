"""The product catalogue: merged over every provider, and per product."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import JSONObject, Page
from gateway import fanout, ids, merge
from gateway.errors import UpstreamNotFound
from gateway.links import LinkRewriter
from gateway.responses import JSONResponse
from gateway.routes.common import deadline, gateway_base, link, query_limit, resolve, rewriter, runtime, with_missing

CURSOR_KIND = "products"
_PAGING_RELS = frozenset({"next", "prev", "first", "last"})


def namespace_product(product: JSONObject, links: LinkRewriter) -> JSONObject:
    """A provider's product as the gateway shows it: namespaced id, gateway links."""
    return {
        **product,
        "id": ids.namespaced(links.provider_id, str(product["id"])),
        "links": links.links(product.get("links") or [], drop_rels=_PAGING_RELS),
    }


async def list_products(request: Request) -> Response:
    """`GET /products`: every provider's products, asked in parallel, under one cursor."""
    rt = runtime(request)
    limit = query_limit(request)
    provider_ids = [p.id for p in rt.providers]
    cursor = request.query_params.get("next")
    if cursor:
        positions = merge.load_state(rt.cursors.decode(CURSOR_KIND, cursor), provider_ids)
    else:
        positions = merge.start(provider_ids, limit)

    def page_of(pid: str) -> Any:
        pos = positions[pid]
        return lambda: rt.providers.get(pid).adapter.list_products(token=pos.token, limit=pos.size)

    gathered: fanout.Fanout[Page] = await fanout.gather({pid: page_of(pid) for pid in positions}, deadline(request))
    gathered.require_any("products")
    merged, after = merge.merge_page(positions, gathered.results, limit)

    base = gateway_base(request)
    rewriters = {pid: LinkRewriter(pid, rt.providers.get(pid).settings.base_url, base) for pid in gathered.results}
    links = [link(f"{base}/products", "self")]
    if after:
        token = rt.cursors.encode(CURSOR_KIND, merge.dump_state(after))
        links.append(link(f"{base}/products?next={token}&limit={limit}", "next"))
    body = {
        "type": "ProductCollection",
        "products": [namespace_product(item, rewriters[pid]) for pid, item in merged],
        "links": links,
    }
    return JSONResponse(with_missing(body, gathered.missing))


async def _product_call(request: Request, operation: str) -> tuple[Any, LinkRewriter, str]:
    gateway_id = request.path_params["product_id"]
    provider, upstream_id = resolve(request, gateway_id, "product")
    call = getattr(provider.adapter, operation)
    try:
        result = await fanout.call_one(provider.id, lambda: call(upstream_id), deadline(request))
    except UpstreamNotFound:
        raise UpstreamNotFound(provider.id, f"No product '{gateway_id}' exists.") from None
    return result, rewriter(request, provider), gateway_id


async def get_product(request: Request) -> Response:
    """`GET /products/{provider}:{product}`."""
    product, links, _ = await _product_call(request, "get_product")
    return JSONResponse(namespace_product(product, links))


async def product_conformance(request: Request) -> Response:
    """`GET /products/{id}/conformance`: the provider's computed list for the product."""
    classes, _, _ = await _product_call(request, "product_conformance")
    return JSONResponse({"conformsTo": classes})


async def product_queryables(request: Request) -> Response:
    """`GET /products/{id}/queryables`: the provider's JSON Schema, passed through."""
    schema, _, _ = await _product_call(request, "queryables")
    return JSONResponse(schema, media_type="application/schema+json")


async def product_order_parameters(request: Request) -> Response:
    """`GET /products/{id}/order-parameters`: the provider's JSON Schema, passed through."""
    schema, _, _ = await _product_call(request, "order_parameters")
    return JSONResponse(schema, media_type="application/schema+json")
