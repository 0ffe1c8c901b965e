"""The background work behind asynchronous searches: start, poll, emulate, merge.

Any replica may advance any record: the work on one record is serialised by a lock in the store,
a poller in every process picks up records whose refresh is due (so a restart or a lost replica
strands nothing), and one advance does at most one upstream call per member, bounded by the
gateway deadline. Reads never wait for this work.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from adapters.base import SearchMode
from gateway.catalogue import Catalogue, Member, Target
from gateway.errors import GatewayError, InvalidRequest, NotFound, RequestValidationFailed, StoreUnavailable
from gateway.fanout import Deadline, call_one
from gateway.links import LinkRewriter
from gateway.metrics import Metrics
from gateway.opportunities import namespace_opportunity, start_key, upstream_request
from gateway.searches import BASE_PLACEHOLDER, TERMINAL, SearchRecords, advance_status, missing_members

log = structlog.get_logger("gateway.searches")

MAX_ATTEMPTS = 3
# Failures that another attempt cannot mend.
_FINAL = (NotFound, RequestValidationFailed, InvalidRequest)


def collection_id_of(record: dict[str, Any]) -> str | None:
    """The collection id in a completed upstream record's `opportunities` link."""
    for link in record.get("links") or []:
        if link.get("rel") == "opportunities":
            path = urlsplit(str(link.get("href", ""))).path.rstrip("/")
            return unquote(path.rsplit("/", 1)[-1]) or None
    return None


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
    ) -> None:
        self.records = records
        self.metrics = metrics
        self.catalogue = catalogue
        self._slots = asyncio.Semaphore(concurrency)
        self._refresh_s = refresh_s
        self._deadline_s = deadline_s
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start polling for due records."""
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling and cancel work in flight (its records stay due for the next process)."""
        # redis-py 8.1 sometimes swallows a task's cancellation mid-command; the flag ends the poll
        # loop anyway, instead of it polling on and this gather waiting for ever.
        self._stopping = True
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def kick(self, record_id: str) -> None:
        """Advance a record soon, unless this process already is."""
        if record_id in self._running:
            return
        self._running.add(record_id)
        task = asyncio.create_task(self._guarded(record_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, record_id: str) -> None:
        try:
            async with self._slots:
                await self.advance(record_id)
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels("search_advance").inc()
            log.warning("search_advance_failed", record=record_id, detail=exc.detail)
        except Exception:
            log.exception("search_advance_crashed", record=record_id)
        finally:
            self._running.discard(record_id)

    async def _poll(self) -> None:
        interval = min(1.0, self._refresh_s / 2)
        while not self._stopping:
            try:
                for record_id in await self.records.due(limit=100):
                    self.kick(record_id)
            except StoreUnavailable as exc:
                self.metrics.store_errors.labels("search_poll").inc()
                log.warning("search_poll_failed", detail=exc.detail)
            await asyncio.sleep(interval)

    async def advance(self, record_id: str) -> None:
        """One round of work on a record: every unfinished member moves on by one step."""
        token = await self.records.lock(record_id, self._deadline_s + 5)
        if token is None:
            return
        try:
            record = await self.records.load(record_id)
            if record is None or record["statuses"][-1]["status_code"] in TERMINAL:
                return
            deadline = Deadline(self._deadline_s)
            try:
                target = self.catalogue.target(record["product_id"])
            except GatewayError as exc:
                for member in record["members"]:
                    member.update(status="failed", reason=exc.detail)
                target = None
            if target is not None:
                # The record's members, not the product's: a client sees only the members on its
                # providers, and the configuration may have changed since.
                members = {m.gateway_id: m for m in target.members}
                steps = []
                for index, state in enumerate(record["members"]):
                    if state["status"] in TERMINAL:
                        continue
                    if state["product_id"] not in members:
                        state.update(status="failed", reason="no longer a member of this product")
                        continue
                    steps.append(self._step(record, index, members[state["product_id"]], deadline))
                await asyncio.gather(*steps)
            changed = advance_status(record)
            code = record["statuses"][-1]["status_code"]
            if changed:
                self.metrics.search_records.labels(code).inc()
            if code == "completed" and target is not None:
                await self._finish(record, target)
            await self.records.save(record, due=None if code in TERMINAL else time.time() + self._refresh_s)
        finally:
            await self.records.unlock(record_id, token)

    async def _step(self, record: dict[str, Any], index: int, member: Member, deadline: Deadline) -> None:
        state = record["members"][index]
        try:
            if state["mode"] is None:
                caps = await self.catalogue.capabilities(member, deadline)
                state["mode"] = "upstream" if caps.async_ else "emulated"
            await self._search_step(record, index, member, state, deadline)
            state["attempts"] = 0
        except GatewayError as exc:
            state["attempts"] += 1
            if isinstance(exc, _FINAL) or state["attempts"] >= MAX_ATTEMPTS:
                state.update(status="failed", reason=exc.detail)
            log.info("search_member_error", record=record["id"], member=member.gateway_id, code=exc.code)

    async def _search_step(
        self, record: dict[str, Any], index: int, member: Member, state: dict[str, Any], deadline: Deadline
    ) -> None:
        adapter, pid = member.provider.adapter, member.provider.id
        request = record["opportunity_request"]
        if state["upstream_id"] is None:
            mode = SearchMode.ASYNC if state["mode"] == "upstream" else SearchMode.SYNC
            payload = upstream_request(request, None, request["limit"])
            result = await call_one(
                pid, lambda: adapter.search_opportunities(member.product_id, payload, mode), deadline
            )
            if not result.is_async:
                await self._keep(record, index, member, state, result.body["features"])
                return
            state["upstream_id"] = str(result.body["id"])
            upstream = result.body
        else:
            upstream = await call_one(pid, lambda: adapter.get_search_record(state["upstream_id"]), deadline)
        code = upstream["status"]["status_code"]
        if code == "completed":
            collection_id = collection_id_of(upstream)
            if collection_id is None:
                state.update(status="failed", reason="the provider completed the search without an opportunities link")
                return
            collection = await call_one(
                pid, lambda: adapter.get_opportunity_collection(member.product_id, collection_id), deadline
            )
            await self._keep(record, index, member, state, collection["features"])
        elif code in ("failed", "cancelled"):
            state.update(status=code, reason=upstream["status"].get("reason_text"))
        else:
            state["status"] = "in_progress"

    async def _keep(
        self, record: dict[str, Any], index: int, member: Member, state: dict[str, Any], features: list[Any]
    ) -> None:
        links = LinkRewriter.of(member.provider.settings, BASE_PLACEHOLDER)
        await self.records.save_result(record["id"], index, [namespace_opportunity(f, links) for f in features])
        state["status"] = "completed"

    async def _finish(self, record: dict[str, Any], target: Target) -> None:
        features: list[dict[str, Any]] = []
        for index, state in enumerate(record["members"]):
            if state["status"] == "completed":
                features.extend(await self.records.load_result(record["id"], index))
        if target.federated is not None:
            features.sort(key=start_key)
        collection: dict[str, Any] = {"type": "FeatureCollection", "id": record["id"], "features": features}
        missing = missing_members(record)
        if missing:
            collection["federation:missing"] = missing
        await self.records.save_collection(record["id"], collection, len(record["members"]))
