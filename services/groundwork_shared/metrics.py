"""Prometheus metrics of one service process (prometheus-client), served as
/metrics on GROUNDWORK_METRICS_LISTEN. Names follow Prometheus conventions:
counters end in _total, durations are histograms in seconds."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RPC_REQUESTS = Counter(
    "groundwork_rpc_requests_total", "RPCs served, by method and status code", ["method", "code"]
)
RPC_DURATION = Histogram(
    "groundwork_rpc_duration_seconds",
    "Time to serve an RPC, by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RPC_STREAMS_OPEN = Gauge(
    "groundwork_rpc_streams_open",
    "Streaming RPCs this process is serving now, by method (a cancelled one leaves at once)",
    ["method"],
)
RPC_STREAM_MESSAGES = Counter(
    "groundwork_rpc_stream_messages_total",
    "Messages server streams handed to the transport, by method (grpc asks a stream"
    " for the next only when the transport took the last: once the buffers on the way"
    " are full, a reader that stops reading stops the stream)",
    ["method"],
)
BUS_APPLIED = Counter(
    "groundwork_bus_events_applied_total", "Events whose effect committed", ["stream", "group"]
)
BUS_REDELIVERED = Counter(
    "groundwork_bus_redeliveries_total",
    "Events taken over from a dead or failed consumer (XAUTOCLAIM)",
    ["stream", "group"],
)
BUS_DEAD_LETTERED = Counter(
    "groundwork_bus_dead_lettered_total",
    "Events moved to the dead-letter stream",
    ["stream", "group"],
)
BUS_LAG = Gauge(
    "groundwork_bus_lag",
    "Entries not yet delivered to the group plus delivered but unacknowledged",
    ["stream", "group"],
)
CACHE_REQUESTS = Counter(
    "groundwork_cache_requests_total", "Cache reads by this process, by result", ["cache", "result"]
)
WEBSOCKETS = Gauge("groundwork_websocket_connections", "Open WebSocket connections")
WEBSOCKETS_DROPPED = Counter(
    "groundwork_websocket_slow_clients_dropped_total", "Clients closed for not keeping up"
)


class _CacheHitRatio(Collector):
    """Hits / reads per cache since start, from the counters above."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "groundwork_cache_hit_ratio", "Share of cache reads that hit", labels=["cache"]
        )
        totals: dict[str, dict[str, float]] = {}
        for metric in CACHE_REQUESTS.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    cache, result = sample.labels["cache"], sample.labels["result"]
                    totals.setdefault(cache, {})[result] = sample.value
        for cache, counts in totals.items():
            reads = sum(counts.values())
            family.add_metric([cache], counts.get("hit", 0) / reads if reads else 0.0)
        yield family


class _Pools(Collector):
    """Connections of each registered asyncpg pool: in use, idle, and the maximum."""

    def __init__(self) -> None:
        self._pools: dict[str, asyncpg.Pool] = {}

    def add(self, name: str, pool: asyncpg.Pool) -> None:
        self._pools[name] = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "groundwork_db_pool_connections",
            "Database pool connections by state",
            labels=["pool", "state"],
        )
        for name, pool in self._pools.items():
            size, idle = pool.get_size(), pool.get_idle_size()
            family.add_metric([name, "in_use"], size - idle)
            family.add_metric([name, "idle"], idle)
            family.add_metric([name, "max"], pool.get_max_size())
        yield family


POOLS = _Pools()
REGISTRY.register(_CacheHitRatio())
REGISTRY.register(POOLS)


def serve(listen: str) -> None:
    """Serve /metrics from a background thread (prometheus-client's own server)."""
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host)
