"""Contract tests of the stores' streams with consumer groups, for the memory store and Redis alike."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import STREAM_START, Store


async def test_ids_increase_and_fields_round_trip(store: Store) -> None:
    """Entries come back in the order added, with the fields they were added with."""
    added = [await store.stream_add("s", {"n": str(i), "é": "ü"}) for i in range(5)]
    got = await store.stream_read("s", "g", "c1", count=10)
    assert [e.id for e in got] == added
    assert [e.fields for e in got] == [{"n": str(i), "é": "ü"} for i in range(5)]
    assert sorted(added, key=lambda i: tuple(map(int, i.split("-")))) == added


async def test_a_group_created_late_reads_from_the_start(store: Store) -> None:
    """Entries added before any reader existed are read by the group created on first read."""
    first = await store.stream_add("s", {"d": "1"})
    assert [e.id for e in await store.stream_read("s", "g", "c1", count=10)] == [first]


async def test_each_entry_goes_to_one_consumer_of_a_group(store: Store) -> None:
    """Two consumers of one group share the entries; another group gets all of them again."""
    added = [await store.stream_add("s", {"n": str(i)}) for i in range(6)]
    a = await store.stream_read("s", "g", "a", count=4)
    b = await store.stream_read("s", "g", "b", count=4)
    assert [e.id for e in a] + [e.id for e in b] == added
    assert len(a) == 4
    assert [e.id for e in await store.stream_read("s", "other", "x", count=10)] == added
    assert await store.stream_read("s", "g", "a", count=4) == []


async def test_unacked_entries_are_claimed_once_idle(store: Store) -> None:
    """An entry read and never acknowledged is claimed by another consumer after `min_idle_s`."""
    entry = await store.stream_add("s", {"d": "1"})
    await store.stream_read("s", "g", "dead", count=1)
    _, early = await store.stream_claim("s", "g", "alive", min_idle_s=30, count=10)
    assert early == []
    await asyncio.sleep(0.05)
    nxt, claimed = await store.stream_claim("s", "g", "alive", min_idle_s=0.02, count=10)
    assert [e.id for e in claimed] == [entry]
    assert claimed[0].fields == {"d": "1"}
    assert nxt == STREAM_START
    # Claiming reset its idle time: no one else takes it straight away.
    _, again = await store.stream_claim("s", "g", "third", min_idle_s=5, count=10)
    assert again == []


async def test_acked_entries_are_gone(store: Store) -> None:
    """An acknowledged entry is neither claimable nor read again, and a second ack says so."""
    entry = await store.stream_add("s", {"d": "1"})
    await store.stream_read("s", "g", "c", count=1)
    assert await store.stream_ack("s", "g", entry) is True
    assert await store.stream_ack("s", "g", entry) is False
    await asyncio.sleep(0.02)
    _, claimed = await store.stream_claim("s", "g", "c2", min_idle_s=0, count=10)
    assert claimed == []
    assert await store.stream_read("s", "g", "c", count=10) == []


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_claim_pages_through_pending_entries(store: Store, count: int) -> None:
    """Following `start` visits every idle pending entry exactly once, `count` at a time."""
    added = [await store.stream_add("s", {"n": str(i)}) for i in range(7)]
    await store.stream_read("s", "g", "dead", count=10)
    seen: list[str] = []
    start = STREAM_START
    for _ in range(20):
        start, claimed = await store.stream_claim("s", "g", "alive", min_idle_s=0, count=count, start=start)
        assert len(claimed) <= count
        seen += [e.id for e in claimed]
        if start == STREAM_START:
            break
    assert seen == added


async def test_blocking_read_wakes_on_a_new_entry(store: Store) -> None:
    """A reader blocked on an empty stream gets an entry added meanwhile."""
    await store.stream_read("s", "g", "c", count=1)
    reader = asyncio.create_task(store.stream_read("s", "g", "c", count=1, block_s=5.0))
    await asyncio.sleep(0.05)
    added = await store.stream_add("s", {"d": "1"})
    got = await reader
    assert [e.id for e in got] == [added]


async def test_blocking_read_of_nothing_returns_empty(store: Store) -> None:
    """With nothing arriving, a blocking read ends after its wait with no entries."""
    assert await store.stream_read("s", "g", "c", count=1, block_s=0.05) == []


async def test_claim_without_a_group_claims_nothing(store: Store) -> None:
    """Claiming on a stream no group reads is not an error."""
    assert await store.stream_claim("nothing", "g", "c", min_idle_s=0, count=5) == (STREAM_START, [])


async def test_pruning_forgets_idle_consumers_with_nothing_pending_only(store: Store) -> None:
    """A consumer that acked all it read is forgotten once idle; one holding an entry is kept, and its entry
    can still be claimed by another; a group or stream that does not exist prunes nothing."""
    for n in range(2):
        await store.stream_add("q", {"n": str(n)})
    [done] = await store.stream_read("q", "g", "finished", count=1)
    await store.stream_ack("q", "g", done.id)
    [held] = await store.stream_read("q", "g", "holding", count=1)
    assert await store.stream_prune_consumers("q", "g", idle_s=3600) == 0
    assert await store.stream_prune_consumers("q", "g", idle_s=0) == 1
    assert await store.stream_prune_consumers("q", "g", idle_s=0) == 0
    _, claimed = await store.stream_claim("q", "g", "rescuer", min_idle_s=0, count=10)
    assert [e.id for e in claimed] == [held.id]
    assert await store.stream_prune_consumers("q", "nobody", idle_s=0) == 0
    assert await store.stream_prune_consumers("missing", "g", idle_s=0) == 0
