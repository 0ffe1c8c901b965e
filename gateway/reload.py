"""Hot reload of the YAML configuration, on SIGHUP and when a configuration file changes.

A change is applied only once the files have been still for `quiet_s` (an editor or a
`cp` writing in several steps is never caught half-way) and have not changed while they were
read. The new configuration is read and validated off the event loop; if it is valid the app's
runtime is swapped for one on the new providers (requests in flight keep the old one), and if
it is not, every problem is logged and the running configuration stays. A reload never turns
authentication off: removing every client takes a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import structlog
from starlette.datastructures import State

from gateway.settings.loader import load_settings
from gateway.settings.problems import ConfigError

log = structlog.get_logger("gateway.reload")

Fingerprint = tuple[tuple[str, int, int, int], ...]
QUIET_S = 1.0


def fingerprint(source: Path) -> Fingerprint:
    """What identifies the configuration's files now: every YAML file beside and below the main one.

    `stat` follows symlinks, so a Kubernetes ConfigMap update (a swapped symlink) shows up too.
    """
    entries = []
    for path in sorted({source, *source.parent.glob("*.y*ml"), *source.parent.glob("*/*.y*ml")}):
        with contextlib.suppress(OSError):
            st = path.stat()
            entries.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(entries)


class Reloader:
    """Watches the configuration and swaps the app's runtime when it changes validly."""

    def __init__(self, source: str, state: State, *, poll_s: float = 1.0, quiet_s: float = QUIET_S) -> None:
        self.source = Path(source)
        self.state = state
        self.poll_s = poll_s
        self.quiet_s = quiet_s
        self._last = fingerprint(self.source)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._uninstall: Callable[[], None] = lambda: None

    def start(self) -> None:
        """Watch the files, and reload on SIGHUP where signals can be handled."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._wake.set)

            def uninstall() -> None:
                loop.remove_signal_handler(signal.SIGHUP)

            self._uninstall = uninstall
        except (NotImplementedError, RuntimeError, ValueError):
            log.info("config_reload_no_signal", detail="SIGHUP cannot be handled here; watching files only")
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching."""
        self._uninstall()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            signalled = self._wake.is_set()
            self._wake.clear()
            current = await asyncio.to_thread(fingerprint, self.source)
            if signalled or current != self._last:
                if not signalled:
                    current = await self._settled(current)
                self._last = current
                await self.reload("signal" if signalled else "file_change")

    async def _settled(self, seen: Fingerprint) -> Fingerprint:
        """The files' fingerprint once it has stayed the same for `quiet_s`."""
        while True:
            await asyncio.sleep(self.quiet_s)
            now = await asyncio.to_thread(fingerprint, self.source)
            if now == seen:
                return now
            seen = now

    def _rejected(self, reason: str, problems: list[str]) -> bool:
        for problem in problems:
            log.error("config_problem", problem=problem)
        log.error("config_reload_rejected", reason=reason, problems=len(problems))
        return False

    async def reload(self, reason: str) -> bool:
        """Read, validate and apply the configuration; False (and the old one kept) if it is not
        valid, changed while it was read, or would turn authentication off."""
        async with self._lock:
            before = await asyncio.to_thread(fingerprint, self.source)
            try:
                settings = await asyncio.to_thread(load_settings, self.source, dict(os.environ))
            except ConfigError as exc:
                return self._rejected(reason, [str(problem) for problem in exc.problems])
            if await asyncio.to_thread(fingerprint, self.source) != before:
                # Still being written: the watcher sees the change and tries again once it is still.
                log.info("config_reload_deferred", reason=reason, detail="the files changed while being read")
                return False
            old = self.state.runtime
            if old.settings.clients and not settings.clients:
                problem = (
                    f"{self.source}: clients: every client is gone, which would turn authentication off; "
                    "that takes a restart, so the running configuration stays"
                )
                return self._rejected(reason, [problem])
            self.state.runtime = await old.reconfigured(settings)
            log.info("config_reloaded", reason=reason, providers=list(settings.providers))
            return True
