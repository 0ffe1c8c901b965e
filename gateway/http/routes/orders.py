"""Orders: placed through the journal with idempotency keys; listed and read across providers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from adapters.base import Page
from gateway.domain import ids, merge
from gateway.domain.errors import InvalidCursor, InvalidRequest, NotFound
from gateway.domain.orders import namespace_order, newest_first, validate_order
from gateway.http.responses import GEOJSON, JSONResponse
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
    sees,
    target_for,
    visible_providers,
    with_missing,
)
from gateway.services import fanout
from gateway.services.search_records import with_base
from gateway.upstream.providers import Provider

CURSOR_KIND = "orders"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 visible ASCII characters.")
    return key


async def create_order(request: Request) -> Response:
    """`POST /products/{id}/orders`: 201, Location and the order, at most once per Idempotency-Key."""
    rt = runtime(request)
    target = target_for(request, request.path_params["productId"])
    order = validate_order(await request.body(), rt.settings.gateway.input_limits)
    attempt = await rt.orders.place(
        client=client(request).id,
        target=target,
        order=order,
        idempotency_key=_idempotency_key(request),
        deadline=deadline(request),
    )
    base = gateway_base(request)
    body = with_base(orjson.dumps(attempt.order), base)
    return JSONResponse(body, status_code=201, media_type=GEOJSON, headers={"Location": f"{base}/orders/{body['id']}"})


async def list_orders(request: Request) -> Response:
    """`GET /orders`: every provider's orders, newest first, under one cursor."""
    rt = runtime(request)
    limit = query_limit(request)
    provider_ids = [p.id for p in visible_providers(request)]
    at = positions(request, CURSOR_KIND, request.query_params.get("next"), provider_ids, limit)
    base = gateway_base(request)

    def page_of(pid: str) -> Callable[[], Awaitable[Page]]:
        provider, pos = rt.providers.get(pid), at[pid]

        async def call() -> Page:
            page = await rt.order_lists.page(provider, pos.token, pos.size)
            links = provider.rewriter(base)
            orders = [namespace_order(o, links) for o in page.items]
            if rt.gatekeeper.enabled:
                # Only the orders this client placed: the journal says whose each one is.
                orders = [o for o in orders if await rt.orders.journal.owner(o["id"]) == client(request).id]
            return Page(items=orders, next_token=page.next_token, missing=page.missing)

        return call

    gathered = await fanout.gather({pid: page_of(pid) for pid in at}, deadline(request))
    gathered.require_any("orders")
    merged, after = merge.merge_page(at, gathered.results, limit, key=lambda _, order: newest_first(order))
    links = [link(f"{base}/orders", "self", GEOJSON)]
    if token := next_cursor(request, CURSOR_KIND, after):
        links.append(link(f"{base}/orders?next={token}&limit={limit}", "next", GEOJSON))
    body = {"type": "FeatureCollection", "features": [order for _, order in merged], "links": links}
    return JSONResponse(with_missing(body, pages_missing(gathered)), media_type=GEOJSON)


async def _order_of(request: Request) -> tuple[Provider, str, str]:
    rt = runtime(request)
    order_id = request.path_params["orderId"]
    parts = ids.split(order_id)
    if parts is None:
        raise NotFound(f"No order '{order_id}' exists: ids look like 'provider:order'.")
    provider = rt.providers.get(parts[0])
    # Another client's order is as absent as one that never existed.
    if not client(request).may_use_provider(provider.id) or not sees(request, await rt.orders.journal.owner(order_id)):
        raise NotFound(f"No order '{order_id}' exists.")
    return provider, parts[1], order_id


async def get_order(request: Request) -> Response:
    """`GET /orders/{provider}:{order}`."""
    provider, upstream_id, order_id = await _order_of(request)
    adapter = provider.adapter
    order = await ask(request, provider, lambda: adapter.get_order(upstream_id), f"No order '{order_id}' exists.")
    return JSONResponse(namespace_order(order, rewriter(request, provider)), media_type=GEOJSON)


async def order_statuses(request: Request) -> Response:
    """`GET /orders/{provider}:{order}/statuses`, paged with the gateway's cursor."""
    rt = runtime(request)
    provider, upstream_id, order_id = await _order_of(request)
    limit = query_limit(request)
    kind = f"order-statuses:{order_id}"
    token: Any = None
    cursor = request.query_params.get("next")
    if cursor:
        token = rt.cursors.decode(kind, cursor)
        if not isinstance(token, str):
            raise InvalidCursor("The pagination cursor is malformed.")
    adapter = provider.adapter
    page = await ask(
        request,
        provider,
        lambda: adapter.order_statuses(upstream_id, token=token, limit=limit),
        f"No order '{order_id}' exists.",
    )
    href = f"{gateway_base(request)}/orders/{order_id}/statuses"
    links = [link(href, "self")]
    if page.next_token is not None:
        links.append(link(f"{href}?next={rt.cursors.encode(kind, page.next_token)}&limit={limit}", "next"))
    return JSONResponse({"statuses": page.items, "links": links})
