"""The gateway's state store: search records, orders journal, idempotency keys, shared secret.

`open_store(url)` picks the implementation from the URL scheme; code depends only on `Store`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.store.base import DEFAULT_PREFIX, STREAM_START, IndexPosition, Store, StreamEntry
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore, redact_url

__all__ = [
    "DEFAULT_PREFIX",
    "STREAM_START",
    "IndexPosition",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StreamEntry",
    "open_store",
]

_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def open_store(url: str, *, prefix: str = DEFAULT_PREFIX) -> Store:
    """Build the store named by `url`: `memory://`, or `redis://`, `rediss://`, `unix://`."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore(prefix=prefix)
    if scheme in _REDIS_SCHEMES:
        return RedisStore.from_url(url, prefix=prefix)
    raise ValueError(f"Unsupported store URL {redact_url(url)!r}: use memory://, redis://, rediss:// or unix://")
