"""Two Python clients alike, where h2load cannot go (Debian's h2load is built
without QUIC): httpx over HTTP/2 and aioquic over HTTP/3, each one connection
with `streams` requests in flight. Both measure their own Python too, so their
figures compare with each other, never with h2load's."""

from __future__ import annotations

import asyncio
import socket
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from groundwork_cli import h2load, h3client


async def _closed_loop(
    get: Callable[[], Awaitable[int]], requests: int, streams: int
) -> list[float]:
    """`requests` calls of `get`, `streams` at a time: the milliseconds of each 200."""
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            if await get() == 200:
                latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(streams)))
    return latencies


async def _h2(host: str, port: int, path: str, requests: int, streams: int) -> list[float]:
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(http2=True, verify=False, limits=limits, timeout=120) as client:

        async def get() -> int:
            return (await client.get(f"https://{host}:{port}{path}")).status_code

        return await _closed_loop(get, requests, streams)


async def _h3(host: str, port: int, path: str, requests: int, streams: int) -> list[float]:
    async with h3client.unverified(host, port, "localhost") as client:

        async def get() -> int:
            return (await client.get(f"localhost:{port}", path, timeout=120))[0]

        return await _closed_loop(get, requests, streams)


def load(
    protocol: str, host: str, port: int, path: str, requests: int, streams: int
) -> dict[str, Any]:
    """`requests` GETs of https://host:port/path over `protocol` ("h2" or "h3"):
    req/s and percentiles of the 200s, as h2load.Figures has them."""
    started = time.perf_counter()
    client = _h2 if protocol == "h2" else _h3
    latencies = asyncio.run(client(host, port, path, requests, streams))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": requests,
        "succeeded": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": h2load.percentile(latencies, 0.5),
        "p99_ms": h2load.percentile(latencies, 0.99),
        "seconds": elapsed,
    }


async def _quic_setups(host: str, port: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        async with h3client.unverified(host, port, "localhost"):
            times.append((time.perf_counter() - started) * 1000)
    return times


def quic_setup_ms(host: str, port: int, repeats: int) -> float:
    """Median time to a QUIC connection with TLS 1.3 done (one round trip), aioquic."""
    return statistics.median(asyncio.run(_quic_setups(host, port, repeats)))


_TLS = {"tls1_2": ssl.TLSVersion.TLSv1_2, "tls1_3": ssl.TLSVersion.TLSv1_3}


def _tls(version: str, alpn: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = _TLS[version]
    context.set_alpn_protocols([alpn])
    return context


def _session(context: ssl.SSLContext, host: str, port: int) -> ssl.SSLSession:
    """A session to resume. TLS 1.3 sends its ticket after the handshake (which is
    why `openssl s_time -reuse` never resumes one), so a request is read to the end."""
    request = b"GET /v1/events?page_size=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as first,
    ):
        first.sendall(request)
        while first.recv(65536):
            pass
        session = first.session
    if session is None:
        raise RuntimeError(f"{host}:{port} gave no TLS session to resume")
    return session


def handshakes_per_second(target: str, version: str, resume: bool, seconds: float) -> float:
    """TCP + TLS handshakes one client (Python's ssl, OpenSSL underneath) completes
    per second against host:port, one at a time, new or resumed; a connection asked
    to resume must say it did, or this raises."""
    host, _, port_text = target.rpartition(":")
    port = int(port_text)
    context = _tls(version, "http/1.1")
    session = _session(context, host, port) if resume else None
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        with (
            socket.create_connection((host, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
        ):
            if resume and not tls.session_reused:
                raise RuntimeError(f"{target} did not resume the {version} session")
        count += 1
    return count / (time.perf_counter() - started)
