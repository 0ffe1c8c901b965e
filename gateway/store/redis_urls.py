"""Store URLs for Redis, and the redis-py client each one names.

- `redis://`, `rediss://`, `unix://`: one endpoint, handed to `Redis.from_url` as before.
- `redis+sentinel://[[user]:password@]host[:26379],host2[:26379]/service[/db]`: the primary of
  `service` as the Sentinels name it, through redis-py's `Sentinel(...).master_for(...)`, which
  asks them again after a failover.
- `redis+cluster://[[user]:password@]host[:6379],host2[:6379]`: a Redis Cluster through redis-py's
  `RedisCluster`, the hosts being startup nodes (it discovers the rest).

`rediss+sentinel://` and `rediss+cluster://` speak TLS to every node (Sentinels included). The
user-info authenticates to the Redis nodes; Sentinels that need their own credentials take
`?sentinel_username=` and `?sentinel_password=`. Other `?` options are in `_OPTIONS`.
Every scheme also takes `?wait_replicas=` and `?wait_timeout_ms=` (gateway/store/redis_wait.py),
which `connect` removes before the URL reaches redis-py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from gateway.store.redis_wait import ReplicaWait, split_wait

#: Any client a RedisStore may wrap.
RedisClient = Redis | RedisCluster


class Topology(Enum):
    """How the Redis behind a URL is laid out."""

    SINGLE = "single"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


_SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": (Topology.SINGLE, False),
    "rediss": (Topology.SINGLE, True),
    "unix": (Topology.SINGLE, False),
    "redis+sentinel": (Topology.SENTINEL, False),
    "rediss+sentinel": (Topology.SENTINEL, True),
    "redis+cluster": (Topology.CLUSTER, False),
    "rediss+cluster": (Topology.CLUSTER, True),
}
#: Every scheme `open_store` hands to Redis.
REDIS_SCHEMES = frozenset(_SCHEMES)
_DEFAULT_PORT = {Topology.SENTINEL: 26379, Topology.CLUSTER: 6379}

# The `?` options of the Sentinel and Cluster URLs: name -> how to read its value.
_OPTIONS: dict[str, type] = {
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "health_check_interval": int,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_cert_reqs": str,
    "sentinel_username": str,
    "sentinel_password": str,
}
_SENTINEL_ONLY = frozenset({"sentinel_username", "sentinel_password"})
_SSL_ONLY = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"})


def base_options() -> dict[str, Any]:
    """Connection options every client gets unless the URL says otherwise: short timeouts, one retry."""
    return {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 2.0,
        "health_check_interval": 30,
        # One quick retry survives a pooled connection dropped by a restart or a failover; more
        # would only delay the StoreUnavailable a caller needs to see promptly.
        "retry": Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.02), retries=1),
    }


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed `redis+sentinel://` or `redis+cluster://` URL (no secrets in its repr)."""

    topology: Topology
    tls: bool
    hosts: tuple[tuple[str, int], ...]
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)


def topology_of(url: str) -> Topology:
    """Which layout a Redis store URL names; ValueError for a scheme that is not Redis."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"not a Redis store URL scheme: {scheme!r}")
    return _SCHEMES[scheme][0]


def _hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.split(","):
        # urlsplit of one host parses brackets (IPv6) and ports the usual way.
        one = urlsplit(f"//{item.strip()}")
        try:
            port = one.port
        except ValueError:
            raise ValueError(f"bad port in host {item!r}") from None
        if not one.hostname:
            raise ValueError(f"empty host in {netloc!r}")
        hosts.append((one.hostname, port or default_port))
    return tuple(hosts)


def _options(query: str, topology: Topology, tls: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, raw in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        reader = _OPTIONS.get(name)
        if reader is None or (name in _SENTINEL_ONLY and topology is not Topology.SENTINEL):
            raise ValueError(f"unknown option {name!r}; known: {', '.join(sorted(_OPTIONS))}")
        if name in _SSL_ONLY and not tls:
            raise ValueError(f"option {name!r} needs a rediss+ URL")
        try:
            options[name] = reader(raw)
        except ValueError:
            raise ValueError(f"option {name!r} must be a {reader.__name__}, got {raw!r}") from None
    return options


def parse_target(url: str) -> RedisTarget:
    """Parse a Sentinel or Cluster store URL; ValueError (never quoting the password) if malformed."""
    parts = urlsplit(url)
    topology, tls = _SCHEMES.get(parts.scheme.lower(), (Topology.SINGLE, False))
    if topology is Topology.SINGLE:
        raise ValueError("not a redis+sentinel:// or redis+cluster:// URL")
    userinfo, _, netloc = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    hosts = _hosts(netloc, _DEFAULT_PORT[topology])
    path = [segment for segment in parts.path.split("/") if segment]
    service, db = None, "0"
    if topology is Topology.SENTINEL:
        if not path or len(path) > 2:
            raise ValueError("a Sentinel URL names the service, and optionally a database: /mymaster/0")
        service, db = unquote(path[0]), (path[1] if len(path) == 2 else "0")
    elif path not in ([], ["0"]):
        raise ValueError("a Cluster URL has no database (Redis Cluster has only database 0)")
    if not db.isdigit():
        raise ValueError(f"database must be a number, got {db!r}")
    return RedisTarget(
        topology,
        tls,
        hosts,
        service=service,
        db=int(db),
        username=unquote(username) or None,
        password=unquote(password) or None,
        options=_options(parts.query, topology, tls),
    )


def _node_options(target: RedisTarget) -> dict[str, Any]:
    options = base_options()
    options.update({k: v for k, v in target.options.items() if k not in _SENTINEL_ONLY})
    if target.tls:
        options["ssl"] = True
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    return options


@dataclass(frozen=True, slots=True)
class Connection:
    """What `connect` built: the client, its passwords, clients to close with it, its replica wait."""

    client: RedisClient
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # The Sentinel client's own connections to the Sentinels, which closing the primary's keeps open.
    companions: tuple[Redis, ...] = ()
    # Set by `?wait_replicas=`: each write must be acknowledged by that many replicas.
    wait: ReplicaWait | None = None


def _sentinel_client(target: RedisTarget) -> tuple[Redis, tuple[Redis, ...]]:
    nodes = _node_options(target)
    # The Sentinels' clients get the same timeouts, TLS and single quick retry: redis-py's default
    # (3 retries, backoff up to 10 s) would make each store call wait many seconds for dead Sentinels.
    sentinel_options = {k: v for k, v in nodes.items() if k.startswith(("socket_", "ssl", "retry"))}
    for name in _SENTINEL_ONLY:
        if name in target.options:
            sentinel_options[name.removeprefix("sentinel_")] = target.options[name]
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(str(target.service), db=target.db, **nodes)
    return client, tuple(sentinel.sentinels)


class _Cluster(RedisCluster):
    """A RedisCluster that discovers the cluster before a command picks its node, not during.

    redis-py 8.1 lets commands started together on a fresh (or re-initialising) client pick nodes
    while the first one rebuilds the node table, and their new connections get closed under them
    (AttributeError or "Connection lost" from a healthy cluster). Waiting here for the
    (lock-guarded) discovery first closes that gap; tests/gateway/store/test_store.py's races catch it.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Initialise if needed, then run the command as RedisCluster does."""
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)


def _cluster_client(target: RedisTarget) -> RedisCluster:
    nodes = [ClusterNode(host, port) for host, port in target.hosts]
    return _Cluster(startup_nodes=nodes, **_node_options(target))


def connect(url: str) -> Connection:
    """A lazily connecting client for a Redis store URL; ValueError if the URL is malformed."""
    url, wait = split_wait(url)
    if topology_of(url) is Topology.SINGLE:
        client = Redis.from_url(url, **base_options())
        kwargs = client.connection_pool.connection_kwargs
        if wait is not None:
            wait.check_socket_timeout(kwargs.get("socket_timeout"))
        password = kwargs.get("password")
        return Connection(client, (password,) if password else (), wait=wait)
    target = parse_target(url)
    if wait is not None:
        wait.check_socket_timeout(_node_options(target).get("socket_timeout"))
    secrets = tuple(s for s in (target.password, target.options.get("sentinel_password")) if s)
    if target.topology is Topology.SENTINEL:
        primary, sentinels = _sentinel_client(target)
        return Connection(primary, secrets, sentinels, wait)
    return Connection(_cluster_client(target), secrets, wait=wait)
