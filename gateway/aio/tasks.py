"""Waiting in background loops without losing a cancellation, and stopping their work.

On Python 3.11, `asyncio.timeout` and `asyncio.wait_for` can swallow a cancellation that lands
as their timeout fires (fixed in 3.12). A background loop that waits with them can then miss
its `stop()` and run forever, which hung test runs on shutdown. `asyncio.wait` has no such race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set or `timeout_s` passes; True if it was set. Cancellation always propagates."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout_s)
    finally:
        waiter.cancel()
    return bool(done)


async def stop_task(task: asyncio.Task[None] | None, *, every_s: float = 0.5) -> None:
    """Cancel a background task and wait until it has ended, cancelling again if one was swallowed.

    Code a loop awaits (anyio cancel scopes of in-process ASGI apps, say) may swallow a
    cancellation; a loop that survives one would otherwise keep its `stop()` waiting forever.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every_s)
    if not task.cancelled() and task.exception() is not None:
        task.result()  # let a crash surface instead of vanishing at shutdown


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel tasks in flight and wait until each has ended (what they raised is theirs: not re-raised)."""
    cancelling = list(tasks)  # a copy: a task's done-callback may remove it from the caller's set
    for task in cancelling:
        task.cancel()
    await asyncio.gather(*cancelling, return_exceptions=True)
