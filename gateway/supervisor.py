"""`serve --workers N`: one master process owns the listening sockets and keeps N forked workers.

Why a supervisor of our own rather than uvicorn's `Multiprocess`: that one spawns (so the app,
its configured protocol class and the settings must be importable and picklable) and answers
SIGHUP by replacing every worker, where the gateway wants each worker's own hot reload, which
keeps its connections and requests in flight. Forking after the configuration was checked is
also cheaper on memory (pages shared copy-on-write, `gc.freeze` keeps them shared).

The master does nothing but signals and children: SIGHUP is passed on to every worker (each
reloads itself, and each also watches the files); SIGTERM and SIGINT are passed on once as
received (uvicorn's graceful shutdown in each worker; a second SIGINT forces it, as with one
process) and the master exits 0 once every worker has. A worker that dies is replaced, after a
pause that grows while replacements die young; workers that die before any was ever ready stop
the master (exit 1): a broken configuration or an unreachable store does not loop for ever.
Workers' metrics go to files in a directory the master makes (gateway/obs/multiprocess.py), so
any worker's /metrics counts every worker, including those that died and were replaced.

On Linux each worker slot has a listening socket of its own on the one port (SO_REUSEPORT): the
kernel spreads new connections over them. One shared socket was measured to spread nothing:
uvloop accepts every pending connection on each wake-up, so at c=32 one worker took all 32
(bench/README.md, scenario e). The master keeps each slot's socket open, so connections arriving
while a slot's worker is being replaced wait in its queue rather than being refused. Elsewhere
the workers share one socket.

Each worker runs in a session of its own (`setsid`): a terminal's Ctrl-C reaches the master
alone and is passed on once, and where the kernel groups CPU time by session (Linux autogroup,
on by default), N workers get N processes' share of a busy machine, as N separate servers would,
rather than one between them (measured: bench/README.md, scenario e). Workers stop by
themselves (SIGTERM to self) should the master vanish.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from gateway.obs.multiprocess import SharedMetrics, shared_metrics

log = structlog.get_logger("gateway.supervisor")

# What a worker is given: its listening socket, and a callable to say it is serving.
WorkerMain = Callable[[socket.socket, Callable[[], None]], int]
FORWARDED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
YOUNG_S = 10.0  # a worker dying sooner than this after its start makes the next pause longer
MAX_PAUSE_S = 30.0


@dataclass
class Worker:
    """One forked worker process and the slot it fills."""

    pid: int
    slot: int
    started_at: float
    ready: bool = False


@dataclass
class _Slot:
    """A worker position: how often its workers died young, and when to start the next one."""

    young_deaths: int = 0
    due_at: float | None = None


@dataclass
class Supervisor:
    """Starts `count` workers listening on host:port and keeps them running until told to stop."""

    count: int
    host: str
    port: int
    worker_main: WorkerMain
    sockets: list[socket.socket] = field(default_factory=list)
    workers: dict[int, Worker] = field(default_factory=dict)
    stopping: bool = False
    ever_ready: bool = False
    failed: bool = False
    metrics: SharedMetrics | None = None

    def run(self) -> int:
        """Supervise until the workers have stopped: 0 after a requested stop, 1 if none could start."""
        try:
            self.sockets = listen(self.host, self.port, self.count)
        except OSError as exc:
            log.error("listen_failed", host=self.host, port=self.port, detail=str(exc))
            return 1
        try:
            # Workers write their metrics to one directory, so that /metrics counts them all.
            with shared_metrics() as self.metrics:
                return self._supervise()
        finally:
            for sock in self.sockets:
                sock.close()

    def _supervise(self) -> int:
        self._slots = [_Slot() for _ in range(self.count)]
        self._wake_r, self._wake_w = os.pipe()
        self._ready_r, self._ready_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        # The handlers do nothing: the C-level handler writes each signal's number to the wake pipe,
        # and this loop, not an interrupted frame, acts on it.
        previous = {sig: signal.signal(sig, _ignore) for sig in (*FORWARDED, signal.SIGCHLD)}
        previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        port = self.sockets[0].getsockname()[1]
        log.info("supervisor_started", workers=self.count, host=self.host, port=port, sockets=len(self.sockets))
        try:
            for slot in range(self.count):
                self._spawn(slot)
            while self.workers or (not self.stopping and self._due()):
                self._step()
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self._wake_r, self._wake_w, self._ready_r, self._ready_w):
                os.close(fd)
        log.info("supervisor_stopped", failed=self.failed)
        return 1 if self.failed else 0

    # --- the loop --------------------------------------------------------------------------

    def _due(self) -> list[float]:
        return [slot.due_at for slot in self._slots if slot.due_at is not None]

    def _step(self) -> None:
        """Wait for a signal, a worker's readiness or a due replacement, and act on it."""
        due = self._due()
        timeout = None if not due or self.stopping else max(0.0, min(due) - time.monotonic())
        readable, _, _ = select.select([self._wake_r, self._ready_r], [], [], timeout)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                for number in os.read(self._wake_r, 512):
                    self._on_signal(signal.Signals(number))
        if self._ready_r in readable:
            for line in os.read(self._ready_r, 4096).split():
                self._on_ready(int(line))
        self._reap()
        now = time.monotonic()
        for index, slot in enumerate(self._slots):
            if slot.due_at is not None and slot.due_at <= now and not self.stopping:
                slot.due_at = None
                self._spawn(index)

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGCHLD:
            return  # reaped right after
        if sig == signal.SIGHUP:
            log.info("reload_forwarded", workers=sorted(self.workers))
        elif not self.stopping:
            log.info("shutdown_forwarded", signal=sig.name, workers=sorted(self.workers))
            self._stop_all(sig)
            return
        self._signal_workers(sig)

    def _stop_all(self, sig: signal.Signals) -> None:
        """Stop taking connections and pass `sig` to every worker; no worker is replaced after this."""
        self.stopping = True
        # Once the workers close theirs, new connections are refused rather than left queued.
        for sock in self.sockets:
            sock.close()
        self._signal_workers(sig)

    def _signal_workers(self, sig: signal.Signals) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _on_ready(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is not None:
            worker.ready = self.ever_ready = True
            log.info("worker_ready", worker=pid, slot=worker.slot)

    def _reap(self) -> None:
        """Collect every worker that has exited; replace it unless stopping."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                if self.metrics is not None:
                    self.metrics.worker_exited(pid)
                self._on_exit(worker, status)

    def _on_exit(self, worker: Worker, status: int) -> None:
        exit_code = os.waitstatus_to_exitcode(status)
        if self.stopping:
            log.info("worker_stopped", worker=worker.pid, exit_code=exit_code)
            return
        lived_s = time.monotonic() - worker.started_at
        slot = self._slots[worker.slot]
        if not worker.ready and not self.ever_ready:
            log.error("worker_failed_to_start", worker=worker.pid, exit_code=exit_code)
            self.failed = True
            self._stop_all(signal.SIGTERM)
            return
        slot.young_deaths = slot.young_deaths + 1 if lived_s < YOUNG_S else 0
        pause_s = min(MAX_PAUSE_S, 0.5 * 2 ** (slot.young_deaths - 1)) if slot.young_deaths else 0.0
        log.warning("worker_died", worker=worker.pid, exit_code=exit_code, lived_s=round(lived_s, 1), pause_s=pause_s)
        slot.due_at = time.monotonic() + pause_s

    # --- a worker --------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid:
            self.workers[pid] = Worker(pid, slot, time.monotonic())
            log.info("worker_started", worker=pid, slot=slot)
            return
        code = 1
        try:
            code = self._become_worker(slot)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # a worker must never return into the master's loop
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)

    def _become_worker(self, slot: int) -> int:
        """In the child: shed the master's signal set-up and run the worker."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        # Until the worker's reloader takes SIGHUP over, one forwarded during start-up is moot:
        # the worker reads the configuration as it is then.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.setsid()
        for fd in (self._wake_r, self._wake_w, self._ready_r):
            os.close(fd)
        mine = self.sockets[slot % len(self.sockets)]
        for sock in self.sockets:
            if sock is not mine:
                sock.close()  # this process's copy only: a slot's socket closes with its own worker
        ready_w = self._ready_w

        def serving() -> None:
            # One short write is atomic on a pipe: lines from several workers never interleave.
            os.write(ready_w, b"%d\n" % os.getpid())

        threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
        return self.worker_main(mine, serving)


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """Listening sockets on host:port for `count` workers: one each on Linux (SO_REUSEPORT), else one.

    The port is first bound alone, without SO_REUSEPORT, so that a port already in use is an error
    as with one worker, not a port silently shared with another server.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    balanced = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if balanced else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if balanced:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _ignore(signum: int, frame: object) -> None:
    """A Python-level handler, so that the wake-up pipe hears of the signal."""


def _stop_when_orphaned(master: int, poll_s: float = 1.0) -> None:
    """Shut this worker down gracefully if its master is gone (killed -9, say)."""
    while os.getppid() == master:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)
