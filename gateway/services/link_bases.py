"""Link bases learned from providers' landing pages, once per start and reload, off the request path."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import structlog

from adapters.base import DeliberateError
from gateway.services.fanout import Deadline, call_one
from gateway.upstream.providers import Provider, Providers

log = structlog.get_logger("gateway.providers")


def self_base(landing: dict[str, Any]) -> str | None:
    """The root a landing page names itself by (its `self` link), if that is a plain http(s) URL."""
    for link in landing.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "self":
            parts = urlsplit(str(link.get("href", "")))
            # No user:password@ roots: a credential in a URL is not a base to remember.
            if parts.scheme in ("http", "https") and parts.hostname and "@" not in parts.netloc:
                return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    return None


def _same_root(a: str, b: str) -> bool:
    # http and https alike, hosts case-insensitive, as the rewriter compares them.
    return a.partition("://")[2].rstrip("/").lower() == b.partition("://")[2].rstrip("/").lower()


async def learn_link_bases(providers: Providers, deadline_s: float) -> None:
    """Ask each provider's landing page once which root it names itself by; one other than its
    `url` and `link_bases` becomes one more of its link bases.

    Cheap (one call per provider at start and on reload, off the request path) and safe: a base
    only decides which of that provider's own hrefs are rewritten rather than passed on, never
    where the gateway sends anything, and nothing of another provider. A provider that does not
    answer teaches nothing until the next reload; `link_bases` is the dependable way.
    """
    deadline = Deadline(deadline_s)

    async def learn(provider: Provider) -> None:
        try:
            landing = await call_one(provider.id, provider.adapter.landing_page, deadline)
        except DeliberateError as exc:
            log.info("provider_link_base_unknown", provider=provider.id, code=exc.code)
            return
        base = self_base(landing)
        known = (provider.settings.base_url, *provider.link_bases)
        if base is not None and not any(_same_root(base, root) for root in known):
            provider.learned_bases.append(base)
            log.info("provider_link_base_learned", provider=provider.id, base=base)

    await asyncio.gather(*(learn(p) for p in providers))
