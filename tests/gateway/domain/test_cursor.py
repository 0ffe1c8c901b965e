"""Signed cursors and the merged-list positions they carry."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import Page
from gateway.domain import merge
from gateway.domain.cursor import CursorCodec
from gateway.domain.errors import InvalidCursor


def test_cursor_round_trip() -> None:
    """A cursor decodes to the state it was made from, for the kind it was made for."""
    codec = CursorCodec(b"k")
    state = {"p": {"a": ["tok", 1, 10]}}
    assert codec.decode("products", codec.encode("products", state)) == state


@pytest.mark.parametrize(
    ("secret", "kind"),
    [(b"other", "products"), (b"k", "orders")],
)
def test_cursor_from_another_secret_or_list_is_refused(secret: bytes, kind: str) -> None:
    """A different secret or list kind fails verification."""
    token = CursorCodec(b"k").encode("products", {"p": {}})
    with pytest.raises(InvalidCursor):
        CursorCodec(secret).decode(kind, token)


@pytest.mark.parametrize("state", [[], {"p": 3}, {"p": {"a": [None, -1, 10]}}, {"p": {"a": ["t", 0, 0]}}])
def test_malformed_positions_are_invalid_cursors(state: Any) -> None:
    """Signed but structurally wrong states are refused, not trusted."""
    with pytest.raises(InvalidCursor):
        merge.load_state(state, ["a"])


def test_merge_interleaves_and_keeps_failed_providers_in_place() -> None:
    """Items alternate by provider; a provider without a page keeps its position."""
    positions = merge.start(["a", "b", "c"], 3)
    pages = {"a": Page(items=[{"id": "a1"}, {"id": "a2"}], next_token="a3"), "b": Page(items=[{"id": "b1"}])}
    merged, after = merge.merge_page(positions, pages, 3)
    assert [item["id"] for _, item in merged] == ["a1", "b1", "a2"]
    assert after == {"a": merge.Position("a3", 0, 3), "c": merge.Position(None, 0, 3)}


def test_merge_records_a_partly_consumed_page() -> None:
    """When the page fills up mid-way through a provider's page, its skip moves on."""
    positions = {"a": merge.Position("t", 1, 4)}
    page = Page(items=[{"id": "x"}, {"id": "y"}, {"id": "z"}, {"id": "w"}], next_token="u")
    merged, after = merge.merge_page(positions, {"a": page}, 2)
    assert [item["id"] for _, item in merged] == ["y", "z"]
    assert after == {"a": merge.Position("t", 3, 4)}
