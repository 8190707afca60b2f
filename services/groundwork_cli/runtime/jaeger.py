"""Jaeger v2 beside the local mesh: which binary, and the config it runs with.

Jaeger v2 is an OpenTelemetry Collector build: it takes OTLP on 4317 and serves its
UI and query API on 16686. Locally it keeps traces in memory and binds only the
mesh's loopback address."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

OTLP_PORT = 4317
QUERY_PORT = 16686
QUERY_GRPC_PORT = 16685
METRICS_PORT = 8888
PORTS = (OTLP_PORT, QUERY_PORT, QUERY_GRPC_PORT, METRICS_PORT)
OFF = "off"


class JaegerNotFound(Exception):
    pass


def find(setting: str) -> Path | None:
    """The binary named by GROUNDWORK_JAEGER, else `jaeger` on PATH; `off` for none."""
    if setting == OFF:
        return None
    if not setting:
        found = shutil.which("jaeger")
        return Path(found) if found else None
    path = Path(setting).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise JaegerNotFound(
            f"GROUNDWORK_JAEGER={setting} is not an executable file "
            "(name a jaeger binary, or `off` to run without Jaeger)"
        )
    return path


def config(host: str, forward: str | None = None, max_traces: int = 100_000) -> dict[str, Any]:
    """Jaeger's collector config: OTLP in, memory storage, query on `host`.
    `forward` (host:port) also sends every span to another OTLP receiver — the
    built-in one, so `groundwork trace` works while Jaeger runs."""
    exporters: dict[str, Any] = {"jaeger_storage_exporter": {"trace_storage": "memstore"}}
    if forward:
        exporters["otlp/forward"] = {"endpoint": forward, "tls": {"insecure": True}}
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": list(exporters),
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "basic",
                    "readers": [
                        {"pull": {"exporter": {"prometheus": {"host": host, "port": METRICS_PORT}}}}
                    ],
                },
                "logs": {"level": "warn", "encoding": "json"},
            },
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": {
                "storage": {"traces": "memstore"},
                "http": {"endpoint": f"{host}:{QUERY_PORT}"},
                "grpc": {"endpoint": f"{host}:{QUERY_GRPC_PORT}"},
            },
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{host}:{OTLP_PORT}"}}}},
        "processors": {"batch": {"timeout": "1s"}},
        "exporters": exporters,
    }
