"""What every route needs from a request: the runtime, the base URL, a deadline, paging input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from starlette.requests import Request

from adapters.base import NotFound, Page, RequestValidationFailed, UpstreamNotFound
from gateway.domain import merge
from gateway.domain.errors import Forbidden
from gateway.domain.federation import ProviderRef, Target
from gateway.domain.links import LinkRewriter, base_url
from gateway.domain.merge import Position
from gateway.http.clients import ANONYMOUS, Client
from gateway.runtime import Runtime
from gateway.services import fanout
from gateway.services.fanout import Deadline
from gateway.upstream.providers import Provider

T = TypeVar("T")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def runtime(request: Request) -> Runtime:
    """The gateway's resources as they were when this request arrived (a reload swaps them)."""
    rt: Runtime = request.scope.get("state", {}).get("runtime") or request.app.state.runtime
    return rt


def gateway_base(request: Request) -> str:
    """Where the client reached the gateway (once per request): `public_url`, else the Host header,
    or the X-Forwarded-Proto/-Host a trusted proxy (`trusted_proxies`) set."""
    state = request.scope.setdefault("state", {})
    if "gateway_base" not in state:
        headers, gateway = request.headers, runtime(request).settings.gateway
        peer = request.scope.get("client")
        trusted = gateway.public_base_url is None and gateway.trusts_proxy(peer[0] if peer else None)
        state["gateway_base"] = base_url(
            public_url=gateway.public_base_url,
            scheme=request.scope.get("scheme", "http"),
            host=headers.get("host"),
            root_path=request.scope.get("root_path", ""),
            forwarded_proto=headers.get("x-forwarded-proto") if trusted else None,
            forwarded_host=headers.get("x-forwarded-host") if trusted else None,
        )
    found: str = state["gateway_base"]
    return found


def deadline(request: Request) -> Deadline:
    """This request's one time budget, started on first use and shared by all its steps."""
    state = request.scope.setdefault("state", {})
    if "deadline" not in state:
        state["deadline"] = Deadline(runtime(request).settings.gateway.deadline_s)
    found: Deadline = state["deadline"]
    return found


def query_limit(request: Request) -> int:
    """`limit` from the query: 1 or more, at most MAX_LIMIT (larger values are clamped)."""
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        error = {"loc": ["query", "limit"], "msg": "must be an integer of at least 1", "type": "value_error"}
        raise RequestValidationFailed("The query parameter 'limit' is invalid.", [error])
    return min(value, MAX_LIMIT)


async def ask(request: Request, provider: ProviderRef, call: Callable[[], Awaitable[T]], absent: str) -> T:
    """One provider call under the request's deadline; its 404 said in the gateway's words (`absent`)."""
    try:
        return await fanout.call_one(provider.id, call, deadline(request))
    except UpstreamNotFound:
        raise UpstreamNotFound(provider.id, absent) from None


def rewriter(request: Request, provider: ProviderRef) -> LinkRewriter:
    """The link rewriter from this provider to the gateway as the client sees it."""
    return provider.rewriter(gateway_base(request))


def link(href: str, rel: str, media_type: str = "application/json", **extra: Any) -> dict[str, Any]:
    """A STAPI link object."""
    return {"href": href, "rel": rel, "type": media_type, **extra}


def pages_missing(gathered: fanout.Fanout[Page]) -> list[str]:
    """Who is missing from a merged answer: the providers that failed, and the ones an upstream
    gateway's page says it lacks, in this gateway's namespace (`g1:bravo`)."""
    behind = [f"{fanout.provider_of(key)}:{m}" for key, page in gathered.results.items() for m in page.missing]
    return list(dict.fromkeys([*gathered.missing, *behind]))


def with_missing(body: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """Add the contract's `federation:missing` field when some providers are missing."""
    if missing:
        body["federation:missing"] = missing
    return body


def client(request: Request) -> Client:
    """Who is asking (ANONYMOUS when authentication is off)."""
    found = request.scope.get("state", {}).get("client", ANONYMOUS)
    assert isinstance(found, Client)
    return found


def may_use(who: Client, target: Target) -> bool:
    """Whether a client may use a product: its provider, or the federated product itself."""
    if target.federated is not None:
        return who.may_use_product(target.product_id)
    return who.may_use_provider(target.members[0].provider.id)


def visible_target(who: Client, target: Target) -> Target | None:
    """The target as a client may see it: a federated product keeps only the members on the
    client's providers (None when it has none left); one provider's product is unchanged."""
    if target.federated is None:
        return target
    members = [m for m in target.members if who.may_use_provider(m.provider.id)]
    return replace(target, members=members) if members else None


def target_for(request: Request, product_id: str) -> Target:
    """The product a request addresses, narrowed to what its client may use.

    A federated product with no member the client may use is absent (404), like any product
    it cannot see; a product outside the client's scope is a 403.
    """
    who = client(request)
    target = runtime(request).catalogue.target(product_id)
    visible = visible_target(who, target)
    if visible is None:
        raise NotFound(f"No product '{product_id}' exists.")
    if not may_use(who, target):
        raise Forbidden(f"This API key does not give access to '{product_id}'.")
    return visible


def visible_providers(request: Request) -> list[Provider]:
    """The providers the client may use, in configuration order."""
    who = client(request)
    return [p for p in runtime(request).providers if who.may_use_provider(p.id)]


def sees(request: Request, owner: str | None) -> bool:
    """Whether the client may see something owned by `owner` (everyone sees all when auth is off)."""
    return not runtime(request).gatekeeper.enabled or owner == client(request).id


def positions(request: Request, kind: str, cursor: str | None, sources: list[str], limit: int) -> dict[str, Position]:
    """Where each source of a merged list stands: from the client's cursor, or at the start."""
    if cursor:
        return merge.load_state(runtime(request).cursors.decode(kind, cursor), sources)
    return merge.start(sources, limit)


def next_cursor(request: Request, kind: str, after: dict[str, Position]) -> str | None:
    """The signed cursor for the positions after this page; None when every source is done."""
    return runtime(request).cursors.encode(kind, merge.dump_state(after)) if after else None
