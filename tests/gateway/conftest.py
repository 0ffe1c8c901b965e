"""Fixtures of the gateway tests: `store`, each store implementation (memory, and a real Redis under
the test's own prefix); modules that need one kind define their own `store`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.store import Store, open_store


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """One store of each implementation."""
    if request.param == "redis":
        opened = open_store(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix"))
    else:
        opened = open_store("memory://")
    yield opened
    await opened.aclose()
