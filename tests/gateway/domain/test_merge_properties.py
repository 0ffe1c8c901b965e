"""Property tests of every merge ordering, walked page by page the way clients walk merged lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from adapters.base import JSONObject, Page
from gateway.domain import merge

PROVIDERS = st.lists(st.sampled_from("abcde"), min_size=1, max_size=4, unique=True)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def numbered(pid: str, count: int) -> list[JSONObject]:
    """`count` distinct items of one provider, in its own order."""
    return [{"id": f"{pid}{i}"} for i in range(count)]


@st.composite
def provider_lists(draw: st.DrawFn) -> dict[str, list[JSONObject]]:
    """Each provider's whole list, in configuration order."""
    return {pid: numbered(pid, draw(st.integers(0, 12))) for pid in draw(PROVIDERS)}


def fetch(items: list[JSONObject], pos: merge.Position) -> Page:
    """A provider's page at a position: its token is an offset, as a provider's may be."""
    start = int(pos.token or 0)
    more = start + pos.size < len(items)
    return Page(items=items[start : start + pos.size], next_token=str(start + pos.size) if more else None)


def walk(
    lists: dict[str, list[JSONObject]], limit: int, key: merge.SortKey | None = None
) -> list[tuple[str, JSONObject]]:
    """Every gateway page from the first to the last, its positions passed through a cursor state."""
    positions = merge.start(list(lists), limit)
    seen: list[tuple[str, JSONObject]] = []
    for _ in range(500):
        pages = {pid: fetch(lists[pid], pos) for pid, pos in positions.items()}
        merged, after = merge.merge_page(positions, pages, limit, key=key)
        seen.extend(merged)
        if not after:
            return seen
        positions = merge.load_state(merge.dump_state(after), list(lists))
    raise AssertionError("the walk never ended")


def each_once_in_order(lists: dict[str, list[JSONObject]], seen: list[tuple[str, JSONObject]]) -> None:
    """Every item appears exactly once, and each provider's items in that provider's order."""
    assert sorted(item["id"] for _, item in seen) == sorted(item["id"] for items in lists.values() for item in items)
    for pid, items in lists.items():
        assert [item for source, item in seen if source == pid] == items


@given(provider_lists(), st.integers(1, 20))
def test_round_robin_keeps_every_item_once_in_each_providers_order(
    lists: dict[str, list[JSONObject]], limit: int
) -> None:
    """One call: at most `limit` items, round by round; no item twice, none reordered within a provider."""
    merged = merge.round_robin(lists, limit)
    assert len(merged) == min(limit, sum(map(len, lists.values())))
    depths = [int(item["id"][1:]) for _, item in merged]
    assert depths == sorted(depths)
    for pid, items in lists.items():
        mine = [item for source, item in merged if source == pid]
        assert mine == items[: len(mine)]


@given(provider_lists(), st.integers(1, 7))
def test_round_robin_paging_visits_every_item_once(lists: dict[str, list[JSONObject]], limit: int) -> None:
    """Walking every gateway page of a round-robin merge visits each item once, per-provider order kept."""
    each_once_in_order(lists, walk(lists, limit))


def opportunity(pid: str, i: int, hours: int) -> JSONObject:
    """A raw provider opportunity starting `hours` after the epoch."""
    start = (EPOCH + timedelta(hours=hours)).isoformat()
    return {"id": f"o{i}", "properties": {"datetime": f"{start}/{start}"}, "pid": pid}


@st.composite
def opportunity_lists(draw: st.DrawFn) -> dict[str, list[JSONObject]]:
    """Each provider's opportunities, sorted by start as providers list them (ties likely)."""
    lists = {}
    for pid in draw(PROVIDERS):
        hours = sorted(draw(st.lists(st.integers(0, 30), max_size=10)))
        lists[pid] = [opportunity(pid, i, h) for i, h in enumerate(hours)]
    return lists


@given(opportunity_lists(), st.integers(1, 7))
def test_start_time_paging_is_sorted_and_a_permutation(lists: dict[str, list[JSONObject]], limit: int) -> None:
    """A federated search walked page by page: globally by start then namespaced id, each item once."""
    key = merge.by_start_time({pid: pid for pid in lists})
    seen = walk(lists, limit, key)
    each_once_in_order(lists, seen)
    keys = [merge.start_time_key(item, source) for source, item in seen]
    assert keys == sorted(keys)


@given(st.lists(st.tuples(st.sampled_from(["a:1", "b:2", "c:3"]), st.integers(0, 50)), max_size=30))
def test_sorted_by_start_time_is_sorted_and_a_permutation(entries: list[tuple[str, int]]) -> None:
    """A stored collection's whole list: the same opportunities, in start-time order."""
    features = [opportunity("x", i, hours) | {"id": f"{name}-{i}"} for i, (name, hours) in enumerate(entries)]
    out = merge.sorted_by_start_time(features)
    assert sorted(map(str, out)) == sorted(map(str, features))
    keys = [merge.start_time_key(f) for f in out]
    assert keys == sorted(keys)


def order(pid: str, i: int, minutes: int | None) -> JSONObject:
    """An order created `minutes` after the epoch (None: no readable creation time)."""
    created = None if minutes is None else (EPOCH + timedelta(minutes=minutes)).isoformat()
    return {"id": f"{pid}:{i}", "properties": {"created": created}}


@st.composite
def order_lists(draw: st.DrawFn) -> dict[str, list[JSONObject]]:
    """Each provider's orders, newest first as order_lists hands them to the merge."""
    lists = {}
    for pid in draw(PROVIDERS):
        minutes = draw(st.lists(st.one_of(st.none(), st.integers(0, 40)), max_size=10))
        lists[pid] = merge.sorted_newest_first([order(pid, i, m) for i, m in enumerate(minutes)])
    return lists


@given(order_lists(), st.integers(1, 7))
def test_newest_first_paging_is_newest_first_and_a_permutation(lists: dict[str, list[JSONObject]], limit: int) -> None:
    """GET /orders walked page by page: creation time never rises, ties by id, each order once."""
    seen = walk(lists, limit, merge.by_newest)
    each_once_in_order(lists, seen)
    keys = [merge.newest_first_key(item) for _, item in seen]
    assert keys == sorted(keys)


@given(st.lists(st.one_of(st.none(), st.integers(0, 40)), max_size=30))
def test_sorted_newest_first_is_newest_first_and_a_permutation(minutes: list[int | None]) -> None:
    """One provider's whole list: the same orders, newest first, unreadable times last."""
    orders = [order("p", i, m) for i, m in enumerate(minutes)]
    out = merge.sorted_newest_first(orders)
    assert sorted(o["id"] for o in out) == sorted(o["id"] for o in orders)
    stamps = [-merge.newest_first_key(o)[0] for o in out]
    assert stamps == sorted(stamps, reverse=True)
