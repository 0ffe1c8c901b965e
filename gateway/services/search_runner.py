"""The background work behind asynchronous searches: start, poll, emulate, collect, merge.

Any replica may advance any record: the work on one record is serialised by a lock in the store,
a poller in every process picks up records whose refresh is due (so a restart or a lost replica
strands nothing), and one advance is bounded by the gateway deadline. Reads never wait for this
work.

A record keeps each member's whole result, up to `max_results` opportunities: an emulated search
follows the provider's `next` pages of the synchronous search, an upstream one the pages of the
provider's collection (a gateway upstream pages it). Pages are fetched while half of the
advance's deadline is left; the rest wait for the next advance, which resumes from the token
kept in the member's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace
from typing import Any

import structlog

from adapters.base import (
    DeliberateError,
    InvalidRequest,
    NotFound,
    ProviderInvalidPayload,
    RequestValidationFailed,
    SearchMode,
    SearchResult,
)
from adapters.scrub import printable
from gateway.aio.tasks import cancel_all, stop_task
from gateway.domain import ids, merge
from gateway.domain.errors import StoreUnavailable
from gateway.domain.events import EventSink, NoEvents, search_event
from gateway.domain.federation import Member
from gateway.domain.opportunities import MAX_LIMIT, collection_id_of, namespace_opportunity, upstream_request
from gateway.domain.records import BASE_PLACEHOLDER, MemberMode, MemberState, SearchRecord, SearchState
from gateway.obs.metrics import Metrics
from gateway.services.catalogue import Catalogue
from gateway.services.fanout import Deadline, call_one
from gateway.services.search_records import SearchRecords
from gateway.upstream.context import request_id
from gateway.upstream.stamp import new_request_id

log = structlog.get_logger("gateway.searches")

MAX_ATTEMPTS = 3
# A record whose advance crashed (a bug) is tried again this much later, not at every poll: the
# poller reads only the head of the due index, which such records would otherwise fill.
CRASH_RETRY_S = 60.0
# Failures that another attempt cannot mend.
_FINAL = (NotFound, RequestValidationFailed, InvalidRequest)


@dataclass(slots=True)
class _Step:
    """One member's state as a round of work moves it on; what it reached stays when a later call fails."""

    record: SearchRecord
    member_id: str
    state: MemberState


class SearchRunner:
    """Advances unfinished search records in the background, a bounded number at a time."""

    def __init__(
        self,
        records: SearchRecords,
        catalogue: Catalogue,
        metrics: Metrics,
        *,
        concurrency: int,
        refresh_s: float,
        deadline_s: float,
        max_results: int = 1000,
        events: EventSink | None = None,
    ) -> None:
        self.records = records
        self.events: EventSink = events or NoEvents()
        self.metrics = metrics
        self.catalogue = catalogue
        self._slots = asyncio.Semaphore(concurrency)
        self._refresh_s = refresh_s
        self._deadline_s = deadline_s
        self._max_results = max_results
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling for due records."""
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling and cancel work in flight (its records stay due for the next process)."""
        # stop_task cancels until the poller has ended: a Redis call cancelled mid-read may surface
        # as a store error the poller survives, which once kept shutdown waiting for ever.
        await stop_task(self._poller)
        await cancel_all(self._tasks)

    def kick(self, record_id: str) -> None:
        """Advance a record soon, unless this process already is."""
        if record_id in self._running:
            return
        self._running.add(record_id)
        task = asyncio.create_task(self._guarded(record_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, record_id: str) -> None:
        if request_id.get() is None:  # started by the poller, not by a client's request
            request_id.set(new_request_id("search"))
        try:
            async with self._slots:
                await self.advance(record_id)
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels("search_advance").inc()
            log.warning("search_advance_failed", record=record_id, detail=exc.detail)
        except Exception:
            log.exception("search_advance_crashed", record=record_id)
            with contextlib.suppress(StoreUnavailable):  # then it stays due: tried at the next poll
                await self.records.postpone(record_id, time.time() + CRASH_RETRY_S)
        finally:
            self._running.discard(record_id)

    async def _poll(self) -> None:
        interval = min(1.0, self._refresh_s / 2)
        while True:
            try:
                for record_id in await self.records.due(limit=100):
                    self.kick(record_id)
            except StoreUnavailable as exc:
                self.metrics.store_errors.labels("search_poll").inc()
                log.warning("search_poll_failed", detail=exc.detail)
            await asyncio.sleep(interval)

    async def advance(self, record_id: str) -> None:
        """One round of work on a record: every unfinished member moves on."""
        token = await self.records.lock(record_id, self._deadline_s + 5)
        if token is None:
            return
        try:
            record = await self.records.load(record_id)
            if record is None or record.state.terminal:
                # Its last save may have stopped before leaving the due index: leave it now, or it
                # stays at the head of the index, due for ever.
                await self.records.unschedule(record_id)
                return
            deadline = Deadline(self._deadline_s)
            # The record's own members, whatever the federated product's members are now.
            steps = [_Step(record, mid, state) for mid, state in record.members.items() if not state.status.terminal]
            await asyncio.gather(*(self._step(step, deadline) for step in steps))
            record, changed = record.with_members({step.member_id: step.state for step in steps}).advanced()
            code = record.state
            if changed:
                self.metrics.search_records.labels(code).inc()
            if code is SearchState.COMPLETED:
                await self._finish(record)
            if changed and code.terminal and record.client is not None:
                # Stored in the outbox before the record: a crash between them republishes the same id.
                status = {**record.statuses[-1].to_json(), "links": []}
                await self.events.publish([search_event(record.client, record.id, record.product_id, status)])
            await self.records.save(record, due=None if code.terminal else time.time() + self._refresh_s)
        finally:
            await self.records.unlock(record_id, token)

    async def _step(self, step: _Step, deadline: Deadline) -> None:
        try:
            member = self.catalogue.member(step.member_id)
            if step.state.mode is None:
                caps = await self.catalogue.capabilities(member, deadline)
                step.state = replace(step.state, mode=MemberMode.UPSTREAM if caps.async_ else MemberMode.EMULATED)
            await self._search_step(step, member, deadline)
            step.state = replace(step.state, attempts=0)
        except DeliberateError as exc:
            step.state = replace(step.state, attempts=step.state.attempts + 1)
            if isinstance(exc, _FINAL) or step.state.attempts >= MAX_ATTEMPTS:
                if step.state.pages:
                    # Some pages were kept: they are the result, marked as not the whole one.
                    step.state = replace(step.state, status=SearchState.COMPLETED, truncated=True, reason=exc.detail)
                else:
                    step.state = replace(step.state, status=SearchState.FAILED, reason=exc.detail)
            log.info("search_member_error", record=step.record.id, member=step.member_id, code=exc.code)

    async def _search_step(self, step: _Step, member: Member, deadline: Deadline) -> None:
        if step.state.pages or step.state.collection_id is not None:
            await self._collect(step, member, deadline)
            return
        adapter, pid = member.provider.adapter, member.provider.id
        upstream_id = step.state.upstream_id
        if upstream_id is None:
            mode = SearchMode.ASYNC if step.state.mode is MemberMode.UPSTREAM else SearchMode.SYNC
            payload = upstream_request(step.record.opportunity_request, None, self._page_size(step.state))
            result = await call_one(
                pid, lambda: adapter.search_opportunities(member.product_id, payload, mode), deadline
            )
            if not result.is_async:
                await self._collect(step, member, deadline, first=result)
                return
            step.state = replace(step.state, upstream_id=str(result.body["id"]))
            upstream = result.body
        else:
            upstream = await call_one(pid, lambda: adapter.get_search_record(upstream_id), deadline)
        code = upstream["status"]["status_code"]
        if code == "completed":
            collection_id = collection_id_of(upstream)
            if collection_id is None:
                reason = "the provider completed the search without an opportunities link"
                step.state = replace(step.state, status=SearchState.FAILED, reason=reason)
                return
            step.state = replace(step.state, collection_id=collection_id)
            await self._collect(step, member, deadline)
        elif code in ("failed", "cancelled"):
            # Scrubbed by the adapter; shown for the record's lifetime, so also printable and bounded.
            reason = upstream["status"].get("reason_text")
            shown = None if reason is None else printable(str(reason))
            step.state = replace(step.state, status=SearchState(code), reason=shown)
        else:
            step.state = replace(step.state, status=SearchState.IN_PROGRESS)

    def _page_size(self, state: MemberState) -> int:
        return max(1, min(MAX_LIMIT, self._max_results - state.count))

    async def _collect(
        self, step: _Step, member: Member, deadline: Deadline, first: SearchResult | None = None
    ) -> None:
        """Keep the member's result pages until the last, the cap, or half the deadline is gone."""
        while True:
            page = first if first is not None else await self._fetch_page(step, member, deadline)
            first = None
            await self._keep_page(step, member, page)
            if step.state.status is SearchState.COMPLETED or deadline.remaining() < deadline.budget_s / 2:
                return

    async def _fetch_page(self, step: _Step, member: Member, deadline: Deadline) -> SearchResult:
        adapter, pid, size = member.provider.adapter, member.provider.id, self._page_size(step.state)
        collection_id, token = step.state.collection_id, step.state.page
        if collection_id is None:
            payload = upstream_request(step.record.opportunity_request, token, size)
            result = await call_one(
                pid, lambda: adapter.search_opportunities(member.product_id, payload, SearchMode.SYNC), deadline
            )
            if result.is_async:
                raise ProviderInvalidPayload(pid, "answered a later page of a synchronous search with a search record")
            return result
        return await call_one(
            pid,
            lambda: adapter.get_opportunity_collection(member.product_id, collection_id, token=token, limit=size),
            deadline,
        )

    async def _keep_page(self, step: _Step, member: Member, page: SearchResult) -> None:
        features = list(page.body.get("features") or [])
        token = page.next_token
        state = step.state
        room = self._max_results - state.count
        kept = features[:room]
        links = member.provider.rewriter(BASE_PLACEHOLDER)
        await self.records.save_page(
            step.record.id, step.member_id, state.pages, [namespace_opportunity(f, links) for f in kept]
        )
        # A page with nothing on it, or the same token again, would have the walk go on forever.
        stuck = not features or token == state.page
        state = replace(
            state,
            pages=state.pages + 1,
            count=state.count + len(kept),
            page=token,
            status=SearchState.IN_PROGRESS,
            missing=tuple(dict.fromkeys([*state.missing, *page.missing])),
        )
        if state.count >= self._max_results:
            state = replace(state, status=SearchState.COMPLETED, truncated=len(features) > room or token is not None)
        elif token is None or stuck:
            state = replace(state, status=SearchState.COMPLETED)
        step.state = state

    async def _finish(self, record: SearchRecord) -> None:
        features: list[dict[str, Any]] = []
        for member_id, state in record.members.items():
            if state.status is SearchState.COMPLETED:
                features.extend(await self.records.load_results(record.id, member_id, state))
        if ids.split(record.product_id) is None:
            # A federated product (its id has no ':'): members merged by start time.
            features = merge.sorted_by_start_time(features)
        header: dict[str, Any] = {"type": "FeatureCollection", "id": record.id}
        missing = record.missing()
        if missing:
            header["federation:missing"] = missing
        await self.records.save_collection(record, header, features)
