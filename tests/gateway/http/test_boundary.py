"""The HTTP boundary: only gateway/http/ knows Starlette's request and routing."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# The simulated providers (gateway/demo/, adapters/<vendor>/simulator*.py) are Starlette apps of their own.
OWN_APPS = ("gateway/demo/",)


def _request_imports(path: Path) -> set[str]:
    """What a module imports of Starlette's request and routing (`ClientDisconnect` is only an error)."""
    tree = ast.parse(path.read_text(), str(path))
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("starlette."):
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    wanted = ("starlette.requests.Request", "starlette.requests.HTTPConnection", "starlette.routing")
    return {name for name in found if name.startswith(wanted)}


def test_only_http_modules_import_the_request() -> None:
    """No module of gateway/ outside http/ (bar the simulators) nor of adapters/ imports Request or routing."""
    offenders = {}
    for package in ("gateway", "adapters"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where.startswith(("gateway/http/", *OWN_APPS)) or (
                where.startswith("adapters/") and path.name.startswith("simulator")
            ):
                continue
            if imports := _request_imports(path):
                offenders[where] = imports
    assert offenders == {}
