"""h2load (Debian's nghttp2-client), the benchmarks' closed-loop HTTP client:
one run, its figures parsed from the summary and its latency percentiles from
the per-request log (`--log-file`; the summary has only min/mean/max)."""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from groundwork_cli.packages import ensure

_RATE = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
_DONE = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded")
_STATUSES = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


@dataclass(frozen=True)
class Load:
    """What to send: a URL, and for gRPC a framed message and its headers."""

    url: str
    requests: int
    connections: int = 16
    streams: int = 8  # per connection; 1 with HTTP/1.1
    http1: bool = False
    body: bytes | None = None
    headers: tuple[str, ...] = ("accept-encoding: identity",)
    # Where to connect instead of the URL's host (`unix:/path` for an app's socket).
    base: str | None = None
    # Requests per second per connection, open loop (a timing script); 0: closed loop.
    rate: int = 0
    # More URLs on the same host, taken in turn with `url` (h2load round-robins them).
    more_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Figures:
    per_second: float
    requests: int
    succeeded: int
    non_2xx: int
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\0" + struct.pack(">I", len(message)) + message


GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-int(fraction * 1000) * len(sorted_values) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def parse(summary: str, log: str) -> Figures:
    """h2load's summary (stdout) and its per-request log: start (µs since the
    epoch), status, microseconds to the end of the response, tab-separated."""
    rate, done = _RATE.search(summary), _DONE.search(summary)
    if not rate or not done:
        raise RuntimeError(f"h2load said:\n{summary[-1500:]}")
    statuses = _STATUSES.search(summary)
    durations = sorted(
        int(fields[2]) / 1000
        for fields in (line.split("\t") for line in log.splitlines())
        if len(fields) == 3 and fields[2].isdigit()
    )
    return Figures(
        per_second=float(rate.group(1)),
        requests=int(done.group(2)),
        succeeded=int(done.group(3)),
        non_2xx=sum(int(n) for n in statuses.groups()[1:]) if statuses else -1,
        p50_ms=round(percentile(durations, 0.50), 2),
        p99_ms=round(percentile(durations, 0.99), 2),
    )


def timing_script(load: Load) -> str:
    """One line per request: its offset from the start (ms) and its URL."""
    step = 1000 / load.rate
    return "".join(f"{i * step:.3f}\t{load.url}\n" for i in range(load.requests))


def command(binary: str, load: Load, log_file: Path, directory: Path) -> list[str]:
    args = [binary, "-c", str(load.connections)]
    args += ["--h1"] if load.http1 else ["-m", str(load.streams)]
    for header in load.headers:
        args += ["-H", header]
    if load.body is not None:
        body = directory / "body"
        body.write_bytes(load.body)
        args += ["-d", str(body)]
    if load.base:
        args += ["-B", load.base]

    args.append(f"--log-file={log_file}")
    if load.rate:
        script = directory / "timing"
        script.write_text(timing_script(load))
        return [*args, f"--timing-script-file={script}"]
    return [*args, "-n", str(load.requests), load.url, *load.more_urls]


def run(load: Load, timeout: float = 300) -> Figures:
    binary = ensure("h2load", "nghttp2-client")
    with tempfile.TemporaryDirectory() as directory:
        log_file = Path(directory) / "requests.tsv"
        output = subprocess.run(
            command(binary, load, log_file, Path(directory)),
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout
        log = log_file.read_text() if log_file.exists() else ""
    return parse(output, log)
