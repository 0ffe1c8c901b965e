"""Which JSON Schema engine validates provider schemas: jsonschema (Python) or jsonschema-rs (Rust).

Measures, per engine, what the gateway pays: compiling a provider's order-parameters schema once
(meta-schema check included) and validating a typical order's parameters against it, plus the
time a catastrophic-backtracking `pattern` costs. Run: `.venv/bin/python bench/schemas.py`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from gateway.demo.catalogue import OpticalOrderParameters

# A richer schema than the demo's: what a vendor's order form tends to look like.
RICH: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["delivery"],
    "$defs": {
        "bucket": {"type": "string", "pattern": "^s3://[a-z0-9.-]{3,63}(/[A-Za-z0-9._/-]*)?$"},
        "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "maxLength": 254},
    },
    "properties": {
        "delivery_format": {"enum": ["cog", "geotiff", "jp2"], "default": "cog"},
        "bands": {"enum": ["panchromatic", "multispectral", "pansharpened"]},
        "processing_level": {"enum": ["L1A", "L1B", "L2A"]},
        "max_cloud_cover": {"type": "number", "minimum": 0, "maximum": 100},
        "max_off_nadir": {"type": "number", "minimum": 0, "maximum": 45},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "reference": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4,10}$"},
        "notify": {"type": "array", "items": {"$ref": "#/$defs/email"}, "maxItems": 5},
        "delivery": {
            "type": "object",
            "required": ["bucket"],
            "properties": {"bucket": {"$ref": "#/$defs/bucket"}, "prefix": {"type": "string", "maxLength": 200}},
        },
        "tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 64}},
    },
}
RICH_ORDER = {
    "delivery_format": "geotiff",
    "bands": "multispectral",
    "processing_level": "L2A",
    "max_cloud_cover": 20,
    "max_off_nadir": 25.5,
    "priority": 3,
    "reference": "ABC-123456",
    "notify": ["ops@example.com", "tasking@example.org"],
    "delivery": {"bucket": "s3://imagery-bucket/orders/2026", "prefix": "run-7"},
    "tags": {"project": "flood-watch", "cost-centre": "42"},
}
RICH_BAD = {**RICH_ORDER, "priority": 9, "reference": "abc", "delivery": {}}
DEMO = OpticalOrderParameters.model_json_schema()
DEMO_ORDER = {"delivery_format": "cog", "bands": "pansharpened"}
REDOS = {"type": "string", "pattern": "^(a+)+$"}


def _refuse(uri: str) -> Any:
    raise LookupError(uri)


def compile_py(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """jsonschema with its safe setup: schema checked, no remote retrieval (a refusing registry)."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.Draft202012Validator = cls(schema, registry=Registry(retrieve=_refuse))
    return validator


def compile_rs(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """jsonschema-rs as the gateway uses it: linear-time regex, refusing retriever."""
    options = jsonschema_rs.RegexOptions(size_limit=64 * 1024)
    return jsonschema_rs.validator_for(schema, retriever=_refuse, pattern_options=options, validate_formats=False)


def per_call_us(run: Callable[[], Any], repeat: int) -> float:
    """Median of 5 rounds, microseconds per call."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            run()
        rounds.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(rounds)


def rows(name: str, schema: dict[str, Any], good: Any, bad: Any) -> list[str]:
    """The table rows of one schema: compile, validate a valid order, list an invalid one's errors."""
    py, rs = compile_py(schema), compile_rs(schema)
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], int]] = [
        ("compile + check_schema", lambda: compile_py(schema), lambda: compile_rs(schema), 200),
        ("validate a valid order", lambda: list(py.iter_errors(good)), lambda: list(rs.iter_errors(good)), 2000),
        ("list errors of an invalid one", lambda: list(py.iter_errors(bad)), lambda: list(rs.iter_errors(bad)), 2000),
    ]
    return [
        f"| {name}: {label} | {per_call_us(run_py, n):.1f} | {per_call_us(run_rs, n):.1f} |"
        for label, run_py, run_rs, n in cases
    ]


def main() -> None:
    """Print the table."""
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("jsonschema", "jsonschema-rs"))
    print(f"{machine()}, {versions}")
    print("| case | jsonschema (µs) | jsonschema-rs (µs) |\n|---|---:|---:|")
    for line in rows("demo", DEMO, DEMO_ORDER, {"bands": 1}) + rows("rich", RICH, RICH_ORDER, RICH_BAD):
        print(line)
    py_redos, rs_redos = compile_py(REDOS), compile_rs(REDOS)
    for n in (18, 22, 24):
        value = "a" * n + "!"
        print(
            f"| `^(a+)+$` against {n} a's + '!' | {per_call_us(lambda v=value: py_redos.is_valid(v), 1):.0f} "
            f"| {per_call_us(lambda v=value: rs_redos.is_valid(v), 1):.1f} |"
        )
    value = "a" * 100_000 + "!"
    print(
        f"| `^(a+)+$` against 100 000 a's + '!' | (not run) | {per_call_us(lambda: rs_redos.is_valid(value), 1):.0f} |"
    )


if __name__ == "__main__":
    main()
