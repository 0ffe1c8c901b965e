"""Provider JSON Schemas are data: checked once, no network, linear-time patterns, a 502 when broken."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import ProviderInvalidPayload
from adapters.schemas import MAX_PATTERNS, MAX_SCHEMA_BYTES, CheckedSchema, check_schema
from tests.hostile import listener

ORDER_SCHEMA = {
    "type": "object",
    "$defs": {"format": {"enum": ["cog", "geotiff"]}},
    "properties": {
        "delivery_format": {"$ref": "#/$defs/format"},
        "reference": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
    },
    "additionalProperties": False,
}


def checked(schema: Any) -> CheckedSchema:
    """The schema through the adapter's check, as it would arrive over the wire."""
    return check_schema("up", schema, len(orjson.dumps(schema)))


def refused(schema: Any) -> str:
    """The detail of the 502 a schema gets."""
    with pytest.raises(ProviderInvalidPayload) as caught:
        checked(schema)
    assert caught.value.provider_id == "up"
    return caught.value.detail


def test_a_checked_schema_validates_with_local_refs_and_reports_paths() -> None:
    """Local `$ref`s resolve; each violation names its JSON path, message and keyword."""
    schema = checked(ORDER_SCHEMA)
    assert schema.document == ORDER_SCHEMA
    assert schema.violations({"delivery_format": "cog", "reference": "ABC-12"}) == []
    found = sorted(schema.violations({"delivery_format": "png", "reference": "x", "extra": 1}))
    assert [(v.path, v.keyword) for v in found] == [
        ([], "additionalProperties"),
        (["delivery_format"], "enum"),
        (["reference"], "pattern"),
    ]


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "{url}/schema.json"},
        {"properties": {"a": {"$ref": "{url}/a.json#/x"}}},
        {"$id": "{url}/root.json", "properties": {"a": {"$ref": "other.json"}}},
        {"$defs": {"unused": {"$ref": "{url}/unused.json"}}},
        {"$schema": "{url}/meta.json", "type": "object"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"$ref": "{url}/7.json"}}},
    ],
    ids=["root", "nested", "relative-to-id", "unused-def", "meta-schema", "draft-07"],
)
async def test_a_remote_reference_is_a_502_naming_it_and_nothing_is_fetched(schema: dict[str, Any]) -> None:
    """Whatever form the reference takes, the gateway names it and makes no connection."""
    async with listener() as (url, accepted):
        detail = refused(orjson.loads(orjson.dumps(schema).replace(b"{url}", url.encode())))
    assert f"{url}/" in detail
    assert "not fetched" in detail
    assert accepted == []


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ([1, 2], "not a JSON object"),
        ({"type": "no-such-type"}, "invalid JSON Schema"),
        ({"$ref": "#/$defs/missing"}, "invalid JSON Schema"),
        ({"pattern": "(unclosed"}, "invalid JSON Schema"),
        ({"pattern": "(?=look)ahead"}, "invalid JSON Schema"),
        ({"pattern": "(a{1000}){1000}"}, "invalid JSON Schema"),
        ({"minimum": "three"}, "invalid JSON Schema"),
        ({"properties": {f"p{i}": {"pattern": f"^{i}$"} for i in range(MAX_PATTERNS + 1)}}, "patterns"),
        ({"description": "x" * MAX_SCHEMA_BYTES}, "bytes"),
    ],
    ids=[
        "array",
        "bad-type",
        "missing-local-ref",
        "bad-regex",
        "lookahead",
        "huge-regex",
        "bad-keyword",
        "too-many-patterns",
        "too-big",
    ],
)
def test_a_broken_schema_is_a_502_with_a_bounded_printable_detail(schema: Any, why: str) -> None:
    """Malformed, unresolvable, backtracking-only or oversized: provider_invalid_payload, never a crash."""
    detail = refused(schema)
    assert why in detail
    assert len(detail) <= 300
    assert detail.isprintable()


def test_a_schema_nested_past_what_can_be_served_is_a_502() -> None:
    """A schema deeper than orjson writes (254 levels) could not be served; that is the provider's 502."""
    content = b'{"properties":{"a":' * 200 + b"{}" + b"}}" * 200
    with pytest.raises(ProviderInvalidPayload, match="nested too deeply"):
        check_schema("up", orjson.loads(content), len(content))


def test_a_catastrophic_pattern_costs_linear_time() -> None:
    """`^(a+)+$` took 1.3 s in jsonschema for 24 characters; here 100 000 take well under a second.

    The ceiling (1 s for what takes about 1 ms) only proves the engine does not backtrack.
    """
    schema = checked({"type": "object", "properties": {"ref": {"type": "string", "pattern": "^(a+)+$"}}})
    started = time.perf_counter()
    found = schema.violations({"ref": "a" * 100_000 + "!"})
    assert time.perf_counter() - started < 1.0
    assert [v.keyword for v in found] == ["pattern"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["#", "#/a", "http://127.0.0.1:9/x", "^(a+)+$", "(", "object"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "$ref",
                    "$id",
                    "$schema",
                    "pattern",
                    "properties",
                    "items",
                    "enum",
                    "$defs",
                    "allOf",
                    "minimum",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(schema=json_values, instance=json_values)
def test_any_json_is_a_checked_schema_or_a_502_and_validation_never_raises(schema: Any, instance: Any) -> None:
    """Fuzzed schemas (keywords, refs, patterns) give a CheckedSchema or ProviderInvalidPayload, nothing else."""
    try:
        result = checked(schema)
    except ProviderInvalidPayload:
        return
    assert isinstance(result.violations(instance), list)


@pytest.mark.parametrize(
    "draft", ["http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema"]
)
def test_formats_are_annotations_in_every_draft(draft: str) -> None:
    """As with jsonschema before (no format checker), `format` does not reject values."""
    schema = checked({"$schema": draft, "type": "string", "format": "email"})
    assert schema.violations("not an email") == []
