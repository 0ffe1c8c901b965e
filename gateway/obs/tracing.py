"""Optional OpenTelemetry tracing (`pip install stapi-gateway[otel]`, `gateway.tracing: true`).

Imported only when tracing is on, so a gateway without it never loads OpenTelemetry. Spans are
made with a tracer provider of the gateway's own (not the process-global one), which is what
lets tests give each gateway an in-memory exporter. Everything about export is OpenTelemetry's
standard environment: OTEL_TRACES_EXPORTER (`otlp`, the default; `console`; `none`, which still
propagates `traceparent` but exports nothing), OTEL_EXPORTER_OTLP_ENDPOINT and
OTEL_EXPORTER_OTLP_TRACES_* (OTLP over HTTP/protobuf), OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*; OTEL_SDK_DISABLED=true turns
tracing off whatever the setting says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.obs.version import VERSION

SERVICE_NAME = "stapi-gateway"
# OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL values the installed exporter speaks.
_HTTP_PROTOCOLS = frozenset({"", "http/protobuf"})


def _exporters(names: str) -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names (comma-separated); ValueError for one not installed."""
    exporters: list[SpanExporter] = []
    for name in (part.strip().lower() for part in names.split(",")):
        if name in ("otlp", "otlp_proto_http"):
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
            )
            if protocol.strip().lower() not in _HTTP_PROTOCOLS:
                raise ValueError(
                    f"OTLP protocol {protocol!r} is not installed; stapi-gateway[otel] sends http/protobuf"
                )
            # Imported here: it pulls in protobuf and an HTTP client, which `console` does not need.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout: from OTEL_EXPORTER_OTLP_*
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name not in ("none", ""):
            raise ValueError(f"OTEL_TRACES_EXPORTER names {name!r}; this gateway exports to otlp, console or none")
    return exporters


def sdk_disabled() -> bool:
    """Whether OTEL_SDK_DISABLED turns OpenTelemetry off in this process."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class Tracing:
    """The gateway's tracer and the W3C trace-context propagator it sends and reads `traceparent` with."""

    tracer: trace.Tracer
    # W3C trace context only (traceparent, tracestate): no baggage, which would hand a client's
    # arbitrary key/values on to every provider.
    propagator: TraceContextTextMapPropagator
    # Owned by this gateway (built from the environment): flushed and shut down when it stops.
    owned: TracerProvider | None = None

    @classmethod
    def of(cls, provider: trace.TracerProvider) -> Tracing:
        """Tracing with a tracer provider the caller owns (tests give one with an in-memory exporter)."""
        return cls(provider.get_tracer(SERVICE_NAME, VERSION), TraceContextTextMapPropagator())

    @classmethod
    def from_environment(cls) -> Tracing:
        """Tracing exported as the OTEL_* environment variables say (OTLP/HTTP by default)."""
        resource = Resource.create({"service.version": VERSION})
        # Attributes given to create() would override OTEL_SERVICE_NAME: the default goes in only
        # where the environment named no service.
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        # shutdown_on_exit=False: the gateway's lifespan shuts it down (and flushes) itself.
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        for exporter in _exporters(os.environ.get("OTEL_TRACES_EXPORTER", "otlp")):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider.get_tracer(SERVICE_NAME, VERSION), TraceContextTextMapPropagator(), provider)

    def shutdown(self) -> None:
        """Export what is still queued and stop, if this gateway owns its tracer provider."""
        if self.owned is not None:
            self.owned.shutdown()
