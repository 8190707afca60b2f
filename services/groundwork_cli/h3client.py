"""A minimal HTTP/3 client on aioquic: the edge's QUIC tests, and the lab's HTTP/3
side (Debian's h2load is built without QUIC)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent


class _Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._pending: dict[int, tuple[asyncio.Future[tuple[int, bytes]], list[Any]]] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self._http.handle_event(event):
            self._on_h3(h3_event)

    def _on_h3(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived | DataReceived):
            return
        future, parts = self._pending[event.stream_id]
        if isinstance(event, HeadersReceived):
            headers = dict(event.headers)
            if b":status" in headers:  # not trailers
                parts.insert(0, int(headers[b":status"]))
        else:
            parts.append(event.data)
        if event.stream_ended and not future.done():
            future.set_result((parts[0], b"".join(parts[1:])))

    async def get(self, authority: str, path: str, timeout: float = 10) -> tuple[int, bytes]:
        stream_id = self._quic.get_next_available_stream_id()
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = (future, [])
        self._http.send_headers(
            stream_id,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
            ],
            end_stream=True,
        )
        self.transmit()
        return await asyncio.wait_for(future, timeout)


async def get(host: str, port: int, path: str, cafile: str, server_name: str) -> tuple[int, bytes]:
    """GET over HTTP/3; returns (status, body)."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, server_name=server_name
    )
    configuration.load_verify_locations(cafile)
    async with connect(
        host, port, configuration=configuration, create_protocol=_Client, wait_connected=True
    ) as client:
        assert isinstance(client, _Client)
        return await client.get(f"{server_name}:{port}", path)


@contextlib.asynccontextmanager
async def unverified(host: str, port: int, server_name: str) -> AsyncIterator[_Client]:
    """One connection whose certificate is not checked (the lab's own servers)."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, server_name=server_name, verify_mode=ssl.CERT_NONE
    )
    async with connect(
        host, port, configuration=configuration, create_protocol=_Client, wait_connected=True
    ) as client:
        assert isinstance(client, _Client)
        yield client
