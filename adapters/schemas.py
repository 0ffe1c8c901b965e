"""Provider JSON Schemas (queryables, order parameters) as data: checked once, never a network call.

A provider's schema is untrusted input. Three things about it must not reach the gateway:
- network: a `$ref` naming a URL would be fetched (jsonschema fetches with urllib, on the event
  loop, without a timeout). Only references inside the document resolve; any other one makes
  the schema invalid, and its URI is named without being fetched;
- backtracking: a `pattern` such as `^(a+)+$` costs exponential time per client value in
  Python's `re`. Patterns run on Rust's `regex` engine, which matches in linear time;
- unbounded compile cost: the document's size, its number of patterns and each pattern's
  compiled size are capped, so compiling any schema costs tens of milliseconds at worst.

Engine: jsonschema-rs, measured against jsonschema 4.26 (bench/schemas.py, 2 cores, Python 3.11;
µs per call, jsonschema / jsonschema-rs):
- compile with the meta-schema check: demo order schema 1432 / 10, a 10-field vendor-like one 6823 / 280;
- validate a typical order's parameters: 21 / 0.6 (demo), 199 / 2.0 (vendor-like);
- list the errors of an invalid one: 27 / 5 (demo), 198 / 8.5 (vendor-like);
- `^(a+)+$` against 24 a's and a '!': 1 259 000 (1.3 s) / 1.1; against 100 000 a's: - / 214.
jsonschema could be made safe (a refusing `referencing` registry, and a `pattern` keyword on
a linear-time engine such as RE2), but that needs a native regex package anyway and leaves it
20-100x slower. Patterns with look-around or back-references do not compile on the linear
engine: such a schema is refused (502) rather than run on a backtracking one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import jsonschema_rs
import orjson

from adapters.base import ProviderInvalidPayload
from adapters.scrub import printable

# Real order and queryables schemas are a few KiB; a 128 KiB one compiles in under 20 ms.
MAX_SCHEMA_BYTES = 128 * 1024
# Each distinct pattern costs up to ~0.6 ms to compile within the size limit below (a Unicode
# class repeated); 64 of them stay under ~40 ms.
MAX_PATTERNS = 64
_PATTERN_OPTIONS = jsonschema_rs.RegexOptions(size_limit=64 * 1024)


class Violation(NamedTuple):
    """One way an instance fails a schema: where (JSON path), what, and the failing keyword."""

    path: list[str | int]
    message: str
    keyword: str


@dataclass(frozen=True, slots=True, eq=False)
class CheckedSchema:
    """A provider's JSON Schema that passed the checks, with its compiled validator."""

    document: dict[str, Any]
    validator: jsonschema_rs.Validator

    def violations(self, instance: Any) -> list[Violation]:
        """Every way `instance` fails the schema (empty when it is valid)."""
        return [
            Violation(list(e.instance_path), e.message, str(e.schema_path[-1]) if e.schema_path else "")
            for e in self.validator.iter_errors(instance)
        ]


class _Refused(LookupError):
    """Raised inside the compiler for any reference outside the document."""


def _patterns(document: Any) -> Iterator[str]:
    """Every regex in the schema (`pattern` values, `patternProperties` keys); a property named
    `pattern` is counted too, which only errs on the safe side."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    yield value
                elif key == "patternProperties" and isinstance(value, dict):
                    yield from (k for k in value if isinstance(k, str))
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))


def check_schema(provider_id: str, document: Any, size: int) -> CheckedSchema:
    """The provider's schema compiled, or ProviderInvalidPayload saying what is wrong with it.

    `size` is the document's size in bytes as received.
    """

    def invalid(why: str) -> ProviderInvalidPayload:
        return ProviderInvalidPayload(provider_id, printable(f"provider '{provider_id}' sent {why}", 300))

    if not isinstance(document, dict):
        raise invalid("a schema that is not a JSON object")
    if size > MAX_SCHEMA_BYTES:
        raise invalid(f"a schema of {size} bytes (at most {MAX_SCHEMA_BYTES} are accepted)")
    try:
        # The gateway serves the document with orjson, which writes at most 254 levels.
        orjson.dumps(document)
    except TypeError:
        raise invalid("a schema nested too deeply") from None
    patterns = sum(1 for _ in _patterns(document))
    if patterns > MAX_PATTERNS:
        raise invalid(f"a schema with {patterns} patterns (at most {MAX_PATTERNS} are accepted)")
    remote: list[str] = []

    def refuse(uri: str) -> Any:
        remote.append(uri)
        raise _Refused(uri)

    try:
        # Formats are annotations, as they were with jsonschema (no format checker): drafts 4-7
        # would otherwise assert them, and some format checks (`regex`, `idn-*`) cost per value.
        validator = jsonschema_rs.validator_for(
            document, retriever=refuse, pattern_options=_PATTERN_OPTIONS, validate_formats=False
        )
    # The compiler reports schema errors, unresolvable references and its own limits (nesting)
    # as several exception types; every one of them means the provider's schema is unusable.
    except Exception as exc:
        if remote:
            raise invalid(f"a schema with a remote reference '{remote[0]}' ($ref or $schema; not fetched)") from None
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise invalid(f"an invalid JSON Schema: {reason}") from None
    return CheckedSchema(document, validator)
