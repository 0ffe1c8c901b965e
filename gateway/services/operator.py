"""What an operator asks of a running gateway's store from the command line: orders of unknown outcome.

`stapi-gateway unknown-orders --config PATH` reads the store the configuration names (the
same one the replicas share) and lists every order attempt whose outcome is not known, with its
provider, age and what the gateway last saw, including those the reconciler gave up on.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.domain.attempts import OrderAttempt
from gateway.services.journal import OrderJournal, Retention
from gateway.settings.models import Settings
from gateway.store import open_store

_LIMIT = 10_000
_COLUMNS = ("attempt", "provider", "product", "client", "state", "age", "checks", "given_up", "last_error")


def describe(attempt: OrderAttempt, now: float) -> dict[str, Any]:
    """One attempt as an operator reads it."""
    return {
        "attempt": attempt.id,
        "provider": attempt.provider,
        "product": attempt.member,
        "client": attempt.client,
        "idempotency_key": attempt.idempotency_key,
        "state": str(attempt.state),
        "age": _age(now - attempt.created),
        "age_s": round(now - attempt.created, 1),
        "checks": attempt.checks,
        "given_up": attempt.gave_up,
        "last_error": attempt.error.code if attempt.error else "",
    }


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


async def unknown_orders(settings: Settings) -> list[dict[str, Any]]:
    """Every attempt of unknown outcome in the configured store, oldest first."""
    gw = settings.gateway
    store = open_store(gw.store, prefix=gw.store_prefix)
    try:
        journal = OrderJournal(store, Retention(gw.idempotency_ttl_s, gw.order_retention_s))
        attempts = await journal.unresolved(_LIMIT) + await journal.unresolved(_LIMIT, abandoned=True)
    finally:
        await store.aclose()
    now = time.time()
    return [describe(a, now) for a in sorted(attempts, key=lambda a: a.created)]


def render(rows: list[dict[str, Any]], *, as_json: bool) -> str:
    """A table (or JSON lines) for the terminal."""
    if as_json:
        return "\n".join(orjson.dumps(row).decode() for row in rows)
    if not rows:
        return "No order attempts of unknown outcome."
    table = [list(_COLUMNS)] + [[str(row[c]) for c in _COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table)
