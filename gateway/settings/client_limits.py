"""The `gateway:` settings about what clients may send and what the gateway shows them.

Kept apart from `gateway.settings.models` (modules stay under 300 lines); `GatewaySettings` inherits them, so
in YAML they are ordinary keys of the `gateway:` section.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork

from gateway.settings.fields import PositiveFloat, PositiveInt


# Parsing the peer's address on every request cost 2 % of a proxied request (bench/profile.py);
# the same few peers (load balancers) come back all the time.
@functools.lru_cache(maxsize=1024)
def _trusted(peer: str, proxies: tuple[object, ...]) -> bool:
    if "*" in proxies:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(
        address in network for network in proxies if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network)
    )


Proxy = Literal["*"] | IPvAnyNetwork
LOOPBACK: tuple[Proxy, ...] = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1"))


class ClientLimits(BaseModel):
    """Bounds on requests and on whom the gateway believes about where it was reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # JSON values in one request body, counted before it is parsed (422 beyond).
    max_json_values: PositiveInt = 50_000
    # CQL2 filters: nested operations and JSON values (422 beyond them).
    max_filter_depth: PositiveInt = 10
    max_filter_nodes: PositiveInt = 5_000
    # The request line and headers together, and how many headers (431 beyond them).
    max_header_bytes: PositiveInt = 32_768
    max_headers: PositiveInt = 100
    # A request's head must arrive within header_timeout_s of its first byte (or of the
    # connection), its body within body_timeout_s of the first read (408 and closed beyond).
    header_timeout_s: PositiveFloat = 10.0
    body_timeout_s: PositiveFloat = 30.0
    # Peers whose X-Forwarded-Proto/-Host are believed when `public_url` is null: addresses or
    # networks, "*" for any peer. Loopback by default, like uvicorn's `forwarded_allow_ips`.
    trusted_proxies: list[Proxy] = Field(default_factory=lambda: list(LOOPBACK))
    # With clients configured, /metrics needs an operator key unless this is true.
    public_metrics: bool = False

    def trusts_proxy(self, peer: str | None) -> bool:
        """Whether a connecting peer's forwarded headers are believed."""
        if peer is None:
            return False
        return _trusted(peer, tuple(self.trusted_proxies))
