"""Each provider's orders newest first, whatever order the provider lists them in.

`GET /orders` merges providers newest first, which needs every provider's part newest first.
Many providers list oldest first (stapi-fastapi 0.8.0 does), and a list cannot be read from
its end. So when a provider's first page turns out to be ascending and has more pages, the
gateway reads the provider's whole list (at most `max_pages` pages), sorts it newest first and
serves it in pages of its own. Those pages are named by a token of the gateway's, `SNAPSHOT`
+ the time the view was taken + an offset: orders created later never shift an offset, so a
client paging through sees each order once. The read list is cached for `cache_s`, so paging
on does not re-read it for every page; a new listing always reads it afresh. Providers that
list newest first pass straight through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from adapters.base import JSONObject, Page
from gateway.domain.errors import InvalidCursor
from gateway.domain.matching import created_at
from gateway.domain.merge import sorted_newest_first
from gateway.upstream.providers import Provider

log = structlog.get_logger("gateway.orders")

SNAPSHOT = "gw-newest-first:"
_READ_PAGE = 100


def _stamp(order: JSONObject) -> float:
    return created_at(order) or 0.0


def ascending(orders: list[JSONObject]) -> bool:
    """Whether a page lists older orders before newer ones."""
    stamps = [_stamp(o) for o in orders]
    return len(stamps) >= 2 and stamps[0] < stamps[-1]


def _snapshot_token(taken_at: float, offset: int) -> str:
    return f"{SNAPSHOT}{taken_at!r}:{offset}"


def _parse_snapshot(token: str) -> tuple[float, int]:
    try:
        taken_at, offset = token.removeprefix(SNAPSHOT).rsplit(":", 1)
        return float(taken_at), int(offset)
    except ValueError:
        raise InvalidCursor("The pagination cursor is malformed.") from None


@dataclass(frozen=True, slots=True)
class _Read:
    until: float
    orders: list[JSONObject]


class OrderLists:
    """Pages of providers' orders, newest first."""

    def __init__(self, *, max_pages: int = 50, cache_s: float = 10.0) -> None:
        self.max_pages = max_pages
        self.cache_s = cache_s
        self._reads: dict[str, _Read] = {}

    async def page(self, provider: Provider, token: str | None, limit: int) -> Page:
        """One page of the provider's orders newest first; `token` as this method handed it out."""
        if token is not None and token.startswith(SNAPSHOT):
            taken_at, offset = _parse_snapshot(token)
            return await self._snapshot_page(provider, taken_at, offset, limit)
        page = await provider.adapter.list_orders(token=token, limit=limit)
        if token is not None or not ascending(page.items):
            return page  # newest first already (or a page of a provider that lists so)
        if page.next_token is None:
            return Page(items=sorted_newest_first(page.items), next_token=None)
        return await self._snapshot_page(provider, time.time(), 0, limit, first=page)

    async def _snapshot_page(
        self, provider: Provider, taken_at: float, offset: int, limit: int, first: Page | None = None
    ) -> Page:
        orders = await self._read_all(provider, first)
        view = [o for o in orders if _stamp(o) <= taken_at]
        items = view[offset : offset + limit]
        more = offset + limit < len(view)
        return Page(items=items, next_token=_snapshot_token(taken_at, offset + limit) if more else None)

    async def _read_all(self, provider: Provider, first: Page | None) -> list[JSONObject]:
        cached = self._reads.get(provider.id)
        now = time.monotonic()
        # A first page (`first` given) reads afresh, so a new listing sees new orders at once.
        if first is None and cached is not None and cached.until > now:
            return cached.orders
        page = first or await provider.adapter.list_orders(token=None, limit=_READ_PAGE)
        orders, pages = list(page.items), 1
        while page.next_token is not None and pages < self.max_pages:
            page = await provider.adapter.list_orders(token=page.next_token, limit=_READ_PAGE)
            orders.extend(page.items)
            pages += 1
        if page.next_token is not None:
            log.warning("order_list_truncated", provider=provider.id, pages=pages, orders=len(orders))
        self._reads[provider.id] = _Read(now + self.cache_s, sorted_newest_first(orders))
        return self._reads[provider.id].orders
