"""structlog configured once at start-up: JSON lines off a terminal, readable on one.

Every line on stderr goes through here: the gateway's own, uvicorn's, and Python warnings.

The gateway's own lines (two per request at least) skip the standard library: in JSON mode they
are rendered with orjson and written with one `os.write` each, which measured several times
cheaper than a stdlib handler and formatter. Other libraries' records (uvicorn) go through the
standard library with the same processors, so every line has the same shape.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson
import structlog


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class LineWriter:
    """A structlog logger writing each already-rendered line to a file descriptor at once."""

    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self._fd = fd

    def msg(self, message: str) -> None:
        """Write one line; no buffering, so lines never lag behind under low traffic."""
        os.write(self._fd, message.encode() + b"\n")

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _add_pid(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    event_dict["pid"] = os.getpid()
    return event_dict


def configure_logging(level: str = "info", *, json: bool | None = None, pid: bool = False) -> None:
    """Route structlog and the standard library (uvicorn) through one pipeline.

    `pid` adds the process id to every line (several worker processes share one stderr).
    """
    as_json = not sys.stderr.isatty() if json is None else json
    shared: list[structlog.types.Processor] = [
        *([_add_pid] if pid else []),
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps) if as_json else structlog.dev.ConsoleRenderer()
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    if as_json:
        fd = sys.stderr.fileno()
        structlog.configure(
            processors=[*shared, structlog.processors.format_exc_info, renderer],
            logger_factory=lambda name="gateway", *_: LineWriter(name, fd),
            wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
            cache_logger_on_first_use=True,
        )
    else:
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The gateway logs one line per request itself; uvicorn's access line would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    # Libraries' warnings (geojson-pydantic warns on some client geometries) would otherwise be
    # printed to stderr as plain text; this way they are log lines like every other.
    logging.captureWarnings(True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
