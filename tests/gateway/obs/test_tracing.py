"""Tracing set up from the standard OTEL_* environment, exported over OTLP/HTTP to a collector."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

from gateway.obs.tracing import Tracing, sdk_disabled
from tests.gateways import gateway_client
from tests.upstreams import build_providers

ROOT = Path(__file__).resolve().parents[3]


class Collector(ThreadingHTTPServer):
    """A loopback OTLP/HTTP receiver keeping every export request it is sent (in its own threads,
    as the exporter's are blocking calls)."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _CollectorHandler)

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.paths.append(self.path)
        self.server.requests.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A running collector, shut down after the test."""
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_spans_reach_an_otlp_collector_named_by_the_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME: a GET /products over 3 providers arrives
    at the collector as one trace, its SERVER span and a CLIENT span per provider, when the gateway stops."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
    async with gateway_client(build_providers(3, 1), tracing=True) as client:
        assert (await client.get("/products")).status_code == 200
    assert set(collector.paths) == {"/v1/traces"}
    resources = [rs for request in collector.requests for rs in request.resource_spans]
    names = {a.value.string_value for rs in resources for a in rs.resource.attributes if a.key == "service.name"}
    assert names == {"gateway-under-test"}
    spans = [span for rs in resources for ss in rs.scope_spans for span in ss.spans]
    (server,) = [s for s in spans if s.name == "GET /products"]
    in_trace = [s for s in spans if s.trace_id == server.trace_id and s.parent_span_id == server.span_id]
    assert sorted(s.name for s in in_trace) == [f"GET p{i} list_products" for i in (1, 2, 3)]


@pytest.mark.parametrize(
    ("exporter", "protocol", "problem"),
    [
        ("console", "", None),
        ("none", "", None),
        ("otlp", "http/protobuf", None),
        ("otlp,console", "", None),
        ("zipkin", "", "OTEL_TRACES_EXPORTER names 'zipkin'"),
        ("otlp", "grpc", "OTLP protocol 'grpc' is not installed"),
    ],
)
def test_the_exporter_is_the_one_otel_traces_exporter_names(
    monkeypatch: pytest.MonkeyPatch, collector: Collector, exporter: str, protocol: str, problem: str | None
) -> None:
    """otlp (HTTP/protobuf), console and none are served; anything else is refused at start, by name."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", exporter)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    if problem is not None:
        with pytest.raises(ValueError, match=problem):
            Tracing.from_environment()
        return
    tracing = Tracing.from_environment()
    try:
        assert isinstance(tracing.owned, TracerProvider)
        assert tracing.owned.resource.attributes["service.name"] == "stapi-gateway"
        with tracing.tracer.start_as_current_span("probe") as span:
            assert span.get_span_context().is_valid
    finally:
        tracing.shutdown()
    assert len(collector.requests) == ("otlp" in exporter), "the probe went to the collector if otlp was named"


@pytest.mark.parametrize(("value", "disabled"), [("true", True), (" TRUE ", True), ("false", False), ("", False)])
def test_otel_sdk_disabled_is_read_as_the_specification_says(
    monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool
) -> None:
    """Only `true` (any case) disables."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    assert sdk_disabled() is disabled


def test_with_tracing_off_the_gateway_never_loads_its_tracing_code() -> None:
    """A fresh process serving requests with tracing off never imports the gateway's tracing modules
    (nor so makes a span or an OpenTelemetry call on any request's path)."""
    script = """
import asyncio, sys
from tests.gateways import gateway_client
from tests.upstreams import build_providers

async def main():
    async with gateway_client(build_providers(2, 1)) as client:
        for path in ("/products", "/products/p1:p1-product-0", "/nope"):
            await client.get(path)

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("gateway") and m.endswith(".tracing")))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
