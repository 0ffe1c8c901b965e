"""The layout's rules, checked: which folder may import which, and no module over 300 lines.

The table is the one docs/architecture.md draws; a new import across folders either fits it or
changes both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = {"adapters"}
# What each folder may import of this project (besides itself). The wiring modules (gateway/app.py,
# cli.py, runtime.py, reload.py, supervisor.py) may import everything; services and http name the
# runtime only for its type.
MAY_IMPORT: dict[str, set[str]] = {
    "adapters": set(),
    "gateway/settings": BASE,
    "gateway/domain": BASE | {"gateway/settings"},
    "gateway/store": {"gateway/domain"},
    "gateway/obs": set(),
    "gateway/upstream": BASE | {"gateway/settings", "gateway/domain", "gateway/obs"},
    "gateway/services": BASE
    | {
        "gateway/settings",
        "gateway/domain",
        "gateway/obs",
        "gateway/store",
        "gateway/upstream",
        "gateway/aio",
        "gateway.runtime",
    },
    "gateway/notify": BASE | {"gateway/settings", "gateway/domain", "gateway/obs", "gateway/store", "gateway/aio"},
    "gateway/http": BASE
    | {
        "gateway/settings",
        "gateway/domain",
        "gateway/obs",
        "gateway/upstream",
        "gateway/services",
        "gateway/notify",
        "gateway.runtime",
    },
    "gateway/demo": set(),
    "gateway/aio": set(),
}
# Third-party packages a folder must not reach for: the domain does no I/O, only http/ (and the
# simulators, Starlette apps of their own) speaks Starlette, and adapters know only httpx.
MUST_NOT_USE: dict[str, set[str]] = {
    "gateway/domain": {"starlette", "httpx", "aiohttp", "redis"},
    "gateway/settings": {"starlette", "httpx", "aiohttp", "redis"},
    "gateway/store": {"starlette", "httpx", "aiohttp"},
    "gateway/services": {"starlette", "aiohttp"},
    "gateway/notify": {"starlette", "aiohttp"},
    "gateway/upstream": {"starlette", "redis"},
    "adapters": {"starlette", "redis", "aiohttp"},
}
MAX_LINES = 300


def folder_of(module: str) -> str | None:
    """The layout folder a dotted module belongs to (None for a module of another project)."""
    parts = module.split(".")
    if parts[0] == "adapters":
        return "adapters"
    if parts[0] != "gateway" or len(parts) == 1:
        return None
    if parts[1] in ("app", "cli", "runtime", "reload", "supervisor"):
        return f"gateway.{parts[1]}"
    return f"gateway/{parts[1]}"


def imports_of(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth (TYPE_CHECKING blocks too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _is_simulator(path: Path) -> bool:
    """A vendor's simulated server (adapters/<vendor>/simulator*.py): a Starlette app of its own."""
    return path.name.startswith("simulator") and "adapters" in path.parts


def modules(folder: str) -> list[Path]:
    """The Python files of a layout folder."""
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_folder_imports_only_what_the_layout_allows(folder: str) -> None:
    """Each folder imports only the folders its row of the table names, and not the packages it must not use."""
    allowed = MAY_IMPORT[folder] | {folder}
    banned = MUST_NOT_USE.get(folder, set())
    offending = set()
    for path in modules(folder):
        for name in imports_of(path):
            target = folder_of(name)
            if target is not None and target not in allowed:
                offending.add(f"{path.relative_to(ROOT)}: {name}")
            if name.partition(".")[0] in banned and not _is_simulator(path):
                offending.add(f"{path.relative_to(ROOT)}: {name} (third-party)")
    assert offending == set()


def test_every_folder_of_the_layout_is_in_the_table() -> None:
    """A new folder under gateway/ gets its row (and its paragraph in docs/architecture.md)."""
    found = {f"gateway/{p.name}" for p in (ROOT / "gateway").iterdir() if (p / "__init__.py").exists()}
    assert found == {f for f in MAY_IMPORT if f.startswith("gateway/")}


def test_no_module_exceeds_300_lines() -> None:
    """Modules under gateway/ and adapters/ stay small enough to read in one go."""
    long = {
        str(path.relative_to(ROOT)): n
        for package in ("gateway", "adapters")
        for path in modules(package)
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
