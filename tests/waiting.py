"""One way for tests to wait for something the gateway does in the background.

The bound is a hang guard, not a timing assertion: generous enough that a loaded 2-core CI
machine never reaches it in a passing run, so a test fails only when the thing never happens.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

# How long a test waits for background work before it calls it lost.
WITHIN_S = 20.0


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], Any] = ...,
    within_s: float = ...,
    every_s: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    *,
    until: Callable[[T], Any] = ...,
    within_s: float = ...,
    every_s: float = ...,
    what: str = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    *,
    until: Callable[[Any], Any] = bool,
    within_s: float = WITHIN_S,
    every_s: float = 0.02,
    what: str = "the expected state",
) -> Any:
    """Call `probe` (sync or async) every `every_s` until `until(answer)` holds; that answer.

    Fails after `within_s` with `what` and the last answer seen.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        got = probe()
        answer = await got if inspect.isawaitable(got) else got
        if until(answer):
            return answer
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not reached within {within_s} s; last seen: {answer!r:.2000}")
        await asyncio.sleep(every_s)
