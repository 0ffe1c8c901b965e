"""Paging one list across many providers, each with its own page tokens.

Every provider keeps a position: its own page token, how many items of that page the client
has already seen, and the page size that token was first asked with (so the skip stays valid).
A gateway page interleaves the providers' items round-robin in configuration order; providers
that fail keep their position, so a later page picks them up and nothing is visited twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.base import Page
from gateway.domain.errors import InvalidCursor


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


def _round_robin(fresh: dict[str, list[dict[str, Any]]], limit: int) -> list[tuple[str, dict[str, Any]]]:
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
        merged = _round_robin(fresh, limit)
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
