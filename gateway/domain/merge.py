"""Every order the gateway puts merged lists in, and paging one list across many providers.

The orderings, each a named function here and nowhere else:
- `round_robin`: products, interleaved in configuration order;
- start time (`start_time_key`, `by_start_time`, `sorted_by_start_time`): a federated product's
  opportunities, in a synchronous search and in an asynchronous search's stored collection;
- newest first (`newest_first_key`, `by_newest`, `sorted_newest_first`): orders.

Every provider keeps a position: its own page token, how many items of that page the client
has already seen, and the page size that token was first asked with (so the skip stays valid).
Providers that fail keep their position, so a later page picks them up and nothing is visited twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.base import JSONObject, Page
from gateway.domain import ids
from gateway.domain.errors import InvalidCursor
from gateway.domain.matching import created_at


@dataclass(frozen=True, slots=True)
class Position:
    """Where one provider's part of a merged list stands."""

    token: str | None
    skip: int
    size: int

    def dump(self) -> list[Any]:
        """Compact form for a cursor."""
        return [self.token, self.skip, self.size]

    @classmethod
    def load(cls, raw: Any) -> Position:
        """Parse the compact form; InvalidCursor if it is not one."""
        if not (isinstance(raw, list) and len(raw) == 3):
            raise InvalidCursor("The pagination cursor is malformed.")
        token, skip, size = raw
        if not (token is None or isinstance(token, str)) or not isinstance(skip, int) or not isinstance(size, int):
            raise InvalidCursor("The pagination cursor is malformed.")
        if skip < 0 or not 1 <= size <= 1000:
            raise InvalidCursor("The pagination cursor is malformed.")
        return cls(token, skip, size)


def start(provider_ids: list[str], size: int) -> dict[str, Position]:
    """Every provider at its first page."""
    return {pid: Position(None, 0, size) for pid in provider_ids}


def load_state(state: Any, known: list[str]) -> dict[str, Position]:
    """Positions from a decoded cursor; providers no longer configured are dropped."""
    if not isinstance(state, dict) or not isinstance(state.get("p"), dict):
        raise InvalidCursor("The pagination cursor is malformed.")
    positions = {pid: Position.load(raw) for pid, raw in state["p"].items()}
    return {pid: positions[pid] for pid in known if pid in positions}


def dump_state(positions: dict[str, Position]) -> dict[str, Any]:
    """The cursor state for these positions."""
    return {"p": {pid: pos.dump() for pid, pos in positions.items()}}


# Sort key of an item, given the source it came from (so ties can be broken by namespaced id).
SortKey = Callable[[str, dict[str, Any]], Any]


def start_time_key(opportunity: JSONObject, provider_id: str | None = None) -> tuple[float, str]:
    """Sort key of an opportunity: start of its interval, then its namespaced id.

    `provider_id` namespaces the id of an opportunity not namespaced yet, so raw and namespaced
    opportunities sort alike.
    """
    interval = str(opportunity.get("properties", {}).get("datetime", ""))
    try:
        start = datetime.fromisoformat(interval.split("/")[0].replace("Z", "+00:00")).timestamp()
    except ValueError:
        start = float("inf")
    opportunity_id = str(opportunity.get("id", ""))
    return start, ids.namespaced(provider_id, opportunity_id) if provider_id else opportunity_id


def by_start_time(provider_of: Mapping[str, str]) -> SortKey:
    """`merge_page`'s key for providers' raw opportunities; `provider_of` maps each source to its provider."""
    return lambda source, opportunity: start_time_key(opportunity, provider_of[source])


def sorted_by_start_time(opportunities: Iterable[JSONObject]) -> list[JSONObject]:
    """Namespaced opportunities by start time, ties by id."""
    return sorted(opportunities, key=start_time_key)


def newest_first_key(order: JSONObject) -> tuple[float, str]:
    """Sort key putting the most recently created order first, ties by id."""
    return -(created_at(order) or 0.0), str(order.get("id", ""))


def by_newest(source: str, order: JSONObject) -> tuple[float, str]:
    """`merge_page`'s key for orders: newest first, whichever provider they came from."""
    return newest_first_key(order)


def sorted_newest_first(orders: Iterable[JSONObject]) -> list[JSONObject]:
    """Orders newest first, ties by id (a stable order across reads)."""
    return sorted(orders, key=newest_first_key)


def round_robin(fresh: Mapping[str, list[JSONObject]], limit: int) -> list[tuple[str, JSONObject]]:
    """At most `limit` items, one from each source in turn (in the mapping's order) while any has more."""
    merged: list[tuple[str, dict[str, Any]]] = []
    depth = 0
    while len(merged) < limit and any(depth < len(items) for items in fresh.values()):
        merged.extend((pid, items[depth]) for pid, items in fresh.items() if depth < len(items))
        depth += 1
    return merged[:limit]


def _sorted(
    fresh: dict[str, list[dict[str, Any]]], limit: int, key: SortKey, more: set[str]
) -> list[tuple[str, dict[str, Any]]]:
    """A k-way merge of each provider's items in key order, taking a prefix of each list.

    It stops where a provider with further pages runs out of fetched items: its next page may
    hold smaller keys, so going on would break the order across gateway pages.
    """
    if any(pid in more and not items for pid, items in fresh.items()):
        return []
    heap = [(key(pid, items[0]), pid, 0) for pid, items in fresh.items() if items]
    heapq.heapify(heap)
    merged: list[tuple[str, dict[str, Any]]] = []
    while heap and len(merged) < limit:
        _, pid, index = heapq.heappop(heap)
        merged.append((pid, fresh[pid][index]))
        if index + 1 < len(fresh[pid]):
            heapq.heappush(heap, (key(pid, fresh[pid][index + 1]), pid, index + 1))
        elif pid in more:
            break
    return merged


def merge_page(
    positions: dict[str, Position], pages: dict[str, Page], limit: int, key: SortKey | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Position]]:
    """One gateway page from the providers' pages, and every provider's position after it.

    Items interleave round-robin in provider order, or, with `key`, in key order. `positions`
    holds the providers still to visit; a provider without a page (it failed) keeps its
    position. A provider whose part is exhausted drops out of the result positions.
    """
    fresh = {pid: page.items[positions[pid].skip :] for pid, page in pages.items()}
    if key is None:
        merged = round_robin(fresh, limit)
    else:
        merged = _sorted(fresh, limit, key, {pid for pid, page in pages.items() if page.next_token is not None})
    taken = dict.fromkeys(fresh, 0)
    for pid, _ in merged:
        taken[pid] += 1
    after: dict[str, Position] = {}
    for pid, pos in positions.items():
        page = pages.get(pid)
        if page is None:
            after[pid] = pos
        elif taken[pid] < len(fresh[pid]):
            after[pid] = Position(pos.token, pos.skip + taken[pid], pos.size)
        elif page.next_token is not None:
            after[pid] = Position(page.next_token, 0, limit)
    # Failed providers ride along only while others still have items: a last page that exists
    # only to retry them would end a client's walk in an error or loop it forever.
    if not any(pid in pages for pid in after):
        after = {}
    return merged, after
