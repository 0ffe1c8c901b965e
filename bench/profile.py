"""Where the gateway spends its time: the gateway in this process under pyinstrument, load from outside.

    python bench/profile.py                      # both profiles, 8 s each
    python bench/profile.py --only product --duration 5 --html /tmp/profiles   # + /tmp/profiles/product.html

Two workloads, each with its upstreams and bench/loadgen.py as separate processes, as in
bench/run.py; only the gateway runs here (uvicorn, uvloop, httptools, default info logging to a
file), so every sample is the gateway's:

- `product`: scenario a, `GET /products/{id}` at 32 connections against the fast simulator;
- `merge`: scenario c, a federated search over 5 providers answering 2,000 opportunities each, one
  request at a time.

Needs pyinstrument (`pip install pyinstrument`), which samples the stack every millisecond
whatever task runs, so time spent in the event loop itself shows up too. For each workload it
prints the functions with the most self time and the gateway's own functions with the most
inclusive time; `--html` also writes pyinstrument's interactive tree. It also times every garbage
collection while the load runs (gc.callbacks). `--no-profiler` runs the same load without sampling
(numbers closer to the real gateway's), and `--gc-freeze` / `--gc-threshold N` show what those GC
settings would change, without touching the gateway's code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
import yaml
from run import LOADGEN, MERGE_MEMBERS, SEARCH, Fleet, gateway_config, start_simulator, start_stubs, stub_origins

try:
    from pyinstrument import Profiler
    from pyinstrument.frame import Frame
except ImportError:  # pragma: no cover - an optional bench dependency
    raise SystemExit("bench/profile.py needs pyinstrument: pip install pyinstrument") from None

WORKLOADS = ("product", "merge")
MERGE_SIZE = 2000
# Our own code, as opposed to the libraries under it.
OWN = ("gateway/", "adapters/")
OWN_PACKAGES = frozenset(own.rstrip("/") for own in OWN)


@dataclass(frozen=True)
class Workload:
    """What the load generator sends to the in-process gateway."""

    name: str
    path: str
    concurrency: int
    method: str = "GET"
    body: dict[str, Any] | None = None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def gateway_logging(path: Path) -> Iterator[None]:
    """The gateway's own logging set-up (info, JSON lines), writing to `path` instead of stderr."""
    from gateway.obs.logging import configure_logging

    real = sys.stderr
    with path.open("w") as log:
        sys.stderr = log  # configure_logging binds its handler to the stderr of the moment
        try:
            configure_logging("info")
        finally:
            sys.stderr = real
        yield


@dataclass
class GcPauses:
    """Garbage-collector pauses while the load ran, per generation (gc.callbacks)."""

    pauses: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def report(self, seconds: float) -> str:
        """One line per generation: how often, how long in total and at most."""
        lines = []
        for generation in sorted(self.pauses):
            values = self.pauses[generation]
            lines.append(
                f"  gc generation {generation}: {len(values)} collections ({len(values) / seconds:.1f}/s), "
                f"{1000 * sum(values):.0f} ms in total, longest {1000 * max(values):.1f} ms"
            )
        return "\n".join(lines) or "  no garbage collection ran"


@dataclass(frozen=True)
class Options:
    """How one workload is run."""

    duration_s: float
    warmup_s: float
    sample: bool  # False: no profiler, only the load and GC numbers (no sampling overhead)
    gc_freeze: bool  # gc.freeze() once the gateway has started, to see what that would change
    gc_threshold: int | None  # gc.set_threshold(N) for the run: collect the youngest generation every N allocations


async def _profile(config_path: Path, workload: Workload, options: Options, gc_pauses: GcPauses) -> Profiler | None:
    from gateway.app import create_app
    from gateway.settings.loader import load_settings

    port = _free_port()
    app = create_app(load_settings(str(config_path)))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="none", http="httptools", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            raise RuntimeError("the gateway failed to start")
        await asyncio.sleep(0.05)
    thresholds = gc.get_threshold()
    if options.gc_threshold:
        gc.set_threshold(options.gc_threshold, *thresholds[1:])
    if options.gc_freeze:
        # What the gateway could do after start-up: move every object alive now out of the GC's
        # reach, so a full collection only walks what requests allocated since.
        gc.collect()
        gc.freeze()
    url = f"http://127.0.0.1:{port}{workload.path}"
    command = [sys.executable, str(LOADGEN), url, "--concurrency", str(workload.concurrency)]
    command += ["--duration", str(options.duration_s), "--warmup", str(options.warmup_s), "--timeout", "60"]
    command += ["--method", workload.method]
    if workload.body is not None:
        command += ["--body", json.dumps(workload.body), "--header", "Content-Type: application/json"]
    # Every thread's stack is sampled, whichever task runs: "disabled" attributes nothing to awaits.
    profiler = Profiler(interval=0.001, async_mode="disabled") if options.sample else None
    loadgen = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    if profiler is not None:
        profiler.start()
    gc.callbacks.append(gc_pauses)
    try:
        out, err = await asyncio.wait_for(loadgen.communicate(), options.duration_s + options.warmup_s + 120)
    finally:
        if profiler is not None:
            profiler.stop()
        gc.callbacks.remove(gc_pauses)
        if options.gc_freeze:
            gc.unfreeze()
        gc.set_threshold(*thresholds)
        server.should_exit = True
        await serving
    if loadgen.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.decode()[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"  load: {result['rps']:,.1f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"errors {result['errors'] + result['non_2xx']}",
        flush=True,
    )
    return profiler


IDLE = "event loop itself (uvloop's C code: waiting for I/O, socket calls)"


def _where(frame: Frame) -> str:
    path = frame.file_path or "?"
    if frame.function == "run" and path.endswith("asyncio/runners.py"):
        # uvloop runs callbacks from C, so its own time is the self time of the frame that started it.
        return IDLE
    return f"{frame.function} ({frame.file_path_short or path}:{frame.line_no})"


def _package(frame: Frame) -> str:
    path = frame.file_path or ""
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for own in OWN:
        if f"/{own}" in path:
            return own.rstrip("/")
    if path.startswith("<"):
        return path  # <built-in>, <frozen ...>
    return "stdlib " + Path(path).parent.name if "/python3" in path else path


@dataclass
class Tally:
    """Seconds per function (self and inclusive), per package, and per call from our code into a library."""

    self_time: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    inclusive: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    packages: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls_out: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def _back_in_own(frame: Frame) -> float:
    """Time below a library frame spent back in our code (a transport httpx calls, say)."""
    total = 0.0
    for child in frame.children:
        if child.is_synthetic:
            continue
        total += child.time if _package(child) in OWN_PACKAGES else _back_in_own(child)
    return total


def _walk(frame: Frame, stack: tuple[str, ...], tally: Tally) -> None:
    key = _where(frame)
    package = IDLE if key == IDLE else _package(frame)
    # Synthetic children ([self], [await]) are already part of their parent's total_self_time.
    own = frame.total_self_time
    tally.self_time[key] += own
    tally.packages[package] += own
    # Inclusive time counts a function once per stack, however deep it recurses.
    if key not in stack and package in OWN_PACKAGES:
        tally.inclusive[key] += frame.time
    parent = frame.parent
    if parent is not None and package not in OWN_PACKAGES and _package(parent) in OWN_PACKAGES:
        tally.calls_out[f"{_where(parent)} -> {package}: {frame.function}"] += frame.time - _back_in_own(frame)
    for child in frame.children:
        if not child.is_synthetic:
            _walk(child, (*stack, key), tally)


def hot_spots(profiler: Profiler, top: int) -> str:
    """Functions by self time, packages by self time, and the gateway's functions by inclusive time."""
    session = profiler.last_session
    root = session.root_frame() if session else None
    if root is None:
        return "  no samples"
    tally = Tally()
    _walk(root, (), tally)
    total = root.time

    def listing(title: str, values: dict[str, float], limit: int) -> list[str]:
        lines = ["", f"  {title}:"]
        for key, value in sorted(values.items(), key=lambda kv: -kv[1])[:limit]:
            lines.append(f"  {100 * value / total:5.1f} %  {key}")
        return lines

    lines = [f"  {total:.2f} s sampled (wall clock of the gateway's thread)"]
    lines += listing("self time by package", tally.packages, 15)
    lines += listing("self time by function", tally.self_time, top)
    lines += listing("inclusive time, gateway/ and adapters/ functions", tally.inclusive, top)
    title = "time in libraries called from gateway/ and adapters/ (less what they call back in our code)"
    lines += listing(title, tally.calls_out, top)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: profile each workload and print its hot spots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="one workload (repeatable)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per workload")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before the measured part")
    parser.add_argument("--top", type=int, default=25, help="lines per list")
    parser.add_argument("--html", type=Path, help="write pyinstrument's HTML tree here (NAME.html per workload)")
    parser.add_argument("--text", action="store_true", help="also print pyinstrument's call tree")
    parser.add_argument("--no-profiler", action="store_true", help="only the load and GC pauses, without sampling")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the gateway's start-up")
    parser.add_argument("--gc-threshold", type=int, help="gc.set_threshold(N) for the run (Python's default: 700)")
    args = parser.parse_args(argv)
    chosen = args.only or list(WORKLOADS)
    options = Options(
        args.duration,
        args.warmup,
        sample=not args.no_profiler,
        gc_freeze=args.gc_freeze,
        gc_threshold=args.gc_threshold,
    )

    workdir = Path(tempfile.mkdtemp(prefix="stapi-profile-"))
    fleet = Fleet(workdir)
    try:
        with gateway_logging(workdir / "gateway.log"):
            for name in chosen:
                if name == "product":
                    upstream = start_simulator(fleet)
                    config = gateway_config({"acme": upstream.origin})
                    workload = Workload(name, "/products/acme:optical-50cm", 32)
                else:
                    stubs = start_stubs(fleet, "stubs-merge", MERGE_MEMBERS, sizes=(MERGE_SIZE,))
                    providers = {f"m{i + 1}": o for i, o in enumerate(stub_origins(stubs))}
                    product = f"merge-{MERGE_SIZE}"
                    products = {product: {"members": [f"{pid}:bulk-{MERGE_SIZE}" for pid in providers]}}
                    config = gateway_config(providers, products=products, deadline_s=60.0, timeout_s=60.0)
                    search = {**SEARCH, "datetime": "2026-12-01T00:00:00Z/2026-12-31T00:00:00Z", "limit": 100}
                    workload = Workload(name, f"/products/{product}/opportunities", 1, "POST", search)
                path = workdir / f"{name}.yaml"
                path.write_text(yaml.safe_dump(config, sort_keys=False))
                print(f"== {name}: {workload.method} {workload.path} at c={workload.concurrency}", flush=True)
                started = time.monotonic()
                gc_pauses = GcPauses()
                profiler = uvloop.run(_profile(path, workload, options, gc_pauses))
                print(gc_pauses.report(args.duration + args.warmup), flush=True)
                if profiler is not None:
                    print(hot_spots(profiler, args.top), flush=True)
                if profiler is not None and args.text:
                    print(profiler.output_text(unicode=True, color=False, show_all=False))
                if profiler is not None and args.html:
                    args.html.mkdir(parents=True, exist_ok=True)
                    (args.html / f"{name}.html").write_text(profiler.output_html())
                print(f"  ({time.monotonic() - started:.0f} s)\n", flush=True)
                fleet.close()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        fleet.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
