"""One SERVER span per request (pure ASGI), continuing the trace of an incoming `traceparent`.

Added to the app only when tracing is on (gateway/app.py), as it loads OpenTelemetry. Attributes
follow the OpenTelemetry HTTP server conventions (http.request.method, url.path, url.scheme,
http.route, http.response.status_code, error.type), plus stapi.operation (the operationId of
the /api document) and stapi.request_id; the span is named `METHOD route-template`, or `METHOD`
for a path no route matched. The request's log lines carry its trace_id and span_id.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.obs.tracing import Tracing


class _ScopeHeaders(Getter[Scope]):
    """Reads trace-context headers from an ASGI scope (names arrive lower-case)."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for key_, value in carrier.get("headers", []) if key_ == name]
        return found or None

    def keys(self, carrier: Scope) -> list[str]:
        return [key.decode("latin-1") for key, _ in carrier.get("headers", [])]


_GETTER = _ScopeHeaders()


class TracingMiddleware:
    """Runs each HTTP request inside its SERVER span; `routes` maps endpoints to (template, operationId)."""

    def __init__(self, app: ASGIApp, tracing: Tracing, routes: Mapping[object, tuple[str, str]]) -> None:
        self.app = app
        self.tracing = tracing
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = self.tracing.propagator.extract(scope, getter=_GETTER)
        attributes: dict[str, str] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            attributes["stapi.request_id"] = request_id
        with self.tracing.tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            context = span.get_span_context()
            structlog.contextvars.bind_contextvars(
                trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}"
            )
            status, error_type = 500, ""

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            except BaseException as exc:
                # The app's own handler answers 500 outside this middleware; the span says why.
                span.record_exception(exc)
                error_type = type(exc).__qualname__
                raise
            finally:
                route = self.routes.get(scope.get("endpoint"))
                if route is not None:
                    template, operation = route
                    span.update_name(f"{method} {template}")
                    span.set_attributes({"http.route": template, "stapi.operation": operation})
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    # Only 5xx is the server's failure: a 4xx is the client's (the conventions).
                    span.set_status(Status(StatusCode.ERROR))
                    span.set_attribute("error.type", error_type or str(status))
