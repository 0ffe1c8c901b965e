"""The background-loop helpers: a stop that survives a swallowed cancellation, a wait that says why it ended."""

from __future__ import annotations

import asyncio

import pytest

from gateway.aio.tasks import stop_task, wait_event


async def test_stop_task_ends_a_loop_that_swallows_a_cancellation() -> None:
    """A loop that eats its first cancellation is cancelled again until it ends."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await stop_task(task, every_s=0.01)
    assert task.cancelled()
    assert swallowed == 2


async def test_stop_task_lets_a_crash_surface() -> None:
    """A loop that died of an error raises it at stop instead of vanishing."""

    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await stop_task(task)


async def test_wait_event_says_whether_the_event_was_set() -> None:
    """True when set within the time, False when the time ran out."""
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 5) is True
