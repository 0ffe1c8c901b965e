"""Rewriting a provider's hrefs into the gateway's, with namespaced ids.

Pure functions: the provider's base URL and the gateway's base URL go in, hrefs come out.
Hrefs on a provider's origin that have no gateway counterpart are dropped rather than leaked,
so a client never learns a provider's address. Hrefs to other sites (licences, docs) pass when
they are plain http(s) links to a public host: userinfo is stripped (`http://provider:port@evil/`
names evil, and the provider's address), scheme-relative hrefs are read with the provider's
scheme, and links to the provider's own host (any port), to loopback, link-local, private or
otherwise non-public addresses and to single-label or `.internal`-style names are dropped unless
the provider's `allow_private_links` says otherwise. A third-party link that would make the
client send something (a method other than GET, or a body) is dropped too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from gateway.domain.addresses import non_public_host
from gateway.domain.ids import namespaced

if TYPE_CHECKING:
    from gateway.settings.models import ProviderSettings

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?\Z|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?\Z")

# Control characters, spaces and backslashes: browsers strip or reinterpret them (`/\evil`).
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")

# Provider paths with a gateway counterpart; `{id}` segments are provider ids to namespace.
_ROUTES = [
    re.compile(r"^(?P<plain>|conformance|products|orders|searches/opportunities)\Z"),
    re.compile(
        r"^products/(?P<id>[^/]+)(?P<tail>|/conformance|/queryables|/order-parameters|/opportunities|/orders)\Z"
    ),
    re.compile(r"^products/(?P<id>[^/]+)/opportunities/(?P<sub>[^/]+)\Z"),
    re.compile(r"^orders/(?P<id>[^/]+)(?P<tail>|/statuses)\Z"),
    re.compile(r"^searches/opportunities/(?P<id>[^/]+)(?P<tail>|/statuses)\Z"),
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
    # Let links to private, loopback and link-local addresses through (the provider's setting).
    allow_private: bool = False

    @classmethod
    def of(cls, provider: ProviderSettings, gateway_base: str, other_bases: tuple[str, ...] = ()) -> LinkRewriter:
        """The rewriter from a configured provider to the gateway at `gateway_base`."""
        return cls(provider.id, provider.base_url, gateway_base, other_bases, provider.allow_private_links)

    def href(self, href: str) -> str | None:
        """The gateway's href for a provider href, a safe third-party href, or None (dropped)."""
        found = _rewrite(self, href)
        return None if found is None else found[0]

    def _rewrite(self, href: str) -> tuple[str, bool] | None:
        """(href, whether it is the gateway's) or None; cached below, so no I/O and no state."""
        rest = self._under_own_base(href)
        if rest is None:
            return self._third_party(href)
        if urlsplit(href).query:
            # Provider page tokens never travel unsigned; the gateway mints its own cursors.
            return None
        path = self._path(rest.split("?", 1)[0].strip("/"))
        return None if path is None else (f"{self.gateway_base}/{path}", True)

    def _under_own_base(self, href: str) -> str | None:
        """What follows one of the provider's own bases in `href` (http or https alike: a
        TLS-terminating proxy may name either), or None if the href is under none of them."""
        scheme, sep, rest = href.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            return None
        host, path = _authority(rest)
        for base in (self.provider_base, *self.other_bases):
            base_host, base_path = _authority(base.partition("://")[2].rstrip("/"))
            if host == base_host and (path == base_path or path.startswith((base_path + "/", base_path + "?"))):
                return path[len(base_path) :]
        return None

    def _third_party(self, href: str) -> tuple[str, bool] | None:
        if _UNSAFE.search(href):
            return None
        ours = urlsplit(self.provider_base)
        if href.startswith("//"):
            # Scheme-relative: the provider's scheme; it may even be the provider's own link.
            return self._rewrite(f"{ours.scheme}:{href}")
        try:
            parts = urlsplit(href)
            port = parts.port
        except ValueError:
            return None
        host = parts.hostname
        if parts.scheme.lower() not in ("http", "https") or not host:
            return None
        if "@" in parts.netloc:
            netloc = f"[{host}]" if ":" in host else host
            netloc += "" if port is None else f":{port}"
            return self._rewrite(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
        own_hosts = {(urlsplit(b).hostname or "").rstrip(".") for b in (self.provider_base, *self.other_bases)}
        if host.rstrip(".") in own_hosts or (not self.allow_private and non_public_host(host)):
            return None
        return href, False

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
        """The links with hrefs rewritten; unmappable ones, `drop_rels`, and third-party links
        that would have the client send something (not GET, or with a body) removed."""
        out = []
        for link in links:
            if not isinstance(link, dict) or link.get("rel") in drop_rels:
                continue
            found = _rewrite(self, str(link.get("href", "")))
            if found is None:
                continue
            href, ours = found
            if not ours and ("body" in link or str(link.get("method") or "GET").upper() != "GET"):
                continue
            out.append({**link, "href": href})
        return out


# The same few hrefs come back on every request (a product's self, queryables, ... links), so
# their rewriting is remembered; bounded, since order and search ids keep changing.
_rewrite = functools.lru_cache(maxsize=8192)(LinkRewriter._rewrite)
