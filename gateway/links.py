"""Rewriting a provider's hrefs into the gateway's, with namespaced ids.

Pure functions: the provider's base URL and the gateway's base URL go in, hrefs come out.
Hrefs on a provider's origin that have no gateway counterpart are dropped rather than leaked,
so a client never learns a provider's address; hrefs to other sites (licences, docs) pass.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from gateway.ids import namespaced

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")

# Provider paths with a gateway counterpart; `{id}` segments are provider ids to namespace.
_ROUTES = [
    re.compile(r"^(?P<plain>|conformance|products|orders|searches/opportunities)$"),
    re.compile(r"^products/(?P<id>[^/]+)(?P<tail>|/conformance|/queryables|/order-parameters|/opportunities|/orders)$"),
    re.compile(r"^products/(?P<id>[^/]+)/opportunities/(?P<sub>[^/]+)$"),
    re.compile(r"^orders/(?P<id>[^/]+)(?P<tail>|/statuses)$"),
    re.compile(r"^searches/opportunities/(?P<id>[^/]+)(?P<tail>|/statuses)$"),
]


def base_url(
    *,
    public_url: str | None,
    scheme: str,
    host: str | None,
    root_path: str = "",
    forwarded_proto: str | None = None,
    forwarded_host: str | None = None,
) -> str:
    """The gateway's base URL: `public_url` if configured, else what the client addressed."""
    if public_url:
        return public_url.rstrip("/")
    proto = (forwarded_proto or "").split(",")[0].strip().lower()
    if proto not in ("http", "https"):
        proto = scheme
    fwd_host = (forwarded_host or "").split(",")[0].strip()
    chosen = fwd_host if fwd_host and _HOST.match(fwd_host) else host
    if not chosen or not _HOST.match(chosen):
        chosen = "localhost"
    return f"{proto}://{chosen}{root_path.rstrip('/')}"


def _quoted(upstream_id: str, provider_id: str) -> str:
    return quote(namespaced(provider_id, unquote(upstream_id)), safe=":@-._~")


def _authority(rest: str) -> tuple[str, str]:
    """`host[:port]` (lowercased: hosts are case-insensitive) and the rest of a URL after `scheme://`."""
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return rest[:end].lower(), rest[end:]


@dataclass(frozen=True, slots=True)
class LinkRewriter:
    """Maps one provider's hrefs onto the gateway."""

    provider_id: str
    provider_base: str
    gateway_base: str
    # Further roots the provider's links may name as its own (`link_bases`, or the one learned
    # from its landing page): a proxy's public URL where the gateway reaches it directly.
    other_bases: tuple[str, ...] = ()

    def href(self, href: str) -> str | None:
        """The gateway's href for a provider href; None if it has no gateway counterpart."""
        return _rewrite(self, href)

    def _rewrite(self, href: str) -> str | None:
        rest = self._under_own_base(href)
        if rest is None:
            return href if self._foreign(href) else None
        if urlsplit(href).query:
            # Provider page tokens never travel unsigned; the gateway mints its own cursors.
            return None
        path = self._path(rest.split("?", 1)[0].strip("/"))
        return None if path is None else f"{self.gateway_base}/{path}"

    def _under_own_base(self, href: str) -> str | None:
        """What follows the provider's own base in `href` (http or https alike: a TLS-terminating
        proxy may name either), or None if the href is under none of its bases."""
        scheme, sep, rest = href.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            return None
        host, path = _authority(rest)
        for base in (self.provider_base, *self.other_bases):
            base_host, base_path = _authority(base.partition("://")[2].rstrip("/"))
            if host == base_host and (path == base_path or path.startswith((base_path + "/", base_path + "?"))):
                return path[len(base_path) :]
        return None

    def _foreign(self, href: str) -> bool:
        theirs = urlsplit(href).netloc.lower()
        ours = {urlsplit(base).netloc.lower() for base in (self.provider_base, *self.other_bases)}
        return theirs not in ours and bool(theirs)

    def _path(self, rel: str) -> str | None:
        for route in _ROUTES:
            match = route.match(rel)
            if match is None:
                continue
            groups = match.groupdict()
            if "plain" in groups:
                return rel
            prefix = rel[: match.start("id")]
            path = prefix + _quoted(groups["id"], self.provider_id) + (groups.get("tail") or "")
            if groups.get("sub"):
                path += "/opportunities/" + _quoted(groups["sub"], self.provider_id)
            return path
        return None

    def links(self, links: list[dict[str, Any]], *, drop_rels: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """The links with hrefs rewritten; unmappable ones and `drop_rels` removed."""
        out = []
        for link in links:
            if link.get("rel") in drop_rels:
                continue
            href = self.href(str(link.get("href", "")))
            if href is not None:
                out.append({**link, "href": href})
        return out


# The same few hrefs come back on every request (a product's self, queryables, ... links), so
# their rewriting is remembered; bounded, since order and search ids keep changing.
_rewrite = functools.lru_cache(maxsize=8192)(LinkRewriter._rewrite)
