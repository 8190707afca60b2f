"""RPC figures for `groundwork status`, read from each instance's Prometheus /metrics:
requests and errors since start, mean latency, and the p95 bucket bound."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class RpcFigures:
    requests: int
    errors: int
    mean_seconds: float
    p95_at_most: float | None  # upper bound of the bucket holding the 95th percentile

    def describe(self) -> str:
        if not self.requests:
            return "no requests yet"
        p95 = "n/a" if self.p95_at_most is None else _ms(self.p95_at_most)
        return (
            f"{self.requests} requests, {self.errors} errors, "
            f"mean {_ms(self.mean_seconds)}, p95 ≤ {p95}"
        )


def _ms(seconds: float) -> str:
    return "∞" if seconds == float("inf") else f"{seconds * 1000:.1f} ms"


def figures(texts: Iterable[str]) -> RpcFigures:
    """Figures over every method of one or more instances' exposition texts."""
    requests = errors = 0
    count = total = 0.0
    buckets: dict[float, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "groundwork_rpc_requests_total":
                    requests += int(sample.value)
                    errors += 0 if sample.labels.get("code") == "OK" else int(sample.value)
                elif sample.name == "groundwork_rpc_duration_seconds_bucket":
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0) + sample.value
                elif sample.name == "groundwork_rpc_duration_seconds_count":
                    count += sample.value
                elif sample.name == "groundwork_rpc_duration_seconds_sum":
                    total += sample.value
    # Buckets are cumulative: the first bound whose count reaches 95% holds the p95.
    p95 = next((b for b in sorted(buckets) if count and buckets[b] >= 0.95 * count), None)
    return RpcFigures(requests, errors, total / count if count else 0.0, p95)
