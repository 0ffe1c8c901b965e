"""The configured providers and the adapters that reach them (built from adapters/registry.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import structlog

from adapters.base import ProviderAdapter
from adapters.registry import ADAPTERS
from gateway.domain.errors import UnknownProvider
from gateway.domain.links import LinkRewriter
from gateway.obs.metrics import Metrics
from gateway.settings.models import ProviderSettings, Settings
from gateway.upstream.breaker import CircuitBreaker
from gateway.upstream.oauth import ClientCredentials, SharedTokens
from gateway.upstream.policy import GuardedTransport
from gateway.upstream.rate_gates import Gates
from gateway.upstream.stamp import StampingTransport
from gateway.upstream.transport import AiohttpTransport, build_client

if TYPE_CHECKING:  # OpenTelemetry is loaded only when tracing is on
    from gateway.obs.tracing import Tracing

log = structlog.get_logger("gateway.providers")

# Key in the `transports` mapping (tests) for a provider's OAuth token endpoint.
TOKEN_TRANSPORT_SUFFIX = "#token"


@dataclass(frozen=True, slots=True)
class Provider:
    """A configured provider and the adapter that reaches it."""

    settings: ProviderSettings
    adapter: ProviderAdapter
    breaker: CircuitBreaker
    token_client: httpx.AsyncClient | None = None
    # A root its landing page names it by, other than `url` (see `learn_link_bases`).
    learned_bases: list[str] = field(default_factory=list)
    # Rewriters by gateway base (and learned bases known): one per base the gateway is reached at.
    _rewriters: dict[tuple[str, int], LinkRewriter] = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The provider id."""
        return self.settings.id

    @property
    def link_bases(self) -> tuple[str, ...]:
        """Every root besides `url` that this provider's links may name as its own."""
        return (*self.settings.link_base_urls, *self.learned_bases)

    def rewriter(self, gateway_base: str) -> LinkRewriter:
        """The rewriter of this provider's hrefs into the gateway's at `gateway_base`."""
        # Built once per base: on the hot path of every proxied request (bench/profile.py, 4 %).
        key = (gateway_base, len(self.learned_bases))
        found = self._rewriters.get(key)
        if found is None:
            if len(self._rewriters) > 64:
                self._rewriters.clear()  # bases come from Host headers: keep the cache bounded
            found = self._rewriters[key] = LinkRewriter.of(self.settings, gateway_base, self.link_bases)
        return found


class Providers:
    """The configured providers, in configuration order."""

    def __init__(self, providers: list[Provider]) -> None:
        self._by_id = {p.id: p for p in providers}

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, provider_id: str) -> Provider:
        """The provider with this id; UnknownProvider if none is configured."""
        try:
            return self._by_id[provider_id]
        except KeyError:
            raise UnknownProvider(f"No provider '{provider_id}' is configured on this gateway.") from None

    async def aclose(self) -> None:
        """Close every adapter's connections."""
        for provider in self:
            await provider.adapter.aclose()
            if provider.token_client is not None:
                await provider.token_client.aclose()


def build_providers(
    settings: Settings,
    metrics: Metrics,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    shared_tokens: SharedTokens | None = None,
    gates: Gates | None = None,
    tracing: Tracing | None = None,
) -> Providers:
    """An adapter per configured provider, each on its own pooled, guarded client; OAuth tokens
    shared with the other replicas through `shared_tokens` when given, rate limits through `gates`
    (None: a set of gates for these providers in this process); spans made with `tracing`."""
    transports = transports or {}
    gates = gates or Gates(None, metrics)
    out = []
    inject = _token_trace_context(tracing)
    for ps in settings.providers.values():
        inner = transports.get(ps.id) or AiohttpTransport(max_connections=ps.max_connections)
        breaker = CircuitBreaker(ps.circuit_failures, ps.circuit_open_s)
        guarded = GuardedTransport(inner, ps, breaker, metrics, gates, tracing)
        auth, token_client = None, None
        if ps.oauth is not None:
            token_transport = transports.get(f"{ps.id}{TOKEN_TRANSPORT_SUFFIX}") or AiohttpTransport(max_connections=4)
            token_client = build_client(
                str(ps.oauth.token_url), timeout_s=ps.timeout_s, transport=StampingTransport(token_transport, inject)
            )
            auth = ClientCredentials(
                str(ps.oauth.token_url),
                ps.oauth.client_id,
                ps.oauth.client_secret,
                scope=ps.oauth.scope,
                audience=ps.oauth.audience,
                json_body=ps.oauth.token_request == "json",
                token_client=token_client,
                shared=shared_tokens,
            )
        client = build_client(
            ps.base_url, timeout_s=ps.timeout_s, headers=dict(ps.headers), transport=guarded, auth=auth
        )
        adapter = ADAPTERS[ps.adapter].build(
            ps.id, client, guarded, ps.options, gates.for_provider(ps.id, ps.timeout_s)
        )
        out.append(Provider(ps, adapter, breaker, token_client))
    return Providers(out)


def _token_trace_context(tracing: Tracing | None) -> Callable[[httpx.Request], None] | None:
    """What puts the trace context on OAuth token calls; None when tracing is off."""
    if tracing is None:
        return None
    # Imported only now: with tracing off, OpenTelemetry is never loaded.
    from gateway.upstream.tracing import inject_current

    return functools.partial(inject_current, tracing)
