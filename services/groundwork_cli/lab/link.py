"""An impaired network link in user space, for when the kernel has no netem: two
network namespaces, each with a TUN device, joined by this process, which reads
every IP packet from one device and writes it to the other after a delay, dropping
a given fraction on the way (independently, both directions).

    [ns client] tun 10.201.0.1 --fd--> relay (delay, loss) --fd--> tun 10.201.0.2 [ns server]

A TUN device is created here (in the root namespace), then moved into its
namespace; the file descriptor stays attached to it, so the relay keeps reading and
writing it from outside."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import random
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLIENT_IP, SERVER_IP = "10.201.0.1", "10.201.0.2"


@dataclass
class Impairment:
    delay_ms: float = 0.0  # one way
    loss: float = 0.0  # fraction of packets dropped, each direction


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Relay:
    """Copies packets between the two devices, impaired as `impairment` says now."""

    def __init__(self, a: int, b: int) -> None:
        self.fds = (a, b)
        self.impairment = Impairment()
        self.forwarded = self.dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _forward(self, source: int, target: int) -> None:
        while True:
            try:
                packet = os.read(source, 65536)
            except BlockingIOError:
                return
            if random.random() < self.impairment.loss:
                self.dropped += 1
                continue
            self.forwarded += 1
            delay = self.impairment.delay_ms / 1000
            if delay:
                self._loop.call_later(delay, self._write, target, packet)
            else:
                self._write(target, packet)

    @staticmethod
    def _write(target: int, packet: bytes) -> None:
        with contextlib.suppress(OSError):  # a full queue drops, as a real link would
            os.write(target, packet)

    def start(self) -> None:
        a, b = self.fds
        self._loop.add_reader(a, self._forward, a, b)
        self._loop.add_reader(b, self._forward, b, a)
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextmanager
def impaired_link(prefix: str = "gwhol") -> Iterator[tuple[str, str, Relay]]:
    """(client namespace, server namespace, relay): set `relay.impairment` to change
    the link. Everything is removed on the way out."""
    client, server = f"{prefix}-client", f"{prefix}-server"
    for namespace in (client, server):
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)  # a leftover
        _ip("netns", "add", namespace)
    fds: list[int] = []
    relay: Relay | None = None
    try:
        for namespace, name, mine, peer in (
            (client, f"{prefix}c", CLIENT_IP, SERVER_IP),
            (server, f"{prefix}s", SERVER_IP, CLIENT_IP),
        ):
            fds.append(_tun(name))
            _ip("link", "set", name, "netns", namespace)
            inside = ["-n", namespace]
            _ip(*inside, "addr", "add", mine, "peer", peer, "dev", name)
            _ip(*inside, "link", "set", name, "up", "mtu", "1400")
            _ip(*inside, "link", "set", "lo", "up")
        relay = Relay(fds[0], fds[1])
        relay.start()
        yield client, server, relay
    finally:
        if relay is not None:
            relay.stop()
        for fd in fds:
            os.close(fd)
        for namespace in (client, server):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
