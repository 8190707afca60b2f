"""A local OTLP trace receiver and the waterfall `groundwork trace` prints.

    python -m groundwork_cli.traces LISTEN DB    # serve OTLP/gRPC on LISTEN, keep spans in DB

The receiver implements OTLP's TraceService/Export (the proto ships with
opentelemetry-proto) and keeps spans in SQLite, so the CLI, the tests and a person
can read a trace without a Jaeger. Jaeger remains the place for browsing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
  trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT NOT NULL,
  service TEXT NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL,
  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
  status INTEGER NOT NULL, attributes TEXT NOT NULL,
  received REAL NOT NULL DEFAULT (julianday('now')),
  PRIMARY KEY (trace_id, span_id));
CREATE INDEX IF NOT EXISTS spans_received ON spans (received);
"""
# OTLP status codes: 0 unset, 1 ok, 2 error.
_STATUS = {0: "", 1: "ok", 2: "ERROR"}
_KIND = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    service: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status: int
    attributes: dict[str, Any]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(any_value: Any) -> Any:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


class SpanStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> int:
        rows = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(resource.get("service.name", "unknown"))
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    attributes = {a.key: _value(a.value) for a in s.attributes}
                    rows.append(
                        (
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            service,
                            s.name,
                            s.kind,
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                            s.status.code,
                            json.dumps(attributes, default=str),
                        )
                    )
        self._db.executemany(
            "INSERT OR REPLACE INTO spans (trace_id, span_id, parent_id, service, name, kind,"
            " start_ns, end_ns, status, attributes) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        return len(rows)

    def spans(self, trace_id: str) -> list[Span]:
        rows = self._db.execute(
            "SELECT trace_id, span_id, parent_id, service, name, kind, start_ns, end_ns,"
            " status, attributes FROM spans WHERE trace_id = ? ORDER BY start_ns",
            (trace_id.lower(),),
        ).fetchall()
        return [
            Span(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]))
            for r in rows
        ]

    def last_trace(self, service: str | None = None) -> str | None:
        """The newest trace with a root span (of `service`, when given)."""
        row = self._db.execute(
            "SELECT trace_id FROM spans WHERE parent_id = ''"
            + (" AND service = ?" if service else "")
            + " ORDER BY start_ns DESC LIMIT 1",
            (service,) if service else (),
        ).fetchone()
        return str(row[0]) if row else None

    def root_names(self) -> list[str]:
        """The name of every trace's root span, sorted."""
        rows = self._db.execute("SELECT name FROM spans WHERE parent_id = '' ORDER BY name")
        return [str(r[0]) for r in rows.fetchall()]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spans").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class SpanSink(Protocol):
    """Where a receiver puts what it is sent: a SpanStore, or a test's wrapper."""

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> object: ...


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: SpanSink) -> None:
        self._store = store

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._store.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def receiver(listen: str, store: SpanSink) -> grpc.aio.Server:
    """A started OTLP/gRPC receiver on `listen` writing into `store`."""
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _TraceService(store), server
    )
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    return server


def waterfall(spans: list[Span], width: int = 40) -> str:
    """The trace as a tree: service, span, duration, status, and a bar on the time axis."""
    if not spans:
        return "no spans"
    children: defaultdict[str, list[Span]] = defaultdict(list)
    ids = {s.span_id for s in spans}
    roots = []
    for span in spans:
        if span.parent_id and span.parent_id in ids:
            children[span.parent_id].append(span)
        else:
            roots.append(span)  # a root, or a span whose parent was not exported
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    lines = [f"trace {spans[0].trace_id}  {total / 1e6:.1f} ms  {len(spans)} spans"]

    def walk(span: Span, depth: int) -> None:
        offset = int((span.start_ns - start) / total * width)
        length = max(1, int((span.end_ns - span.start_ns) / total * width))
        bar = " " * offset + "█" * min(length, width - offset)
        label = f"{'  ' * depth}{span.service}: {span.name}"
        kind = _KIND.get(span.kind, "")
        status = _STATUS.get(span.status, "")
        lines.append(
            f"{label[:80]:<80} {kind:<9} {span.duration_ms:>9.2f} ms {status:<5} |{bar:<{width}}|"
        )
        for child in sorted(children[span.span_id], key=lambda s: s.start_ns):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


async def _serve(listen: str, db: Path) -> None:
    store = SpanStore(db)
    server = await receiver(listen, store)
    print(f"OTLP receiver on {listen}, spans in {db}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], Path(sys.argv[2])))
