"""The product catalogue as clients see it: merged over every provider (and the federated products),
and per product."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from adapters.base import JSONObject, Page, ProviderAdapter
from adapters.schemas import CheckedSchema
from gateway.domain import ids, merge
from gateway.domain.federation import (
    Member,
    Target,
    federated_document,
    federated_queryables,
    gateway_conformance,
    product_can_search,
)
from gateway.domain.links import LinkRewriter
from gateway.domain.member_choice import federated_order_parameters, shown_schema
from gateway.services import fanout
from gateway.services.context import RequestContext, visible_target
from gateway.services.fanout import Deadline
from gateway.services.listing import link, pages_missing, with_missing

T = TypeVar("T")
# One provider product's answer to one adapter operation: `lambda adapter, product_id: ...`.
MemberCall = Callable[[ProviderAdapter, str], Awaitable[T]]

CURSOR_KIND = "products"
# The federated products page like one more provider; a ':' keeps this key apart from provider ids.
FEDERATED = ":federated"
_PAGING_RELS = frozenset({"next", "prev", "first", "last"})


def namespace_product(product: JSONObject, links: LinkRewriter, *, cancels: bool = False) -> JSONObject:
    """A provider's product as the gateway shows it: namespaced id, gateway links, and both search
    modes if it can search at all (an order-only product gets neither, nor an `opportunities` link);
    the cancel class when the provider's adapter `cancels` orders."""
    product_id = ids.namespaced(links.provider_id, str(product["id"]))
    searchable = product_can_search(product)
    rewritten = links.links(product.get("links") or [], drop_rels=_PAGING_RELS)
    if searchable and not any(link.get("rel") == "opportunities" for link in rewritten):
        rewritten.append(link(f"{links.gateway_base}/products/{product_id}/opportunities", "opportunities"))
    shown = {
        **product,
        "id": product_id,
        "conformsTo": gateway_conformance(list(product.get("conformsTo") or []), searchable, cancels=cancels),
        "links": rewritten,
    }
    members = product.get("federation:members")
    if isinstance(members, list):
        # An upstream gateway's federated product: its members are products of that provider here.
        shown["federation:members"] = [ids.namespaced(links.provider_id, str(m)) for m in members]
    return shown


async def _federated_doc(ctx: RequestContext, target: Target, limit: Deadline | None = None) -> JSONObject:
    """A federated product's document over the members of `target` (the client's visible ones)."""
    assert target.federated is not None
    catalogue = ctx.runtime.catalogue
    limit = limit or ctx.deadline

    def fetch(member: Member) -> Callable[[], Awaitable[JSONObject]]:
        return lambda: catalogue.product(member, limit)

    gathered = await fanout.gather({m.gateway_id: fetch(m) for m in target.members}, limit)
    member_ids = [m.gateway_id for m in target.members]
    docs = list(gathered.results.values())
    cancels = all(m.provider.adapter.cancels_orders for m in target.members)
    complete = not gathered.failures
    return federated_document(target.federated, member_ids, docs, ctx.gateway_base, complete=complete, cancels=cancels)


def _federated_products(ctx: RequestContext) -> list[Target]:
    """The federated products the client may use and has at least one member of, narrowed to those."""
    who, catalogue = ctx.client, ctx.runtime.catalogue
    targets = [visible_target(who, catalogue.target(p.id)) for p in catalogue.federated if who.may_use_product(p.id)]
    return [t for t in targets if t is not None]


async def _federated_page(ctx: RequestContext, token: str | None, size: int) -> Page:
    products = _federated_products(ctx)
    start = int(token) if token and token.isdigit() else 0
    chosen = products[start : start + size]
    # Nested in the list's own fan-out: finish a little earlier, so what is known gets listed.
    inner = ctx.deadline.inner(margin_s=0.05)
    docs = [await _federated_doc(ctx, target, inner) for target in chosen]
    end = start + len(chosen)
    return Page(items=docs, next_token=str(end) if end < len(products) else None)


async def list_products(ctx: RequestContext, limit: int, cursor: str | None) -> JSONObject:
    """Every provider's products, asked in parallel, under one cursor."""
    providers = ctx.runtime.providers
    sources = ([FEDERATED] if _federated_products(ctx) else []) + [p.id for p in ctx.visible_providers()]
    at = ctx.positions(CURSOR_KIND, cursor, sources, limit)

    def page_of(source: str) -> Callable[[], Awaitable[Page]]:
        pos = at[source]
        if source == FEDERATED:
            return lambda: _federated_page(ctx, pos.token, pos.size)
        return lambda: providers.get(source).adapter.list_products(token=pos.token, limit=pos.size)

    gathered = await fanout.gather({source: page_of(source) for source in at}, ctx.deadline)
    gathered.require_any("products")
    merged, after = merge.merge_page(at, gathered.results, limit)

    base = ctx.gateway_base
    rewriters = {pid: providers.get(pid).rewriter(base) for pid in gathered.results if pid != FEDERATED}
    links = [link(f"{base}/products", "self")]
    if token := ctx.next_cursor(CURSOR_KIND, after):
        links.append(link(f"{base}/products?next={token}&limit={limit}", "next"))
    products = [
        item if source == FEDERATED else namespace_product(item, rewriters[source], cancels=_cancels(ctx, source))
        for source, item in merged
    ]
    body = {"type": "ProductCollection", "products": products, "links": links}
    return with_missing(body, [pid for pid in pages_missing(gathered) if pid != FEDERATED])


def _cancels(ctx: RequestContext, provider_id: str) -> bool:
    """Whether a provider's orders can be cancelled through the gateway."""
    return ctx.runtime.providers.get(provider_id).adapter.cancels_orders


async def _member_call(ctx: RequestContext, target: Target, call: MemberCall[T]) -> T:
    """One provider product's answer to `call`; 404 in the gateway's words if it has none."""
    member = target.members[0]
    adapter = member.provider.adapter
    absent = f"No product '{target.product_id}' exists."
    return await ctx.ask(member.provider, lambda: call(adapter, member.product_id), absent)


async def _members_call(ctx: RequestContext, target: Target, call: MemberCall[T]) -> fanout.Fanout[T]:
    """Every member's answer to `call`, keyed by member id (`results`); failures in `failures`."""

    def fetch(member: Member) -> Callable[[], Awaitable[T]]:
        return lambda: call(member.provider.adapter, member.product_id)

    gathered = await fanout.gather({m.gateway_id: fetch(m) for m in target.members}, ctx.deadline)
    gathered.require_any(f"the members of '{target.product_id}'")
    return gathered


def _queryables(adapter: ProviderAdapter, product_id: str) -> Awaitable[CheckedSchema]:
    return adapter.queryables(product_id)


def _order_parameters(adapter: ProviderAdapter, product_id: str) -> Awaitable[CheckedSchema]:
    return adapter.order_parameters(product_id)


async def product(ctx: RequestContext, product_id: str) -> JSONObject:
    """One provider's product or a federated product."""
    target = ctx.target(product_id)
    if target.federated is not None:
        return await _federated_doc(ctx, target)
    provider = target.members[0].provider
    product = await _member_call(ctx, target, lambda a, pid: a.get_product(pid))
    return namespace_product(product, ctx.rewriter(provider), cancels=provider.adapter.cancels_orders)


async def product_conformance(ctx: RequestContext, product_id: str) -> JSONObject:
    """The product's classes as the gateway serves them."""
    target = ctx.target(product_id)
    if target.federated is not None:
        return {"conformsTo": (await _federated_doc(ctx, target))["conformsTo"]}
    declared = await _member_call(ctx, target, lambda a, pid: a.product_conformance(pid))
    return {"conformsTo": gateway_conformance(declared, cancels=target.members[0].provider.adapter.cancels_orders)}


async def queryables(ctx: RequestContext, product_id: str) -> JSONObject:
    """The provider's JSON Schema, or what all members share."""
    target = ctx.target(product_id)
    if target.federated is not None:
        schemas = (await _members_call(ctx, target, _queryables)).results
        return federated_queryables(target.federated, [s.document for s in schemas.values()])
    return (await _member_call(ctx, target, _queryables)).document


async def order_parameters(ctx: RequestContext, product_id: str) -> JSONObject:
    """The provider's JSON Schema, or the federated one that names the member in `member` (members
    that did not answer are listed in `federation:missing`)."""
    target = ctx.target(product_id)
    if target.federated is not None:
        gathered = await _members_call(ctx, target, _order_parameters)
        title = f"Order parameters of {target.federated.display_title}"
        schemas = {member_id: checked.document for member_id, checked in gathered.results.items()}
        return with_missing(federated_order_parameters(title, schemas), gathered.missing)
    provider = target.members[0].provider
    return shown_schema(provider.id, (await _member_call(ctx, target, _order_parameters)).document)
