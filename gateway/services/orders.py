"""Orders as clients see them: placed through the journal with idempotency keys; listed and read
across providers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.base import DeliberateError, JSONObject, NotFound, OrderNotCancellable, Page, ProviderError
from gateway.domain import ids, merge
from gateway.domain.cancels import CancelState
from gateway.domain.errors import CancelNotSupported, InvalidCursor
from gateway.domain.federation import Target
from gateway.domain.orders import namespace_order, namespace_status
from gateway.services import fanout
from gateway.services.context import RequestContext
from gateway.services.listing import link, pages_missing, with_missing
from gateway.services.search_records import with_base
from gateway.upstream.providers import Provider

CURSOR_KIND = "orders"
GEOJSON = "application/geo+json"


async def create_order(
    ctx: RequestContext, target: Target, order: dict[str, Any], idempotency_key: str | None
) -> JSONObject:
    """Place a validated order at most once per idempotency key: the order as the client sees it."""
    rt = ctx.runtime
    attempt = await rt.orders.place(
        client=ctx.client.id, target=target, order=order, idempotency_key=idempotency_key, deadline=ctx.deadline
    )
    body: JSONObject = with_base(orjson.dumps(attempt.order), ctx.gateway_base)
    return body


async def list_orders(ctx: RequestContext, limit: int, cursor: str | None) -> JSONObject:
    """Every provider's orders, newest first, under one cursor."""
    rt = ctx.runtime
    provider_ids = [p.id for p in ctx.visible_providers()]
    at = ctx.positions(CURSOR_KIND, cursor, provider_ids, limit)
    base = ctx.gateway_base

    def page_of(pid: str) -> Callable[[], Awaitable[Page]]:
        provider, pos = rt.providers.get(pid), at[pid]

        async def call() -> Page:
            page = await rt.order_lists.page(provider, pos.token, pos.size)
            links = provider.rewriter(base)
            orders = [namespace_order(o, links) for o in page.items]
            if rt.gatekeeper.enabled:
                # Only the orders this client placed: the journal says whose each one is.
                orders = [o for o in orders if await rt.orders.journal.owner(o["id"]) == ctx.client.id]
            return Page(items=orders, next_token=page.next_token, missing=page.missing)

        return call

    gathered = await fanout.gather({pid: page_of(pid) for pid in at}, ctx.deadline)
    gathered.require_any("orders")
    merged, after = merge.merge_page(at, gathered.results, limit, key=merge.by_newest)
    links = [link(f"{base}/orders", "self", GEOJSON)]
    if token := ctx.next_cursor(CURSOR_KIND, after):
        links.append(link(f"{base}/orders?next={token}&limit={limit}", "next", GEOJSON))
    body = {"type": "FeatureCollection", "features": [order for _, order in merged], "links": links}
    return with_missing(body, pages_missing(gathered))


@dataclass(frozen=True, slots=True)
class OrderRef:
    """An order the client may see: its gateway id, its provider, and its id there."""

    order_id: str
    provider: Provider
    upstream_id: str


async def locate(ctx: RequestContext, order_id: str) -> OrderRef:
    """The order `{provider}:{order}` if the client may see it; NotFound otherwise."""
    rt = ctx.runtime
    parts = ids.split(order_id)
    if parts is None:
        raise NotFound(f"No order '{order_id}' exists: ids look like 'provider:order'.")
    provider = rt.providers.get(parts[0])
    # Another client's order is as absent as one that never existed.
    if not ctx.client.may_use_provider(provider.id) or not ctx.sees(await rt.orders.journal.owner(order_id)):
        raise NotFound(f"No order '{order_id}' exists.")
    return OrderRef(order_id, provider, parts[1])


async def order(ctx: RequestContext, ref: OrderRef) -> JSONObject:
    """One order as the gateway shows it."""
    adapter, upstream_id = ref.provider.adapter, ref.upstream_id
    absent = f"No order '{ref.order_id}' exists."
    found = await ctx.ask(ref.provider, lambda: adapter.get_order(upstream_id), absent)
    return namespace_order(found, ctx.rewriter(ref.provider))


async def cancel(ctx: RequestContext, ref: OrderRef) -> JSONObject:
    """Cancel an order the client may see: the order once the vendor accepted. Journaled before the
    call and never retried (the adapter's `cancel_order` is a write); an order already cancelled is
    returned as it stands."""
    adapter, upstream_id = ref.provider.adapter, ref.upstream_id
    if not adapter.cancels_orders:
        raise CancelNotSupported(f"Provider '{ref.provider.id}' cannot cancel orders.")
    cancels = ctx.runtime.orders.cancels
    attempt = await cancels.begin(ref.order_id, ctx.client.id)
    absent = f"No order '{ref.order_id}' exists."
    try:
        found = await ctx.ask(ref.provider, lambda: adapter.cancel_order(upstream_id), absent)
    except OrderNotCancellable as refused:
        # Vendors refuse to cancel twice; for the client the order is cancelled all the same.
        if refused.order is None or not (refused.cancelling or _status_code(refused.order) == "cancelled"):
            await cancels.end(attempt.ended(CancelState.REFUSED, time.time(), error_code=refused.code,
                                            vendor_state=refused.vendor_state))  # fmt: skip
            raise
        found = refused.order
    except DeliberateError as failed:
        lost = isinstance(failed, ProviderError) and failed.maybe_received
        state = CancelState.UNKNOWN if lost else CancelState.REFUSED
        await cancels.end(attempt.ended(state, time.time(), error_code=failed.code))
        raise
    await cancels.end(attempt.ended(CancelState.ACCEPTED, time.time()))
    tracking = ctx.runtime.orders.journal.tracking
    if tracking is not None:
        # Its subscribers hear of the cancel at the next tracker pass, not at the order's next poll.
        await tracking.poll_soon(ref.order_id)
    return namespace_order(found, ctx.rewriter(ref.provider))


def _status_code(order: JSONObject) -> object:
    """A STAPI order's current status code (None when the order has none)."""
    properties = order.get("properties")
    status = properties.get("status") if isinstance(properties, dict) else None
    return status.get("status_code") if isinstance(status, dict) else None


async def order_statuses(ctx: RequestContext, ref: OrderRef, limit: int, cursor: str | None) -> JSONObject:
    """One page of an order's status history, under the gateway's cursor."""
    rt = ctx.runtime
    kind = f"order-statuses:{ref.order_id}"
    token: Any = None
    if cursor:
        token = rt.cursors.decode(kind, cursor)
        if not isinstance(token, str):
            raise InvalidCursor("The pagination cursor is malformed.")
    adapter, upstream_id = ref.provider.adapter, ref.upstream_id
    page = await ctx.ask(
        ref.provider,
        lambda: adapter.order_statuses(upstream_id, token=token, limit=limit),
        f"No order '{ref.order_id}' exists.",
    )
    href = f"{ctx.gateway_base}/orders/{ref.order_id}/statuses"
    links = [link(href, "self")]
    if page.next_token is not None:
        links.append(link(f"{href}?next={rt.cursors.encode(kind, page.next_token)}&limit={limit}", "next"))
    rewriter = ctx.rewriter(ref.provider)
    return {"statuses": [namespace_status(entry, rewriter) for entry in page.items], "links": links}
