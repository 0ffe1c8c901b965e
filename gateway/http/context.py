"""The one place a request becomes a `RequestContext`: once per request, before its handler runs."""

from __future__ import annotations

from starlette.requests import Request

from gateway.domain.access import ANONYMOUS, Client
from gateway.domain.links import base_url
from gateway.runtime import Runtime
from gateway.services.context import RequestContext


def request_context(request: Request) -> RequestContext:
    """This request's context (built on first call, then the same object)."""
    state = request.scope.setdefault("state", {})
    found = state.get("context")
    if isinstance(found, RequestContext):
        return found
    # Pinned by RequestContextMiddleware when the request arrived; the app's when none was.
    rt: Runtime = state.get("runtime") or request.app.state.runtime
    who = state.get("client", ANONYMOUS)
    assert isinstance(who, Client)
    context = RequestContext(rt, who, _gateway_base(request, rt))
    state["context"] = context
    return context


def _gateway_base(request: Request, rt: Runtime) -> str:
    """Where the client reached the gateway: `public_url`, else the Host header, or the
    X-Forwarded-Proto/-Host a trusted proxy (`trusted_proxies`) set."""
    headers, gateway = request.headers, rt.settings.gateway
    peer = request.scope.get("client")
    trusted = gateway.public_base_url is None and gateway.trusts_proxy(peer[0] if peer else None)
    return base_url(
        public_url=gateway.public_base_url,
        scheme=request.scope.get("scheme", "http"),
        host=headers.get("host"),
        root_path=request.scope.get("root_path", ""),
        forwarded_proto=headers.get("x-forwarded-proto") if trusted else None,
        forwarded_host=headers.get("x-forwarded-host") if trusted else None,
    )
