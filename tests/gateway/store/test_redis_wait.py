"""The `wait_replicas` / `wait_timeout_ms` store URL options: what they parse to and what they refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store import RedisStore, ReplicatedRedisStore, open_store
from gateway.store.redis_wait import DEFAULT_TIMEOUT_MS, MAX_REPLICAS, MAX_TIMEOUT_MS, ReplicaWait, split_wait


@pytest.mark.parametrize(
    ("url", "rest", "wait"),
    [
        ("redis://h/0?wait_replicas=1", "redis://h/0", ReplicaWait(1, DEFAULT_TIMEOUT_MS)),
        (
            "redis://h/0?socket_timeout=3&wait_replicas=2&wait_timeout_ms=250",
            "redis://h/0?socket_timeout=3",
            ReplicaWait(2, 250),
        ),
        (
            "redis+sentinel://s1,s2/m/0?wait_timeout_ms=5&wait_replicas=1",
            "redis+sentinel://s1,s2/m/0",
            ReplicaWait(1, 5),
        ),
        (
            "redis+cluster://n1:7000?wait_replicas=1&health_check_interval=5",
            "redis+cluster://n1:7000?health_check_interval=5",
            ReplicaWait(1),
        ),
    ],
)
def test_the_options_are_taken_out_of_the_url(url: str, rest: str, wait: ReplicaWait) -> None:
    """The policy comes out, the other options stay for redis-py or the Sentinel/Cluster parser."""
    assert split_wait(url) == (rest, wait)


@pytest.mark.parametrize("url", ["redis://h/0", "redis://h/0?socket_timeout=3&x=%2541", "redis+sentinel://s/m?"])
def test_without_the_options_the_url_is_untouched(url: str) -> None:
    """No policy, and the very same string: stores without the option are built exactly as before."""
    assert split_wait(url) == (url, None)


@given(replicas=st.integers(1, MAX_REPLICAS), timeout_ms=st.integers(1, MAX_TIMEOUT_MS))
def test_every_allowed_policy_round_trips(replicas: int, timeout_ms: int) -> None:
    """Any replica count and timeout within bounds parses back to itself."""
    url = f"redis://h/0?wait_replicas={replicas}&wait_timeout_ms={timeout_ms}"
    assert split_wait(url)[1] == ReplicaWait(replicas, timeout_ms)


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("wait_replicas=0", "from 1 to 16"),
        ("wait_replicas=-1", "from 1 to 16"),
        ("wait_replicas=17", "from 1 to 16"),
        ("wait_replicas=one", "from 1 to 16"),
        ("wait_replicas=", "from 1 to 16"),
        ("wait_replicas=1.5", "from 1 to 16"),
        ("wait_replicas=1&wait_timeout_ms=0", "from 1 to 1000"),
        ("wait_replicas=1&wait_timeout_ms=1001", "from 1 to 1000"),
        ("wait_replicas=1&wait_timeout_ms=1e2", "from 1 to 1000"),
        ("wait_timeout_ms=100", "needs 'wait_replicas'"),
        ("wait_replicas=1&wait_replicas=2", "given twice"),
        ("wait_replicas=1&wait_timeout_ms=500&socket_timeout=0.5", "shorter than socket_timeout"),
    ],
)
@pytest.mark.parametrize("base", ["redis://h:6379/0", "redis+sentinel://s1/mymaster/0", "redis+cluster://n1:7000"])
def test_bad_values_are_refused_without_the_password(base: str, query: str, complaint: str) -> None:
    """open_store refuses each bad value with a ValueError naming it, never quoting the password."""
    url = base.replace("://", "://user:s3cret@", 1) + "?" + query
    with pytest.raises(ValueError, match=complaint) as info:
        open_store(url)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("query", "kind"),
    [("", RedisStore), ("?socket_timeout=1", RedisStore), ("?wait_replicas=1", ReplicatedRedisStore)],
)
async def test_open_store_picks_the_waiting_store_only_with_the_option(query: str, kind: type[RedisStore]) -> None:
    """Without `wait_replicas` the store is a plain RedisStore; with it, a ReplicatedRedisStore."""
    store = open_store("redis://127.0.0.1:1/0" + query)
    try:
        assert type(store) is kind
    finally:
        await store.aclose()
