"""The load runner's logic: durations, the flash sale's shape, figures from Locust's
statistics, and the command it builds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from groundwork_loadtest.results import percentile, summarize
from groundwork_loadtest.runner import LoadError, Run, compare, locust_command, seconds
from groundwork_loadtest.sale import FlashSale


def test_durations_in_locusts_syntax() -> None:
    assert [seconds(d) for d in ("90", "30s", "2m", "1h30m", "1m5s")] == [90, 30, 120, 5400, 65]
    for bad in ("", "soon", "5x", "-3s"):
        with pytest.raises(LoadError, match="bad duration"):
            seconds(bad)


def test_the_flash_sale_ramps_to_its_peak_then_holds_then_ends() -> None:
    sale = FlashSale(peak_users=1000, ramp_seconds=10, hold_seconds=20)
    assert sale.at(0) == (100, 100.0)
    assert sale.at(4.5) == (550, 100.0)
    assert sale.at(9.9) == (1000, 100.0)
    assert sale.at(15) == (1000, 100.0)
    assert sale.at(30) is None


def _entry(name: str, method: str, times: dict[str, int], failures: int = 0) -> dict[str, Any]:
    count = sum(times.values())
    return {
        "name": name,
        "method": method,
        "num_requests": count,
        "num_failures": failures,
        "total_response_time": sum(float(ms) * n for ms, n in times.items()),
        "max_response_time": max((float(ms) for ms in times), default=0),
        "response_times": times,
        "start_time": 1000.0,
        "last_request_timestamp": 1010.0,
    }


def test_percentiles_come_from_the_merged_histogram() -> None:
    histogram = Counter({10.0: 90, 100.0: 9, 1000.0: 1})
    assert [percentile(histogram, p) for p in (0.5, 0.9, 0.95, 0.99, 1)] == [10, 10, 100, 100, 1000]
    assert percentile(Counter(), 0.5) == 0


def test_outcomes_are_reported_apart_from_requests(tmp_path: Path) -> None:
    stats = [
        _entry("hold", "POST", {"10": 8, "20": 2}),
        _entry("pay", "POST", {"50": 10}, failures=1),
        _entry("hold lost race", "outcome", {"0": 5}),
    ]
    failures = tmp_path / "failures.csv"
    failures.write_text('Method,Name,Error,Occurrences\nPOST,pay,"HTTPError(503)",1\n')
    summary = summarize(stats, failures)
    assert summary["seconds"] == 10
    total = summary["total"]
    assert (total["requests"], total["failures"], total["per_second"]) == (20, 1, 2.0)
    assert total["p50_ms"] == 20 and total["p99_ms"] == 50
    assert summary["outcomes"]["hold lost race"]["count"] == 5
    assert [r["name"] for r in summary["requests"]] == ["hold", "pay"]
    assert summary["failures"] == [
        {"method": "POST", "name": "pay", "error": "HTTPError(503)", "occurrences": 1}
    ]


def test_grpc_and_rest_are_compared_read_by_read() -> None:
    rows = [
        {"kind": "GET", "name": "/v1/events", "per_second": 100.0, "p50_ms": 10},
        {"kind": "grpc", "name": "ListEvents", "per_second": 150.0, "p50_ms": 6},
        {"kind": "GET", "name": "/v1/events/:id/seats", "per_second": 50.0, "p50_ms": 30},
        {"kind": "grpc", "name": "GetSeatMap", "per_second": 50.0, "p50_ms": 25},
    ]
    result = compare(rows)
    assert result["ListEvents"]["throughput_ratio"] == 1.5
    assert result["GetSeatMap"]["throughput_ratio"] == 1.0
    assert "GetEvent" not in result
    assert result["all reads"] == {
        "grpc_per_second": 200.0,
        "rest_per_second": 150.0,
        "throughput_ratio": 1.33,
    }


def test_the_locust_command_for_each_kind_of_scenario(tmp_path: Path) -> None:
    flash = locust_command(
        Run("flash-sale", "http://127.0.0.1:8080", tmp_path, event_id="e-1", flash_users=300)
    )
    assert flash[flash.index("-f") + 1].endswith("locustfiles/flash_sale.py")
    assert flash[flash.index("--flash-users") + 1] == "300"
    assert flash[flash.index("--event-id") + 1] == "e-1"
    assert "-u" not in flash  # the shape decides users
    buy = locust_command(Run("buy", "http://h", tmp_path, users=7, duration="1m", workers=2))
    assert buy[buy.index("-u") + 1] == "7" and buy[buy.index("--run-time") + 1] == "1m"
    assert buy[buy.index("--processes") + 1] == "2"
    assert "--headless" in buy and buy[buy.index("--html") + 1] == str(tmp_path / "report.html")
    with pytest.raises(LoadError, match="unknown scenario 'soak': one of browse, buy"):
        locust_command(Run("soak", "http://h", tmp_path))
