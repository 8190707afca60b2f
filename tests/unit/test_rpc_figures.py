"""`groundwork status`'s RPC line, from real exposition text of the shared metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from groundwork_cli.rpc_figures import figures


def _instance(latencies: list[float], codes: list[str]) -> str:
    registry = CollectorRegistry()
    requests = Counter("groundwork_rpc_requests", "", ["method", "code"], registry=registry)
    duration = Histogram(
        "groundwork_rpc_duration_seconds",
        "",
        ["method"],
        buckets=(0.001, 0.01, 0.1, 1),
        registry=registry,
    )
    for seconds, code in zip(latencies, codes, strict=True):
        requests.labels("/x.v1.S/M", code).inc()
        duration.labels("/x.v1.S/M").observe(seconds)
    return generate_latest(registry).decode()


def test_figures_add_up_instances_and_find_the_p95_bucket() -> None:
    fast = _instance([0.0005] * 95, ["OK"] * 95)
    slow = _instance([0.05] * 5, ["OK", "OK", "NOT_FOUND", "INTERNAL", "OK"])
    result = figures([fast, slow])
    assert (result.requests, result.errors) == (100, 2)
    assert result.p95_at_most == 0.001
    assert abs(result.mean_seconds - (95 * 0.0005 + 5 * 0.05) / 100) < 1e-9
    assert result.describe() == "100 requests, 2 errors, mean 3.0 ms, p95 ≤ 1.0 ms"
    tail = figures([_instance([0.0005] * 90, ["OK"] * 90), _instance([0.5] * 10, ["OK"] * 10)])
    assert tail.p95_at_most == 1


def test_no_traffic_says_so() -> None:
    assert figures([_instance([], [])]).describe() == "no requests yet"
