"""Links a provider puts in its answers reach clients only when they are safe (issue 11, item 10)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.gateways import gateway_client, hrefs
from tests.upstreams import ProductSpec, build_provider

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
HOSTILE = [
    {"href": "http://169.254.169.254/latest/meta-data/iam", "rel": "describedby"},
    {"href": "//evil.example.com/x", "rel": "alternate"},
    {"href": "http://alpha.test:80@evil.example.com/y", "rel": "alternate"},
    {"href": "http://alpha.test:8080/internal/admin", "rel": "service-doc"},
    {"href": "http://10.20.30.40:9000/docs", "rel": "service-doc"},
    {"href": "javascript:alert(1)", "rel": "alternate"},
    {"href": "https://evil.example.com/orders", "rel": "create-order", "method": "POST", "body": {"steal": True}},
    {"href": "https://spdx.org/licenses/MIT", "rel": "license"},
]


def _with_links(document: Any) -> Any:
    """The document with the hostile links added at the top and to every product and feature."""
    if isinstance(document, dict):
        if isinstance(document.get("links"), list):
            document["links"] += HOSTILE
        for key in ("products", "features"):
            for item in document.get(key) or []:
                item["links"] = [*(item.get("links") or []), *HOSTILE]
    return document


class HostileLinks:
    """A real provider whose JSON answers carry extra, hostile links (what no real server does on demand)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward, then add the links to the JSON body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            with contextlib.suppress(ValueError):
                body = json.dumps(_with_links(json.loads(body))).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _check(document: Any) -> list[str]:
    """Every href of a gateway answer, after asserting none of them is one of the hostile kinds."""
    found = hrefs(document)
    for href in found:
        assert not any(part in href for part in ("169.254", "alpha.test", "10.20.30.40", "@")), href
        assert href.startswith(("http://", "https://")), href
    for link in document.get("links", []) + [li for f in document.get("features", []) for li in f["links"]]:
        assert not (link["rel"] == "create-order" and "evil" in link["href"]), link
    return found


async def test_product_and_search_answers_relay_only_safe_links() -> None:
    """Products and opportunities keep the licence and evil.example.com's public pages, nothing else hostile."""
    upstream = HostileLinks(build_provider([ProductSpec("eo")], name="alpha"))
    async with gateway_client({"alpha": upstream}) as client:
        product = (await client.get("/products/alpha:eo")).json()
        listing = (await client.get("/products")).json()
        search = await client.post("/products/alpha:eo/opportunities", json={"datetime": WINDOW, "geometry": POINT})
    assert search.status_code == 200, search.text
    for document in (product, listing, search.json()):
        found = _check(document)
        assert "https://spdx.org/licenses/MIT" in found
        assert "http://evil.example.com/x" in found
        assert "http://evil.example.com/y" in found


async def test_private_links_reach_clients_when_the_provider_allows_them() -> None:
    """With `allow_private_links`, the provider's link to a private docs host passes (its own host does not)."""
    upstream = HostileLinks(build_provider([ProductSpec("eo")], name="alpha"))
    async with gateway_client({"alpha": upstream}, provider_overrides={"allow_private_links": True}) as client:
        found = hrefs((await client.get("/products/alpha:eo")).json())
    assert "http://10.20.30.40:9000/docs" in found
    assert not [h for h in found if "alpha.test" in h or h.startswith("javascript")]
