"""Store URLs for Sentinel and Cluster: what they parse to, what they refuse, and that no password leaks."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.domain.errors import StoreUnavailable
from gateway.settings.models import GatewaySettings
from gateway.store import RedisStore, open_store
from gateway.store.redis_urls import RedisTarget, Topology, parse_target, topology_of
from tests.redis_topologies import free_port


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://s1:26379,s2:26380/mymaster/2",
            RedisTarget(Topology.SENTINEL, False, (("s1", 26379), ("s2", 26380)), service="mymaster", db=2),
        ),
        (
            "redis+sentinel://s1,[::1]/mymaster",
            RedisTarget(Topology.SENTINEL, False, (("s1", 26379), ("::1", 26379)), service="mymaster"),
        ),
        (
            "rediss+sentinel://app:p%40ss@s1/svc/0",
            RedisTarget(Topology.SENTINEL, True, (("s1", 26379),), service="svc", username="app", password="p@ss"),
        ),
        (
            "redis+cluster://:pw@n1:7000,n2:7001,n3",
            RedisTarget(Topology.CLUSTER, False, (("n1", 7000), ("n2", 7001), ("n3", 6379)), password="pw"),
        ),
        ("rediss+cluster://n1:7000/0", RedisTarget(Topology.CLUSTER, True, (("n1", 7000),))),
    ],
)
def test_urls_parse_to_their_target(url: str, expected: RedisTarget) -> None:
    """Hosts with default ports, service, database, credentials and TLS come out of the URL."""
    got = parse_target(url)
    assert got == expected
    assert got.password == expected.password


def test_options_are_read_with_their_types() -> None:
    """Timeouts become numbers; Sentinel credentials and TLS files are kept as given."""
    url = "rediss+sentinel://s1/m?socket_timeout=0.5&health_check_interval=10&sentinel_password=x&ssl_ca_certs=/ca"
    assert parse_target(url).options == {
        "socket_timeout": 0.5,
        "health_check_interval": 10,
        "sentinel_password": "x",
        "ssl_ca_certs": "/ca",
    }


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+sentinel://s1:26379", "names the service"),
        ("redis+sentinel://s1/m/0/extra", "names the service"),
        ("redis+sentinel://s1/m/zero", "database must be a number"),
        ("redis+cluster://n1:7000/3", "Cluster has only database 0"),
        ("redis+cluster://n1:port", "bad port"),
        ("redis+cluster://n1:7000,,n2", "empty host"),
        ("redis+cluster://n1?sentinel_password=x", "unknown option"),
        ("redis+cluster://n1?colour=red", "unknown option"),
        ("redis+cluster://n1?ssl_ca_certs=/ca", "needs a rediss"),
        ("redis+sentinel://s1/m?socket_timeout=soon", "must be a float"),
    ],
)
def test_malformed_urls_are_refused_without_the_password(url: str, complaint: str) -> None:
    """open_store names what is wrong in a ValueError that never quotes the password."""
    with_password = url.replace("://", "://user:s3cret@", 1)
    with pytest.raises(ValueError, match=complaint) as info:
        open_store(with_password)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "topology"),
    [
        ("redis://h/0", Topology.SINGLE),
        ("unix:///tmp/r.sock", Topology.SINGLE),
        ("REDIS+SENTINEL://s/m", Topology.SENTINEL),
        ("rediss+cluster://n", Topology.CLUSTER),
    ],
)
def test_topology_of_each_scheme(url: str, topology: Topology) -> None:
    """Schemes are matched case-insensitively to their layout."""
    assert topology_of(url) is topology


@pytest.mark.parametrize("url", ["redis+sentinel://s1/m/0", "redis+cluster://n1:7000", "rediss+cluster://n1"])
def test_settings_accept_sentinel_and_cluster_urls(url: str) -> None:
    """`gateway.store` takes the new schemes; `store_prefix` refuses a hash tag."""
    assert GatewaySettings(store=url).store == url
    with pytest.raises(ValidationError, match="store_prefix"):
        GatewaySettings(store=url, store_prefix="{gw}:")


@given(password=st.text(min_size=1))
def test_a_percent_encoded_password_round_trips_and_stays_out_of_the_repr(password: str) -> None:
    """Whatever the password, percent-encoded it parses back exactly, and the target's repr leaves it out."""
    target = parse_target(f"redis+cluster://u:{quote(password, safe='')}@n1:7000")
    assert target.password == password
    assert "password=" not in repr(target)


@pytest.mark.parametrize("scheme", ["redis+sentinel", "redis+cluster"])
async def test_unreachable_topologies_raise_store_unavailable_without_password(scheme: str) -> None:
    """Nothing listening: ping and get answer StoreUnavailable naming the hosts, never the password."""
    rest = "/mymaster/0?sentinel_password=s3cret" if scheme == "redis+sentinel" else ""
    store = open_store(f"{scheme}://:s3cret@127.0.0.1:{free_port()}{rest}")
    assert isinstance(store, RedisStore)
    try:
        for call in (store.ping(), store.get("k")):
            with pytest.raises(StoreUnavailable) as info:
                await call
            assert "s3cret" not in str(info.value)
            assert "127.0.0.1" in info.value.detail
    finally:
        await store.aclose()
