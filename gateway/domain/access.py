"""Who is asking and what it may reach: an inbound client's identity and scopes (no I/O, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass


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
