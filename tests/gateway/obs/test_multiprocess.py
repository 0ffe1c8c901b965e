"""Metrics shared by forked processes: each adds up as it says; dead processes as prometheus_client keeps them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from gateway.obs.metrics import Metrics
from gateway.obs.multiprocess import DIR_ENV, metrics_dir, shared_metrics


def samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.decode())
        for s in family.samples
    }


def in_child(work: Callable[[Metrics], None]) -> int:
    """Fork a process that builds its own `Metrics` (as a worker does), runs `work` on it and exits;
    wait for it and return its pid. The child never returns into pytest."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work(Metrics())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid


def first_worker(m: Metrics) -> None:
    """A worker that served 3 requests, saw acme's circuit open, holds 2 deferred journal writes."""
    m.requests.labels("list_products", "200").inc(3)
    m.request_seconds.labels("list_products").observe(0.02)
    m.circuit_state.labels("acme").set(2)
    m.journal_deferred.set(2)
    m.tracked_orders.labels("acme").set(7)


def second_worker(m: Metrics) -> None:
    """A worker that served 4 requests, with acme's circuit closed, 1 deferred write, and a later count."""
    m.requests.labels("list_products", "200").inc(4)
    m.request_seconds.labels("list_products").observe(0.5)
    m.circuit_state.labels("acme").set(0)
    m.journal_deferred.set(1)
    time.sleep(0.01)  # a later wall-clock stamp than the first worker's count (mostrecent compares them)
    m.tracked_orders.labels("acme").set(5)


REQUESTS = ("stapi_gateway_requests_total", (("operation", "list_products"), ("status", "200")))
LATENCY_COUNT = ("stapi_gateway_request_duration_seconds_count", (("operation", "list_products"),))
CIRCUIT = ("stapi_gateway_circuit_state", (("provider", "acme"),))
DEFERRED = ("stapi_gateway_journal_deferred", ())
TRACKED = ("stapi_gateway_tracked_orders", (("provider", "acme"),))


def test_workers_values_add_up_and_a_dead_workers_counters_stay() -> None:
    """Counters and histograms sum over processes, dead ones included; live gauges follow their
    mode (circuit: worst, deferred: sum, tracked: latest) and drop a process once it is marked dead."""
    with shared_metrics() as shared:
        first = in_child(first_worker)
        second = in_child(second_worker)
        reader = Metrics()  # the worker answering /metrics
        both = samples(reader.exposition())
        shared.worker_exited(first)
        after_first = samples(reader.exposition())
        shared.worker_exited(second)
        after_both = samples(reader.exposition())
    assert [both[REQUESTS], both[LATENCY_COUNT], both[CIRCUIT], both[DEFERRED], both[TRACKED]] == [7, 2, 2, 3, 5]
    assert [after_first[k] for k in (REQUESTS, LATENCY_COUNT, CIRCUIT, DEFERRED, TRACKED)] == [7, 2, 0, 1, 5]
    # Nothing of the dead remains in the gauges but the reader's own zero; the counts are all kept.
    assert (after_both[REQUESTS], after_both[DEFERRED], CIRCUIT in after_both, TRACKED in after_both) == (
        7,
        0,
        False,
        False,
    )


@pytest.mark.parametrize("inherited", [None, "/somewhere/shared/with/others"])
def test_shared_metrics_uses_a_fresh_directory_and_puts_the_process_back(
    inherited: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside: a new empty private directory (never an inherited one), values in files. After: removed,
    the variable as it was, values back in memory."""
    if inherited is None:
        monkeypatch.delenv(DIR_ENV, raising=False)
    else:
        monkeypatch.setenv(DIR_ENV, inherited)
    before = values.ValueClass
    with shared_metrics() as shared:
        inside = (os.environ[DIR_ENV], metrics_dir(), sorted(os.listdir(shared.path)))
        Metrics().requests.labels("list_products", "200").inc()
        written = sorted(os.listdir(shared.path))
    assert inside == (shared.path, shared.path, [])
    # Gauges without labels (journal_deferred, webhook_retries_waiting) have a value file from the start.
    kinds = ["counter", "gauge_livemostrecent", "gauge_livesum", "histogram"]
    assert written == [f"{kind}_{os.getpid()}.db" for kind in kinds]
    assert not Path(shared.path).exists()
    assert (os.environ.get(DIR_ENV), values.ValueClass, metrics_dir()) == (inherited, before, None)
