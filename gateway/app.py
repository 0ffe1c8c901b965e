"""The one wiring module: routes, middleware order, error handlers and lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from adapters.base import DeliberateError
from gateway.domain.events import EventSink
from gateway.http import handlers
from gateway.http.middleware import AuthMiddleware, BodyLimitMiddleware, RequestContextMiddleware, SlashRedirect
from gateway.http.operations import route_names, routes
from gateway.reload import Reloader
from gateway.runtime import Runtime
from gateway.settings.models import Settings

if TYPE_CHECKING:  # OpenTelemetry is loaded only when tracing is on
    from gateway.obs.tracing import Tracing

ROUTES = routes()
log = structlog.get_logger("gateway.app")


def _tracing(settings: Settings, tracer_provider: Any) -> Tracing | None:
    """The gateway's tracing if `gateway.tracing` is on and OTEL_SDK_DISABLED is not; else None,
    and then OpenTelemetry is never imported (the hot path pays nothing for it)."""
    if not settings.gateway.tracing:
        return None
    try:
        from gateway.obs.tracing import Tracing, sdk_disabled
    except ImportError as exc:
        raise RuntimeError(
            f"gateway.tracing is on but OpenTelemetry is not installed ({exc}): pip install 'stapi-gateway[otel]'"
        ) from None
    if sdk_disabled():
        log.info("tracing_disabled", detail="OTEL_SDK_DISABLED=true overrides gateway.tracing")
        return None
    return Tracing.of(tracer_provider) if tracer_provider is not None else Tracing.from_environment()


def create_app(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    watch_config: bool = False,
    events: EventSink | None = None,
    tracer_provider: Any = None,
) -> Starlette:
    """The gateway as an ASGI app.

    `transports` replaces providers' network transports (tests). `watch_config` reloads the
    configuration file `settings.source` on SIGHUP and when it changes. `events` receives the
    events the tracker and search runner publish instead of the webhook outbox (tests).
    `tracer_provider` is the OpenTelemetry tracer provider to trace with when `gateway.tracing`
    is on (tests give one with an in-memory exporter); by default one exports as OTEL_* says.
    """
    tracing = _tracing(settings, tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.runtime = await Runtime.open(settings, transports, events, tracing)
        reloader = Reloader(settings.source, app.state) if watch_config and settings.source else None
        if reloader is not None:
            reloader.start()
        try:
            yield
        finally:
            if reloader is not None:
                await reloader.stop()
            await app.state.runtime.aclose()
            if tracing is not None:
                tracing.shutdown()  # exports the spans still queued

    # Inside RequestContextMiddleware, so the span knows the request id and the log line the trace id.
    traced: list[Middleware] = []
    if tracing is not None:
        from gateway.http.tracing import TracingMiddleware

        traced.append(Middleware(TracingMiddleware, tracing=tracing, routes=route_names(ROUTES)))
    app = Starlette(
        routes=ROUTES,
        # Outermost first: the request id exists before anything else runs or fails.
        middleware=[
            Middleware(RequestContextMiddleware),
            *traced,
            Middleware(AuthMiddleware),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.gateway.max_body_bytes,
                timeout_s=settings.gateway.body_timeout_s,
            ),
            Middleware(SlashRedirect),
        ],
        exception_handlers={
            DeliberateError: handlers.gateway_error,
            HTTPException: handlers.http_error,
            ClientDisconnect: handlers.client_disconnected,
            Exception: handlers.unexpected_error,
        },
        lifespan=lifespan,
    )
    # Its redirect is absolute, built from the Host header; `SlashRedirect` gives a relative one.
    app.router.redirect_slashes = False
    return app
