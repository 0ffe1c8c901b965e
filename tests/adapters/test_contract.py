"""The adapter contract stands alone: nothing under adapters/ needs the gateway."""

from __future__ import annotations

import inspect
import subprocess
import sys

from adapters.base import ProviderAdapter
from adapters.client import CREATE_OPERATIONS, READ_OPERATIONS, WRITE_OPERATIONS
from adapters.stapi.adapter import StapiAdapter


def test_adapters_load_no_gateway_module() -> None:
    """Importing the contract and the STAPI adapter loads nothing from `gateway`."""
    code = (
        "import sys, adapters.base, adapters.client, adapters.schemas, adapters.scrub, adapters.stapi.adapter;"
        "print(sorted(m for m in sys.modules if m == 'gateway' or m.startswith('gateway.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _operations(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls) if inspect.iscoroutinefunction(member)} - {"aclose"}


def test_every_operation_is_classed_as_a_read_or_a_create() -> None:
    """Each protocol operation is a read (retryable), a create or a write (never retried), and nothing else."""
    assert not READ_OPERATIONS & (CREATE_OPERATIONS | WRITE_OPERATIONS)
    assert not CREATE_OPERATIONS & WRITE_OPERATIONS
    assert _operations(ProviderAdapter) == READ_OPERATIONS | CREATE_OPERATIONS | WRITE_OPERATIONS


def test_the_stapi_adapter_offers_exactly_the_protocol() -> None:
    """The STAPI adapter's public operations are the protocol's: none missing, none the gateway never calls."""
    public = {name for name in _operations(StapiAdapter) if not name.startswith("_")}
    assert public == _operations(ProviderAdapter)
