"""The costliest request bodies found within the default limits: CPU and memory of their validation.

    .venv/bin/python bench/hostile_bodies.py

Each body is as large as the default limits let it be (1 MiB, 50,000 JSON values, 32 levels,
filters of 10 nested operations and 5,000 values, 10,000 vertices). For each, the search and
the order validation (`validate_search`, `validate_order`: everything the gateway does with a
body before it calls a provider) are timed, best of 5 runs of process CPU time, and their peak
allocation is measured with tracemalloc in a separate run. Target: under 50 ms and 20 MB each.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from adapters.base import DeliberateError
from gateway.domain.inputs import InputLimits
from gateway.domain.opportunities import validate_search
from gateway.domain.orders import validate_order

WINDOW = "2026-12-01T00:00:00Z/2026-12-03T00:00:00Z"
POINT = {"type": "Point", "coordinates": [1, 2]}
PROPERTY = {"property": "off_nadir"}
MIB = 1 << 20
LIMITS = InputLimits()


def _largest(make: Callable[[int], dict[str, Any]], hi: int = 2_000_000) -> dict[str, Any]:
    """`make(n)` for the largest n whose body stays within 1 MiB and the JSON value count."""

    def fits(n: int) -> bool:
        raw = orjson.dumps(make(n))
        values = raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1
        # A little headroom, so the order variant (one more field) fits as well.
        return len(raw) <= MIB - 64 and values <= LIMITS.max_json_values - 4

    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return make(lo)


def _nested(op: str, depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"op": op, "args": [leaf]}
    return leaf


def _nested_list(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def _search(**fields: Any) -> dict[str, Any]:
    return {"datetime": WINDOW, "geometry": POINT, **fields}


def _line(n: int) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [[0.0001 * i, 0.0001 * i] for i in range(n)]}


BODIES: dict[str, dict[str, Any]] = {
    "issue 11: three casei around 1": _search(filter=_nested("casei", 3, 1)),
    "casei x9 around a property (valid)": _search(filter={"op": "=", "args": [_nested("casei", 9, PROPERTY), "x"]}),
    "not x15 (JSON depth 32)": _search(filter=_nested("not", 15, True)),
    "and of 1,666 comparisons (4,999 values)": _search(
        filter={"op": "and", "args": [{"op": "=", "args": [PROPERTY, 1]}] * 1666}
    ),
    "and at the value limit": _largest(
        lambda n: _search(filter={"op": "and", "args": [{"op": "=", "args": [PROPERTY, 1]}] * n})
    ),
    "in-list at the value limit": _largest(lambda n: _search(filter={"op": "in", "args": [PROPERTY, [0] * n]})),
    "filter polygon at the value limit": _largest(
        lambda n: _search(
            filter={"op": "s_intersects", "args": [PROPERTY, {"type": "Polygon", "coordinates": [[[0, 0]] * n]}]}
        )
    ),
    "geometry of 10,000 vertices (valid)": _search(geometry=_line(10_000)),
    "geometry at the value limit": _largest(lambda n: _search(geometry=_line(n))),
    "multipolygon of tiny rings": _largest(
        lambda n: _search(geometry={"type": "MultiPolygon", "coordinates": [[[[0, 0], [0, 0], [0, 0], [0, 0]]]] * n})
    ),
    "empty arrays at the value limit": _largest(lambda n: _search(x=[[]] * n)),
    "keys at the value limit": _largest(lambda n: _search(**{f"k{i}": 0 for i in range(n)})),
    "31 levels around a wide list": _largest(lambda n: _search(x=_nested_list(29, [0] * n))),
    "one 1 MiB string": _largest(lambda n: _search(next="x" * n)),
    "1 MiB filter string": _largest(lambda n: _search(filter={"op": "like", "args": [PROPERTY, "%" * n]})),
}


def _outcome(validate: Callable[[bytes, InputLimits], Any], body: bytes) -> str:
    try:
        validate(body, LIMITS)
    except DeliberateError as exc:
        errors = exc.extra.get("errors") or [{}]
        return f"{exc.code} ({errors[0].get('type', '')})"
    return "accepted"


def measure(validate: Callable[[bytes, InputLimits], Any], body: bytes) -> tuple[float, float, str]:
    """Best-of-5 CPU milliseconds, peak MiB allocated, and the outcome."""
    runs = []
    for _ in range(5):
        started = time.process_time()
        outcome = _outcome(validate, body)
        runs.append(time.process_time() - started)
    tracemalloc.start()
    _outcome(validate, body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(runs) * 1000, peak / MIB, outcome


def main() -> None:
    """Print one row per body and validation."""
    gc.set_threshold(10_000, 20, 20)  # as `stapi-gateway serve` runs (gateway.http.serving.tune_gc)
    print("| body | KiB | validation | CPU ms (best of 5) | peak MiB | outcome |")
    print("|---|---:|---|---:|---:|---|")
    for name, body in BODIES.items():
        for label, validate, extra in (
            ("search", validate_search, {}),
            ("order", validate_order, {"order_parameters": {}}),
        ):
            raw = orjson.dumps({**body, **extra})
            cpu, peak, outcome = measure(validate, raw)
            print(f"| {name} | {len(raw) / 1024:.0f} | {label} | {cpu:.1f} | {peak:.1f} | {outcome} |", flush=True)


if __name__ == "__main__":
    main()
