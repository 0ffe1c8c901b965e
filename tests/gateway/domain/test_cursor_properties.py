"""Property tests of signed cursors: what is encoded decodes, and nothing else gets through."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import merge
from gateway.domain.cursor import CursorCodec
from gateway.domain.errors import InvalidCursor

CODEC = CursorCodec(b"property-secret")
KINDS = st.sampled_from(["products", "orders", "opportunities:fed", "searches"])
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def b64(data: bytes) -> str:
    """Unpadded base64url, as cursors carry their payload."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


POSITIONS = st.dictionaries(
    st.sampled_from("abcdef"),
    st.builds(merge.Position, st.none() | st.text(max_size=12), st.integers(0, 500), st.integers(1, 1000)),
)


@given(KINDS, JSON)
def test_a_cursor_decodes_to_its_state(kind: str, state: Any) -> None:
    """Encode then decode is the identity on any JSON state."""
    assert CODEC.decode(kind, CODEC.encode(kind, state)) == state


@given(POSITIONS)
def test_merge_positions_survive_a_cursor(positions: dict[str, merge.Position]) -> None:
    """A merged list's positions, through a cursor and back, are the same positions."""
    state = CODEC.decode("products", CODEC.encode("products", merge.dump_state(positions)))
    assert merge.load_state(state, list("abcdef")) == positions


@given(KINDS, JSON, st.data())
def test_a_tampered_cursor_is_refused_or_means_the_same(kind: str, state: Any, data: st.DataObject) -> None:
    """Changing any one character: InvalidCursor, or (a base64 digit's unused low bits) the same state."""
    cursor = CODEC.encode(kind, state)
    index = data.draw(st.integers(0, len(cursor) - 1))
    char = data.draw(st.characters(codec="ascii").filter(lambda c: c != cursor[index]))
    tampered = cursor[:index] + char + cursor[index + 1 :]
    try:
        decoded = CODEC.decode(kind, tampered)
    except InvalidCursor:
        return
    assert decoded == state


@given(KINDS, JSON, JSON)
def test_another_state_under_the_old_signature_is_refused(kind: str, state: Any, forged: Any) -> None:
    """A client that swaps in its own payload and keeps the signature gets InvalidCursor."""
    signature = CODEC.encode(kind, state).split(".")[1]
    if orjson.dumps(forged) == orjson.dumps(state):
        return
    with pytest.raises(InvalidCursor):
        CODEC.decode(kind, f"{b64(orjson.dumps(forged))}.{signature}")


@given(KINDS, st.text(max_size=200))
def test_any_string_is_a_state_or_an_invalid_cursor(kind: str, text: str) -> None:
    """Arbitrary input never raises anything but InvalidCursor."""
    with contextlib.suppress(InvalidCursor):
        CODEC.decode(kind, text)


@given(KINDS, KINDS, JSON)
def test_a_cursor_is_refused_by_another_list(kind: str, other: str, state: Any) -> None:
    """The signature covers the list kind."""
    if kind != other:
        with pytest.raises(InvalidCursor):
            CODEC.decode(other, CODEC.encode(kind, state))
