"""Opportunity search on one provider's product or a federated product, sync or async: both entry
points are here (the async search then advances in search_runner.py).

Mode, when the client sends no `Prefer`: synchronous (a collection) if every member product can
search synchronously, else asynchronous (a search record). `Prefer: respond-async` always gets
a record; `Prefer: wait` gets a collection unless a member can only search asynchronously.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from adapters.base import (
    DeliberateError,
    JSONObject,
    NotFound,
    Page,
    ProviderInvalidPayload,
    RequestValidationFailed,
    SearchMode,
)
from adapters.schemas import CheckedSchema
from gateway.domain import filter_types, ids, merge
from gateway.domain.errors import InvalidCursor, SearchNotSupported
from gateway.domain.federation import Member, Target
from gateway.domain.opportunities import (
    has_own_order_links,
    namespace_opportunity,
    next_link,
    order_link,
    upstream_request,
    with_member_order_links,
)
from gateway.domain.records import SearchRecord, new_record
from gateway.services import fanout
from gateway.services.catalogue import Capabilities
from gateway.services.context import RequestContext
from gateway.services.listing import pages_missing, with_missing
from gateway.services.searches import public_record

GEOJSON = "application/geo+json"


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    """What a search answered: a collection (sync) or a search record (async, `is_record`), and
    the `Prefer` token honoured, if any."""

    body: JSONObject
    is_record: bool
    preference_applied: str | None = None


def cursor_kind(product_id: str) -> str:
    """The kind a sync search's cursor is bound to."""
    return f"opportunities:{product_id}"


class AnsweredAsync(ProviderInvalidPayload):
    """A provider answered `Prefer: wait` with a search record: it cannot search synchronously."""

    def __init__(self, member: Member, record: dict[str, Any]) -> None:
        super().__init__(member.provider.id, f"'{member.gateway_id}' can only search asynchronously")
        self.member = member
        self.record = record


async def search(ctx: RequestContext, target: Target, body: dict[str, Any], prefer: str | None) -> SearchAnswer:
    """Search opportunities on a validated request `body`, sync or async as `prefer` and the
    members' capabilities decide."""
    capabilities = await _capabilities(ctx, target)
    target = _searchers(target, capabilities)
    await _check_filter(ctx, target, body.get("filter"))
    record = new_record(target.product_id, body, [m.gateway_id for m in target.members], ctx.client.id)
    if prefer != "respond-async" and all(c.sync for c in capabilities.results.values()):
        try:
            collection = await search_sync(ctx, target, body, failed=capabilities.failures)
        except AnsweredAsync as answer:
            # The provider started an async search instead; the gateway's record adopts it.
            record = record.adopting(answer.member.gateway_id, str(answer.record["id"]))
            prefer = None
        else:
            return SearchAnswer(collection, is_record=False, preference_applied="wait" if prefer == "wait" else None)
    return await search_async(ctx, record, prefer)


async def search_async(ctx: RequestContext, record: SearchRecord, prefer: str | None) -> SearchAnswer:
    """Store a new search record and start it in the background (SearchRunner advances it)."""
    rt = ctx.runtime
    await rt.searches.create(record)
    rt.metrics.search_records.labels("received").inc()
    rt.runner.kick(record.id)
    applied = "respond-async" if prefer == "respond-async" else None
    return SearchAnswer(public_record(record, ctx.gateway_base), is_record=True, preference_applied=applied)


async def _check_filter(ctx: RequestContext, target: Target, filter_: Any) -> None:
    """422 when the filter cannot be evaluated on a member, by its queryables (usually cached).

    Members whose queryables cannot be had now are left to judge the filter themselves.
    """
    if not filter_:
        return
    catalogue, budget = ctx.runtime.catalogue, ctx.deadline.fraction(0.3)

    def of(member: Member) -> Callable[[], Awaitable[CheckedSchema]]:
        return lambda: catalogue.queryables(member, budget)

    gathered = await fanout.gather({m.gateway_id: of(m) for m in target.members}, budget)
    found: dict[str, dict[str, Any]] = {}
    for schema in gathered.results.values():
        for problem in filter_types.problems(filter_, schema.document):
            found.setdefault(f"{problem['loc']}{problem['msg']}", problem)
    if found:
        raise RequestValidationFailed("The filter cannot be evaluated on this product.", list(found.values()))


async def _capabilities(ctx: RequestContext, target: Target) -> fanout.Fanout[Capabilities]:
    """Each member's search modes; members whose provider does not tell are failures.

    Looked up within half of what is left of the deadline (usually from cache), so a provider
    that hangs here still leaves the search itself time to answer with the others.
    """
    catalogue, budget = ctx.runtime.catalogue, ctx.deadline.fraction(0.5)

    def caps_of(member: Member) -> Callable[[], Awaitable[Capabilities]]:
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


async def search_sync(
    ctx: RequestContext, target: Target, search: dict[str, Any], failed: dict[str, DeliberateError]
) -> JSONObject:
    """One page of a synchronous search over the target's members (those in `failed` already failed)."""
    catalogue = ctx.runtime.catalogue
    limit = search["limit"]
    members = {m.gateway_id: m for m in target.members}
    kind = cursor_kind(target.product_id)
    cursor = str(search["next"]) if search["next"] else None
    at = ctx.positions(kind, cursor, list(members), limit)
    base = ctx.gateway_base

    def page_of(member_id: str) -> Callable[[], Awaitable[Page]]:
        member, pos = members[member_id], at[member_id]

        async def call() -> Page:
            body = upstream_request(search, pos.token, pos.size)
            result = await member.provider.adapter.search_opportunities(member.product_id, body, SearchMode.SYNC)
            if result.is_async:
                catalogue.learn_async_only(member)
                raise AnsweredAsync(member, result.body)
            return Page(items=result.body["features"], next_token=result.next_token, missing=result.missing)

        return call

    calls = {mid: page_of(mid) for mid in at if mid not in failed}
    gathered: fanout.Fanout[Page] = await fanout.gather(calls, ctx.deadline)
    gathered.failures.update(failed)
    if target.federated is None and gathered.failures:
        # One product's own failure says more than "every provider failed".
        raise next(iter(gathered.failures.values()))
    gathered.require_any("opportunities")
    key = (
        merge.by_start_time({mid: m.provider.id for mid, m in members.items()})
        if target.federated is not None
        else None
    )
    merged, after = merge.merge_page(at, gathered.results, limit, key=key)
    # Only what is returned gets namespaced: a member may send thousands of opportunities.
    rewriters = {mid: m.provider.rewriter(base) for mid, m in members.items()}
    href = f"{base}/products/{target.product_id}"
    features = [namespace_opportunity(item, rewriters[mid]) for mid, item in merged]
    if target.federated is None:
        links = [] if has_own_order_links(features) else [order_link(f"{href}/orders", search)]
    else:
        links, features = [], with_member_order_links(features, f"{href}/orders")
    if token := ctx.next_cursor(kind, after):
        links.append(next_link(f"{href}/opportunities", search, token))
    body = {"type": "FeatureCollection", "id": None, "features": features, "links": links}
    return with_missing(body, pages_missing(gathered))


def _collection_kind(collection_id: str) -> str:
    return f"opportunity-collection:{collection_id}"


async def collection_record(ctx: RequestContext, product_id: str, collection_id: str) -> SearchRecord:
    """The search record behind a stored collection, if the client may see it."""
    record = await ctx.runtime.searches.load(collection_id)
    if record is None or record.product_id != product_id or not ctx.sees(record.client):
        raise NotFound(f"No opportunity collection '{collection_id}' exists for product '{product_id}'.")
    return record


async def stored_collection(
    ctx: RequestContext, target: Target, record: SearchRecord, limit: int | None, cursor: str | None
) -> JSONObject:
    """A completed async search's results, paged: the search's `limit` opportunities a page unless
    `limit` is given; `cursor` is a signed position in the stored collection."""
    rt, base = ctx.runtime, ctx.gateway_base
    collection_id, product_id = record.id, target.product_id
    limit = limit or int(record.opportunity_request["limit"])
    offset = _collection_offset(ctx, collection_id, cursor)
    collection = await rt.searches.load_collection(collection_id, base, offset, limit)
    if collection is None:
        raise NotFound(f"The search '{collection_id}' has no opportunity collection (it is {record.state}).")
    href = f"{base}/products/{product_id}"
    own = f"{href}/opportunities/{collection_id}"
    collection["links"] = [
        {"href": own, "rel": "self", "type": GEOJSON},
        {"href": f"{base}/searches/opportunities/{collection_id}", "rel": "search-record", "type": "application/json"},
    ]
    if target.federated is None:
        if not has_own_order_links(collection["features"]):
            collection["links"].append(order_link(f"{href}/orders", record.opportunity_request))
    else:
        collection["features"] = with_member_order_links(collection["features"], f"{href}/orders")
    end = offset + len(collection["features"])
    if end < collection["numberMatched"]:
        token = rt.cursors.encode(_collection_kind(collection_id), {"o": end})
        collection["links"].append({"href": f"{own}?next={token}&limit={limit}", "rel": "next", "type": GEOJSON})
    return collection


def _collection_offset(ctx: RequestContext, collection_id: str, cursor: str | None) -> int:
    """Where in a stored collection the client's cursor stands (0 without one)."""
    if not cursor:
        return 0
    state = ctx.runtime.cursors.decode(_collection_kind(collection_id), cursor)
    offset = state.get("o") if isinstance(state, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidCursor("The pagination cursor is malformed.")
    return offset


async def proxied_collection(ctx: RequestContext, target: Target, provider_id: str, upstream_id: str) -> JSONObject:
    """A provider's own collection (`provider:collection`), namespaced, with gateway links."""
    member = next((m for m in target.members if m.provider.id == provider_id), None)
    if member is None or target.federated is not None:
        raise NotFound(f"No opportunity collection '{provider_id}:{upstream_id}' exists for this product.")
    adapter = member.provider.adapter
    page = await ctx.ask(
        member.provider,
        lambda: adapter.get_opportunity_collection(member.product_id, upstream_id),
        f"No opportunity collection '{provider_id}:{upstream_id}' exists.",
    )
    collection = page.body
    links = ctx.rewriter(member.provider)
    return {
        **collection,
        "id": ids.namespaced(provider_id, upstream_id),
        "features": [namespace_opportunity(f, links) for f in collection["features"]],
        "links": links.links(collection.get("links") or []),
    }
