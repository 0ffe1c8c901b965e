"""Contract tests every `Store` implementation must pass, plus Redis-only failure handling."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from gateway.domain.errors import StoreUnavailable
from gateway.store import MemoryStore, RedisStore, Store, open_store
from tests.gateway.store.conftest import StoreFactory

# Ties on purpose, and members whose str order differs from naive expectations ("B" < "a",
# non-ASCII last) so both stores must agree on (score, member) order.
INDEX_ENTRIES: list[tuple[str, float]] = [
    ("m-a", 1.0),
    ("m-c", 1.0),
    ("m-b", 1.0),
    ("B", 2.5),
    ("a", 2.5),
    ("é", 2.5),
    ("solo", 3.0),
    ("x", -4.0),
    ("y", 10.0),
    ("z", 10.0),
]
ASCENDING = sorted(INDEX_ENTRIES, key=lambda entry: (entry[1], entry[0]))


async def _fill_index(store: Store, index: str = "idx") -> None:
    shuffled = INDEX_ENTRIES[:]
    random.Random(7).shuffle(shuffled)
    for member, score in shuffled:
        await store.index_add(index, member, score)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- plain keys ------------------------------------------------------------------------


async def test_get_set_delete(store: Store) -> None:
    """Values round-trip as bytes, overwrite, and delete reports whether the key existed."""
    assert await store.get("k") is None
    await store.set("k", b"\x00one")
    assert await store.get("k") == b"\x00one"
    await store.set("k", b"two")
    assert await store.get("k") == b"two"
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.get("k") is None


async def test_ttl_expiry(store: Store) -> None:
    """Keys and indexes given a TTL vanish after it; keys without one stay."""
    # TTLs long enough that a loaded machine still reads the key before it expires.
    await store.set("short", b"v", ttl_s=0.5)
    await store.set_if_absent("lock", b"me", ttl_s=0.5)
    await store.index_add("idx", "m", 1.0, ttl_s=0.5)
    await store.set("forever", b"v")
    assert await store.get("short") == b"v"
    await asyncio.sleep(0.8)
    assert await store.get("short") is None
    assert await store.get("lock") is None
    assert await store.set_if_absent("lock", b"you") is True
    assert await store.index_page("idx", limit=10) == []
    assert await store.get("forever") == b"v"


async def test_set_without_ttl_clears_previous_ttl(store: Store) -> None:
    """A plain set makes a key permanent again, as Redis SET does."""
    await store.set("k", b"old", ttl_s=0.2)
    await store.set("k", b"new")
    await asyncio.sleep(0.4)
    assert await store.get("k") == b"new"


async def test_set_if_absent_keeps_first_value(store: Store) -> None:
    """Only the first set_if_absent stores its value; later ones change nothing."""
    assert await store.set_if_absent("k", b"first") is True
    assert await store.set_if_absent("k", b"second") is False
    assert await store.get("k") == b"first"


async def test_set_if_absent_race_has_one_winner(store: Store) -> None:
    """Of 20 concurrent set_if_absent calls exactly one wins, and its value is stored."""
    results = await asyncio.gather(*(store.set_if_absent("lock", f"{i}".encode()) for i in range(20)))
    assert results.count(True) == 1
    assert await store.get("lock") == str(results.index(True)).encode()


async def test_delete_if_equals(store: Store) -> None:
    """Compare-and-delete removes the key only while it holds the given value."""
    await store.set("lock", b"owner-1")
    assert await store.delete_if_equals("lock", b"owner-2") is False
    assert await store.get("lock") == b"owner-1"
    assert await store.delete_if_equals("lock", b"owner-1") is True
    assert await store.get("lock") is None
    assert await store.delete_if_equals("lock", b"owner-1") is False


async def test_invalid_ttl_is_rejected(store: Store) -> None:
    """Zero or negative TTLs are a programming error in every implementation."""
    with pytest.raises(ValueError, match="ttl_s"):
        await store.set("k", b"v", ttl_s=0)
    with pytest.raises(ValueError, match="ttl_s"):
        await store.index_add("idx", "m", 1.0, ttl_s=-1)


# --- sorted indexes --------------------------------------------------------------------


async def test_index_orders_by_score_then_member(store: Store) -> None:
    """Full pages list (score, member) order ascending, and its exact reverse descending."""
    await _fill_index(store)
    assert await store.index_page("idx", limit=100) == ASCENDING
    assert await store.index_page("idx", limit=100, descending=True) == ASCENDING[::-1]
    assert await store.index_page("idx", limit=3) == ASCENDING[:3]
    assert await store.index_page("idx", limit=0) == []
    assert await store.index_page("missing", limit=5) == []


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 3, 4, 100])
async def test_index_paging_visits_every_member_once(store: Store, descending: bool, limit: int) -> None:
    """Following `after` from page to page yields every member once, in order, ties included."""
    await _fill_index(store)
    seen: list[tuple[str, float]] = []
    after: tuple[float, str] | None = None
    while page := await store.index_page("idx", limit=limit, after=after, descending=descending):
        assert len(page) <= limit
        seen.extend(page)
        member, score = page[-1]
        after = (score, member)
    assert seen == (ASCENDING[::-1] if descending else ASCENDING)


async def test_index_after_a_position_no_member_holds(store: Store) -> None:
    """A cursor whose member was removed still resumes at the right place in both directions."""
    await _fill_index(store)
    await store.index_remove("idx", "a")
    assert await store.index_page("idx", limit=2, after=(2.5, "a")) == [("é", 2.5), ("solo", 3.0)]
    assert await store.index_page("idx", limit=2, after=(2.5, "a"), descending=True) == [
        ("B", 2.5),
        ("m-c", 1.0),
    ]
    assert await store.index_page("idx", limit=2, after=(10.0, "z")) == []
    assert await store.index_page("idx", limit=1, after=(-4.0, "x"), descending=True) == []


async def test_index_add_moves_and_remove_deletes(store: Store) -> None:
    """Re-adding a member moves it to its new score; removal is silent for absent members."""
    await store.index_add("idx", "a", 1.0)
    await store.index_add("idx", "b", 2.0)
    await store.index_add("idx", "a", 3.0)
    assert await store.index_page("idx", limit=10) == [("b", 2.0), ("a", 3.0)]
    await store.index_remove("idx", "b")
    await store.index_remove("idx", "never-added")
    await store.index_remove("missing-index", "a")
    assert await store.index_page("idx", limit=10) == [("a", 3.0)]


async def test_index_remove_below_drops_only_lower_scores(store: Store) -> None:
    """Members scored below the cut go (how many is the answer); one at the cut and above stay."""
    for member, score in (("a", 1.0), ("b", 2.0), ("c", 2.5), ("d", 3.0)):
        await store.index_add("idx", member, score)
    assert await store.index_remove_below("idx", 2.5) == 2
    assert await store.index_page("idx", limit=10) == [("c", 2.5), ("d", 3.0)]
    assert await store.index_remove_below("idx", 0.0) == 0
    assert await store.index_remove_below("missing-index", 9.0) == 0
    assert await store.index_remove_below("idx", 9.0) == 2
    assert await store.index_count("idx") == 0


async def test_keys_and_indexes_do_not_clash(store: Store) -> None:
    """A key and an index may share a name."""
    await store.set("same", b"v")
    await store.index_add("same", "m", 1.0)
    assert await store.get("same") == b"v"
    assert await store.index_page("same", limit=1) == [("m", 1.0)]


async def test_prefix_isolation(make_store: StoreFactory) -> None:
    """Stores with different prefixes never see each other's keys or indexes."""
    one, two = make_store("one:"), make_store("two:")
    await one.set("k", b"from-one")
    await two.set("k", b"from-two")
    await one.index_add("idx", "only-in-one", 1.0)
    assert await one.get("k") == b"from-one"
    assert await two.get("k") == b"from-two"
    assert await two.index_page("idx", limit=10) == []
    assert await two.delete("k") is True
    assert await one.get("k") == b"from-one"
    assert await two.set_if_absent("k", b"again") is True


async def test_ping(store: Store) -> None:
    """A reachable store answers ping without raising."""
    await store.ping()


# --- factory and Redis failures --------------------------------------------------------


async def test_open_store_picks_implementation_by_scheme() -> None:
    """memory:// gives a MemoryStore, Redis schemes a RedisStore, anything else ValueError."""
    assert isinstance(open_store("memory://"), MemoryStore)
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///tmp/nowhere.sock"):
        store = open_store(url, prefix="p:")
        assert isinstance(store, RedisStore)
        assert store.prefix == "p:"
        await store.aclose()
    with pytest.raises(ValueError, match="Unsupported store URL") as info:
        open_store("postgres://user:s3cret@db/x")
    assert "s3cret" not in str(info.value)


async def test_unreachable_redis_raises_store_unavailable_without_password() -> None:
    """Connection failures surface as StoreUnavailable and never echo the URL's password."""
    store = open_store(f"redis://:s3cret@127.0.0.1:{_unused_port()}/0")
    try:
        with pytest.raises(StoreUnavailable) as from_ping:
            await store.ping()
        with pytest.raises(StoreUnavailable) as from_get:
            await store.get("k")
    finally:
        await store.aclose()
    for info in (from_ping, from_get):
        assert "s3cret" not in str(info.value)
        assert "127.0.0.1" in info.value.detail


# --- compare-and-set and durability ------------------------------------------------------


async def test_set_if_equals_replaces_only_what_was_read(store: Store) -> None:
    """Compare-and-set: the expected value is replaced, any other is left alone, absent stays absent."""
    assert not await store.set_if_equals("cas", b"old", b"new")
    assert await store.get("cas") is None
    await store.set("cas", b"old")
    assert await store.set_if_equals("cas", b"old", b"new", ttl_s=30)
    assert not await store.set_if_equals("cas", b"old", b"newer")
    assert await store.get("cas") == b"new"


async def test_set_if_equals_ttl_is_set_or_cleared(store: Store) -> None:
    """A TTL given with the swap applies; none given makes the key permanent, like set()."""
    await store.set("cas-ttl", b"a", ttl_s=0.5)
    assert await store.set_if_equals("cas-ttl", b"a", b"b")
    await asyncio.sleep(0.6)
    assert await store.get("cas-ttl") == b"b"
    assert await store.set_if_equals("cas-ttl", b"b", b"c", ttl_s=0.2)
    await asyncio.sleep(0.3)
    assert await store.get("cas-ttl") is None


async def test_set_if_equals_race_has_one_winner(store: Store) -> None:
    """Twenty writers that all read the same value: exactly one swap succeeds."""
    await store.set("cas-race", b"start")
    results = await asyncio.gather(*(store.set_if_equals("cas-race", b"start", str(i).encode()) for i in range(20)))
    assert sum(results) == 1
    winner = results.index(True)
    assert await store.get("cas-race") == str(winner).encode()


async def test_durability_problems_are_sentences(store: Store) -> None:
    """The memory store always warns (a restart forgets); each problem is a sentence naming a setting."""
    problems = await store.durability_problems()
    if isinstance(store, MemoryStore):
        assert problems
    assert all(isinstance(p, str) and len(p) > 20 for p in problems)


# --- counting --------------------------------------------------------------------------


async def test_index_count_counts_members_once(store: Store) -> None:
    """0 for an index never written; each member once however often it moves; removals and emptying count down."""
    assert await store.index_count("never") == 0
    await _fill_index(store)
    assert await store.index_count("idx") == len(INDEX_ENTRIES)
    await store.index_add("idx", "m-a", 99.0)
    assert await store.index_count("idx") == len(INDEX_ENTRIES)
    await store.index_remove("idx", "m-a")
    await store.index_remove("idx", "not-there")
    assert await store.index_count("idx") == len(INDEX_ENTRIES) - 1
    for member, _ in INDEX_ENTRIES:
        await store.index_remove("idx", member)
    assert await store.index_count("idx") == 0


async def test_index_count_of_an_expired_index_is_zero(store: Store) -> None:
    """An index past its TTL counts nothing, in both stores."""
    await store.index_add("short", "m", 1.0, ttl_s=0.5)
    assert await store.index_count("short") == 1
    await asyncio.sleep(0.7)
    assert await store.index_count("short") == 0


@pytest.mark.parametrize("topology", ["redis_sentinel_url", "redis_cluster_url"])
async def test_durability_is_checked_on_every_primary(topology: str, request: pytest.FixtureRequest) -> None:
    """The test topologies run AOF fsync always with noeviction on every node: no problem on any primary."""
    store = open_store(request.getfixturevalue(topology), prefix="durability-check:")
    try:
        assert await store.durability_problems() == []
    finally:
        await store.aclose()
