"""Configuration problems: where each one is (file and key path) and what it is.

Loading reports trouble as `ConfigProblem` values instead of raising, so that one run of
`check-config` can show an operator everything that is wrong at once; validators locate their
problems at list items or nested keys with `item_problems`, which `validation_errors` unfolds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

KeyPart = str | int
# ctx key of a `PydanticCustomError` that locates its problems at items (or keys) under the failing field.
ITEM_PROBLEMS = "item_problems"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration: the file, the key path inside it, and what is wrong."""

    file: str
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key_path}" if self.key_path else self.file
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


def key_path(parts: Sequence[KeyPart]) -> str:
    """Render a location as `providers.acme.headers` / `include[0]`, the form every problem uses."""
    out = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def item_problems(problems: Sequence[tuple[KeyPart | tuple[KeyPart, ...], str]]) -> PydanticCustomError:
    """An error for a validator to raise: one problem per `(index or key path, message)`, each located
    under the failing field (a list's item, a nested key)."""
    located = [(where if isinstance(where, tuple) else (where,), message) for where, message in problems]
    detail = "; ".join(f"{_relative(where)}: {message}" for where, message in located)
    return PydanticCustomError("item_problems", "{detail}", {"detail": detail, ITEM_PROBLEMS: located})


def _relative(where: tuple[KeyPart, ...]) -> str:
    rendered = key_path(where)
    return rendered if rendered.startswith("[") else f"[{rendered}]"


def validation_errors(exc: ValidationError, fields: Iterable[str]) -> list[tuple[tuple[KeyPart, ...], str]]:
    """A pydantic error as `(location, message)` pairs, with unknown keys listing the allowed ones."""
    out: list[tuple[tuple[KeyPart, ...], str]] = []
    allowed = ", ".join(fields)
    # Inputs are never echoed: after interpolation they may hold tokens from the environment.
    # Context is read only for `item_problems`, whose messages the validators wrote themselves.
    for err in exc.errors(include_url=False, include_input=False, include_context=True):
        loc = tuple(part for part in err["loc"] if part != "[key]")
        if err["type"] == "item_problems":
            out += [((*loc, *where), message) for where, message in err.get("ctx", {})[ITEM_PROBLEMS]]
            continue
        if err["type"] == "extra_forbidden":
            message = f"unknown key (expected one of: {allowed})" if allowed else "unknown key (none are allowed here)"
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append((loc, message))
    return out
