"""The landing page and the gateway's API-level conformance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain.events import WEBHOOKS_CLASS
from gateway.domain.federation import CANCEL_CLASS
from gateway.http.responses import JSONResponse
from gateway.services.context import RequestContext
from gateway.services.listing import link

STAPI_VERSION = "0.1.0"
_BASE = f"https://stapi.example.com/v{STAPI_VERSION}"
CORE = f"{_BASE}/core"

# Only what the gateway itself serves; classes are added as their routes land.
CONFORMANCE = [
    CORE,
    f"{_BASE}/order-statuses",
    f"{_BASE}/searches-opportunity",
    f"{_BASE}/searches-opportunity-statuses",
    CANCEL_CLASS,  # the gateway's route; each product says whether its orders can be cancelled
    WEBHOOKS_CLASS,  # /subscriptions and signed deliveries of order and search events
]


async def landing_page(request: Request, ctx: RequestContext) -> Response:
    """`GET /`: links, conformance and the configured providers."""
    base = ctx.gateway_base
    gw = ctx.runtime.settings.gateway
    body = {
        "id": "stapi-gateway",
        "title": gw.title,
        "description": gw.description,
        "stapi_version": STAPI_VERSION,
        "conformsTo": CONFORMANCE,
        "links": [
            link(f"{base}/", "self"),
            link(f"{base}/", "root"),
            link(f"{base}/api", "service-desc", "application/vnd.oai.openapi+json;version=3.1"),
            link(f"{base}/conformance", "conformance"),
            link(f"{base}/products", "products"),
            link(f"{base}/orders", "orders", "application/geo+json"),
            link(f"{base}/searches/opportunities", "opportunity-search-records"),
            link(f"{base}/subscriptions", "subscriptions"),
        ],
        "providers": [
            {"id": p.id, "title": p.settings.display_title, "state": p.breaker.state} for p in ctx.visible_providers()
        ],
    }
    return JSONResponse(body)


async def conformance(request: Request, ctx: RequestContext) -> Response:
    """`GET /conformance`."""
    return JSONResponse({"conformsTo": CONFORMANCE})
