"""Webhook subscriptions: each client creates, lists, reads, deletes and tests its own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import RequestValidationFailed
from gateway.domain.inputs import field_error, limits_of, parse_object
from gateway.http.responses import JSONResponse
from gateway.notify.model import Subscription
from gateway.notify.subscriptions import Subscriptions
from gateway.services.context import RequestContext
from gateway.services.listing import link

FIELDS = frozenset({"url", "events"})


def _book(ctx: RequestContext) -> Subscriptions:
    return ctx.runtime.subscriptions


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
