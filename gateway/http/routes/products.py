"""The product catalogue: merged over every provider (and the federated products), and per product."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import JSONObject, Page
from gateway.domain import ids, merge
from gateway.domain.federation import (
    federated_document,
    federated_queryables,
    gateway_conformance,
    product_can_search,
)
from gateway.domain.links import LinkRewriter
from gateway.domain.member_choice import federated_order_parameters, shown_schema
from gateway.http.responses import JSONResponse
from gateway.http.routes.common import (
    ask,
    client,
    deadline,
    gateway_base,
    link,
    next_cursor,
    pages_missing,
    positions,
    query_limit,
    rewriter,
    runtime,
    target_for,
    visible_providers,
    visible_target,
    with_missing,
)
from gateway.services import fanout
from gateway.services.catalogue import Member, Target
from gateway.services.fanout import Deadline

CURSOR_KIND = "products"
# The federated products page like one more provider; a ':' keeps this key apart from provider ids.
FEDERATED = ":federated"
_PAGING_RELS = frozenset({"next", "prev", "first", "last"})


def namespace_product(product: JSONObject, links: LinkRewriter) -> JSONObject:
    """A provider's product as the gateway shows it: namespaced id, gateway links, and both search
    modes if it can search at all (an order-only product gets neither, nor an `opportunities` link)."""
    product_id = ids.namespaced(links.provider_id, str(product["id"]))
    searchable = product_can_search(product)
    rewritten = links.links(product.get("links") or [], drop_rels=_PAGING_RELS)
    if searchable and not any(link.get("rel") == "opportunities" for link in rewritten):
        rewritten.append(link(f"{links.gateway_base}/products/{product_id}/opportunities", "opportunities"))
    shown = {
        **product,
        "id": product_id,
        "conformsTo": gateway_conformance(list(product.get("conformsTo") or []), searchable),
        "links": rewritten,
    }
    members = product.get("federation:members")
    if isinstance(members, list):
        # An upstream gateway's federated product: its members are products of that provider here.
        shown["federation:members"] = [ids.namespaced(links.provider_id, str(m)) for m in members]
    return shown


async def _federated_doc(request: Request, target: Target, limit: Deadline | None = None) -> JSONObject:
    """A federated product's document over the members of `target` (the client's visible ones)."""
    assert target.federated is not None
    rt = runtime(request)
    limit = limit or deadline(request)

    def fetch(member: Member) -> Callable[[], Awaitable[JSONObject]]:
        return lambda: rt.catalogue.product(member, limit)

    gathered = await fanout.gather({m.gateway_id: fetch(m) for m in target.members}, limit)
    member_ids = [m.gateway_id for m in target.members]
    docs = list(gathered.results.values())
    return federated_document(target.federated, member_ids, docs, gateway_base(request), complete=not gathered.failures)


def _federated_products(request: Request) -> list[Target]:
    """The federated products the client may use and has at least one member of, narrowed to those."""
    who, catalogue = client(request), runtime(request).catalogue
    targets = [visible_target(who, catalogue.target(p.id)) for p in catalogue.federated if who.may_use_product(p.id)]
    return [t for t in targets if t is not None]


async def _federated_page(request: Request, token: str | None, size: int) -> Page:
    products = _federated_products(request)
    start = int(token) if token and token.isdigit() else 0
    chosen = products[start : start + size]
    # Nested in the list's own fan-out: finish a little earlier, so what is known gets listed.
    inner = deadline(request).inner(margin_s=0.05)
    docs = [await _federated_doc(request, target, inner) for target in chosen]
    end = start + len(chosen)
    return Page(items=docs, next_token=str(end) if end < len(products) else None)


async def list_products(request: Request) -> Response:
    """`GET /products`: every provider's products, asked in parallel, under one cursor."""
    rt = runtime(request)
    limit = query_limit(request)
    sources = ([FEDERATED] if _federated_products(request) else []) + [p.id for p in visible_providers(request)]
    at = positions(request, CURSOR_KIND, request.query_params.get("next"), sources, limit)

    def page_of(source: str) -> Callable[[], Awaitable[Page]]:
        pos = at[source]
        if source == FEDERATED:
            return lambda: _federated_page(request, pos.token, pos.size)
        return lambda: rt.providers.get(source).adapter.list_products(token=pos.token, limit=pos.size)

    gathered = await fanout.gather({source: page_of(source) for source in at}, deadline(request))
    gathered.require_any("products")
    merged, after = merge.merge_page(at, gathered.results, limit)

    base = gateway_base(request)
    rewriters = {pid: rt.providers.get(pid).rewriter(base) for pid in gathered.results if pid != FEDERATED}
    links = [link(f"{base}/products", "self")]
    if token := next_cursor(request, CURSOR_KIND, after):
        links.append(link(f"{base}/products?next={token}&limit={limit}", "next"))
    products = [item if source == FEDERATED else namespace_product(item, rewriters[source]) for source, item in merged]
    body = {"type": "ProductCollection", "products": products, "links": links}
    return JSONResponse(with_missing(body, [pid for pid in pages_missing(gathered) if pid != FEDERATED]))


async def _member_call(request: Request, target: Target, operation: str) -> Any:
    """One provider product's answer to `operation`; 404 in the gateway's words if it has none."""
    member = target.members[0]
    call = getattr(member.provider.adapter, operation)
    return await ask(
        request, member.provider, lambda: call(member.product_id), f"No product '{target.product_id}' exists."
    )


async def _members_call(request: Request, target: Target, operation: str) -> fanout.Fanout[Any]:
    """Every member's answer to `operation`, keyed by member id (`results`); failures in `failures`."""
    limit = deadline(request)

    def fetch(member: Member) -> Callable[[], Awaitable[Any]]:
        call = getattr(member.provider.adapter, operation)
        return lambda: call(member.product_id)

    gathered = await fanout.gather({m.gateway_id: fetch(m) for m in target.members}, limit)
    gathered.require_any(f"the members of '{target.product_id}'")
    return gathered


async def get_product(request: Request) -> Response:
    """`GET /products/{id}`: one provider's product or a federated product."""
    target = target_for(request, request.path_params["productId"])
    if target.federated is not None:
        return JSONResponse(await _federated_doc(request, target))
    provider = target.members[0].provider
    links = rewriter(request, provider)
    return JSONResponse(namespace_product(await _member_call(request, target, "get_product"), links))


async def product_conformance(request: Request) -> Response:
    """`GET /products/{id}/conformance`: the product's classes as the gateway serves them."""
    target = target_for(request, request.path_params["productId"])
    if target.federated is not None:
        return JSONResponse({"conformsTo": (await _federated_doc(request, target))["conformsTo"]})
    return JSONResponse({"conformsTo": gateway_conformance(await _member_call(request, target, "product_conformance"))})


async def product_queryables(request: Request) -> Response:
    """`GET /products/{id}/queryables`: the provider's JSON Schema, or what all members share."""
    target = target_for(request, request.path_params["productId"])
    if target.federated is not None:
        schemas = (await _members_call(request, target, "queryables")).results
        schema = federated_queryables(target.federated, [s.document for s in schemas.values()])
    else:
        schema = (await _member_call(request, target, "queryables")).document
    return JSONResponse(schema, media_type="application/schema+json")


async def product_order_parameters(request: Request) -> Response:
    """`GET /products/{id}/order-parameters`: the provider's JSON Schema, or the federated one that
    names the member in `member` (members that did not answer are listed in `federation:missing`)."""
    target = target_for(request, request.path_params["productId"])
    if target.federated is not None:
        gathered = await _members_call(request, target, "order_parameters")
        title = f"Order parameters of {target.federated.display_title}"
        schemas = {member_id: checked.document for member_id, checked in gathered.results.items()}
        schema = with_missing(federated_order_parameters(title, schemas), gathered.missing)
    else:
        provider = target.members[0].provider
        schema = shown_schema(provider.id, (await _member_call(request, target, "order_parameters")).document)
    return JSONResponse(schema, media_type="application/schema+json")
