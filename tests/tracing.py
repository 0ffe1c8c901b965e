"""An OpenTelemetry tracer provider whose spans a test reads back (the SDK's in-memory exporter)."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class RecordedSpans:
    """A tracer provider exporting synchronously into memory, and what it exported."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(shutdown_on_exit=False)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def all(self) -> list[ReadableSpan]:
        """Every finished span so far."""
        return list(self.exporter.get_finished_spans())

    def of_trace(self, trace_id: int) -> list[ReadableSpan]:
        """The finished spans of one trace."""
        return [span for span in self.all() if span.context is not None and span.context.trace_id == trace_id]


def traceparent_ids(header: str) -> tuple[int, int]:
    """(trace id, parent span id) of a W3C `traceparent` header value."""
    version, trace_id, span_id, flags = header.split("-")
    assert (version, len(trace_id), len(span_id), len(flags)) == ("00", 32, 16, 2), header
    return int(trace_id, 16), int(span_id, 16)
