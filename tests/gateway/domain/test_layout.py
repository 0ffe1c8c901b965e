"""The domain stays pure: no module under gateway/domain imports the folders that do I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway.domain

FORBIDDEN = ("gateway.services", "gateway.http", "gateway.upstream", "gateway.store", "starlette", "httpx", "redis")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at any depth (TYPE_CHECKING blocks too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_modules_import_no_io_layer() -> None:
    """Not services, http, upstream or store, nor an HTTP or Redis client."""
    folder = Path(gateway.domain.__file__).parent
    offending = {
        f"{path.name}: {name}"
        for path in folder.rglob("*.py")
        for name in imported(path)
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)
    }
    assert not offending
