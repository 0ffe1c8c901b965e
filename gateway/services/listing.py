"""What answers share: link objects, who is missing from a fan-out's answer, and saying so in the body."""

from __future__ import annotations

from typing import Any

from adapters.base import Page
from gateway.services import fanout


def link(href: str, rel: str, media_type: str = "application/json", **extra: Any) -> dict[str, Any]:
    """A STAPI link object."""
    return {"href": href, "rel": rel, "type": media_type, **extra}


def pages_missing(gathered: fanout.Fanout[Page]) -> list[str]:
    """Who is missing from a merged answer: the providers that failed, and the ones an upstream
    gateway's page says it lacks, in this gateway's namespace (`g1:bravo`)."""
    behind = [f"{fanout.provider_of(key)}:{m}" for key, page in gathered.results.items() for m in page.missing]
    return list(dict.fromkeys([*gathered.missing, *behind]))


def with_missing(body: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """Add the contract's `federation:missing` field when some providers are missing."""
    if missing:
        body["federation:missing"] = missing
    return body
