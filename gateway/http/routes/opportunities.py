"""Opportunity search on one provider's product or a federated product, sync or async.

Mode, when the client sends no `Prefer`: synchronous (200 collection) if every member product can
search synchronously, else asynchronous (201 search record). `Prefer: respond-async` always gets
a record; `Prefer: wait` gets a collection unless a member can only search asynchronously.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.base import Page, SearchMode
from adapters.stapi.adapter import missing_of, next_token
from gateway.domain import filter_types, ids, merge
from gateway.domain.errors import (
    GatewayError,
    InvalidCursor,
    NotFound,
    ProviderInvalidPayload,
    RequestValidationFailed,
    SearchNotSupported,
)
from gateway.domain.opportunities import (
    has_own_order_links,
    namespace_opportunity,
    next_link,
    order_link,
    parse_prefer,
    start_key,
    upstream_request,
    validate_search,
    with_member_order_links,
)
from gateway.http.responses import GEOJSON, JSONResponse
from gateway.http.routes.common import (
    ask,
    client,
    deadline,
    gateway_base,
    next_cursor,
    pages_missing,
    positions,
    query_limit,
    rewriter,
    runtime,
    sees,
    target_for,
    with_missing,
)
from gateway.http.routes.searches import public_record
from gateway.services import fanout
from gateway.services.catalogue import Capabilities, Member, Target
from gateway.services.search_records import new_record


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
    target = target_for(request, request.path_params["productId"])
    search = validate_search(await request.body(), rt.settings.gateway.input_limits)
    prefer = parse_prefer(request.headers.get("prefer"))
    capabilities = await _capabilities(request, target)
    target = _searchers(target, capabilities)
    await _check_filter(request, target, search.get("filter"))
    record = new_record(target.product_id, search, [m.gateway_id for m in target.members], client(request).id)
    if prefer != "respond-async" and all(c.sync for c in capabilities.results.values()):
        try:
            response = await _search_sync(request, target, search, failed=capabilities.failures)
        except AnsweredAsync as answer:
            # The provider started an async search instead; the gateway's record adopts it.
            record["members"][answer.member.gateway_id].update(mode="upstream", upstream_id=str(answer.record["id"]))
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


async def _check_filter(request: Request, target: Target, filter_: Any) -> None:
    """422 when the filter cannot be evaluated on a member, by its queryables (usually cached).

    Members whose queryables cannot be had now are left to judge the filter themselves.
    """
    if not filter_:
        return
    catalogue, budget = runtime(request).catalogue, deadline(request).fraction(0.3)

    def of(member: Member) -> Any:
        return lambda: catalogue.queryables(member, budget)

    gathered = await fanout.gather({m.gateway_id: of(m) for m in target.members}, budget)
    found: dict[str, dict[str, Any]] = {}
    for schema in gathered.results.values():
        for problem in filter_types.problems(filter_, schema.document):
            found.setdefault(f"{problem['loc']}{problem['msg']}", problem)
    if found:
        raise RequestValidationFailed("The filter cannot be evaluated on this product.", list(found.values()))


async def _capabilities(request: Request, target: Target) -> fanout.Fanout[Capabilities]:
    """Each member's search modes; members whose provider does not tell are failures.

    Looked up within half of what is left of the deadline (usually from cache), so a provider
    that hangs here still leaves the search itself time to answer with the others.
    """
    catalogue, budget = runtime(request).catalogue, deadline(request).fraction(0.5)

    def caps_of(member: Member) -> Any:
        return lambda: catalogue.capabilities(member, budget)

    found: fanout.Fanout[Capabilities] = await fanout.gather({m.gateway_id: caps_of(m) for m in target.members}, budget)
    if len(target.members) == 1 and found.failures:
        # A single product's own answer is the error to report, not a generic failure.
        raise next(iter(found.failures.values()))
    return found


def _searchers(target: Target, found: fanout.Fanout[Capabilities]) -> Target:
    """The members that can search (and those whose capabilities are unknown, which then fail as
    any failing member does); SearchNotSupported when none can.

    An order-only product has no opportunities resource, upstream or here: 404, before any
    record exists (it would only ever fail). A federated product's order-only members are left
    out of its searches, not reported missing: nothing of theirs failed.
    """
    able = [m for m in target.members if m.gateway_id not in found.results or found.results[m.gateway_id].searchable]
    if not able:
        raise SearchNotSupported(
            f"Product '{target.product_id}' does not support opportunity search; "
            f"order it with POST /products/{target.product_id}/orders."
        )
    for member in target.members:
        if member not in able:
            del found.results[member.gateway_id]
    return replace(target, members=able)


async def _search_sync(
    request: Request, target: Target, search: dict[str, Any], failed: dict[str, GatewayError]
) -> Response:
    """One page of a synchronous search over the target's members (those in `failed` already failed)."""
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
            links = result.body.get("links") or []
            return Page(items=result.body["features"], next_token=next_token(links), missing=missing_of(result.body))

        return call

    calls = {mid: page_of(mid) for mid in at if mid not in failed}
    gathered: fanout.Fanout[Page] = await fanout.gather(calls, deadline(request))
    gathered.failures.update(failed)
    if target.federated is None and gathered.failures:
        # One product's own failure says more than "every provider failed".
        raise next(iter(gathered.failures.values()))
    gathered.require_any("opportunities")
    key = (lambda mid, f: start_key(f, members[mid].provider.id)) if target.federated is not None else None
    merged, after = merge.merge_page(at, gathered.results, limit, key=key)
    # Only what is returned gets namespaced: a member may send thousands of opportunities.
    rewriters = {mid: m.provider.rewriter(base) for mid, m in members.items()}
    href = f"{base}/products/{target.product_id}"
    features = [namespace_opportunity(item, rewriters[mid]) for mid, item in merged]
    if target.federated is None:
        links = [] if has_own_order_links(features) else [order_link(f"{href}/orders", search)]
    else:
        links, features = [], with_member_order_links(features, f"{href}/orders")
    if token := next_cursor(request, kind, after):
        links.append(next_link(f"{href}/opportunities", search, token))
    body = {"type": "FeatureCollection", "id": None, "features": features, "links": links}
    return JSONResponse(with_missing(body, pages_missing(gathered)), media_type=GEOJSON)


async def get_opportunity_collection(request: Request) -> Response:
    """`GET /products/{id}/opportunities/{collection_id}`: a completed async search's results, paged.

    Pages hold the search's `limit` opportunities unless the query asks for another `limit`;
    `next` is a signed cursor of the position in the stored collection.
    """
    rt = runtime(request)
    product_id, collection_id = request.path_params["productId"], request.path_params["collectionId"]
    target = target_for(request, product_id)
    base = gateway_base(request)
    parts = ids.split(collection_id)
    if parts is not None:
        return await _proxied_collection(request, target, *parts)
    record = await rt.searches.load(collection_id)
    if record is None or record["product_id"] != product_id or not sees(request, record.get("client")):
        raise NotFound(f"No opportunity collection '{collection_id}' exists for product '{product_id}'.")
    limit = query_limit(request) if "limit" in request.query_params else int(record["opportunity_request"]["limit"])
    offset = _collection_offset(request, collection_id)
    collection = await rt.searches.load_collection(collection_id, base, offset, limit)
    if collection is None:
        state = record["statuses"][-1]["status_code"]
        raise NotFound(f"The search '{collection_id}' has no opportunity collection (it is {state}).")
    href = f"{base}/products/{product_id}"
    own = f"{href}/opportunities/{collection_id}"
    collection["links"] = [
        {"href": own, "rel": "self", "type": GEOJSON},
        {"href": f"{base}/searches/opportunities/{collection_id}", "rel": "search-record", "type": "application/json"},
    ]
    if target.federated is None:
        if not has_own_order_links(collection["features"]):
            collection["links"].append(order_link(f"{href}/orders", record["opportunity_request"]))
    else:
        collection["features"] = with_member_order_links(collection["features"], f"{href}/orders")
    end = offset + len(collection["features"])
    if end < collection["numberMatched"]:
        token = rt.cursors.encode(_collection_kind(collection_id), {"o": end})
        collection["links"].append({"href": f"{own}?next={token}&limit={limit}", "rel": "next", "type": GEOJSON})
    return JSONResponse(collection, media_type=GEOJSON)


def _collection_kind(collection_id: str) -> str:
    return f"opportunity-collection:{collection_id}"


def _collection_offset(request: Request, collection_id: str) -> int:
    """Where in a stored collection the client's cursor stands (0 without one)."""
    cursor = request.query_params.get("next")
    if not cursor:
        return 0
    state = runtime(request).cursors.decode(_collection_kind(collection_id), cursor)
    offset = state.get("o") if isinstance(state, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidCursor("The pagination cursor is malformed.")
    return offset


async def _proxied_collection(request: Request, target: Target, provider_id: str, upstream_id: str) -> Response:
    member = next((m for m in target.members if m.provider.id == provider_id), None)
    if member is None or target.federated is not None:
        raise NotFound(f"No opportunity collection '{provider_id}:{upstream_id}' exists for this product.")
    adapter = member.provider.adapter
    collection = await ask(
        request,
        member.provider,
        lambda: adapter.get_opportunity_collection(member.product_id, upstream_id),
        f"No opportunity collection '{provider_id}:{upstream_id}' exists.",
    )
    links = rewriter(request, member.provider)
    body = {
        **collection,
        "id": ids.namespaced(provider_id, upstream_id),
        "features": [namespace_opportunity(f, links) for f in collection["features"]],
        "links": links.links(collection.get("links") or []),
    }
    return JSONResponse(body, media_type=GEOJSON)
