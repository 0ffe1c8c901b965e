"""Stopping a background task for sure (the idea of gateway/services/background.py, which notify may not import).

On Python 3.11 `asyncio.timeout` can swallow a cancellation that lands as it fires, and code a
loop awaits may swallow one too; a loop that survives its cancel would keep shutdown waiting.
"""

from __future__ import annotations

import asyncio


async def stop_task(task: asyncio.Task[None] | None, *, every_s: float = 0.5) -> None:
    """Cancel a task and wait until it has ended, cancelling again if a cancellation was swallowed."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every_s)
    if not task.cancelled() and task.exception() is not None:
        task.result()  # let a crash surface instead of vanishing at shutdown
