"""`stapi-gateway` as a real process on loopback: started, waited for until it answers, stopped.

Every test that runs `serve` (or `demo`, `simulate`) as a subprocess goes through `served`, so the
start-up wait, the stop (SIGTERM, then SIGKILL) and the collected stderr are the same everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import eventually

# The console script installed beside the interpreter running the tests (the venv's own).
SCRIPT = Path(sys.executable).parent / "stapi-gateway"
# Bounds with room for a loaded machine: to answer once started, and to stop once signalled.
READY_S = 20.0
STOP_S = 20.0


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`stapi-gateway ARGS` run to its end (60 s at most), its output captured as text; `env` adds variables."""
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **(env or {})}
    )


@dataclass
class Served:
    """A running `stapi-gateway` process: a client for its port, the process, its stderr lines so far."""

    proc: asyncio.subprocess.Process
    port: int
    client: httpx.AsyncClient
    lines: list[str]
    drainer: asyncio.Task[None]

    def records(self) -> list[dict[str, Any]]:
        """Its JSON log records so far, in order (lines that are not JSON left out)."""
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log records of event `name`, in order."""
        return [r for r in self.records() if r.get("event") == name]

    def server_pid(self) -> int:
        """The pid in uvicorn's "Started server process [PID]" line."""
        return next(
            int(json.loads(line)["event"].split("[")[1].split("]")[0])
            for line in self.lines
            if "Started server process" in line
        )

    async def until(self, found: Callable[[], Any], what: str) -> Any:
        """Poll `found` until it is truthy; return it. A failure shows the process's log."""
        try:
            return await eventually(found, every_s=0.05, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n" + "".join(self.lines)) from None

    async def ready_workers(self, count: int) -> set[int]:
        """The pids of the first `count` workers to report ready (waits for them)."""
        pids: set[int] = await self.until(
            lambda: (
                {r["worker"] for r in self.events("worker_ready")}
                if len(self.events("worker_ready")) >= count
                else None
            ),
            f"{count} workers ready",
        )
        return pids

    async def output_ended(self, timeout_s: float = STOP_S) -> None:
        """Wait (bounded) until every process writing to its stderr has closed it."""
        # Shielded: a timeout here fails the caller, the drain itself goes on until the stop.
        await asyncio.wait_for(asyncio.shield(self.drainer), timeout_s)


async def _drain(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """Collect stderr line by line (a full pipe would block the process)."""
    assert proc.stderr is not None
    async for line in proc.stderr:
        lines.append(line.decode())


async def _answers(running: Served) -> None:
    """Poll until it answers HTTP at all: any status counts (a simulator has no /healthz)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_S
    while loop.time() < deadline:
        if running.proc.returncode is not None:
            with contextlib.suppress(TimeoutError):
                await running.output_ended(5)
            raise AssertionError(f"exited early with {running.proc.returncode}:\n" + "".join(running.lines))
        try:
            await running.client.get("/healthz")
            return
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"no answer on port {running.port} within {READY_S} s:\n" + "".join(running.lines))


async def _stop(proc: asyncio.subprocess.Process, drainer: asyncio.Task[None]) -> int:
    """SIGTERM, SIGKILL if it is still running after STOP_S; its exit code once its output has ended."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may have exited since
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    # Bounded too: a child left behind (a worker) would keep the pipe open forever.
    await asyncio.wait_for(drainer, STOP_S)
    return await proc.wait()


@asynccontextmanager
async def served(
    port: int,
    *args: str,
    config: Path | None = None,
    command: str = "serve",
    workers: int | None = None,
    env: Mapping[str, str] | None = None,
    check_exit: bool = True,
) -> AsyncIterator[Served]:
    """`stapi-gateway COMMAND [--config CONFIG] --port PORT [--workers N] ARGS` until the block ends.

    Yielded once it answers HTTP, or with `workers` once that many have logged that they are
    ready (a request would add a log line the supervisor tests count). `env` adds variables.
    When the block ends it is stopped; unless `check_exit` is off (a test that kills it), a
    block that ended normally then checks that it shut down cleanly.
    """
    argv = [command, *(("--config", str(config)) if config else ()), "--port", str(port), *args]
    if workers is not None:
        argv += ["--workers", str(workers)]
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    drainer = asyncio.create_task(_drain(proc, lines))
    # httpx's default limits, except that with workers each request gets a fresh connection:
    # a kept-alive one would stay with one worker.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0 if workers else 20)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20, limits=limits) as client:
            running = Served(proc, port, client, lines, drainer)
            await (running.ready_workers(workers) if workers else _answers(running))
            yield running
    finally:
        code = await _stop(proc, drainer)
    # Reached only when the block ended normally: a failure inside it is the one to report.
    if not check_exit:
        return
    if workers:
        assert code == 0, "".join(lines)
    else:
        # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
        assert code in (0, -signal.SIGTERM), "".join(lines)
        assert any("Application shutdown complete" in line for line in lines)


@asynccontextmanager
async def together(*starting: AbstractAsyncContextManager[Served]) -> AsyncIterator[list[Served]]:
    """Several processes started at once (their start-ups overlap); all stopped when the block ends."""
    async with AsyncExitStack() as stack:
        # A task group, not gather: if one fails to start, the others' start-ups are cancelled
        # (and clean up) instead of finishing after the stack has been unwound.
        async with asyncio.TaskGroup() as group:
            entered = [group.create_task(stack.enter_async_context(s)) for s in starting]
        yield [task.result() for task in entered]
