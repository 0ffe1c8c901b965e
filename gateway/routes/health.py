"""Liveness, readiness and metrics, for orchestrators and Prometheus."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import StoreUnavailable
from gateway.responses import JSONResponse
from gateway.routes.common import runtime


async def healthz(request: Request) -> Response:
    """`GET /healthz`: 200 while the process serves."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """`GET /readyz`: 200 when the store answers and at least one provider is healthy.

    Provider health comes from recent real calls (the circuit breakers), so a probe never
    calls a provider.
    """
    rt = runtime(request)
    store: dict[str, object]
    try:
        await rt.store_guard.check()
        store = {"healthy": True, **rt.store_guard.snapshot()}
    except StoreUnavailable as exc:
        rt.metrics.store_errors.labels("ping").inc()
        store = {"healthy": False, "detail": exc.detail}
    providers = {p.id: p.breaker.snapshot() for p in rt.providers}
    ready = bool(store["healthy"]) and any(p["healthy"] for p in providers.values())
    body = {"status": "ready" if ready else "not_ready", "store": store, "providers": providers}
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """`GET /metrics`: Prometheus text exposition."""
    return Response(runtime(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
