"""What the bench scripts share: the machine line, SIGTERM handling, counting store calls, dropping keys."""

from __future__ import annotations

import contextlib
import os
import platform
from collections import Counter
from importlib import metadata
from types import FrameType
from typing import Any

import redis

from gateway.store import Store

PACKAGES = ("starlette", "uvicorn", "uvloop", "httptools", "httpx", "aiohttp", "pydantic", "orjson", "redis")


def machine() -> str:
    """Cores, platform and the versions that matter."""
    versions = []
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; " + ", ".join(versions)
    )


def interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the same finally blocks stop the servers."""
    raise KeyboardInterrupt


class CountingStore:
    """A real store, each call counted by operation."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.ops: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.ops[name] += 1
            return await target(*args, **kwargs)

        return counted


def drop_keys(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix` (a bench's own, unique one), in chunks; how many there were."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    return len(keys)
