"""Protocols: the same cached read through the edge (GET /v1/events/{id}) over
HTTP/1.1 with a new connection per request, HTTP/1.1 keep-alive, HTTP/2 (one
connection, many streams; cleartext and TLS) and native gRPC,
each at several concurrencies, by h2load; and what setting up a connection costs
(TCP, then TLS 1.2 and 1.3, full and resumed, by python_clients'
handshake counter, and QUIC's). Debian's h2load has no QUIC, so HTTP/3 is set against
HTTP/2 with two Python clients alike (python_clients.py), in rows of their own:
a Python client measures itself too, so those rows compare with each other only.
The head-of-line experiment (hol.py) takes both onto a lossy link."""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import replace
from typing import Any

import httpx

from groundwork.catalog.v1 import catalog_pb2
from groundwork_cli import h2load
from groundwork_cli.lab import python_clients
from groundwork_cli.lab.outcome import Outcome, Table


def _loads(
    http: str, https: str, event_id: str, clients: int, requests: int
) -> dict[str, h2load.Load]:
    path = f"/v1/events/{event_id}"
    rest = h2load.Load(f"http://{http}{path}", requests=requests)
    grpc_message = catalog_pb2.GetEventRequest(event_id=event_id).SerializeToString()
    return {
        # h2load reconnects after each answer that says `connection: close`.
        "HTTP/1.1, new connection each": replace(
            rest,
            connections=clients,
            streams=1,
            http1=True,
            headers=(*rest.headers, "connection: close"),
        ),
        "HTTP/1.1 keep-alive": replace(rest, connections=clients, streams=1, http1=True),
        "HTTP/2 cleartext, 1 connection": replace(rest, connections=1, streams=clients),
        "HTTP/2 TLS, 1 connection": replace(
            rest, url=f"https://{https}{path}", connections=1, streams=clients
        ),
        "gRPC, 1 connection": h2load.Load(
            f"http://{http}/groundwork.catalog.v1.CatalogService/GetEvent",
            requests=requests,
            connections=1,
            streams=clients,
            body=h2load.grpc_frame(grpc_message),
            headers=h2load.GRPC_HEADERS,
        ),
    }


PYTHON_CLIENTS = (("HTTP/2 TLS, httpx", "h2"), ("HTTP/3 QUIC, aioquic", "h3"))


def _same_client(
    https: str, path: str, concurrencies: list[int], requests: int
) -> dict[str, list[dict[str, Any]]]:
    """HTTP/2 and HTTP/3 to the edge's TLS port (TCP and UDP), Python clients alike."""
    host, port = https.rsplit(":", 1)
    results: dict[str, list[dict[str, Any]]] = {}
    for clients in concurrencies:
        for name, protocol in PYTHON_CLIENTS:
            point = python_clients.load(protocol, host, int(port), path, requests, clients)
            if point["succeeded"] < requests:
                raise RuntimeError(f"{name}: {requests - point['succeeded']} of {requests} failed")
            results.setdefault(name, []).append({"clients": clients, **point})
    return results


def tcp_connect_ms(address: str, repeats: int) -> float:
    host, port = address.rsplit(":", 1)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=5):
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _native(
    http: str, https: str, event_id: str, concurrencies: list[int], requests: int
) -> dict[str, list[dict[str, Any]]]:
    """Every h2load load at every concurrency (a few non-2xx of a point are tolerated)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for clients in concurrencies:
        for name, load in _loads(http, https, event_id, clients, requests).items():
            figures = h2load.run(load)
            if figures.succeeded < figures.requests or figures.non_2xx > figures.requests // 100:
                raise RuntimeError(
                    f"{name}: {figures.requests - figures.succeeded} failed, {figures.non_2xx} "
                    "not 2xx: is the mesh up with the per-client limits raised "
                    "(GROUNDWORK_EDGE_CLIENT_RPS, GROUNDWORK_EDGE_CLIENT_BURST)?"
                )
            results.setdefault(name, []).append({"clients": clients, **figures.as_dict()})
    return results


def _setup_costs(http: str, https: str, quick: bool) -> dict[str, float]:
    """Milliseconds to a usable connection, one client at a time: TCP; TCP + TLS 1.2
    and 1.3, full and resumed (Python's ssl); QUIC with its TLS 1.3 (aioquic)."""
    seconds = 1 if quick else 3
    repeats = 20 if quick else 200
    setup = {"TCP connect": tcp_connect_ms(http, repeats)}
    for version in ("tls1_2", "tls1_3"):
        for resume in (False, True):
            rate = python_clients.handshakes_per_second(https, version, resume, seconds)
            label = f"TCP + {version.replace('_', '.').upper()} {'resumed' if resume else 'full'}"
            setup[label] = 1000 / rate
    host, port = https.rsplit(":", 1)
    setup["QUIC (TLS 1.3 inside), aioquic"] = python_clients.quic_setup_ms(host, int(port), repeats)
    return setup


def run(http: str, https: str, quick: bool) -> Outcome:
    concurrencies = [1, 8] if quick else [1, 8, 32, 128]
    requests = 100 if quick else 5000
    event_id = httpx.get(f"http://{http}/v1/events", params={"page_size": 1}).json()["events"][0][
        "event_id"
    ]
    results = _native(http, https, event_id, concurrencies, requests)
    same_client = _same_client(
        https, f"/v1/events/{event_id}", concurrencies, 100 if quick else 2000
    )
    setup = _setup_costs(http, https, quick)
    table = Table(["protocol", "clients", "req/s", "p50 ms", "p99 ms", "non-2xx"])
    for name, points in results.items():
        for p in points:
            table.rows.append(
                [name, p["clients"], p["per_second"], p["p50_ms"], p["p99_ms"], p["non_2xx"]]
            )
    for name, points in same_client.items():
        for p in points:
            table.rows.append(
                [f"{name} (Python)", p["clients"], p["per_second"], p["p50_ms"], p["p99_ms"], ""]
            )
    for name, ms in setup.items():
        table.rows.append([f"set-up: {name}", 1, 1000 / ms, ms, "", ""])

    def plot(axes: Any) -> None:
        for name, points in results.items():
            axes.plot(
                [p["clients"] for p in points], [p["per_second"] for p in points], "o-", label=name
            )
        for name, points in same_client.items():
            axes.plot(
                [p["clients"] for p in points],
                [p["per_second"] for p in points],
                "s--",
                label=f"{name} (Python client)",
            )
        axes.set_xscale("log", base=2)
        axes.set_xlabel("concurrent requests (connections for HTTP/1.1, streams otherwise)")
        axes.set_ylabel("req/s through the edge")
        axes.legend(fontsize=7)

    top = max(concurrencies)
    at_top = {name: points[-1]["per_second"] for name, points in results.items()}
    return Outcome(
        name="protocols",
        title="Protocols: one read over HTTP/1.1, HTTP/2, HTTP/3 and gRPC",
        table=table,
        figures={
            "requests_per_point": requests,
            "results": results,
            "python_clients": same_client,
            "setup_ms": setup,
        },
        explanation=(
            "The same cached read through the edge. A new connection per request pays a TCP "
            f"handshake ({setup['TCP connect']:.2f} ms on loopback) and the connection's "
            "set-up in Envoy every time; keep-alive pays it once per connection but holds one "
            "request per connection at a time, so concurrency costs connections. HTTP/2 "
            "multiplexes all the streams on one connection (one TLS handshake, header "
            "compression). The REST rows are answered from the edge's micro-cache; gRPC, "
            "HTTP/2 with protobuf bodies and no transcoding, is not cached at the edge and "
            "reaches catalog's Python every time, so its rows measure the whole mesh. "
            f"At {top} concurrent requests: "
            + "; ".join(f"{n} {r:,.0f} req/s" for n, r in at_top.items())
            + ". HTTP/3 multiplexes too, over QUIC; with two Python clients alike (they cost "
            "more than the edge, so read them against each other) at "
            f"{top}: "
            + "; ".join(
                f"{n} {points[-1]['per_second']:,.0f} req/s" for n, points in same_client.items()
            )
            + ". On loopback the transport has little to win or lose, and what parts those two "
            "rows is mostly the clients' own Python; QUIC's gains are a round trip less to set "
            "up and no head-of-line blocking on loss (the hol experiment). TCP + TLS 1.3 takes "
            f"{setup['TCP + TLS1.3 full']:.2f} ms of one client's time, resumed "
            f"{setup['TCP + TLS1.3 resumed']:.2f} ms (a resumed TLS 1.3 handshake still does "
            "its key exchange; TLS 1.2's resumption skips it: "
            f"{setup['TCP + TLS1.2 full']:.2f} against {setup['TCP + TLS1.2 resumed']:.2f} ms); "
            f"QUIC {setup['QUIC (TLS 1.3 inside), aioquic']:.2f} ms with aioquic, whose "
            "handshake is Python where ssl's is OpenSSL's C, so on loopback its one round trip "
            "saved does not show."
        ),
        plot=plot,
    )
