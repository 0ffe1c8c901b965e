"""One process (tests, `serve` with one worker): metrics live in the runtime's own registry, as always."""

from __future__ import annotations

import os

from gateway.obs.metrics import Metrics
from gateway.obs.multiprocess import DIR_ENV
from tests.gateway.obs.test_multiprocess import REQUESTS, samples


def test_one_process_exports_its_own_registry() -> None:
    """No shared directory: the exposition is the registry's, `_created` samples and all (a merge of
    worker files never has those), and counts start from nothing for each `Metrics`."""
    first, second = Metrics(), Metrics()
    first.requests.labels("list_products", "200").inc(3)
    exported = samples(first.exposition())
    created = ("stapi_gateway_requests_created", REQUESTS[1])
    assert (first.shared_dir, DIR_ENV in os.environ) == (None, False)
    assert (exported[REQUESTS], created in exported) == (3, True)
    assert REQUESTS not in samples(second.exposition())
