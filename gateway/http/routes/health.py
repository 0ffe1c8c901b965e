"""Liveness, readiness and metrics, for orchestrators and Prometheus.

What they show depends on who asks once clients are configured: provider ids and states are for
operators (a client with `operator: true`), since a client may not know every provider. Anyone
gets the readiness verdict with aggregate counts; /metrics needs an operator key unless
`public_metrics` is set. The store's address and error text are never shown (they are logged).
"""

from __future__ import annotations

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from gateway.domain.access import ANONYMOUS
from gateway.domain.errors import Forbidden, StoreUnavailable, Unauthorized
from gateway.http.responses import JSONResponse
from gateway.services.context import RequestContext

log = structlog.get_logger("gateway.health")


def operator_view(ctx: RequestContext) -> bool:
    """Whether the caller may see per-provider detail: everyone while authentication is off."""
    return not ctx.runtime.gatekeeper.enabled or ctx.client.operator


async def healthz(request: Request, ctx: RequestContext) -> Response:
    """`GET /healthz`: 200 while the process serves."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request, ctx: RequestContext) -> Response:
    """`GET /readyz`: 200 when the store answers and at least one provider is healthy.

    Provider health comes from recent real calls (the circuit breakers), so a probe never
    calls a provider.
    """
    rt = ctx.runtime
    try:
        await rt.store_guard.check()
        store_healthy = True
    except StoreUnavailable as exc:
        rt.metrics.store_errors.labels("ping").inc()
        log.warning("store_unavailable", detail=exc.detail)
        store_healthy = False
    providers = {p.id: p.breaker.snapshot() for p in rt.providers}
    healthy = sum(1 for p in providers.values() if p["healthy"])
    ready = store_healthy and healthy > 0
    store = {"healthy": store_healthy, **rt.store_guard.snapshot()}
    body: dict[str, object] = {"status": "ready" if ready else "not_ready", "store": store}
    body["providers"] = providers if operator_view(ctx) else {"healthy": healthy, "total": len(providers)}
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request, ctx: RequestContext) -> Response:
    """`GET /metrics`: Prometheus text exposition (labels name providers: operators only, see above)."""
    rt = ctx.runtime
    if not (operator_view(ctx) or rt.settings.gateway.public_metrics):
        if ctx.client is ANONYMOUS:
            raise Unauthorized(
                "/metrics needs an operator's API key (Authorization: Bearer KEY or X-API-Key: KEY).",
                headers={"WWW-Authenticate": 'Bearer realm="stapi-gateway"'},
            )
        raise Forbidden("This API key is not an operator's: /metrics needs one.")
    return Response(rt.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
