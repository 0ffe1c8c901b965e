"""The gateway's benchmark: every scenario through `stapi-gateway serve` and straight to its upstream.

    python bench/run.py                 # full run, about 6 minutes
    python bench/run.py --quick         # short cells, under 3 minutes
    python bench/run.py --only a,c      # some scenarios (a overhead, b fan-out, c merge, d store, e workers)

Upstreams, gateways and load generators are separate processes on free loopback ports. Each
gateway is `stapi-gateway serve --config <generated yaml>` with one worker and its default
logging (info, one JSON line per request and per upstream call) going to a file. The load
generator is bench/loadgen.py. Every cell's request is also sent directly to the upstream in the
same run, and the table shows both side by side. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from common import drop_keys, interrupt_on_sigterm, machine

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
STUBS = HERE / "stubs.py"
SCENARIOS = ("a", "b", "c", "d", "e")
ROUNDS = 3  # scenario e: its cells take turns this many times
READY_TIMEOUT_S = 30.0
SECRET = "bench-only-cursor-secret"
# The search every opportunity cell sends: a point, a five-day window (about 20 passes), one page of 10.
SEARCH = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-06T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [9.0, 48.0]},
    "limit": 10,
}
MERGE_SIZES = (200, 2000, 10_000)
MERGE_MEMBERS = 5
FANOUT_SIZES = (1, 5, 10, 25)
FANOUT_LATENCY_S = 0.1
FANOUT_CONCURRENCY = 4
JSON_HEADERS = {"Content-Type": "application/json"}


def _stapi_gateway() -> str:
    beside = Path(sys.executable).parent / "stapi-gateway"
    found = str(beside) if beside.exists() else shutil.which("stapi-gateway")
    if not found:
        raise SystemExit("stapi-gateway is not installed in this environment (pip install -e .)")
    return found


def _free_port() -> int:
    # Bound then released: a tiny race with other processes, acceptable on a bench machine.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status_field(pid: int, name: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), in kB; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- processes -------------------------------------------------------------------------------


@dataclass
class Proc:
    """A server process we started, and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    origin: str

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid


@dataclass
class Fleet:
    """Every server process of the run; each one is stopped however the run ends."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)
    log_lines: int = 0

    def start(self, name: str, argv: list[str], port: int, ready_path: str) -> Proc:
        """Start `argv` (which listens on `port`) and wait until `ready_path` answers 200."""
        log = self.workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if k != "STAPI_GATEWAY_STORE"}
        with log.open("wb") as out:
            # Own session: Ctrl-C reaches only this script, which then stops the servers itself.
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        proc = Proc(name, popen, log, f"http://127.0.0.1:{port}")
        self.procs.append(proc)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if popen.poll() is not None:
                self.stop(proc)
                raise RuntimeError(f"{name} exited with {popen.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(proc.origin + ready_path, timeout=2.0) as response:
                    if response.status == 200:
                        return proc
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop(proc)
                raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self, proc: Proc) -> None:
        """Stop one process (SIGTERM, then SIGKILL after 10 s) and count a gateway's log lines."""
        if proc in self.procs:
            self.procs.remove(proc)
        if proc.popen.poll() is None:
            proc.popen.terminate()
            try:
                proc.popen.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        if proc.name.startswith("gateway"):
            with proc.log.open("rb") as log:
                self.log_lines += sum(chunk.count(b"\n") for chunk in iter(lambda: log.read(1 << 20), b""))

    def close(self) -> None:
        """Stop everything still running, newest first."""
        for proc in reversed(list(self.procs)):
            self.stop(proc)


@contextlib.contextmanager
def running(fleet: Fleet, proc: Proc) -> Iterator[Proc]:
    """Stop `proc` when the block exits."""
    try:
        yield proc
    finally:
        fleet.stop(proc)


def start_simulator(fleet: Fleet) -> Proc:
    """The fast STAPI stub: `stapi-gateway simulate --vendor acme --latency-s 0`."""
    port = _free_port()
    argv = [_stapi_gateway(), "simulate", "--vendor", "acme", "--port", str(port), "--latency-s", "0"]
    return fleet.start("simulator-acme", [*argv, "--log-level", "warning"], port, "/products")


def start_stubs(fleet: Fleet, name: str, count: int, *, latency_s: float = 0.0, sizes: tuple[int, ...] = ()) -> Proc:
    """`count` providers from bench/stubs.py in one process; their origins are `stub_origins(proc)`."""
    ports = [_free_port() for _ in range(count)]
    argv = [sys.executable, str(STUBS), "--ports", ",".join(map(str, ports)), "--latency-s", str(latency_s)]
    if sizes:
        argv += ["--sizes", ",".join(map(str, sizes))]
    proc = fleet.start(name, argv, ports[0], "/products")
    proc.origin = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    return proc


def stub_origins(proc: Proc) -> list[str]:
    """The origin of every provider a stubs process serves."""
    return proc.origin.split(",")


def gateway_config(
    providers: dict[str, str],
    *,
    products: dict[str, Any] | None = None,
    store: str = "memory://",
    prefix: str = "stapi-gw-bench:",
    deadline_s: float = 10.0,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """A main configuration file's content; everything not named here keeps its default."""
    return {
        "gateway": {
            "title": "STAPI Gateway (bench)",
            "store": store,
            "store_prefix": prefix,
            "secret": SECRET,
            "deadline_s": deadline_s,
        },
        "providers": {pid: {"url": url, "title": pid, "timeout_s": timeout_s} for pid, url in providers.items()},
        "products": products or {},
    }


def start_gateway(fleet: Fleet, name: str, config: dict[str, Any], workers: int = 1) -> Proc:
    """`stapi-gateway serve --config <file>`: `workers` uvicorn workers, default (info) logging to a file."""
    path = fleet.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = _free_port()
    argv = [_stapi_gateway(), "serve", "--config", str(path), "--port", str(port), "--workers", str(workers)]
    proc = fleet.start(name, argv, port, "/healthz")
    # /healthz answers once one worker serves; wait for the others so none starts under load.
    deadline = time.monotonic() + READY_TIMEOUT_S
    while workers > 1 and _log_count(proc, b'"worker_ready"') < workers:
        expect(time.monotonic() < deadline, f"{name}: {workers} workers not ready")
        time.sleep(0.1)
    return proc


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (a `serve --workers` master's workers); [] off Linux."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _log_count(proc: Proc, marker: bytes) -> int:
    """How many lines of `proc`'s log contain `marker`."""
    return sum(marker in line for line in proc.log.read_bytes().splitlines())


# --- requests and load -----------------------------------------------------------------------


def fetch(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request outside the load, to check an answer before it is measured."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**JSON_HEADERS, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120.0) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def expect(condition: bool, what: str) -> None:
    """Refuse to measure an answer that is not what the scenario means to measure."""
    if not condition:
        raise RuntimeError(f"check failed: {what}")


@dataclass(frozen=True)
class Budget:
    """How long each cell runs."""

    warmup_s: float
    duration_s: float
    slow_duration_s: float  # cells of one slow request at a time need more time for a few samples


def measure(
    urls: list[str],
    concurrency: int,
    budget: Budget,
    *,
    pids: tuple[int, ...] = (),
    method: str = "GET",
    body: Any = None,
    mode: str = "split",
    redis_key: str | None = None,
    slow: bool = False,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One cell: bench/loadgen.py in its own process, plus the CPU `pids` spent per request."""
    duration = budget.slow_duration_s if slow else budget.duration_s
    timeout = 120.0 if slow else 10.0
    command = [sys.executable, str(LOADGEN), *urls, "--concurrency", str(concurrency)]
    command += ["--duration", str(duration), "--warmup", str(budget.warmup_s), "--timeout", str(timeout)]
    command += ["--method", method, "--mode", mode]
    if body is not None:
        command += ["--body", json.dumps(body)]
        headers = {**JSON_HEADERS, **(headers or {})}
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    if redis_key is not None:
        command += ["--redis-key", redis_key]
    cpu_before = [_cpu_seconds(pid) for pid in pids]
    done = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=duration + budget.warmup_s + 300.0
    )
    cpu_after = [_cpu_seconds(pid) for pid in pids]
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"loadgen failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    spent = [b - a for a, b in zip(cpu_before, cpu_after, strict=True) if a is not None and b is not None]
    if pids and len(spent) == len(pids) and result["sent_total"]:
        result["server_cpu_us_per_req"] = round(1e6 * sum(spent) / result["sent_total"], 1)
    return result


@dataclass
class Row:
    """One line of the table: a request through the gateway and the same request sent directly."""

    scenario: str
    request: str
    concurrency: int
    gateway: dict[str, Any]
    direct: dict[str, Any] | None
    direct_label: str
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def progress(text: str) -> None:
    """A progress line on stderr."""
    print(text, file=sys.stderr, flush=True)


# --- scenarios -------------------------------------------------------------------------------


@dataclass
class Bench:
    """The run: its processes, budget and the rows measured so far."""

    fleet: Fleet
    budget: Budget
    redis_url: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    merge_members: int = MERGE_MEMBERS
    _simulator: Proc | None = None

    def simulator(self) -> Proc:
        """The fast upstream, started on first use and shared by scenarios a, d and e."""
        if self._simulator is None or self._simulator.popen.poll() is not None:
            progress("starting the fast upstream (stapi-gateway simulate --vendor acme --latency-s 0)")
            self._simulator = start_simulator(self.fleet)
        return self._simulator

    def overhead(self) -> None:
        """a: one product and a sync search, through the gateway and direct, at c=1 and c=32."""
        upstream = self.simulator()
        with running(
            self.fleet, start_gateway(self.fleet, "gateway-a", gateway_config({"acme": upstream.origin}))
        ) as gw:
            status, product = fetch(f"{gw.origin}/products/acme:optical-50cm")
            expect(status == 200 and product["id"] == "acme:optical-50cm", f"gateway product: {status}")
            url = f"{gw.origin}/products/acme:optical-50cm/opportunities"
            status, found = fetch(url, "POST", SEARCH)
            expect(status == 200 and len(found["features"]) == 10, f"gateway search: {status} {str(found)[:300]}")
            cells = [
                ("GET /products/{id}", "GET", None, "/products/acme:optical-50cm", "/products/optical-50cm"),
                (
                    "POST .../opportunities (limit 10)",
                    "POST",
                    SEARCH,
                    "/products/acme:optical-50cm/opportunities",
                    "/products/optical-50cm/opportunities",
                ),
            ]
            for label, method, body, via, direct_path in cells:
                for concurrency in (1, 32):
                    progress(f"a. {label} at c={concurrency}")
                    direct = measure(
                        [upstream.origin + direct_path], concurrency, self.budget, method=method, body=body
                    )
                    through = measure(
                        [gw.origin + via], concurrency, self.budget, pids=(gw.pid,), method=method, body=body
                    )
                    row = Row("a overhead", label, concurrency, through, direct, "simulator")
                    row.notes.append(f"+{through['p50_ms'] - direct['p50_ms']:.2f} ms p50")
                    self.rows.append(row)

    def fanout(self) -> None:
        """b: GET /products over 1..25 providers that answer after 100 ms, vs one provider."""
        progress(f"b. starting {max(FANOUT_SIZES)} providers (bench/stubs.py, {FANOUT_LATENCY_S * 1000:.0f} ms)")
        stubs = start_stubs(self.fleet, "stubs-fanout", max(FANOUT_SIZES), latency_s=FANOUT_LATENCY_S)
        with running(self.fleet, stubs):
            origins = stub_origins(stubs)
            for count in FANOUT_SIZES:
                providers = {f"p{i + 1:02d}": origins[i] for i in range(count)}
                config = gateway_config(providers)
                with running(self.fleet, start_gateway(self.fleet, f"gateway-b{count}", config)) as gw:
                    status, page = fetch(f"{gw.origin}/products")
                    expect(status == 200, f"gateway /products over {count}: {status}")
                    expect("federation:missing" not in page, f"missing providers: {page.get('federation:missing')}")
                    expect(len(page["products"]) == min(10, 2 * count), f"{len(page['products'])} products")
                    # At the largest count, c=1 too: it separates one request's own cost from queueing.
                    for c in (FANOUT_CONCURRENCY, 1) if count == max(FANOUT_SIZES) else (FANOUT_CONCURRENCY,):
                        progress(f"b. GET /products over {count} provider(s) at c={c}")
                        direct = measure([origins[0] + "/products?limit=10"], c, self.budget)
                        through = measure([gw.origin + "/products"], c, self.budget, pids=(gw.pid,))
                        row = Row("b fan-out", f"GET /products, {count} provider(s)", c, through, direct, "1 provider")
                        row.extra["providers"] = count
                        self.rows.append(row)

    def merge(self) -> None:
        """c: a federated search over `merge_members` providers answering N opportunities each."""
        count = self.merge_members
        progress(f"c. starting {count} bulk providers (bench/stubs.py, {', '.join(map(str, MERGE_SIZES))})")
        stubs = start_stubs(self.fleet, "stubs-merge", count, sizes=MERGE_SIZES)
        with running(self.fleet, stubs):
            origins = stub_origins(stubs)
            providers = {f"m{i + 1}": origin for i, origin in enumerate(origins)}
            search = {**SEARCH, "datetime": "2026-12-01T00:00:00Z/2026-12-31T00:00:00Z", "limit": 100}
            # What the gateway sends each member: the client's search with the member's own paging.
            upstream_body = {**search, "filter": None, "next": None}
            for size in MERGE_SIZES:
                product = f"merge-{size}"
                products = {product: {"members": [f"{pid}:bulk-{size}" for pid in providers]}}
                # Generous budgets: this measures the cost of merging, not what the timeouts cut off.
                config = gateway_config(providers, products=products, deadline_s=60.0, timeout_s=60.0)
                # A fresh gateway per size, so its peak RSS belongs to this size alone.
                with running(self.fleet, start_gateway(self.fleet, f"gateway-c{size}", config)) as gw:
                    rss_idle = _status_field(gw.pid, "VmRSS")
                    url = f"{gw.origin}/products/{product}/opportunities"
                    status, found = fetch(url, "POST", search)
                    expect(status == 200, f"merge search {size}: {status} {str(found)[:300]}")
                    expect("federation:missing" not in found, f"missing: {found.get('federation:missing')}")
                    starts = [f["properties"]["datetime"] for f in found["features"]]
                    expect(len(starts) == 100 and starts == sorted(starts), "100 features in start order")
                    progress(f"c. federated search over {count} x {size:,} opportunities at c=1")
                    members = [f"{o}/products/bulk-{size}/opportunities" for o in origins]
                    direct = measure(members, 1, self.budget, method="POST", body=upstream_body, mode="all", slow=True)
                    through = measure([url], 1, self.budget, pids=(gw.pid,), method="POST", body=search, slow=True)
                    hwm = _status_field(gw.pid, "VmHWM")
                    row = Row("c merge", f"POST federated search, {count} x {size:,}", 1, through, direct, "")
                    row.direct_label = f"all {count} members at once"
                    beyond = through["p50_ms"] - direct["p50_ms"]
                    row.extra.update(size=size, beyond_ms=beyond, rss_idle_kb=rss_idle, rss_peak_kb=hwm)
                    row.notes.append(f"+{beyond:.0f} ms p50 beyond slowest member ({through['requests']} samples)")
                    if hwm is not None and rss_idle is not None:
                        row.notes.append(f"peak RSS {hwm / 1024:.0f} MB (idle {rss_idle / 1024:.0f} MB)")
                    self.rows.append(row)

    def store(self) -> None:
        """d: reads of a completed async search record from Redis at c=32."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0)
        try:
            client.ping()
        except redis.RedisError as exc:
            self.notes.append(f"d. skipped: no Redis at {self.redis_url} ({exc})")
            progress(self.notes[-1])
            return
        prefix = f"stapi-gw-bench-{uuid.uuid4().hex[:12]}:"
        upstream = self.simulator()
        config = gateway_config({"acme": upstream.origin}, store=self.redis_url, prefix=prefix)
        try:
            with running(self.fleet, start_gateway(self.fleet, "gateway-d", config)) as gw:
                url = f"{gw.origin}/products/acme:optical-50cm/opportunities"
                status, record = fetch(url, "POST", SEARCH, {"Prefer": "respond-async"})
                expect(status == 201, f"async search: {status} {str(record)[:300]}")
                record_url = f"{gw.origin}/searches/opportunities/{record['id']}"
                deadline = time.monotonic() + 30.0
                while record["status"]["status_code"] != "completed":
                    expect(time.monotonic() < deadline, f"search not completed: {record['status']}")
                    time.sleep(0.2)
                    status, record = fetch(record_url)
                    expect(status == 200, f"record read: {status}")
                key = f"{prefix}kv:search:{record['id']}"
                expect(client.get(key) is not None, f"record key {key} in Redis")
                progress("d. GET /searches/opportunities/{id} from Redis at c=32")
                direct = measure([self.redis_url], 32, self.budget, redis_key=key)
                through = measure([record_url], 32, self.budget, pids=(gw.pid,))
                self.rows.append(
                    Row("d store", "GET /searches/opportunities/{id}", 32, through, direct, "redis GET of the record")
                )
        finally:
            progress(f"d. removed {drop_keys(client, prefix)} key(s) under {prefix}")
            client.close()

    def workers(self) -> None:
        """e: GET /products/{id} at c=32 on one gateway process, split over two on two ports, and
        `serve --workers 2` on one port; on Redis (several workers refuse memory://) when there is one.

        The cells take turns, ROUNDS times: on a shared machine the CPU left to the gateway drifts
        within a minute, so each round's ratio compares cells measured side by side, and each row
        shows its median cell and the median of the rounds' ratios.
        """
        upstream = self.simulator()
        store, prefix = self.redis_url, f"stapi-gw-bench-{uuid.uuid4().hex[:12]}:"
        if not _redis_answers(store):
            store = "memory://"
            self.notes.append(f"e. no Redis at {self.redis_url}: memory:// store, no `serve --workers 2` row")
        config = gateway_config({"acme": upstream.origin}, store=store, prefix=prefix)
        direct_url = upstream.origin + "/products/optical-50cm"
        path = "/products/acme:optical-50cm"
        with contextlib.ExitStack() as stack:
            one = stack.enter_context(running(self.fleet, start_gateway(self.fleet, "gateway-e1", config)))
            two = stack.enter_context(running(self.fleet, start_gateway(self.fleet, "gateway-e2", config)))
            cells: dict[str, tuple[list[str], tuple[int, ...]]] = {
                "1 worker": ([one.origin + path], (one.pid,)),
                "2 procs, 2 ports": ([one.origin + path, two.origin + path], (one.pid, two.pid)),
            }
            if store != "memory://":
                master = stack.enter_context(
                    running(self.fleet, start_gateway(self.fleet, "gateway-e3", config, workers=2))
                )
                cells["--workers 2"] = ([master.origin + path], (master.pid, *_children(master.pid)))
            for url in {url for urls, _ in cells.values() for url in urls}:
                status, _ = fetch(url)
                expect(status == 200, f"{url}: {status}")
            progress(f"e. GET /products/{{id}} at c=32: direct, then {', '.join(cells)}, {ROUNDS} rounds")
            direct = measure([direct_url], 32, self.budget)
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in cells}
            for _ in range(ROUNDS):
                for name, (urls, pids) in cells.items():
                    results[name].append(measure(urls, 32, self.budget, pids=pids))
        singles = results["1 worker"]
        for name, runs in results.items():
            row = Row("e workers", f"GET /products/{{id}}, {name}", 32, _median_cell(runs), direct, "simulator")
            if name != "1 worker":
                ratios = sorted(r["rps"] / max(s["rps"], 1e-9) for r, s in zip(runs, singles, strict=True))
                row.extra["vs_one_worker"] = ratios[len(ratios) // 2]
                row.notes.append(
                    f"{ratios[len(ratios) // 2]:.2f}x one worker (rounds {', '.join(f'{x:.2f}' for x in ratios)})"
                )
            self.rows.append(row)


def _median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The cell with the median req/s."""
    return sorted(runs, key=lambda run: float(run["rps"]))[len(runs) // 2]


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# --- report ----------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    headers = [
        "scenario",
        "request",
        "c",
        "gw p50 ms",
        "gw p99 ms",
        "gw req/s",
        "direct to",
        "direct p50 ms",
        "direct p99 ms",
        "direct req/s",
        "p50 ratio",
        "req/s ratio",
        "gw CPU µs/req",
        "loadgen CPU % gw/direct",
        "errors",
        "notes",
    ]
    cells = []
    for row in rows:
        g, d = row.gateway, row.direct or {}
        errors = g["errors"] + g["non_2xx"] + d.get("errors", 0) + d.get("non_2xx", 0)
        cells.append(
            [
                row.scenario,
                row.request,
                str(row.concurrency),
                f"{g['p50_ms']:.2f}",
                f"{g['p99_ms']:.2f}",
                f"{g['rps']:,.0f}" if g["rps"] >= 10 else f"{g['rps']:.2f}",
                row.direct_label,
                f"{d['p50_ms']:.2f}" if d else "",
                f"{d['p99_ms']:.2f}" if d else "",
                (f"{d['rps']:,.0f}" if d["rps"] >= 10 else f"{d['rps']:.2f}") if d else "",
                _ratio(g["p50_ms"], d["p50_ms"]) if d else "",
                _ratio(g["rps"], d["rps"]) if d else "",
                f"{g['server_cpu_us_per_req']:,.0f}" if "server_cpu_us_per_req" in g else "n/a",
                f"{g['loadgen_cpu_pct']:.0f}/{d['loadgen_cpu_pct']:.0f}" if d else f"{g['loadgen_cpu_pct']:.0f}",
                str(errors),
                "; ".join(row.notes),
            ]
        )
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    left = {0, 1, 6, 15}

    def line(values: list[str]) -> str:
        padded = [v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    separator = (
        "|" + "|".join(("-" * (w + 2)) if i in left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    )
    return "\n".join([line(headers), separator, *(line(c) for c in cells)])


@dataclass(frozen=True)
class Target:
    """One of the targets the gateway is held to, read off the rows."""

    name: str
    check: Callable[[list[Row]], tuple[str, bool] | None]


def _find(rows: list[Row], scenario: str, request: str, concurrency: int) -> Row | None:
    return next(
        (r for r in rows if r.scenario == scenario and r.request == request and r.concurrency == concurrency), None
    )


def _fanout_target(rows: list[Row]) -> tuple[str, bool] | None:
    row = next(
        (r for r in rows if r.scenario == "b fan-out" and r.extra.get("providers") == 25 and r.concurrency > 1), None
    )
    if row is None or row.direct is None:
        return None
    ratio = row.gateway["p50_ms"] / row.direct["p50_ms"]
    return f"{ratio:.2f}x ({row.gateway['p50_ms']:.1f} vs {row.direct['p50_ms']:.1f} ms)", ratio <= 1.2


def _overhead_target(rows: list[Row]) -> tuple[str, bool] | None:
    row = _find(rows, "a overhead", "GET /products/{id}", 1)
    if row is None or row.direct is None:
        return None
    extra = row.gateway["p50_ms"] - row.direct["p50_ms"]
    return f"+{extra:.2f} ms ({row.gateway['p50_ms']:.2f} vs {row.direct['p50_ms']:.2f} ms)", extra <= 1.0


def _throughput_target(rows: list[Row]) -> tuple[str, bool] | None:
    row = _find(rows, "a overhead", "GET /products/{id}", 32)
    if row is None:
        return None
    g = row.gateway
    return f"{g['rps']:,.0f} req/s, p99 {g['p99_ms']:.1f} ms", g["rps"] >= 2000 and g["p99_ms"] < 50


def _workers_target(rows: list[Row]) -> tuple[str, bool] | None:
    row = _find(rows, "e workers", "GET /products/{id}, --workers 2", 32)
    if row is None:
        return None
    ratio: float = row.extra["vs_one_worker"]
    return f"{ratio:.2f}x (median of the rounds; {row.gateway['rps']:,.0f} req/s)", ratio >= 1.3


def _merge_target(rows: list[Row]) -> tuple[str, bool] | None:
    row = next((r for r in rows if r.scenario == "c merge" and r.extra.get("size") == 2000), None)
    if row is None:
        return None
    beyond = row.extra["beyond_ms"]
    return f"+{beyond:.0f} ms", beyond <= 150


def _store_target(rows: list[Row]) -> tuple[str, bool] | None:
    row = next((r for r in rows if r.scenario == "d store"), None)
    if row is None:
        return None
    return f"{row.gateway['rps']:,.0f} req/s", row.gateway["rps"] >= 1500


TARGETS = [
    Target("fan-out, 25 providers at 100 ms: gateway p50 <= 1.2x one provider's", _fanout_target),
    Target("overhead at c=1, GET /products/{id}: <= +1 ms p50 over direct", _overhead_target),
    Target("c=32 GET /products/{id}, one worker: >= 2,000 req/s, p99 < 50 ms", _throughput_target),
    Target("merge 5 x 2,000: <= 150 ms p50 beyond the slowest member", _merge_target),
    Target("search record reads from Redis, one worker: >= 1,500 req/s", _store_target),
    Target("`serve --workers 2` vs one worker, c=32, same run: >= 1.3x req/s", _workers_target),
]


def format_targets(rows: list[Row]) -> str:
    """Each target, its measured value and whether it is met."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target in TARGETS:
        outcome = target.check(rows)
        if outcome is None:
            lines.append(f"| {target.name} | not measured | |")
        else:
            lines.append(f"| {target.name} | {outcome[0]} | {'yes' if outcome[1] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the chosen scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short cells (1 s warm-up + 3 s), under 3 minutes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios: a,b,c,d,e")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="Redis for scenario d")
    parser.add_argument("--json", type=Path, help="also write every cell's full loadgen summary here")
    parser.add_argument("--keep-logs", type=Path, help="keep configs and server logs in this directory")
    parser.add_argument("--merge-members", type=int, default=MERGE_MEMBERS, help="providers in scenario c")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := [s for s in only if s not in SCENARIOS]:
        parser.error(f"unknown scenario(s) {unknown}; choose from {','.join(SCENARIOS)}")
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)

    budget = Budget(1.0, 3.0, 6.0) if args.quick else Budget(2.0, 8.0, 12.0)
    if args.keep_logs:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        workdir = args.keep_logs
    else:
        workdir = Path(tempfile.mkdtemp(prefix="stapi-bench-"))
    fleet = Fleet(workdir)
    bench = Bench(fleet, budget, args.redis, merge_members=args.merge_members)
    steps = {"a": bench.overhead, "b": bench.fanout, "c": bench.merge, "d": bench.store, "e": bench.workers}

    header = [
        f"machine: {machine()}",
        f"load: {budget.warmup_s:g} s warm-up + {budget.duration_s:g} s measured per cell "
        f"({budget.slow_duration_s:g} s for the merge cells); load average before the run: {os.getloadavg()[0]:.2f}",
    ]
    for line in header:
        print(line, flush=True)
    started = time.monotonic()
    interrupted = False
    try:
        for scenario in only:
            try:
                steps[scenario]()
            except (RuntimeError, OSError, subprocess.SubprocessError, KeyError, ValueError) as exc:
                # One broken scenario must not cost the others' numbers; the table says what failed.
                bench.notes.append(f"{scenario}. FAILED: {str(exc)[:500]}")
                progress(bench.notes[-1])
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted; servers stopped")
    finally:
        fleet.close()
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        "gateways: stapi-gateway serve, 1 worker each unless the row says --workers, default info logging on "
        f"(one JSON line per request and per upstream call, {fleet.log_lines:,} lines written to log files); "
        f"run took {time.monotonic() - started:.0f} s; load average after: {os.getloadavg()[0]:.2f}"
    )
    print()
    print(format_table(bench.rows))
    print()
    print(format_targets(bench.rows))
    for note in bench.notes:
        print(f"note: {note}")
    if args.json:
        payload = {"machine": machine(), "budget": budget.__dict__, "rows": [row.__dict__ for row in bench.rows]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
