"""Webhook subscriptions: each client creates, lists, reads, deletes and tests its own, and reads its deliveries."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import RequestValidationFailed
from gateway.domain.errors import InvalidCursor
from gateway.domain.inputs import field_error, limits_of, parse_object
from gateway.http.responses import JSONResponse
from gateway.http.routes.common import query_limit
from gateway.notify.model import Subscription
from gateway.notify.outbox import deliveries_of
from gateway.notify.subscriptions import Subscriptions
from gateway.services.context import RequestContext
from gateway.services.listing import link

FIELDS = frozenset({"url", "events"})


def _book(ctx: RequestContext) -> Subscriptions:
    return ctx.runtime.notifier.subscriptions


def _shown(sub: Subscription, ctx: RequestContext) -> dict[str, object]:
    href = f"{ctx.gateway_base}/subscriptions/{sub.id}"
    links = [link(href, "self"), link(f"{href}/deliveries", "deliveries"), link(f"{href}/test", "test", method="POST")]
    return {**sub.public(), "links": links}


async def create_subscription(request: Request, ctx: RequestContext) -> Response:
    """`POST /subscriptions`: 201, Location, and the subscription with its signing secret (shown only here)."""
    raw = parse_object(await request.body(), limits_of(ctx.runtime.settings.gateway))
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        errors = [field_error(["body", name], "unknown field", "extra_forbidden") for name in unknown[:10]]
        raise RequestValidationFailed("The subscription is invalid.", errors)
    sub = await _book(ctx).create(ctx.client.id, raw.get("url"), raw.get("events"))
    body = {**_shown(sub, ctx), "secret": sub.secret}
    headers = {"Location": f"{ctx.gateway_base}/subscriptions/{sub.id}", "Cache-Control": "no-store"}
    return JSONResponse(body, status_code=201, headers=headers)


async def list_subscriptions(request: Request, ctx: RequestContext) -> Response:
    """`GET /subscriptions`: the client's subscriptions, oldest first (never their secrets)."""
    subs = await _book(ctx).of_client(ctx.client.id)
    links = [link(f"{ctx.gateway_base}/subscriptions", "self")]
    body = {"subscriptions": [_shown(s, ctx) for s in subs], "links": links}
    return JSONResponse(body)


async def get_subscription(request: Request, ctx: RequestContext) -> Response:
    """`GET /subscriptions/{id}`: one of the client's subscriptions (another client's is a 404)."""
    sub = await _book(ctx).get(ctx.client.id, request.path_params["subscriptionId"])
    return JSONResponse(_shown(sub, ctx))


async def delete_subscription(request: Request, ctx: RequestContext) -> Response:
    """`DELETE /subscriptions/{id}`: 204; nothing more is delivered to it."""
    await _book(ctx).delete(ctx.client.id, request.path_params["subscriptionId"])
    return Response(status_code=204)


async def test_subscription(request: Request, ctx: RequestContext) -> Response:
    """`POST /subscriptions/{id}/test`: 202; a `subscription.test` event is queued for it alone."""
    sub = await _book(ctx).get(ctx.client.id, request.path_params["subscriptionId"])
    delivery = await ctx.runtime.notifier.outbox.send_test(sub)
    return JSONResponse(delivery.public(), status_code=202)


async def list_deliveries(request: Request, ctx: RequestContext) -> Response:
    """`GET /subscriptions/{id}/deliveries`: its deliveries, newest first, with their last attempts."""
    sub = await _book(ctx).get(ctx.client.id, request.path_params["subscriptionId"])
    limit, cursor = query_limit(request), request.query_params.get("next")
    rt, kind = ctx.runtime, f"deliveries:{sub.id}"
    after = None
    if cursor:
        state = rt.cursors.decode(kind, cursor)
        if not (isinstance(state, list) and len(state) == 2 and isinstance(state[0], float | int)):
            raise InvalidCursor("The pagination cursor is malformed.")
        after = (float(state[0]), str(state[1]))
    page = await deliveries_of(rt.store, sub.id, limit=limit, after=after)
    href = f"{ctx.gateway_base}/subscriptions/{sub.id}/deliveries"
    links = [link(href, "self")]
    if page.next is not None:
        token = rt.cursors.encode(kind, list(page.next))
        links.append(link(f"{href}?next={token}&limit={limit}", "next"))
    return JSONResponse({"deliveries": [d.public() for d in page.deliveries], "links": links})
