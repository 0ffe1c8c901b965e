"""The one wiring module: routes, middleware order, error handlers and lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from adapters.base import DeliberateError
from gateway.domain.events import EventSink
from gateway.http import handlers
from gateway.http.middleware import AuthMiddleware, BodyLimitMiddleware, RequestContextMiddleware, SlashRedirect
from gateway.http.operations import routes
from gateway.reload import Reloader
from gateway.runtime import Runtime
from gateway.settings.models import Settings

ROUTES = routes()


def create_app(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    watch_config: bool = False,
    events: EventSink | None = None,
) -> Starlette:
    """The gateway as an ASGI app.

    `transports` replaces providers' network transports (tests). `watch_config` reloads the
    configuration file `settings.source` on SIGHUP and when it changes. `events` receives the
    events the tracker and search runner publish instead of the webhook outbox (tests).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.runtime = await Runtime.open(settings, transports, events)
        reloader = Reloader(settings.source, app.state) if watch_config and settings.source else None
        if reloader is not None:
            reloader.start()
        try:
            yield
        finally:
            if reloader is not None:
                await reloader.stop()
            await app.state.runtime.aclose()

    app = Starlette(
        routes=ROUTES,
        # Outermost first: the request id exists before anything else runs or fails.
        middleware=[
            Middleware(RequestContextMiddleware),
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
