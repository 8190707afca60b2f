"""A run's figures from Locust's own outputs: `--json-file` (every entry's response
time histogram) and `--csv`'s failures table.

Entries of type `outcome` (a race lost, a ticket issued, sold out) are results of the
sale, not requests: they are reported apart and left out of throughput."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OUTCOME = "outcome"
PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Figures:
    name: str
    kind: str
    requests: int
    failures: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


def percentile(histogram: Counter[float], share: float) -> float:
    """The smallest response time (Locust rounds them) at or under which `share` of
    the requests fall."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    seen = 0
    for milliseconds in sorted(histogram):
        seen += histogram[milliseconds]
        if seen >= share * total:
            return milliseconds
    return max(histogram)


def _histogram(entries: Iterable[dict[str, Any]]) -> Counter[float]:
    merged: Counter[float] = Counter()
    for entry in entries:
        for milliseconds, count in entry["response_times"].items():
            merged[float(milliseconds)] += int(count)
    return merged


def _figures(name: str, kind: str, entries: list[dict[str, Any]], seconds: float) -> Figures:
    histogram = _histogram(entries)
    requests = sum(int(e["num_requests"]) for e in entries)
    total_time = sum(float(e["total_response_time"]) for e in entries)
    p50, p95, p99 = (percentile(histogram, p) for p in PERCENTILES)
    return Figures(
        name=name,
        kind=kind,
        requests=requests,
        failures=sum(int(e["num_failures"]) for e in entries),
        per_second=round(requests / seconds, 2) if seconds > 0 else 0.0,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=round(total_time / requests, 2) if requests else 0.0,
        max_ms=max((float(e["max_response_time"] or 0) for e in entries), default=0.0),
    )


def summarize(stats: list[dict[str, Any]], failures_csv: Path | None) -> dict[str, Any]:
    requests = [e for e in stats if e["method"] != OUTCOME]
    outcomes = [e for e in stats if e["method"] == OUTCOME]
    started = min((float(e["start_time"]) for e in stats), default=0.0)
    ended = max((float(e["last_request_timestamp"] or 0) for e in stats), default=0.0)
    seconds = max(ended - started, 0.0)
    by_entry = [_figures(e["name"], e["method"], [e], seconds) for e in requests]
    total = _figures("all requests", "", requests, seconds)
    return {
        "seconds": round(seconds, 2),
        "total": asdict(total),
        "requests": [asdict(f) for f in sorted(by_entry, key=lambda f: (f.kind, f.name))],
        "outcomes": {
            e["name"]: {
                "count": int(e["num_requests"]),
                "failures": int(e["num_failures"]),
                "p50_ms": percentile(_histogram([e]), 0.5),
                "p95_ms": percentile(_histogram([e]), 0.95),
                "p99_ms": percentile(_histogram([e]), 0.99),
                "min_ms": float(e.get("min_response_time") or 0),
                "max_ms": float(e.get("max_response_time") or 0),
            }
            for e in outcomes
        },
        "failures": read_failures(failures_csv) if failures_csv else [],
    }


def read_failures(path: Path) -> list[dict[str, Any]]:
    """Locust's `<prefix>_failures.csv`: method, name, error, occurrences."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            {
                "method": row["Method"],
                "name": row["Name"],
                "error": row["Error"],
                "occurrences": int(row["Occurrences"]),
            }
            for row in csv.DictReader(handle)
        ]
