"""Namespaced identifiers: `{provider_id}:{upstream_id}`, split at the first `:`."""

from __future__ import annotations

SEPARATOR = ":"


def namespaced(provider_id: str, upstream_id: str) -> str:
    """The gateway's id for a provider's id."""
    return f"{provider_id}{SEPARATOR}{upstream_id}"


def split(gateway_id: str) -> tuple[str, str] | None:
    """`(provider_id, upstream_id)`, or None for an id the gateway minted itself (no `:`)."""
    provider_id, sep, upstream_id = gateway_id.partition(SEPARATOR)
    if not sep or not provider_id or not upstream_id:
        return None
    return provider_id, upstream_id
