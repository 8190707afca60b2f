"""Structured JSON logs, one object per line: on stdout (where Kubernetes reads
a container's logs), or into a file the process writes itself (the local mesh:
nothing on the request path flows through the supervisor's pipes).

A file is written in blocks: lines wait in memory until 256 are pending, a
WARNING or worse arrives, or half a second has passed, whichever is first, so a
busy service makes a write per few hundred lines, not one per line."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import time

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

FLUSH_SECONDS = 0.5


def _with_trace(record: logging.LogRecord) -> bool:
    """Stamp lines written inside a traced request or message handler with its ids."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record.trace_id = format(context.trace_id, "032x")
        record.span_id = format(context.span_id, "016x")
    return True


def in_sampled_trace() -> bool:
    """Whether the current request is in a trace that is kept: its per-request
    lines are worth writing (logs and traces then tell the same story)."""
    return bool(trace.get_current_span().get_span_context().trace_flags.sampled)


class _BufferedFile(logging.handlers.MemoryHandler):
    """A rotating file, written in blocks; a daemon thread flushes what waits."""

    def __init__(self, path: str) -> None:
        target = logging.handlers.RotatingFileHandler(
            path, maxBytes=20 * 1024 * 1024, backupCount=2, encoding="utf-8"
        )
        super().__init__(256, flushLevel=logging.WARNING, target=target, flushOnClose=True)
        self._ticker = threading.Thread(target=self._tick, name="log-flush", daemon=True)
        self._ticker.start()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        assert self.target is not None
        self.target.setFormatter(fmt)

    def _tick(self) -> None:
        while True:  # a daemon thread: it ends with the process (close() flushes)
            time.sleep(FLUSH_SECONDS)
            if self.buffer:
                self.flush()


def configure(service: str, instance_id: str, level: str = "INFO", path: str = "") -> None:
    handler: logging.Handler = _BufferedFile(path) if path else logging.StreamHandler(sys.stdout)
    handler.addFilter(_with_trace)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service, "instance": instance_id},
        )
    )
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level)
