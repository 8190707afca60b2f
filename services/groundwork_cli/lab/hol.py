"""Head-of-line blocking: HTTP/2 over TCP against HTTP/3 over QUIC on an impaired
link (link.py: a delay each way and 0-5% loss, built in user space), many streams
on one connection each, to an Envoy that answers by itself (so only the transport
is measured), loaded from the other namespace by two Python clients alike
(python_clients.py: httpx for HTTP/2, aioquic for HTTP/3), so the transports
differ and nothing else.

TCP delivers bytes in order: one lost segment holds back every stream behind it
until it is retransmitted. QUIC orders bytes per stream: a loss stalls only the
stream it belonged to."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from groundwork_cli.lab import python_clients
from groundwork_cli.lab.link import SERVER_IP, Impairment, impaired_link
from groundwork_cli.lab.outcome import Outcome, Table
from groundwork_cli.runtime.pki import Pki, ensure_ca, ensure_server_cert
from groundwork_cli.runtime.plan import envoy_bin

PORT = 8443
BODY_BYTES = 16 * 1024


def _config(cert: Path, key: Path) -> str:
    """An Envoy answering 16 KiB itself, over TLS+HTTP/2 (TCP) and QUIC+HTTP/3 (UDP)."""

    def tls(alpn: str, indent: int) -> str:
        lines = [
            "common_tls_context:",
            f"  alpn_protocols: [{alpn}]",
            "  tls_certificates:",
            f'  - certificate_chain: {{filename: "{cert}"}}',
            f'    private_key: {{filename: "{key}"}}',
        ]
        return "".join("\n" + " " * indent + line for line in lines)

    def hcm(codec: str) -> str:
        http3 = "\n          http3_protocol_options: {}" if codec == "HTTP3" else ""
        body = "x" * BODY_BYTES
        manager = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
        return f"""
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {manager}.HttpConnectionManager
          stat_prefix: hol
          codec_type: {codec}{http3}
          route_config:
            max_direct_response_body_size_bytes: {BODY_BYTES}
            virtual_hosts:
            - name: hol
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                direct_response: {{status: 200, body: {{inline_string: "{body}"}}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"""

    tls_type = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
    quic_type = "type.googleapis.com/envoy.extensions.transport_sockets.quic.v3"
    return f"""
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 9901}}}}}}
static_resources:
  listeners:
  - name: h2
    address: {{socket_address: {{address: {SERVER_IP}, port_value: {PORT}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": {tls_type}.DownstreamTlsContext{tls("h2", 10)}
      filters:{hcm("HTTP2")}
  - name: h3
    address: {{socket_address: {{protocol: UDP, address: {SERVER_IP}, port_value: {PORT}}}}}
    udp_listener_config: {{quic_options: {{}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.quic
        typed_config:
          "@type": {quic_type}.QuicDownstreamTransport
          downstream_tls_context:{tls("h3", 12)}
      filters:{hcm("HTTP3")}
"""


def client_main(protocol: str, requests: int, streams: int) -> None:
    """Run inside the client namespace: print the run's figures as JSON."""
    print(json.dumps(python_clients.load(protocol, SERVER_IP, PORT, "/", requests, streams)))


def _load(client: str, protocol: str, requests: int, streams: int) -> dict[str, Any]:
    args = ["ip", "netns", "exec", client, sys.executable, "-m", "groundwork_cli.lab.hol"]
    result = subprocess.run(
        [*args, protocol, str(requests), str(streams)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the {protocol} client failed:\n{result.stderr[-1500:]}")
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _measure(
    losses: list[float], delay_ms: float, requests: int, streams: int
) -> dict[str, list[dict[str, Any]]]:
    """Each transport at each loss, through one impaired link and one Envoy."""
    results: dict[str, list[dict[str, Any]]] = {"HTTP/2 over TCP": [], "HTTP/3 over QUIC": []}
    with tempfile.TemporaryDirectory() as directory:
        pki = Pki(Path(directory))
        ensure_ca(pki)
        ensure_server_cert(pki, "hol", ["hol"], [SERVER_IP])
        config = Path(directory) / "envoy.yaml"
        config.write_text(_config(pki.cert("hol"), pki.key("hol")))
        with impaired_link() as (client, server, relay):
            command = [str(envoy_bin()), "-c", str(config), "--disable-hot-restart"]
            envoy = subprocess.Popen(
                ["ip", "netns", "exec", server, *command, "-l", "error", "--concurrency", "1"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_ready(server)
                for loss in losses:
                    relay.impairment = Impairment(delay_ms=delay_ms, loss=loss)
                    for name, protocol in (("HTTP/2 over TCP", "h2"), ("HTTP/3 over QUIC", "h3")):
                        point = _load(client, protocol, requests, streams)
                        results[name].append({"loss": loss, **point})
            finally:
                envoy.terminate()
                envoy.wait(20)
    return results


def run(quick: bool) -> Outcome:
    losses = [0.0, 0.02] if quick else [0.0, 0.01, 0.02, 0.05]
    delay_ms = 10.0
    requests, streams = (100, 10) if quick else (1000, 20)
    results = _measure(losses, delay_ms, requests, streams)
    table = Table(["transport", "loss", "req/s", "p50 ms", "p99 ms", "seconds", "failed"])
    for name, points in results.items():
        for p in points:
            table.rows.append(
                [
                    name,
                    f"{p['loss']:.0%}",
                    p["per_second"],
                    p["p50_ms"],
                    p["p99_ms"],
                    p["seconds"],
                    p["requests"] - p["succeeded"],
                ]
            )

    def plot(axes: Any) -> None:
        for name, points in results.items():
            axes.plot(
                [p["loss"] * 100 for p in points],
                [p["p99_ms"] for p in points],
                "o-",
                label=f"{name} p99",
            )
            axes.plot(
                [p["loss"] * 100 for p in points],
                [p["p50_ms"] for p in points],
                "o--",
                label=f"{name} p50",
            )
        axes.set_xlabel(f"packet loss, % each way ({delay_ms:.0f} ms delay each way)")
        axes.set_ylabel("ms per request")
        axes.legend(fontsize=8)

    worst = {name: points[-1] for name, points in results.items()}
    return Outcome(
        name="hol",
        title="Head-of-line blocking: HTTP/2 over TCP against HTTP/3 over QUIC",
        table=table,
        figures={
            "delay_ms": delay_ms,
            "streams": streams,
            "body_bytes": BODY_BYTES,
            "results": results,
        },
        explanation=(
            f"{streams} concurrent streams on one connection, {BODY_BYTES // 1024} KiB answers, "
            f"{delay_ms:.0f} ms each way, loss made by a user-space relay between two network "
            "namespaces (TUN devices; the kernel here has no netem). Without loss the two are "
            "close. With loss, TCP's in-order delivery makes every stream wait for each "
            "retransmitted segment, and its window halves for the whole connection; QUIC "
            "retransmits per packet and delivers each stream's bytes as they complete, so a "
            f"loss stalls one stream. At {losses[-1]:.0%} loss: "
            + "; ".join(
                f"{n} p99 {p['p99_ms']:.0f} ms, {p['per_second']:,.0f} req/s"
                for n, p in worst.items()
            )
            + "."
        ),
        plot=plot,
    )


def _wait_ready(server: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                server,
                "python3",
                "-c",
                "import urllib.request;urllib.request.urlopen('http://127.0.0.1:9901/ready',timeout=1)",
            ],
            capture_output=True,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("the head-of-line experiment's Envoy did not become ready")


if __name__ == "__main__":
    client_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
