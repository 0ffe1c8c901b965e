"""Search records: typed, keyed by member product id, and stored exactly as the previous layout stored them."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.domain.records import (
    MemberMode,
    MemberState,
    SearchRecord,
    SearchState,
    SearchStatus,
    decode_record,
    encode_record,
    new_record,
)

# Bytes the previous layout (commit f80eede) wrote to Redis: a federated search over a, b and a
# member c:nosuch that does not exist, run to completion, then read with redis-cli. Frozen here.
COMPLETED = (
    b'{"id":"c46faca3230f4a9fb723901328d912a3","client":"anonymous","product_id":"fed",'
    b'"opportunity_request":{"datetime":"2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",'
    b'"geometry":{"type":"Point","coordinates":[13.4,52.5]},"filter":null,"limit":2,"next":null},'
    b'"statuses":[{"timestamp":"2026-12-01T14:45:44.276376Z","status_code":"received","reason_code":null,'
    b'"reason_text":null,"links":[]},{"timestamp":"2026-12-01T14:45:44.293817Z","status_code":"in_progress",'
    b'"reason_code":null,"reason_text":null,"links":[]},{"timestamp":"2026-12-01T14:45:44.314573Z",'
    b'"status_code":"completed","reason_code":null,"reason_text":"no results from c:nosuch","links":[]}],'
    b'"created":1796136344.2764177,"members":{"a:optical":{"mode":"emulated","status":"completed",'
    b'"upstream_id":null,"reason":null,"attempts":0,"collection_id":null,"page":null,"pages":1,"count":4,'
    b'"truncated":false,"missing":[]},"b:optical":{"mode":"upstream","status":"completed",'
    b'"upstream_id":"b-search-1","reason":null,"attempts":0,"collection_id":"b-search-1-opportunities",'
    b'"page":null,"pages":1,"count":3,"truncated":false,"missing":[]},"c:nosuch":{"mode":null,'
    b'"status":"failed","upstream_id":null,"reason":"provider \'c\': Not Found","attempts":1,'
    b'"collection_id":null,"page":null,"pages":0,"count":0,"truncated":false,"missing":[]}}}'
)
# What the previous layout's `new_record` produced for a single-product search (orjson.dumps of it).
RECEIVED = (
    b'{"id":"1f7fa49b932e4b1ab2bfd24db2d9f6d9","client":"alice","product_id":"acme:eo",'
    b'"opportunity_request":{"datetime":"2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",'
    b'"geometry":{"type":"Point","coordinates":[13.4,52.5]},"filter":null,"limit":10,"next":null},'
    b'"statuses":[{"timestamp":"2026-12-01T14:45:50.203702Z","status_code":"received","reason_code":null,'
    b'"reason_text":null,"links":[]}],"created":1796136350.2037673,"members":{"acme:eo":{"mode":null,'
    b'"status":"received","upstream_id":null,"reason":null,"attempts":0,"collection_id":null,"page":null,'
    b'"pages":0,"count":0,"truncated":false,"missing":[]}}}'
)


def test_a_completed_record_of_the_previous_layout_loads_typed() -> None:
    """Members keyed by product id with enum states; statuses typed; the client's request kept as sent."""
    record = decode_record(COMPLETED)
    assert record.state is SearchState.COMPLETED
    assert list(record.members) == ["a:optical", "b:optical", "c:nosuch"]
    assert record.members["b:optical"] == MemberState(
        mode=MemberMode.UPSTREAM,
        status=SearchState.COMPLETED,
        upstream_id="b-search-1",
        collection_id="b-search-1-opportunities",
        pages=1,
        count=3,
    )
    assert record.members["c:nosuch"].status is SearchState.FAILED
    assert record.statuses[-1].reason_text == "no results from c:nosuch"
    assert record.opportunity_request["limit"] == 2
    assert record.missing() == ["c"]


def test_records_are_stored_byte_for_byte_as_before() -> None:
    """Decoding and encoding again gives the previous layout's bytes: a replica not yet upgraded reads them."""
    assert encode_record(decode_record(COMPLETED)) == COMPLETED
    assert encode_record(decode_record(RECEIVED)) == RECEIVED


def test_a_new_record_has_the_previous_layouts_keys() -> None:
    """The same keys in the same order as the previous layout's fresh record, every member received."""
    search = {"datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z", "filter": None, "limit": 10, "next": "x"}
    fresh: dict[str, Any] = orjson.loads(encode_record(new_record("acme:eo", search, ["acme:eo"], "alice")))
    old: dict[str, Any] = orjson.loads(RECEIVED)
    assert list(fresh) == list(old)
    assert fresh["members"] == old["members"]
    assert list(fresh["statuses"][0]) == list(old["statuses"][0])
    assert fresh["opportunity_request"]["next"] is None


def test_the_first_layouts_member_list_is_keyed_by_product_id() -> None:
    """Members stored as a list: keyed by their product id; a completed one's result found by its position."""
    raw = orjson.loads(RECEIVED)
    raw["members"] = [
        {"product_id": "b:eo", "mode": "upstream", "status": "in_progress", "upstream_id": "u1", "reason": None},
        {"product_id": "a:eo", "mode": "emulated", "status": "completed", "upstream_id": None, "reason": None},
    ]
    record = decode_record(orjson.dumps(raw))
    assert list(record.members) == ["b:eo", "a:eo"]
    assert record.members["b:eo"] == MemberState(
        mode=MemberMode.UPSTREAM, status=SearchState.IN_PROGRESS, upstream_id="u1"
    )
    assert record.members["a:eo"].legacy_result == 1
    assert orjson.loads(encode_record(record))["members"]["a:eo"]["legacy_result"] == 1
    assert decode_record(encode_record(record)) == record


def record_of(**members: MemberState) -> SearchRecord:
    """A received record over the given member states."""
    return SearchRecord("r", None, "fed", {}, (SearchStatus.now(SearchState.RECEIVED),), 0.0, members)


def test_the_record_status_follows_its_members() -> None:
    """In progress while any member is; completed if any completed, naming the ones without results."""
    done = MemberState(status=SearchState.COMPLETED, truncated=True, missing=("x",))
    record = record_of(**{"a:p": done, "b:p": MemberState(status=SearchState.IN_PROGRESS)})
    moved, changed = record.advanced()
    assert changed
    assert moved.state is SearchState.IN_PROGRESS
    assert len(moved.statuses) == 2
    assert moved.advanced() == (moved, False)
    finished, _ = moved.with_members({"b:p": MemberState(status=SearchState.FAILED, reason="gone")}).advanced()
    assert finished.state is SearchState.COMPLETED
    assert finished.statuses[-1].reason_text == "no results from b:p; not every result kept from a:p"
    assert finished.missing() == ["b", "a:x"]
    cancelled = record_of(**{"a:p": MemberState(status=SearchState.CANCELLED)}).derived()
    assert cancelled == (SearchState.CANCELLED, "every provider cancelled the search")
    failed = record_of(**{"a:p": MemberState(status=SearchState.FAILED)}).derived()
    assert failed == (SearchState.FAILED, "a:p: failed")


def test_adopting_an_upstream_search_changes_that_member_only() -> None:
    """A provider that answered with a search record: its member follows that record."""
    record = record_of(**{"a:p": MemberState(), "b:p": MemberState()})
    adopted = record.adopting("b:p", "up-1")
    assert adopted.members["b:p"] == MemberState(mode=MemberMode.UPSTREAM, upstream_id="up-1")
    assert adopted.members["a:p"] == MemberState()
    assert record.members["b:p"] == MemberState()
