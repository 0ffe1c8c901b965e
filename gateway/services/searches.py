"""The gateway's asynchronous search records as clients see them: list, one record, its statuses."""

from __future__ import annotations

from typing import Any

from adapters.base import NotFound
from gateway.domain.errors import InvalidCursor
from gateway.domain.records import SearchRecord, SearchState
from gateway.services.context import RequestContext
from gateway.services.listing import link

CURSOR_KIND = "searches"


def public_record(record: SearchRecord, base: str) -> dict[str, Any]:
    """A stored record as STAPI's OpportunitySearchRecord, with per-member state."""
    record_id = record.id
    href = f"{base}/searches/opportunities/{record_id}"
    links = [link(href, "self"), link(f"{href}/statuses", "monitor")]
    body: dict[str, Any] = {
        "id": record_id,
        "product_id": record.product_id,
        "opportunity_request": record.opportunity_request,
        "status": record.statuses[-1].to_json(),
        "links": links,
        "federation:members": [
            {"product_id": pid, "status": str(m.status), "reason_text": m.reason} for pid, m in record.members.items()
        ],
    }
    if record.state is SearchState.COMPLETED:
        collection = f"{base}/products/{record.product_id}/opportunities/{record_id}"
        links.append(link(collection, "opportunities", "application/geo+json"))
        missing = record.missing()
        if missing:
            body["federation:missing"] = missing
    return body


async def record(ctx: RequestContext, record_id: str) -> SearchRecord:
    """A record the client may see, as stored; a record still running is refreshed in the background."""
    rt = ctx.runtime
    found = await rt.searches.load(record_id)
    if found is None or not ctx.sees(found.client):
        raise NotFound(f"No opportunity search record '{record_id}' exists (records expire after a while).")
    if not found.state.terminal:
        # Refresh in the background; the client gets the stored state at once.
        rt.runner.kick(record_id)
    return found


async def list_records(ctx: RequestContext, limit: int, cursor: str | None) -> dict[str, Any]:
    """The gateway's records the client may see, newest first, one page."""
    rt = ctx.runtime
    after = None
    if cursor:
        state = rt.cursors.decode(CURSOR_KIND, cursor)
        if not (isinstance(state, list) and len(state) == 2 and isinstance(state[1], str)):
            raise InvalidCursor("The pagination cursor is malformed.")
        after = (float(state[0]), state[1])
    owner = ctx.client.id if rt.gatekeeper.enabled else None
    entries = await rt.searches.page(limit=limit + 1, after=after, client=owner)
    base = ctx.gateway_base
    links = [link(f"{base}/searches/opportunities", "self")]
    if len(entries) > limit:
        last_record, last_score = entries[limit - 1]
        token = rt.cursors.encode(CURSOR_KIND, [last_score, last_record.id])
        links.append(link(f"{base}/searches/opportunities?next={token}&limit={limit}", "next"))
    records = [public_record(entry, base) for entry, _ in entries[:limit]]
    return {"search_records": records, "links": links}
