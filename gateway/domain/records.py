"""The gateway's asynchronous search records as typed data, and their one stored form.

A record is the gateway's own (its id has no provider prefix) and tracks one member per
provider product that takes part, keyed by the member's namespaced product id (never by list
position), so a reload that changes a federated product's members lets open records finish with
the ones they started with. `encode_record`/`decode_record` are the only way a record becomes
bytes and back; they keep the JSON the previous layouts wrote, and read both of those: members
as a list matched by position (the first layout) and members keyed by product id as plain dicts.
Pure data and rules, no I/O.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from adapters.base import JSONObject

# Stored results carry this in place of the gateway's base URL: the background work that fetches
# them has no request to take the client's base from, so it is put in on the way out.
BASE_PLACEHOLDER = "stapi-gateway-base:"


class SearchState(StrEnum):
    """Where a search record, or one member's part of it, stands (STAPI's status codes)."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Completed, failed and cancelled never change again."""
        return self in TERMINAL


TERMINAL = frozenset({SearchState.COMPLETED, SearchState.FAILED, SearchState.CANCELLED})


class MemberMode(StrEnum):
    """How a member searches: the provider's own async search, or sync pages the gateway walks."""

    UPSTREAM = "upstream"
    EMULATED = "emulated"


@dataclass(frozen=True, slots=True)
class SearchStatus:
    """One entry of a record's history, as STAPI's OpportunitySearchStatus."""

    timestamp: str
    status_code: SearchState
    reason_text: str | None = None
    reason_code: str | None = None
    links: tuple[JSONObject, ...] = ()

    @classmethod
    def now(cls, code: SearchState, reason_text: str | None = None) -> SearchStatus:
        """A status stamped now."""
        return cls(datetime.now(UTC).isoformat().replace("+00:00", "Z"), code, reason_text)

    def to_json(self) -> JSONObject:
        """The STAPI form, which is also the stored one."""
        return {
            "timestamp": self.timestamp,
            "status_code": str(self.status_code),
            "reason_code": self.reason_code,
            "reason_text": self.reason_text,
            "links": list(self.links),
        }


@dataclass(frozen=True, slots=True)
class MemberState:
    """One member's part of a search: how it searches, where it stands, how far its results were
    fetched (`page` is the provider's token of the next page to fetch, `pages` how many were kept)."""

    mode: MemberMode | None = None
    status: SearchState = SearchState.RECEIVED
    upstream_id: str | None = None
    reason: str | None = None
    attempts: int = 0
    collection_id: str | None = None
    page: str | None = None
    pages: int = 0
    count: int = 0
    truncated: bool = False
    # Providers an upstream gateway's result pages said they lack (that gateway's ids).
    missing: tuple[str, ...] = ()
    # Where the first layout kept this member's whole result: its list position (migrated records).
    legacy_result: int | None = None


@dataclass(frozen=True, slots=True)
class SearchRecord:
    """An asynchronous opportunity search the gateway runs over its members."""

    id: str
    client: str | None
    product_id: str
    # The client's search request (validated JSON, passed on to every member).
    opportunity_request: JSONObject
    statuses: tuple[SearchStatus, ...]
    created: float
    members: Mapping[str, MemberState] = field(default_factory=dict)

    @property
    def state(self) -> SearchState:
        """The record's current status code."""
        return self.statuses[-1].status_code

    def with_members(self, changed: Mapping[str, MemberState]) -> SearchRecord:
        """A copy with some members' states replaced."""
        return dataclasses.replace(self, members={**self.members, **changed})

    def adopting(self, member_id: str, upstream_id: str) -> SearchRecord:
        """A copy whose member follows the async search its provider started instead of a sync one."""
        state = dataclasses.replace(self.members[member_id], mode=MemberMode.UPSTREAM, upstream_id=upstream_id)
        return self.with_members({member_id: state})

    def derived(self) -> tuple[SearchState, str | None]:
        """The record's status from its members': done when all are; completed if any completed."""
        members = self.members
        codes = [m.status for m in members.values()]
        if all(code is SearchState.RECEIVED for code in codes):
            return SearchState.RECEIVED, None
        if not all(code.terminal for code in codes):
            return SearchState.IN_PROGRESS, None
        if SearchState.COMPLETED in codes:
            failed = [pid for pid, m in members.items() if m.status is not SearchState.COMPLETED]
            cut = [pid for pid, m in members.items() if m.status is SearchState.COMPLETED and m.truncated]
            notes = [f"no results from {', '.join(failed)}"] if failed else []
            if cut:
                notes.append(f"not every result kept from {', '.join(cut)}")
            return SearchState.COMPLETED, "; ".join(notes) or None
        if all(code is SearchState.CANCELLED for code in codes):
            return SearchState.CANCELLED, "every provider cancelled the search"
        reasons = "; ".join(f"{pid}: {m.reason or m.status}" for pid, m in members.items())
        return SearchState.FAILED, reasons

    def advanced(self) -> tuple[SearchRecord, bool]:
        """The record with a status appended if its members changed its status, and whether they did."""
        code, reason = self.derived()
        if self.state is code:
            return self, False
        return dataclasses.replace(self, statuses=(*self.statuses, SearchStatus.now(code, reason))), True

    def missing(self) -> list[str]:
        """Provider ids of members that ended without results, and the providers an upstream gateway
        said a member's result lacks, namespaced (`g1:bravo`)."""
        members = self.members.items()
        missing = [pid.split(":", 1)[0] for pid, m in members if m.status is not SearchState.COMPLETED]
        for member_id, state in members:
            if state.status is SearchState.COMPLETED:
                provider = member_id.split(":", 1)[0]
                missing.extend(f"{provider}:{behind}" for behind in state.missing)
        return list(dict.fromkeys(missing))


def new_record(product_id: str, search: JSONObject, member_ids: list[str], client: str) -> SearchRecord:
    """A freshly received record with one member per provider product, owned by `client`."""
    return SearchRecord(
        id=uuid.uuid4().hex,
        client=client,
        product_id=product_id,
        opportunity_request={**search, "next": None},
        statuses=(SearchStatus.now(SearchState.RECEIVED),),
        created=time.time(),
        members={pid: MemberState() for pid in member_ids},
    )


def _member_json(state: MemberState) -> JSONObject:
    out: JSONObject = {
        "mode": None if state.mode is None else str(state.mode),
        "status": str(state.status),
        "upstream_id": state.upstream_id,
        "reason": state.reason,
        "attempts": state.attempts,
        "collection_id": state.collection_id,
        "page": state.page,
        "pages": state.pages,
        "count": state.count,
        "truncated": state.truncated,
        "missing": list(state.missing),
    }
    if state.legacy_result is not None:
        out["legacy_result"] = state.legacy_result
    return out


def encode_record(record: SearchRecord) -> bytes:
    """The stored form of a record (the JSON the previous layout wrote, key for key)."""
    return orjson.dumps(
        {
            "id": record.id,
            "client": record.client,
            "product_id": record.product_id,
            "opportunity_request": record.opportunity_request,
            "statuses": [s.to_json() for s in record.statuses],
            "created": record.created,
            "members": {pid: _member_json(state) for pid, state in record.members.items()},
        }
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


# Looked up, not called: an enum's constructor costs a microsecond, and a record read (every poll
# of a search record) decodes a dozen of them.
_STATES = {state.value: state for state in SearchState}
_MODES = {mode.value: mode for mode in MemberMode}


def _state(value: Any) -> SearchState:
    return _STATES.get(value) or SearchState(value)


def _status(raw: JSONObject) -> SearchStatus:
    return SearchStatus(
        timestamp=str(raw["timestamp"]),
        status_code=_state(raw["status_code"]),
        reason_text=_optional_str(raw.get("reason_text")),
        reason_code=_optional_str(raw.get("reason_code")),
        links=tuple(raw.get("links") or ()),
    )


def _member(raw: JSONObject, legacy_result: int | None = None) -> MemberState:
    # Keys a layout did not write yet take their defaults.
    mode = raw.get("mode")
    found = raw.get("legacy_result", legacy_result)
    return MemberState(
        mode=None if mode is None else _MODES.get(mode) or MemberMode(mode),
        status=_state(raw.get("status", SearchState.RECEIVED)),
        upstream_id=_optional_str(raw.get("upstream_id")),
        reason=_optional_str(raw.get("reason")),
        attempts=int(raw.get("attempts") or 0),
        collection_id=_optional_str(raw.get("collection_id")),
        page=_optional_str(raw.get("page")),
        pages=int(raw.get("pages") or 0),
        count=int(raw.get("count") or 0),
        truncated=bool(raw.get("truncated")),
        missing=tuple(str(m) for m in raw.get("missing") or ()),
        legacy_result=None if found is None else int(found),
    )


def _members(raw: Any) -> dict[str, MemberState]:
    if isinstance(raw, list):
        # The first layout: a list matched by position; a completed member's result was kept at
        # its position, where `legacy_result` finds it.
        return {
            str(old["product_id"]): _member(old, index if old.get("status") == SearchState.COMPLETED else None)
            for index, old in enumerate(raw)
        }
    return {str(pid): _member(state) for pid, state in raw.items()}


def decode_record(data: bytes) -> SearchRecord:
    """A stored record, in this layout or either previous one."""
    raw: JSONObject = orjson.loads(data)
    return SearchRecord(
        id=str(raw["id"]),
        client=_optional_str(raw.get("client")),
        product_id=str(raw["product_id"]),
        opportunity_request=dict(raw["opportunity_request"]),
        statuses=tuple(_status(s) for s in raw["statuses"]),
        created=float(raw["created"]),
        members=_members(raw["members"]),
    )
