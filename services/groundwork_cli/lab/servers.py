"""Web server architectures: one handler (a millisecond waiting on "the database",
then a fraction of a millisecond of CPU), served three ways — one asyncio event
loop (aiohttp), one event loop per core in processes sharing the port with
SO_REUSEPORT, and a pool of threads (the standard library's ThreadingHTTPServer)
— and loaded by h2load at rising concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from typing import Any

from groundwork_cli import h2load
from groundwork_cli.lab.outcome import Outcome, Table

HOST = "127.93.0.1"
WAIT_SECONDS = 0.001
CPU_ROUNDS = 200  # about 0.1-0.2 ms of SHA-256 on these machines
BODY = b'{"ok":true}'


def work_cpu() -> bytes:
    digest = b"groundwork"
    for _ in range(CPU_ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return digest


def serve_event_loop(port: int, reuse_port: bool) -> None:
    from aiohttp import web

    async def handler(_: web.Request) -> web.Response:
        await asyncio.sleep(WAIT_SECONDS)
        work_cpu()
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", handler)
    web.run_app(app, host=HOST, port=port, reuse_port=reuse_port, print=None, access_log=None)


def serve_threads(port: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm on, the second
        # waits for the client's delayed ACK of the first (40 ms), which is not what
        # this experiment compares.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            time.sleep(WAIT_SECONDS)
            work_cpu()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *_: Any) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    ThreadingHTTPServer((HOST, port), Handler).serve_forever()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"no server on {HOST}:{port}")


def _start(kind: str, port: int) -> list[subprocess.Popen[bytes]]:
    count = (os.cpu_count() or 1) if kind == "processes" else 1
    return [
        subprocess.Popen(
            [sys.executable, "-m", "groundwork_cli.lab.servers", kind, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


ARCHITECTURES = {
    "one event loop": "loop",
    f"{os.cpu_count() or 1} processes, SO_REUSEPORT": "processes",
    "thread pool": "threads",
}


def run(quick: bool) -> Outcome:
    concurrencies = [1, 8, 32] if quick else [1, 4, 16, 64, 128]
    requests = 400 if quick else 4000
    results: dict[str, list[dict[str, Any]]] = {}
    for name, kind in ARCHITECTURES.items():
        port = _free_port()
        processes = _start(kind, port)
        try:
            _wait(port)
            results[name] = []
            for clients in concurrencies:
                figures = h2load.run(
                    h2load.Load(
                        f"http://{HOST}:{port}/",
                        requests=max(requests, clients * 10),
                        connections=clients,
                        streams=1,
                        http1=True,
                    )
                )
                results[name].append({"clients": clients, **figures.as_dict()})
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)
    table = Table(["architecture", "clients", "req/s", "p50 ms", "p99 ms", "failed"])
    for name, points in results.items():
        for point in points:
            failed = point["requests"] - point["succeeded"]
            table.rows.append(
                [
                    name,
                    point["clients"],
                    point["per_second"],
                    point["p50_ms"],
                    point["p99_ms"],
                    failed,
                ]
            )

    def plot(axes: Any) -> None:
        for name, points in results.items():
            axes.plot(
                [p["clients"] for p in points], [p["per_second"] for p in points], "o-", label=name
            )
        axes.set_xscale("log", base=2)
        axes.set_xlabel("concurrent clients (HTTP/1.1 keep-alive)")
        axes.set_ylabel("requests per second")
        axes.legend(fontsize=8)

    peak = {name: max(p["per_second"] for p in points) for name, points in results.items()}
    cores = os.cpu_count() or 1
    return Outcome(
        name="servers",
        title="Web server architectures under rising concurrency",
        table=table,
        figures={"wait_ms": WAIT_SECONDS * 1000, "cpu_rounds": CPU_ROUNDS, "results": results},
        explanation=(
            f"Each request waits {WAIT_SECONDS * 1000:.0f} ms (as for a database) and then "
            "computes briefly. One client at a time, every architecture is bound by that wait. "
            "As clients rise, the event loop overlaps the waits of all of them in one thread "
            "until the CPU part saturates its single core; processes sharing the port "
            f"(SO_REUSEPORT, the kernel spreading connections) use all {cores} cores; the "
            "thread pool overlaps the waits too (sleep releases the GIL) but its threads "
            "contend for the GIL on the CPU part and cost a stack and a context switch each. "
            "Peaks: " + "; ".join(f"{n} {r:,.0f} req/s" for n, r in peak.items()) + "."
        ),
        plot=plot,
    )


if __name__ == "__main__":
    kind, port_text = sys.argv[1], sys.argv[2]
    if kind == "threads":
        serve_threads(int(port_text))
    else:
        serve_event_loop(int(port_text), reuse_port=kind == "processes")
