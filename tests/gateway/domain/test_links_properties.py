"""Property tests of link rewriting: provider hrefs map to the gateway and back, foreign hosts stay hidden."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import ids
from gateway.domain.links import LinkRewriter

PROVIDER_BASE = "https://api.acme.example:8443/stapi"
GATEWAY = "https://gw.example/v1"
REWRITER = LinkRewriter("acme", PROVIDER_BASE, GATEWAY)
# No lone surrogates: they cannot come out of a provider's JSON (orjson refuses them) or into a URL.
UPSTREAM_IDS = st.text(st.characters(exclude_characters="/", exclude_categories=["Cs"]), min_size=1, max_size=20)
# Provider paths with a gateway counterpart, `{}` standing for an upstream id.
TEMPLATES = st.sampled_from(
    [
        "products/{}",
        "products/{}/conformance",
        "products/{}/queryables",
        "products/{}/order-parameters",
        "products/{}/opportunities",
        "products/{}/orders",
        "orders/{}",
        "orders/{}/statuses",
        "searches/opportunities/{}",
        "searches/opportunities/{}/statuses",
    ]
)


def provider_href(template: str, upstream_id: str) -> str:
    """The provider's href for a path, its id percent-encoded as a provider would."""
    return f"{PROVIDER_BASE}/{template.format(quote(upstream_id, safe=''))}"


@given(TEMPLATES, UPSTREAM_IDS)
def test_provider_hrefs_map_to_the_gateway_and_back(template: str, upstream_id: str) -> None:
    """The gateway href names the namespaced id; reading that id back gives the provider's, and the
    provider href rebuilt from it rewrites to the same gateway href."""
    gateway_href = REWRITER.href(provider_href(template, upstream_id))
    assert gateway_href is not None
    assert gateway_href.startswith(f"{GATEWAY}/")
    segments = gateway_href.removeprefix(f"{GATEWAY}/").split("/")
    position = template.split("/").index("{}")
    assert ids.split(unquote(segments[position])) == ("acme", upstream_id)
    assert [s for i, s in enumerate(segments) if i != position] == [
        s for i, s in enumerate(template.split("/")) if i != position
    ]
    back = ids.split(unquote(segments[position]))
    assert back is not None
    assert REWRITER.href(provider_href(template, back[1])) == gateway_href


@given(UPSTREAM_IDS, UPSTREAM_IDS)
def test_opportunity_collections_namespace_both_ids(product: str, collection: str) -> None:
    """`products/{p}/opportunities/{c}`: both ids namespaced, both readable back."""
    href = f"{PROVIDER_BASE}/products/{quote(product, safe='')}/opportunities/{quote(collection, safe='')}"
    gateway_href = REWRITER.href(href)
    assert gateway_href is not None
    parts = gateway_href.removeprefix(f"{GATEWAY}/").split("/")
    assert [parts[0], parts[2]] == ["products", "opportunities"]
    assert ids.split(unquote(parts[1])) == ("acme", product)
    assert ids.split(unquote(parts[3])) == ("acme", collection)


# Hosts an href may name, each with whether a client may be shown it as a third-party link.
NAMED_HOSTS = st.sampled_from(
    [
        ("spdx.org", True),
        ("docs.example.com", True),
        ("gw.example", True),
        ("api.acme.example", False),  # the provider's own host, on any port
        ("API.Acme.Example", False),
        ("api.acme.example.", False),
        ("localhost", False),
        ("intranet", False),
        ("db.internal", False),
        ("printer.local", False),
        ("0x7f.1", False),
        ("127.1", False),
    ]
)


def _shown(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global unicast (an IPv4-mapped IPv6 address judged as its IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


ADDRESSES = st.ip_addresses().map(lambda a: (f"[{a}]" if a.version == 6 else str(a), _shown(a)))


@st.composite
def hrefs(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(href, the host it names, whether that host may be shown) in the shapes providers send."""
    host, public = draw(NAMED_HOSTS | ADDRESSES)
    scheme = draw(st.sampled_from(["https://", "http://", "HTTP://", "//"]))
    port = draw(st.sampled_from(["", ":8443", ":80", ":9"]))
    userinfo = draw(st.sampled_from(["", "user@", "api.acme.example:8443@", "a:b@"]))
    path = draw(st.sampled_from(["", "/", "/stapi/products/eo", "/licenses/MIT", "/x?y=1", "/stapi"]))
    return f"{scheme}{userinfo}{host}{port}{path}", host, public


@given(hrefs())
def test_foreign_hosts_are_shown_only_when_public(case: tuple[str, str, bool]) -> None:
    """An href leaves the rewriter as a gateway href, as an http(s) link to a public host that is
    not the provider's, or not at all; the provider's address and private ones never get out."""
    href, _, public = case
    out = REWRITER.href(href)
    if out is None or out.startswith(f"{GATEWAY}/"):
        return
    parts = urlsplit(out)
    assert parts.scheme.lower() in ("http", "https")
    assert public, f"{href} -> {out}"
    assert (parts.hostname or "").rstrip(".") != "api.acme.example"


@given(hrefs(), st.sampled_from(["POST", "PUT", "DELETE", "GET"]), st.booleans())
def test_third_party_links_that_make_the_client_send_are_dropped(
    case: tuple[str, str, bool], method: str, body: bool
) -> None:
    """`links` keeps a third-party link only for a plain GET without a body."""
    link: dict[str, Any] = {"href": case[0], "rel": "related", "method": method} | ({"body": {}} if body else {})
    out = REWRITER.links([link])
    for kept in out:
        if not kept["href"].startswith(f"{GATEWAY}/"):
            assert method == "GET"
            assert not body


@given(TEMPLATES, UPSTREAM_IDS, st.sampled_from(["?next=t", "?limit=2&next=x"]))
def test_provider_page_tokens_never_travel(template: str, upstream_id: str, query: str) -> None:
    """A provider href carrying a query (a page token) is dropped, never rewritten or passed."""
    assert REWRITER.href(provider_href(template, upstream_id) + query) is None
