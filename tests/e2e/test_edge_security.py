"""The edge's TLS policy, HTTP/3, and its hardening against hostile requests."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl

import httpx
import pytest

from groundwork_cli import h3client
from tests.e2e.conftest import Mesh


def test_http3_over_quic_with_the_same_certificate(mesh: Mesh) -> None:
    host, port = mesh.plan.edge_https().split(":")
    status, body = asyncio.run(
        h3client.get(host, int(port), "/v1/events?page_size=2", mesh.ca, "localhost")
    )
    assert status == 200
    assert len(json.loads(body)["events"]) == 2
    with httpx.Client(http2=True, verify=mesh.tls()) as client:
        h2 = client.get(f"{mesh.https}/v1/events", params={"page_size": 2})
    assert h2.http_version == "HTTP/2"
    assert json.loads(body) == h2.json()  # the same answer over QUIC as over TCP


def test_tcp_responses_advertise_http3(mesh: Mesh) -> None:
    reply = httpx.get(f"{mesh.https}/v1/events", params={"page_size": 1}, verify=mesh.tls())
    assert reply.headers["alt-svc"] == f'h3=":{mesh.plan.mesh.edge.https}"; ma=86400'


def _handshake(mesh: Mesh, ciphers: str, version: ssl.TLSVersion) -> str:
    context = mesh.tls()
    context.minimum_version = context.maximum_version = version
    context.set_ciphers(ciphers)
    host, port = mesh.plan.edge_https().split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


def test_tls_12_only_with_forward_secret_aead_ciphers(mesh: Mesh) -> None:
    assert _handshake(mesh, "ECDHE-ECDSA-AES128-GCM-SHA256", ssl.TLSVersion.TLSv1_2) == (
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    )
    assert _handshake(mesh, "DEFAULT", ssl.TLSVersion.TLSv1_3).startswith("TLS_")
    # CBC without forward secrecy, offered alone, is refused by the edge.
    with pytest.raises(ssl.SSLError):
        _handshake(mesh, "ECDHE-ECDSA-AES128-SHA:AES128-SHA:@SECLEVEL=0", ssl.TLSVersion.TLSv1_2)


def test_header_names_with_underscores_are_rejected(mesh: Mesh) -> None:
    reply = httpx.get(f"{mesh.http}/v1/events", headers={"x_forwarded_user": "admin"})
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/json"


def test_oversized_headers_are_rejected(mesh: Mesh) -> None:
    reply = httpx.get(f"{mesh.http}/v1/events", headers={"x-big": "a" * 40_000})
    assert reply.status_code == 431


def test_oversized_bodies_are_rejected(mesh: Mesh) -> None:
    body = {"email": "big@example.com", "password": "x" * (2 * 1024 * 1024)}
    reply = httpx.post(f"{mesh.http}/v1/auth/signup", json=body)
    assert reply.status_code == 413


def test_paths_are_normalized_before_routing(mesh: Mesh) -> None:
    assert httpx.get(f"{mesh.http}//v1///events", params={"page_size": 1}).status_code == 200
    assert httpx.get(f"{mesh.http}/v1/x/../events", params={"page_size": 1}).status_code == 200


def test_a_client_that_never_finishes_its_headers_is_cut_off(mesh: Mesh) -> None:
    host, port = mesh.plan.edge_http().split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
