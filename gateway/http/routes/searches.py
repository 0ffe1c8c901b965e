"""The gateway's asynchronous search records: list, one record, its statuses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain.errors import InvalidCursor, NotFound
from gateway.http.responses import JSONResponse
from gateway.http.routes.common import client, gateway_base, link, query_limit, runtime, sees
from gateway.services.search_records import TERMINAL, missing_members

CURSOR_KIND = "searches"


def public_record(record: dict[str, Any], base: str) -> dict[str, Any]:
    """A stored record as STAPI's OpportunitySearchRecord, with per-member state."""
    record_id = record["id"]
    href = f"{base}/searches/opportunities/{record_id}"
    current = record["statuses"][-1]
    links = [link(href, "self"), link(f"{href}/statuses", "monitor")]
    body: dict[str, Any] = {
        "id": record_id,
        "product_id": record["product_id"],
        "opportunity_request": record["opportunity_request"],
        "status": current,
        "links": links,
        "federation:members": [
            {"product_id": pid, "status": m["status"], "reason_text": m["reason"]}
            for pid, m in record["members"].items()
        ],
    }
    if current["status_code"] == "completed":
        collection = f"{base}/products/{record['product_id']}/opportunities/{record_id}"
        links.append(link(collection, "opportunities", "application/geo+json"))
        missing = missing_members(record)
        if missing:
            body["federation:missing"] = missing
    return body


async def _record(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    record_id = request.path_params["searchRecordId"]
    record = await rt.searches.load(record_id)
    if record is None or not sees(request, record.get("client")):
        raise NotFound(f"No opportunity search record '{record_id}' exists (records expire after a while).")
    if record["statuses"][-1]["status_code"] not in TERMINAL:
        # Refresh in the background; the client gets the stored state at once.
        rt.runner.kick(record_id)
    return record


async def get_search_record(request: Request) -> Response:
    """`GET /searches/opportunities/{id}`."""
    return JSONResponse(public_record(await _record(request), gateway_base(request)))


async def search_record_statuses(request: Request) -> Response:
    """`GET /searches/opportunities/{id}/statuses`: the history, oldest first, as a bare array."""
    return JSONResponse((await _record(request))["statuses"])


async def list_search_records(request: Request) -> Response:
    """`GET /searches/opportunities`: the gateway's records, newest first."""
    rt = runtime(request)
    limit = query_limit(request)
    after = None
    cursor = request.query_params.get("next")
    if cursor:
        state = rt.cursors.decode(CURSOR_KIND, cursor)
        if not (isinstance(state, list) and len(state) == 2 and isinstance(state[1], str)):
            raise InvalidCursor("The pagination cursor is malformed.")
        after = (float(state[0]), state[1])
    owner = client(request).id if rt.gatekeeper.enabled else None
    entries = await rt.searches.page(limit=limit + 1, after=after, client=owner)
    base = gateway_base(request)
    links = [link(f"{base}/searches/opportunities", "self")]
    if len(entries) > limit:
        last_record, last_score = entries[limit - 1]
        token = rt.cursors.encode(CURSOR_KIND, [last_score, last_record["id"]])
        links.append(link(f"{base}/searches/opportunities?next={token}&limit={limit}", "next"))
    records = [public_record(record, base) for record, _ in entries[:limit]]
    return JSONResponse({"search_records": records, "links": links})
