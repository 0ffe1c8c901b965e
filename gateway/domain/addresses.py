"""Which hosts and addresses are not public: loopback, link-local, private, internal names.

Shared by the link rewriter (third-party links to such hosts are dropped) and webhook delivery
(the gateway refuses to send to them unless the operator allows it). No I/O: resolving a name is
the caller's business, and a caller that resolves checks each address it got.
"""

from __future__ import annotations

import ipaddress
import re

_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".localdomain", ".home.arpa")
# A numeric or hex last label makes browsers read the host as an IPv4 address (`127.1`, `0x7f.1`).
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


def non_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is anything but a global unicast one (IPv4-mapped IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def non_public_host(host: str) -> bool:
    """Whether a host (a name or a literal address, without brackets) is not a public name or address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.rstrip(".").lower()
        last = name.rsplit(".", 1)[-1]
        return (
            name == "localhost"
            or "." not in name
            or name.endswith(_INTERNAL_SUFFIXES)
            or bool(_NUMERIC_LABEL.fullmatch(last))
        )
    return non_public_address(address)
