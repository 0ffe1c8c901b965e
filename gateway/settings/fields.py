"""Field types the settings models share, and small helpers for sections keyed by id."""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Protocol, Self, TypeVar

from pydantic import AfterValidator, Field, HttpUrl


class _Identified(Protocol):
    @property
    def id(self) -> str: ...

    @classmethod
    def model_validate(cls, obj: Any, /) -> Self: ...


IdentifiedT = TypeVar("IdentifiedT", bound=_Identified)


def by_id(
    model: type[IdentifiedT], items: Iterable[IdentifiedT | Mapping[str, Any]], what: str
) -> dict[str, IdentifiedT]:
    """Models, given as models or as mappings to validate, keyed by `id` in order; a repeated id is a ValueError."""
    out: dict[str, IdentifiedT] = {}
    for item in items:
        value = item if isinstance(item, model) else model.model_validate(item)
        if value.id in out:
            raise ValueError(f"duplicate {what} id {value.id!r}")
        out[value.id] = value
    return out


def counted(names: Collection[str], noun: str) -> str:
    """`1 provider (a)`, `2 providers (a, b)`."""
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'} ({', '.join(names)})"


def repeats(values: Sequence[Hashable]) -> list[tuple[int, int]]:
    """`(index, index of its first occurrence)` for every value that repeats an earlier one."""
    first: dict[Hashable, int] = {}
    return [(index, first[value]) for index, value in enumerate(values) if first.setdefault(value, index) != index]


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


# Set by the gateway on every upstream call (gateway/upstream/stamp.py and the trace context):
# a provider's `headers:` naming one would be overwritten, so it is refused rather than ignored.
GATEWAY_HEADERS = frozenset({"user-agent", "x-request-id", "traceparent", "tracestate"})


def _check_http_headers(value: dict[str, str]) -> dict[str, str]:
    seen: set[str] = set()
    for name, header in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if name.lower() in GATEWAY_HEADERS:
            raise ValueError(f"header {name!r} is set by the gateway on every upstream call")
        if name.lower() in seen:
            raise ValueError(f"header {name!r} is given twice (names are case-insensitive)")
        seen.add(name.lower())
        # Values often come from ${VAR}; a stray newline there would smuggle in extra headers.
        if any(c in header for c in "\r\n\0"):
            raise ValueError(f"value of header {name!r} contains a line break or NUL")
    return value


def _root_url(url: HttpUrl) -> HttpUrl:
    # Query and fragment would be lost or duplicated once paths are appended to the root.
    if url.query or url.fragment:
        raise ValueError("must not have a query string or fragment")
    return url


# Field types shared by the settings models.
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
# An http(s) root that paths are appended to.
RootUrl = Annotated[HttpUrl, AfterValidator(_root_url)]
# Outgoing HTTP headers: valid names, each once (case-insensitively), no line breaks in values.
HttpHeaders = Annotated[dict[str, str], AfterValidator(_check_http_headers)]
