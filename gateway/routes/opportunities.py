"""Opportunity search on one provider's product or a federated product, sync or async.

Mode, when the client sends no `Prefer`: synchronous (200 collection) if every member product can
search synchronously, else asynchronous (201 search record). `Prefer: respond-async` always gets
a record; `Prefer: wait` gets a collection unless a member can only search asynchronously.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import Page, SearchMode
from adapters.stapi import next_token
from gateway import fanout, ids, merge
from gateway.catalogue import Capabilities, Member, Target
from gateway.errors import NotFound, ProviderInvalidPayload, UpstreamNotFound
from gateway.links import LinkRewriter
from gateway.opportunities import (
    namespace_opportunity,
    next_link,
    order_link,
    parse_prefer,
    start_key,
    upstream_request,
    validate_search,
    with_member_order_links,
)
from gateway.responses import GEOJSON, JSONResponse
from gateway.routes.common import (
    client,
    deadline,
    gateway_base,
    next_cursor,
    positions,
    rewriter,
    runtime,
    sees,
    target_for,
    with_missing,
)
from gateway.routes.searches import public_record
from gateway.searches import new_record, with_base


def _cursor_kind(product_id: str) -> str:
    return f"opportunities:{product_id}"


class AnsweredAsync(ProviderInvalidPayload):
    """A provider answered `Prefer: wait` with a search record: it cannot search synchronously."""

    def __init__(self, member: Member, record: dict[str, Any]) -> None:
        super().__init__(member.provider.id, f"'{member.gateway_id}' can only search asynchronously")
        self.member = member
        self.record = record


async def search_opportunities(request: Request) -> Response:
    """`POST /products/{id}/opportunities`."""
    rt = runtime(request)
    target = target_for(request, request.path_params["product_id"])
    search = validate_search(await request.body(), rt.settings.gateway.input_limits)
    prefer = parse_prefer(request.headers.get("prefer"))
    record = new_record(target.product_id, search, [m.gateway_id for m in target.members], client(request).id)
    if prefer != "respond-async" and await _all_sync(request, target):
        try:
            response = await _search_sync(request, target, search)
        except AnsweredAsync as answer:
            # The provider started an async search instead; the gateway's record adopts it.
            record["members"][0].update(mode="upstream", upstream_id=str(answer.record["id"]))
            prefer = None
        else:
            if prefer == "wait":
                response.headers["Preference-Applied"] = "wait"
            return response
    await rt.searches.create(record)
    rt.metrics.search_records.labels("received").inc()
    rt.runner.kick(record["id"])
    body = public_record(record, gateway_base(request))
    headers = {"Location": body["links"][0]["href"]}
    if prefer == "respond-async":
        headers["Preference-Applied"] = "respond-async"
    return JSONResponse(body, status_code=201, headers=headers)


async def _all_sync(request: Request, target: Target) -> bool:
    """Whether every member that answers can search synchronously."""
    catalogue, limit = runtime(request).catalogue, deadline(request)

    def caps_of(member: Member) -> Any:
        return lambda: catalogue.capabilities(member, limit)

    gathered: fanout.Fanout[Capabilities] = await fanout.gather(
        {m.gateway_id: caps_of(m) for m in target.members}, limit
    )
    if len(target.members) == 1:
        # A single product's own answer is the error to report, not a generic failure.
        failure = next(iter(gathered.failures.values()), None)
        if failure is not None:
            raise failure
    return all(c.sync for c in gathered.results.values())


async def _search_sync(request: Request, target: Target, search: dict[str, Any]) -> Response:
    rt = runtime(request)
    limit = search["limit"]
    members = {m.gateway_id: m for m in target.members}
    kind = _cursor_kind(target.product_id)
    cursor = str(search["next"]) if search["next"] else None
    at = positions(request, kind, cursor, list(members), limit)
    base = gateway_base(request)

    def page_of(member_id: str) -> Any:
        member, pos = members[member_id], at[member_id]

        async def call() -> Page:
            body = upstream_request(search, pos.token, pos.size)
            result = await member.provider.adapter.search_opportunities(member.product_id, body, SearchMode.SYNC)
            if result.is_async:
                rt.catalogue.learn_async_only(member)
                raise AnsweredAsync(member, result.body)
            links = LinkRewriter(member.provider.id, member.provider.settings.base_url, base)
            features = [namespace_opportunity(f, links) for f in result.body["features"]]
            return Page(items=features, next_token=next_token(result.body.get("links") or []))

        return call

    gathered: fanout.Fanout[Page] = await fanout.gather({mid: page_of(mid) for mid in at}, deadline(request))
    if len(target.members) == 1 and gathered.failures:
        # One product's own failure says more than "every provider failed".
        raise next(iter(gathered.failures.values()))
    gathered.require_any("opportunities")
    key = start_key if target.federated is not None else None
    merged, after = merge.merge_page(at, gathered.results, limit, key=key)
    href = f"{base}/products/{target.product_id}"
    features = [item for _, item in merged]
    if target.federated is None:
        links = [order_link(f"{href}/orders", search)]
    else:
        links, features = [], with_member_order_links(features, f"{href}/orders")
    if token := next_cursor(request, kind, after):
        links.append(next_link(f"{href}/opportunities", search, token))
    body = {"type": "FeatureCollection", "id": None, "features": features, "links": links}
    missing = list(dict.fromkeys(mid.split(":", 1)[0] for mid in gathered.missing))
    return JSONResponse(with_missing(body, missing), media_type=GEOJSON)


async def get_opportunity_collection(request: Request) -> Response:
    """`GET /products/{id}/opportunities/{collection_id}`: a completed async search's results."""
    rt = runtime(request)
    product_id, collection_id = request.path_params["product_id"], request.path_params["collection_id"]
    target = target_for(request, product_id)
    base = gateway_base(request)
    parts = ids.split(collection_id)
    if parts is not None:
        return await _proxied_collection(request, target, *parts)
    record = await rt.searches.load(collection_id)
    stored = await rt.searches.load_collection(collection_id)
    if record is None or record["product_id"] != product_id or not sees(request, record.get("client")):
        raise NotFound(f"No opportunity collection '{collection_id}' exists for product '{product_id}'.")
    if stored is None:
        state = record["statuses"][-1]["status_code"]
        raise NotFound(f"The search '{collection_id}' has no opportunity collection (it is {state}).")
    collection: dict[str, Any] = with_base(stored, base)
    href = f"{base}/products/{product_id}"
    collection["links"] = [
        {"href": f"{href}/opportunities/{collection_id}", "rel": "self", "type": GEOJSON},
        {"href": f"{base}/searches/opportunities/{collection_id}", "rel": "search-record", "type": "application/json"},
    ]
    if target.federated is None:
        collection["links"].append(order_link(f"{href}/orders", record["opportunity_request"]))
    else:
        collection["features"] = with_member_order_links(collection["features"], f"{href}/orders")
    return JSONResponse(collection, media_type=GEOJSON)


async def _proxied_collection(request: Request, target: Target, provider_id: str, upstream_id: str) -> Response:
    member = next((m for m in target.members if m.provider.id == provider_id), None)
    if member is None or target.federated is not None:
        raise NotFound(f"No opportunity collection '{provider_id}:{upstream_id}' exists for this product.")
    adapter = member.provider.adapter
    try:
        collection = await fanout.call_one(
            provider_id, lambda: adapter.get_opportunity_collection(member.product_id, upstream_id), deadline(request)
        )
    except UpstreamNotFound:
        raise UpstreamNotFound(
            provider_id, f"No opportunity collection '{provider_id}:{upstream_id}' exists."
        ) from None
    links = rewriter(request, member.provider)
    body = {
        **collection,
        "id": ids.namespaced(provider_id, upstream_id),
        "features": [namespace_opportunity(f, links) for f in collection["features"]],
        "links": links.links(collection.get("links") or []),
    }
    return JSONResponse(body, media_type=GEOJSON)
