"""What the bench scripts share: the machine line and SIGTERM handling."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from types import FrameType

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
