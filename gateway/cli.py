"""`stapi-gateway`: serve, check-config, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Callable, Sequence

import structlog
import uvicorn
import uvloop

from adapters.registry import simulated_vendors
from gateway.app import create_app
from gateway.demo.simulator import simulator_app
from gateway.domain.errors import StoreUnavailable
from gateway.http.serving import QuietServer, WorkerServer, tune_gc, uvicorn_config
from gateway.obs.logging import configure_logging
from gateway.services import operator
from gateway.services.store_guard import durability_refusal
from gateway.settings.loader import load_settings
from gateway.settings.models import ProviderSettings, Settings
from gateway.settings.problems import ConfigError
from gateway.supervisor import Supervisor, WorkerMain

CONFIG_ENV = "STAPI_GATEWAY_CONFIG"
WORKERS_ENV = "STAPI_GATEWAY_WORKERS"
log = structlog.get_logger("gateway.cli")
DEMO_VENDORS = {"acme": "ACME Space (simulated optical)", "orbit": "Orbit Radar (simulated SAR)"}
DEMO_PRODUCTS = [
    {
        "id": "vhr-50cm",
        "title": "Very high resolution, 50 cm or better (any vendor)",
        "members": ["acme:optical-50cm", "acme:optical-30cm", "orbit:sar-spotlight"],
    }
]


def _worker_count(text: str) -> int:
    """A `--workers` value: a whole number from 1 to 64."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of workers from 1 to 64")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stapi-gateway", description="One STAPI endpoint over many providers.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=os.environ.get(CONFIG_ENV), help=f"YAML file (or ${CONFIG_ENV})")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=os.environ.get(WORKERS_ENV, "1"),
        help=f"worker processes on the one port (or ${WORKERS_ENV}; default 1); more than 1 needs a redis:// store",
    )
    check = commands.add_parser("check-config", help="validate a configuration; contacts nothing")
    check.add_argument("path")
    unknown = commands.add_parser("unknown-orders", help="list order attempts of unknown outcome in the store")
    unknown.add_argument("--config", default=os.environ.get(CONFIG_ENV), help=f"YAML file (or ${CONFIG_ENV})")
    unknown.add_argument("--json", action="store_true", help="one JSON object per line")
    demo = commands.add_parser("demo", help="the gateway and two simulated providers, no setup needed")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--vendor-port-base",
        type=int,
        default=0,
        help="simulated vendors on this port and the ones after it (default: free ports)",
    )
    demo.add_argument("--log-level", default="info")
    simulate = commands.add_parser("simulate", help="one simulated STAPI provider (for compose and benchmarks)")
    simulate.add_argument("--vendor", choices=sorted([*DEMO_VENDORS, *simulated_vendors()]), required=True)
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=9001)
    simulate.add_argument("--latency-s", type=float, default=0.0, help="added to every answer")
    simulate.add_argument(
        "--status-step-s", type=float, default=None, help="Umbra and Planet: seconds per step of an order's status walk"
    )
    simulate.add_argument("--log-level", default="info")
    return parser


def cmd_check_config(path: str) -> int:
    """Print every problem of a configuration, or a one-line OK."""
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    print(settings.summary())
    return 0


def _settings(command: str, config: str | None) -> Settings | None:
    """The configuration a command was given, or None after saying on stderr what is wrong."""
    if not config:
        print(f"stapi-gateway {command}: give --config PATH or set {CONFIG_ENV}", file=sys.stderr)
        return None
    try:
        return load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_unknown_orders(config: str | None, as_json: bool) -> int:
    """Print the order attempts whose outcome is unknown; exit 1 when there are any."""
    settings = _settings("unknown-orders", config)
    if settings is None:
        return 2
    if settings.gateway.store.startswith("memory://"):
        print(
            "stapi-gateway unknown-orders: memory:// lives inside the gateway process; use a shared store",
            file=sys.stderr,
        )
        return 2
    try:
        rows = asyncio.run(operator.unknown_orders(settings))
    except StoreUnavailable as exc:
        print(f"stapi-gateway unknown-orders: {exc.detail}", file=sys.stderr)
        return 2
    print(operator.render(rows, as_json=as_json))
    return 1 if rows else 0


def _settings_or_log(config: str) -> Settings | None:
    """The configuration, or None once each of its problems is logged."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("config_problem", problem=str(problem))
        return None


def cmd_serve(config: str | None, host: str, port: int, log_level: str, workers: int = 1) -> int:
    """Load the configuration and serve until interrupted (in `workers` processes on the one port)."""
    if not config:
        print(f"stapi-gateway serve: give --config PATH or set {CONFIG_ENV}", file=sys.stderr)
        return 2
    # With several workers every line names the process it came from.
    configure_logging(log_level, pid=workers > 1)
    settings = _settings_or_log(config)
    if settings is None:
        return 1
    if workers > 1 and settings.gateway.store.startswith("memory://"):
        print(
            f"stapi-gateway serve: --workers {workers} needs a shared store: memory:// lives inside each "
            "worker process, so searches, orders, idempotency keys and cursors would split between them. "
            "Set gateway.store to a redis:// URL, or serve with --workers 1.",
            file=sys.stderr,
        )
        return 2
    try:
        refusal = asyncio.run(durability_refusal(settings))
    except StoreUnavailable as exc:
        refusal = exc.detail
    if refusal:
        log.error("startup_refused", reason="store_durability: require", detail=refusal)
        return 1
    tune_gc()
    if workers == 1:
        app = create_app(settings, watch_config=True)
        uvicorn.Server(uvicorn_config(app, host, port, log_level, settings.gateway)).run()
        return 0
    # The master listens; every worker accepts on a socket of the master's and builds its own app.
    return Supervisor(workers, host, port, _worker_main(config, host, port, log_level)).run()


def _worker_main(config: str, host: str, port: int, log_level: str) -> WorkerMain:
    """What a forked worker runs: the configuration read afresh (a replacement gets the current
    file), its own app with its own reloader, uvicorn on the master's socket."""

    def run(sock: socket.socket, on_serving: Callable[[], None]) -> int:
        settings = _settings_or_log(config)
        if settings is None:
            return 1
        app = create_app(settings, watch_config=True)
        server = WorkerServer(uvicorn_config(app, host, port, log_level, settings.gateway), on_serving)
        server.run(sockets=[sock])
        return 0 if server.started else 3

    return run


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _busy(host: str, port: int) -> bool:
    """Whether nothing could listen on host:port now (checked before anything is started or printed)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


async def _demo(host: str, port: int, log_level: str, vendor_port_base: int) -> None:
    vendors: list[tuple[str, QuietServer]] = []
    providers = []
    for i, (vendor, title) in enumerate(DEMO_VENDORS.items()):
        vendor_port = vendor_port_base + i if vendor_port_base else _free_port(host)
        server = QuietServer(uvicorn_config(simulator_app(vendor), host, vendor_port, "warning"))
        vendors.append((vendor, server))
        providers.append(ProviderSettings(id=vendor, url=f"http://{host}:{vendor_port}", title=title))
    # Vendors that do not speak STAPI, each behind its own adapter, side by side with the STAPI ones.
    for i, (name, sim) in enumerate(simulated_vendors().items(), start=len(DEMO_VENDORS)):
        vendor_port = vendor_port_base + i if vendor_port_base else _free_port(host)
        url = f"http://{host}:{vendor_port}"
        vendors.append((name, QuietServer(uvicorn_config(sim.app(0.0, None), host, vendor_port, "warning"))))
        providers.append(
            ProviderSettings.model_validate({"id": name, "url": url, "title": sim.title, **sim.provider(url)})
        )
    # A federated product mixing a STAPI provider's product with the simulated vendors' ones.
    mixed = ["acme:optical-50cm", *(f"{n}:{s.featured}" for n, s in simulated_vendors().items() if s.featured)]
    products = [*DEMO_PRODUCTS, {"id": "any-vendor", "title": "Any vendor, STAPI or not", "members": mixed}]
    # Webhooks to loopback receivers: the demo's subscribers run on this machine.
    settings = Settings.build(
        providers,
        products=products,
        title="STAPI Gateway (demo)",
        store="memory://",
        webhooks={"allow_private": True},
    )
    tasks = [asyncio.create_task(server.serve()) for _, server in vendors]
    while not all(server.started for _, server in vendors):
        if any(task.done() for task in tasks):
            raise SystemExit("a demo provider failed to start")
        await asyncio.sleep(0.02)
    print(f"Demo providers: {', '.join(p.base_url for p in providers)}", file=sys.stderr)
    print(f"Open http://{host}:{port}/products  (Ctrl-C stops everything)", file=sys.stderr)
    try:
        await uvicorn.Server(uvicorn_config(create_app(settings), host, port, log_level, settings.gateway)).serve()
    finally:
        for _, vendor_server in vendors:
            vendor_server.should_exit = True
        await asyncio.gather(*tasks)


def cmd_demo(host: str, port: int, log_level: str, vendor_port_base: int = 0) -> int:
    """The gateway in front of the simulated providers on loopback."""
    count = len(DEMO_VENDORS) + len(simulated_vendors())
    wanted = [port] + [vendor_port_base + i for i in range(count)] * bool(vendor_port_base)
    taken = [p for p in wanted if _busy(host, p)]
    if taken:
        print(f"stapi-gateway demo: port {taken[0]} on {host} is in use; pick another with --port", file=sys.stderr)
        return 2
    configure_logging(log_level)
    tune_gc()
    uvloop.run(_demo(host, port, log_level, vendor_port_base))
    return 0


def cmd_simulate(
    vendor: str, host: str, port: int, latency_s: float, log_level: str, status_step_s: float | None = None
) -> int:
    """Serve one simulated provider."""
    configure_logging(log_level)
    sim = simulated_vendors().get(vendor)
    app = sim.app(latency_s, status_step_s) if sim is not None else simulator_app(vendor, latency_s=latency_s)
    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return cmd_check_config(args.path)
    if args.command == "serve":
        return cmd_serve(args.config, args.host, args.port, args.log_level, args.workers)
    if args.command == "unknown-orders":
        return cmd_unknown_orders(args.config, args.json)
    if args.command == "simulate":
        return cmd_simulate(args.vendor, args.host, args.port, args.latency_s, args.log_level, args.status_step_s)
    return cmd_demo(args.host, args.port, args.log_level, args.vendor_port_base)


if __name__ == "__main__":
    sys.exit(main())
