"""The configured providers and the adapters that reach them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import httpx

from adapters.base import ProviderAdapter
from adapters.oauth import ClientCredentials
from adapters.stapi import StapiAdapter
from adapters.transport import AiohttpTransport, build_client
from gateway.errors import UnknownProvider
from gateway.health import CircuitBreaker
from gateway.metrics import Metrics
from gateway.settings import ProviderSettings, Settings
from gateway.upstream import GuardedTransport

# Key in the `transports` mapping (tests) for a provider's OAuth token endpoint.
TOKEN_TRANSPORT_SUFFIX = "#token"

# Settings, the provider's client, and the client's transport (for adapters that send directly).
AdapterFactory = Callable[[ProviderSettings, httpx.AsyncClient, httpx.AsyncBaseTransport], ProviderAdapter]

# One entry per value of a provider's `adapter:` key.
ADAPTERS: dict[str, AdapterFactory] = {
    "stapi": lambda settings, client, transport: StapiAdapter(settings.id, client, transport=transport),
}


@dataclass(frozen=True, slots=True)
class Provider:
    """A configured provider and the adapter that reaches it."""

    settings: ProviderSettings
    adapter: ProviderAdapter
    breaker: CircuitBreaker
    token_client: httpx.AsyncClient | None = None

    @property
    def id(self) -> str:
        """The provider id."""
        return self.settings.id


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
    settings: Settings, metrics: Metrics, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> Providers:
    """An adapter per configured provider, each on its own pooled, guarded client."""
    transports = transports or {}
    out = []
    for ps in settings.providers.values():
        inner = transports.get(ps.id) or AiohttpTransport(max_connections=ps.max_connections)
        breaker = CircuitBreaker(ps.circuit_failures, ps.circuit_open_s)
        guarded = GuardedTransport(inner, ps, breaker, metrics)
        auth, token_client = None, None
        if ps.oauth is not None:
            token_transport = transports.get(f"{ps.id}{TOKEN_TRANSPORT_SUFFIX}") or AiohttpTransport(max_connections=4)
            token_client = build_client(str(ps.oauth.token_url), timeout_s=ps.timeout_s, transport=token_transport)
            auth = ClientCredentials(
                str(ps.oauth.token_url),
                ps.oauth.client_id,
                ps.oauth.client_secret,
                scope=ps.oauth.scope,
                audience=ps.oauth.audience,
                token_client=token_client,
            )
        client = build_client(
            ps.base_url, timeout_s=ps.timeout_s, headers=dict(ps.headers), transport=guarded, auth=auth
        )
        out.append(Provider(ps, ADAPTERS[ps.adapter](ps, client, guarded), breaker, token_client))
    return Providers(out)
