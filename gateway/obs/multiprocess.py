"""One set of metrics over every `serve --workers N` process: prometheus_client's multiprocess mode.

Each worker writes its values to files of its own (one per metric kind, named by its pid) in a
directory the master makes before its first fork; any worker answering `/metrics` reads them all
and adds them up (gauges as each one's `multiprocess_mode` says, see gateway/obs/metrics.py).
With one process none of this is used: values live in memory, in the runtime's own registry.

prometheus_client picks where values live (memory or files) once, when it is first imported, from
PROMETHEUS_MULTIPROC_DIR. The master has imported it long before it knows how many workers it
will run (the command line's imports reach gateway/obs/metrics.py), so `shared_metrics` both sets
the variable and picks the value class again, as `get_value_class` does at import. That is safe
because the master builds no metrics itself: every `Metrics` is built in a worker, after the fork.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import multiprocess, values

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class SharedMetrics:
    """The master's handle on the workers' metrics directory."""

    path: str

    def worker_exited(self, pid: int) -> None:
        """Forget a dead worker's live gauges; its counters and histograms stay, by design, so
        totals never go down when a worker is replaced."""
        multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]


@contextmanager
def shared_metrics() -> Iterator[SharedMetrics]:
    """For the master, around its workers' whole life: a fresh private directory for their metrics.

    It is fresh on purpose: files left by an earlier run (or another server sharing an inherited
    PROMETHEUS_MULTIPROC_DIR) would be added to this run's counts. Removed, and the process put
    back as it was, on the way out.
    """
    path = tempfile.mkdtemp(prefix="stapi-gateway-metrics-")
    previous_dir, previous_class = os.environ.get(DIR_ENV), values.ValueClass
    os.environ[DIR_ENV] = path  # inherited by every forked worker
    values.ValueClass = in_files = values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        yield SharedMetrics(path)
    finally:
        in_files.close_all_files()  # any this process opened (none in the master; a test's reader)
        values.ValueClass = previous_class
        if previous_dir is None:
            os.environ.pop(DIR_ENV, None)
        else:
            os.environ[DIR_ENV] = previous_dir
        shutil.rmtree(path, ignore_errors=True)


def metrics_dir() -> str | None:
    """The directory this process's metric values are written to, or None when they live in memory."""
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get(DIR_ENV)
