"""The gateway's own version, looked up once: for the User-Agent upstream and for traces."""

from __future__ import annotations

from importlib import metadata


def _installed() -> str:
    try:
        return metadata.version("stapi-gateway")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


VERSION = _installed()
