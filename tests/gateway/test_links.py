"""Rewriting provider hrefs to gateway hrefs."""

from __future__ import annotations

import pytest

from gateway.links import LinkRewriter, base_url

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
