"""Rewriting provider hrefs to gateway hrefs."""

from __future__ import annotations

import pytest

from gateway.domain.links import LinkRewriter, base_url

REWRITER = LinkRewriter("acme", "http://10.0.0.5:9001/stapi", "https://gw.example")


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("http://10.0.0.5:9001/stapi/products/eo", "https://gw.example/products/acme:eo"),
        ("http://10.0.0.5:9001/stapi/products/eo/queryables", "https://gw.example/products/acme:eo/queryables"),
        ("http://10.0.0.5:9001/stapi/products/eo/orders", "https://gw.example/products/acme:eo/orders"),
        (
            "http://10.0.0.5:9001/stapi/products/eo/opportunities/c1",
            "https://gw.example/products/acme:eo/opportunities/acme:c1",
        ),
        ("http://10.0.0.5:9001/stapi/orders/o%201/statuses", "https://gw.example/orders/acme:o%201/statuses"),
        ("http://10.0.0.5:9001/stapi/searches/opportunities/r1", "https://gw.example/searches/opportunities/acme:r1"),
        ("http://10.0.0.5:9001/stapi/", "https://gw.example/"),
        ("http://10.0.0.5:9001/stapi/conformance", "https://gw.example/conformance"),
        ("https://spdx.org/licenses/MIT", "https://spdx.org/licenses/MIT"),
        # Same origin but no gateway counterpart, or carrying a provider page token: dropped.
        ("http://10.0.0.5:9001/stapi/openapi.json", None),
        ("http://10.0.0.5:9001/stapi/products?next=x&limit=2", None),
        ("http://10.0.0.5:9001/other/products/eo", None),
        ("http://10.0.0.5:9001/stapi/products/eo/secret/path", None),
        ("/relative/path", None),
    ],
)
def test_href(href: str, expected: str | None) -> None:
    """Provider hrefs map to namespaced gateway hrefs; unmappable ones on its origin are dropped."""
    assert REWRITER.href(href) == expected


def test_links_drops_requested_rels_and_unmappable_links() -> None:
    """`links` rewrites each href, keeps other fields, and removes paging and unmappable links."""
    links = [
        {"href": "http://10.0.0.5:9001/stapi/products/eo", "rel": "self", "type": "application/json"},
        {"href": "http://10.0.0.5:9001/stapi/products/eo/orders", "rel": "create-order", "method": "POST"},
        {"href": "http://10.0.0.5:9001/stapi/products/eo", "rel": "next"},
        {"href": "http://10.0.0.5:9001/stapi/docs", "rel": "service-doc"},
    ]
    out = REWRITER.links(links, drop_rels=frozenset({"next"}))
    assert out == [
        {"href": "https://gw.example/products/acme:eo", "rel": "self", "type": "application/json"},
        {"href": "https://gw.example/products/acme:eo/orders", "rel": "create-order", "method": "POST"},
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"public_url": "https://pub.example/x/"}, "https://pub.example/x"),
        ({}, "http://gw:8000"),
        ({"forwarded_proto": "https", "forwarded_host": "api.example"}, "https://api.example"),
        ({"forwarded_proto": "https, http", "forwarded_host": "a.example, b.example"}, "https://a.example"),
        ({"forwarded_proto": "gopher", "forwarded_host": "evil.example/path?"}, "http://gw:8000"),
        ({"root_path": "/api/"}, "http://gw:8000/api"),
    ],
)
def test_base_url(kwargs: dict[str, str], expected: str) -> None:
    """public_url wins; otherwise sane forwarded headers, otherwise the Host header."""
    args = {"public_url": None, "scheme": "http", "host": "gw:8000", **kwargs}
    assert base_url(**args) == expected  # type: ignore[arg-type]


PROVIDER = "http://10.0.0.5:9001/stapi"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        # Public third parties pass unchanged; userinfo is stripped (it named the provider's address).
        ("https://docs.example.com/guide#x", "https://docs.example.com/guide#x"),
        ("http://10.0.0.5:9001@evil.example.com/x", "http://evil.example.com/x"),
        ("https://user:pw@docs.example.com:8443/a?b=1", "https://docs.example.com:8443/a?b=1"),
        # Userinfo in front of the provider's own host: rewritten like the provider's link it is.
        ("http://someone@10.0.0.5:9001/stapi/products/eo", "https://gw.example/products/acme:eo"),
        # Scheme-relative: read with the provider's scheme, then judged as usual.
        ("//evil.example.com/x", "//evil.example.com/x"),
        ("//10.0.0.5:9001/stapi/products/eo", "https://gw.example/products/acme:eo"),
        # Not http(s), or unparseable.
        ("javascript:alert(1)", None),
        ("ftp://files.example.com/a", None),
        ("data:text/html,<script>", None),
        ("http://[::1", None),
        ("http://docs.example.com:99999/", None),
        ("http:/\\evil.example.com/", None),
        (" http://evil.example.com/", None),
        ("http://evil.example.com/a b", None),
        # The provider's own host on another port or scheme, not rewritten: dropped.
        ("http://10.0.0.5:8080/admin", None),
        ("https://10.0.0.5/", None),
        # Loopback, link-local, private, shared, unspecified, multicast, internal names: dropped.
        ("http://169.254.169.254/latest/meta-data/", None),
        ("http://127.0.0.1:6379/", None),
        ("http://[::1]/", None),
        ("http://[::ffff:127.0.0.1]/", None),
        ("http://[fe80::1]/", None),
        ("http://192.168.1.1/", None),
        ("http://100.64.0.1/", None),
        ("http://0.0.0.0/", None),
        ("http://224.0.0.1/", None),
        ("http://localhost:8000/", None),
        ("http://metadata/computeMetadata/v1/", None),
        ("http://vault.internal/", None),
        ("http://printer.local/", None),
        ("http://2130706433/", None),
        ("http://127.1/", None),
        ("http://0x7f.0.0.1/", None),
        ("http://localhost./", None),
    ],
)
def test_third_party_hrefs_pass_only_when_public_http(href: str, expected: str | None) -> None:
    """Only plain http(s) links to public hosts other than the provider's leave the gateway."""
    if expected is not None and expected.startswith("//"):
        expected = "http:" + expected
    assert LinkRewriter("acme", PROVIDER, "https://gw.example").href(href) == expected


def test_private_links_pass_when_the_provider_allows_them() -> None:
    """`allow_private_links` lets private and loopback links through; the provider's own host stays hidden."""
    rewriter = LinkRewriter("acme", PROVIDER, "https://gw.example", allow_private=True)
    assert rewriter.href("http://10.1.2.3/docs") == "http://10.1.2.3/docs"
    assert rewriter.href("http://wiki.internal/x") == "http://wiki.internal/x"
    assert rewriter.href("http://10.0.0.5:8080/admin") is None
    assert rewriter.href("javascript:alert(1)") is None


def test_third_party_links_that_would_send_something_are_dropped() -> None:
    """A foreign create-order with a POST body, or any non-GET foreign link, is removed; the gateway's stay."""
    links = [
        {"href": "https://evil.example.com/orders", "rel": "create-order", "method": "POST", "body": {"a": 1}},
        {"href": "https://evil.example.com/collect", "rel": "alternate", "method": "PUT"},
        {"href": "https://evil.example.com/form", "rel": "alternate", "body": {"a": 1}},
        {"href": "https://spdx.org/licenses/MIT", "rel": "license", "method": "GET"},
        {"href": f"{PROVIDER}/products/eo/orders", "rel": "create-order", "method": "POST", "body": {"b": 2}},
        "not a link",
    ]
    out = REWRITER.links(links)  # type: ignore[arg-type]
    assert [link["href"] for link in out] == [
        "https://spdx.org/licenses/MIT",
        "https://gw.example/products/acme:eo/orders",
    ]
