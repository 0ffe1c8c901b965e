"""Whether a Redis (every primary of a Cluster) keeps what it acknowledged: AOF fsync always, no eviction."""

from __future__ import annotations

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ResponseError

from gateway.store.redis_urls import RedisClient

# What idempotency needs from Redis: every acknowledged write on disk, and no key evicted.
DURABLE = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}


async def _settings(client: RedisClient, node: ClusterNode | None) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in DURABLE:
        answer = await (client.config_get(name) if node is None else client.config_get(name, target_nodes=node))
        # One pattern, one entry; keys and values are bytes or str by client settings.
        raw = next(iter(answer.values()), None)
        found[name] = raw.decode() if isinstance(raw, bytes) else raw
    return found


async def problems(client: RedisClient, label: str) -> list[str]:
    """One sentence per setting that falls short, per primary; redis-py errors but refusals propagate."""
    targets: list[tuple[str, ClusterNode | None]] = [(label, None)]
    if isinstance(client, RedisCluster):
        await client.initialize()
        targets = [(f"{label} node {node.name}", node) for node in client.get_primaries()]
    found = []
    for name, node in targets:
        try:
            settings = await _settings(client, node)
        except ResponseError:
            # Managed Redis services often refuse CONFIG; say so rather than guess.
            found.append(f"{name}: CONFIG GET is refused, so persistence and eviction could not be checked")
            continue
        found += [
            f"{name}: {setting} is {settings[setting]!r}, idempotency needs {wanted!r}"
            for setting, wanted in DURABLE.items()
            if settings[setting] != wanted
        ]
    return found
