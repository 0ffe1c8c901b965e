"""Who is asking and what it may reach: an inbound client's identity, scopes and request rate (no I/O, no HTTP).

Authentication is on as soon as one client is configured (`clients:`, gateway/settings/clients.py).
Keys are compared by their SHA-256, so the configuration never needs to hold a key in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings.clients import ALL, ClientSettings, key_digest


@dataclass(frozen=True, slots=True)
class Client:
    """The caller of a request and what it may reach; `ANONYMOUS` when auth is off."""

    id: str
    providers: frozenset[str] | None  # None = every provider
    products: frozenset[str] | None  # None = every federated product
    operator: bool = False

    def may_use_provider(self, provider_id: str) -> bool:
        """Whether the client may reach this provider."""
        return self.providers is None or provider_id in self.providers

    def may_use_product(self, product_id: str) -> bool:
        """Whether the client may use this federated product."""
        return self.products is None or product_id in self.products


ANONYMOUS = Client("anonymous", None, None)


def access_of(settings: ClientSettings) -> Client:
    """The access of a configured client."""
    providers = None if ALL in settings.providers else frozenset(settings.providers)
    products = None if ALL in settings.products else frozenset(settings.products)
    return Client(settings.id, providers, products, settings.operator)


class Gatekeeper:
    """Identifies a request's client from its key and knows the client's request rate."""

    def __init__(self, clients: dict[str, ClientSettings]) -> None:
        self.enabled = bool(clients)
        self._by_digest = {c.digest: access_of(c) for c in clients.values()}
        # (per second, burst): the burst is the rate when none is configured.
        self._rates = {c.id: (c.rate_per_s, c.burst or c.rate_per_s) for c in clients.values() if c.rate_per_s}

    def identify(self, key: str | None) -> Client | None:
        """The client a key belongs to; ANONYMOUS when auth is off; None for no or a wrong key."""
        if not self.enabled:
            return ANONYMOUS
        return None if not key else self._by_digest.get(key_digest(key))

    def rate_of(self, client: Client) -> tuple[float, float] | None:
        """The client's request rate as (per second, burst), None when it has none (the gates of
        gateway/upstream/rate_gates.py apply it, shared by replicas with a redis:// store)."""
        return self._rates.get(client.id)
