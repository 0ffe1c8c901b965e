"""Which HTTP client should the gateway's adapters use? Measure a one-route proxy per variant.

`python bench/transports.py [--duration 8] [--concurrency 32] [--warmup 2]` starts a fast upstream,
then for each client variant a minimal Starlette proxy in front of it, and drives each with
bench/loadgen.py in its own process, at `--concurrency` and at 1. The upstream alone is the
reference row: the ceiling this machine and load generator can reach at all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from apps import BODY, VARIANTS, variant_unavailable
from common import interrupt_on_sigterm, machine

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps.py"
LOADGEN = HERE / "loadgen.py"
REFERENCE = "upstream (no proxy)"
READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Server:
    """A running server process and the URL the load generator should hit."""

    name: str
    url: str
    pid: int


def _free_port() -> int:
    # Bound then released: a tiny race with other processes, acceptable on a bench machine.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: IO[bytes], limit: int = 2000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


def _wait_ready(proc: subprocess.Popen[bytes], url: str, name: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                body = response.read()
            # A proxy that answers but mangles the body would make its row meaningless.
            if body != BODY:
                raise RuntimeError(f"{name} answered {len(body)} bytes that differ from the upstream's body")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s ({last_error}):\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def serving(name: str, role_args: list[str]) -> Iterator[Server]:
    """Run `bench/apps.py ROLE_ARGS` on a free port until the block exits, however it exits."""
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        # Own session: Ctrl-C reaches only this script, which then stops the servers itself
        # instead of every child printing its own KeyboardInterrupt traceback.
        proc = subprocess.Popen(
            [sys.executable, str(APPS), *role_args, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/item"
            _wait_ready(proc, url, name, log)
            yield Server(name, url, proc.pid)
        finally:
            _stop(proc)


def _cpu_seconds(pid: int) -> float | None:
    # Server CPU per request is the transport's cost without the load generator's share of
    # the two cores mixed in; /proc only, so it is simply left out elsewhere.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def measure(server: Server, concurrency: int, duration_s: float, warmup_s: float) -> dict[str, Any]:
    """One cell: run loadgen against `server` in its own process and return its JSON summary."""
    command = [
        sys.executable,
        str(LOADGEN),
        server.url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration_s),
        "--warmup",
        str(warmup_s),
    ]
    cpu_before = _cpu_seconds(server.pid)
    # subprocess.run kills the load generator itself if we are interrupted while it runs.
    done = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=duration_s + warmup_s + 60.0
    )
    cpu_after = _cpu_seconds(server.pid)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"loadgen failed against {server.name} ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["variant"] = server.name
    if cpu_before is not None and cpu_after is not None and result["sent_total"]:
        result["server_cpu_us_per_req"] = round(1e6 * (cpu_after - cpu_before) / result["sent_total"], 1)
    return result


def _format_table(rows: list[dict[str, Any]]) -> str:
    headers = ["variant", "concurrency", "req/s", "p50 ms", "p99 ms", "errors", "server CPU µs/req", "loadgen CPU %"]
    cells = [
        [
            row["variant"],
            str(row["concurrency"]),
            f"{row['rps']:,.0f}",
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            # Transport failures and non-2xx answers both mean the proxy did not do its job.
            str(row["errors"] + row["non_2xx"]),
            f"{row['server_cpu_us_per_req']:.0f}" if "server_cpu_us_per_req" in row else "n/a",
            f"{row['loadgen_cpu_pct']:.0f}",
        ]
        for row in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        padded = [v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), separator, *(line(c) for c in cells)])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: measure every variant and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measurement")
    parser.add_argument("--concurrency", type=int, default=32, help="connections for the throughput cells")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="subset to run")
    parser.add_argument("--json", type=Path, help="also write every cell's full loadgen summary here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)

    levels = sorted({args.concurrency, 1}, reverse=True)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []

    def run_cells(server: Server) -> None:
        for concurrency in levels:
            print(f"  {server.name} at concurrency {concurrency} ...", file=sys.stderr, flush=True)
            rows.append(measure(server, concurrency, args.duration, args.warmup))

    print(f"machine: {machine()}", flush=True)
    print(f"load: {args.warmup:g} s warm-up + {args.duration:g} s measured per cell, 1 KB JSON body", flush=True)
    # Anything else busy on two cores moves every number; say so next to the table.
    print(f"load average before the run: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        with serving(REFERENCE, ["upstream"]) as upstream:
            run_cells(upstream)
            origin = upstream.url.removesuffix("/item")
            for variant in args.variants:
                reason = variant_unavailable(variant)
                if reason:
                    notes.append(f"{variant}: skipped, {reason}")
                    continue
                with serving(variant, ["proxy", variant, "--upstream", origin]) as proxy:
                    run_cells(proxy)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        if rows:
            print(_format_table(rows))
        return 130

    print(_format_table(rows))
    for note in notes:
        print(f"note: {note}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
