"""The gateway's state store: search records, orders journal, idempotency keys, shared secret.

`open_store(url)` picks the implementation from the URL scheme; code depends only on `Store`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.store.base import DEFAULT_PREFIX, STREAM_START, IndexPosition, Store, StreamEntry
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore, redact_url
from gateway.store.redis_replicated import ReplicatedRedisStore
from gateway.store.redis_urls import REDIS_SCHEMES, connect

__all__ = [
    "DEFAULT_PREFIX",
    "STREAM_START",
    "IndexPosition",
    "MemoryStore",
    "RedisStore",
    "ReplicatedRedisStore",
    "Store",
    "StreamEntry",
    "open_store",
]


def open_store(url: str, *, prefix: str = DEFAULT_PREFIX) -> Store:
    """Build the store named by `url`: `memory://`, or a Redis URL (gateway/store/redis_urls.py).

    A malformed URL raises ValueError, worded without its password.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore(prefix=prefix)
    if scheme in REDIS_SCHEMES:
        try:
            connection = connect(url)
            # `?wait_replicas=` (gateway/store/redis_wait.py) makes every write wait for replicas.
            kind = RedisStore if connection.wait is None else ReplicatedRedisStore
            return kind(connection, prefix=prefix, label=redact_url(url))
        except ValueError as exc:
            raise ValueError(f"Bad store URL {redact_url(url)!r}: {exc}") from None
    schemes = ", ".join(f"{name}://" for name in sorted(REDIS_SCHEMES))
    raise ValueError(f"Unsupported store URL {redact_url(url)!r}: use memory:// or one of {schemes}")
