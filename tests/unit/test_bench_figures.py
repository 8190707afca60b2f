"""The mesh benchmark's arithmetic: h2load's output parsed, percentiles, the
open-loop timing script, CPU per request and the ratios the targets are in."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundwork_cli import h2load
from groundwork_cli.mesh_bench import Row, cpu_per_request, ratios
from groundwork_cli.sale_bench import _sale_lines

SUMMARY = """
finished in 2.75s, 727.57 req/s, 181.59KB/s
requests: 2000 total, 2000 started, 2000 done, 1990 succeeded, 10 failed, 0 errored, 0 timeout
status codes: 1990 2xx, 0 3xx, 4 4xx, 6 5xx
"""


def test_a_run_is_parsed_with_its_percentiles_from_the_request_log() -> None:
    log = "".join(f"1796176230960864\t200\t{ms * 1000}\n" for ms in range(1, 101))
    figures = h2load.parse(SUMMARY, log + "garbage line\n")
    assert figures.per_second == 727.57
    assert (figures.requests, figures.succeeded, figures.non_2xx) == (2000, 1990, 10)
    assert (figures.p50_ms, figures.p99_ms) == (50.0, 99.0)


def test_output_without_a_summary_is_an_error_that_shows_it() -> None:
    with pytest.raises(RuntimeError, match=r"connect to 127\.0\.0\.1 failed"):
        h2load.parse("connect to 127.0.0.1 failed\n", "")


def test_nearest_rank_percentiles() -> None:
    assert h2load.percentile([], 0.99) == 0.0
    assert h2load.percentile([5.0], 0.5) == 5.0
    values = [float(v) for v in range(1, 11)]
    assert h2load.percentile(values, 0.5) == 5.0
    assert h2load.percentile(values, 0.99) == 10.0
    assert h2load.percentile(values, 0.91) == 10.0
    assert h2load.percentile(values, 0.9) == 9.0


def test_a_fixed_rate_is_a_timing_script_and_a_socket_is_a_base(tmp_path: Path) -> None:
    load = h2load.Load(
        "http://app/Get", requests=4, connections=1, rate=1000, base="unix:/run/app.sock"
    )
    assert h2load.timing_script(load).splitlines() == [
        "0.000\thttp://app/Get",
        "1.000\thttp://app/Get",
        "2.000\thttp://app/Get",
        "3.000\thttp://app/Get",
    ]
    args = h2load.command("h2load", load, tmp_path / "log", tmp_path)
    assert "-B" in args and args[args.index("-B") + 1] == "unix:/run/app.sock"
    assert f"--timing-script-file={tmp_path / 'timing'}" in args
    assert "-n" not in args  # the script sets the count


def test_a_grpc_load_sends_a_framed_body(tmp_path: Path) -> None:
    assert h2load.grpc_frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    load = h2load.Load("http://e/S/M", requests=10, body=b"xyz", headers=h2load.GRPC_HEADERS)
    args = h2load.command("h2load", load, tmp_path / "log", tmp_path)
    assert args[args.index("-d") + 1] == str(tmp_path / "body")
    assert (tmp_path / "body").read_bytes() == b"xyz"
    assert args[-3:] == ["-n", "10", "http://e/S/M"]
    assert "content-type: application/grpc" in args


def test_cpu_per_request_keeps_the_busy_processes_busiest_first() -> None:
    before = {"edge": 10.0, "catalog-0": 20.0, "idle": 5.0}
    after = {"edge": 10.5, "catalog-0": 21.5, "idle": 5.000001, "new": 0.2}
    # 1,000 requests: 0.5 s of edge CPU is 0.5 ms each.
    assert cpu_per_request(before, after, 1000) == {"catalog-0": 1.5, "edge": 0.5}
    assert cpu_per_request(before, after, 0) == {}


def _row(path: str, per_second: float, p99: float = 1.0, **cpu: float) -> Row:
    return Row(path, {"per_second": per_second, "p99_ms": p99}, dict(cpu))


def test_the_ratios_the_targets_are_stated_in() -> None:
    rows = {
        "public read: GetEvent": [
            _row("Envoy direct response, REST h2c (ceiling)", 20_000),
            _row("app alone, gRPC", 1_000),
            _row("edge + sidecar, REST h2c", 5_000),
            _row(
                "edge + sidecar, gRPC",
                650,
                edge=0.6,
                **{"sidecar-catalog-0": 0.2, "sidecar-catalog-1": 0.25},
            ),
        ],
        "uncached authenticated read": [
            _row("edge + sidecar, REST h2c", 200),
            _row("edge + sidecar, gRPC", 260),
        ],
        "latency at 700 req/s": [
            _row("app alone", 700, p99=2.0),
            _row("two bare proxies + mTLS", 700, p99=2.5),
            _row("edge + sidecar", 700, p99=6.0),
        ],
        "micro-cached public read": [
            _row("Envoy direct response, REST h2c (ceiling)", 30_000),
            _row("edge micro-cache, REST h2c", 6_000),
        ],
    }
    figures = ratios(rows)
    assert figures["public read, edge REST (micro-cache) / ceiling"] == 0.25
    assert figures["public read, edge gRPC (not cached), req/s"] == 650
    assert figures["public read, app alone / ceiling"] == 0.05
    assert figures["authenticated read, edge gRPC / edge REST"] == 1.3
    assert figures["micro-cached read, edge / ceiling"] == 0.2
    assert figures["p99 added by two proxies + mTLS, ms"] == 0.5
    assert figures["p99 added by edge + sidecar, ms"] == 4.0
    assert figures["edge vCPU per 1,000 req/s"] == 0.6
    assert figures["sidecar vCPU per 1,000 req/s"] == 0.45


@pytest.mark.parametrize(("sold_out", "said"), [(None, "not sold out"), (41.5, "after 41.5s")])
def test_the_sale_lines_say_what_was_sold_and_where_the_cpu_went(
    sold_out: float | None, said: str
) -> None:
    figures = {
        "requests": 136754,
        "failed_requests": 0,
        "failures": {},
        "seats_sold": 500,
        "seats": 5000,
        "lost_races": 929,
        "sold_out_after_seconds": sold_out,
        "availability_p99_ms": 1500.0,
        "hold_p50_ms": 990.0,
        "hold_p99_ms": 2600.0,
        "time_in_queue_ms": {"p50_ms": 8500, "p99_ms": 13000, "count": 500},
        "check": {"ok": True, "paid_orders": 500, "tickets": 500},
        "preparation": {"customers": 5000},
        "cpu_percent": {"edge": 38.4, "locust (the load generator)": 33.0},
    }
    lines = _sale_lines(figures)
    assert "136,754 requests, 0 failed\n" in lines
    assert (
        f"seats sold 500 of 5,000, 929 lost races, {'sold out ' if sold_out else ''}{said}" in lines
    )
    assert "time in queue p50 8.5s, p99 13.0s (500 admitted)" in lines
    assert lines.endswith("% of one core: edge 38, locust (the load generator) 33")
