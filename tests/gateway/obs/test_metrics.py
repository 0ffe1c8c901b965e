"""One process (tests, `serve` with one worker): metrics live in the runtime's own registry, as always."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.obs.metrics import Metrics
from gateway.obs.multiprocess import DIR_ENV
from tests.gateway.obs.test_multiprocess import REQUESTS, samples
from tests.served import free_port, served
from tests.upstreams import ProductSpec, build_provider, serve

CREATED = ("stapi_gateway_requests_created", REQUESTS[1])


def test_one_process_exports_its_own_registry() -> None:
    """No shared directory: the exposition is the registry's, `_created` samples and all (a merge of
    worker files never has those), and counts start from nothing for each `Metrics`."""
    first, second = Metrics(), Metrics()
    first.requests.labels("list_products", "200").inc(3)
    exported = samples(first.exposition())
    assert (first.shared_dir, DIR_ENV in os.environ) == (None, False)
    assert (exported[REQUESTS], CREATED in exported) == (3, True)
    assert REQUESTS not in samples(second.exposition())


async def test_serve_with_one_worker_keeps_metrics_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` without `--workers`: no metrics directory is made, and /metrics is the process's registry."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # where a metrics directory would be made
    async with serve(build_provider([ProductSpec("optical")], name="acme")) as acme_url:
        config = tmp_path / "gw.yaml"
        config.write_text(f"gateway:\n  store: memory://\nproviders:\n  acme:\n    url: {acme_url}\n")
        port = free_port()
        async with served(port, config=config) as gateway:
            for _ in range(5):
                assert (await gateway.client.get("/products")).status_code == 200
            exported = samples((await gateway.client.get("/metrics")).content)
            made = sorted(p.name for p in tmp.glob("stapi-gateway-metrics-*"))
    assert (exported[REQUESTS], CREATED in exported) == (5, True)
    assert made == []
